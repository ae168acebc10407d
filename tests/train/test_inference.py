"""Sliding-window inference with Gaussian blending, flip TTA, connected-component postprocessing."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from harness.train.inference import (
    gaussian_importance,
    keep_largest_components,
    predict_labels,
    predict_probabilities,
)


class Threshold(nn.Module):
    """Pointwise 'network': class 1 where the image is positive (translation-equivariant)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([-x[:, :1], x[:, :1]], dim=1) * 10


def test_sliding_window_matches_pointwise_result() -> None:
    img = np.random.default_rng(0).standard_normal((1, 45, 70)).astype(np.float32)
    probs = predict_probabilities(Threshold(), img, patch=(16, 24), overlap=0.5)
    assert probs.shape == (2, 45, 70)
    np.testing.assert_allclose(probs.sum(0), 1.0, atol=1e-5)
    np.testing.assert_array_equal(probs.argmax(0), (img[0] > 0).astype(int))


def test_window_larger_than_image_and_3d_tta() -> None:
    img = np.random.default_rng(1).standard_normal((1, 5, 9, 7)).astype(np.float32)
    labels = predict_labels(Threshold(), img, patch=(8, 8, 8), tta=True, flip_axes=(0, 1, 2))
    np.testing.assert_array_equal(labels, (img[0] > 0).astype(int))


def test_gaussian_importance_peaks_in_the_centre() -> None:
    w = gaussian_importance((9, 11))
    assert w.shape == (9, 11) and float(w[4, 5]) == 1.0 and float(w.min()) > 0


def test_keep_largest_components() -> None:
    lab = np.zeros((10, 10), dtype=np.int64)
    lab[0:4, 0:4] = 1
    lab[8, 8] = 1
    lab[6:8, 0:2] = 2
    out = keep_largest_components(lab)
    assert out[8, 8] == 0 and (out[0:4, 0:4] == 1).all() and (out[6:8, 0:2] == 2).all()
