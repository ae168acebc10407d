"""Sliding-window inference with Gaussian blending, flip TTA, connected-component postprocessing."""
from __future__ import annotations

import numpy as np
import pytest
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


def _conv_net() -> torch.nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Conv3d(1, 3, 3, padding=1), torch.nn.Conv3d(3, 3, 3, padding=1)).eval()


def test_sliding_window_matches_one_full_pass_away_from_the_windows_edges() -> None:
    """A 1e-3 weight floor made a window's zero-padded edge count as much as another window's centre
    wherever both sat at the floor: up to 0.25 probability error against a full pass (nnU-Net floors
    only exact zeros, at the smallest positive weight)."""
    import numpy as np

    from harness.models.preprocessing import sliding_window
    from harness.train.inference import predict_probabilities

    net = _conv_net()
    image = np.random.default_rng(0).normal(size=(1, 35, 38, 32)).astype(np.float32)
    full = predict_probabilities(net, image)
    windowed = predict_probabilities(net, image, patch=(20, 28, 20), overlap=0.5)
    assert np.abs(windowed - full).max() < 0.02

    def forward(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return torch.softmax(net(torch.from_numpy(batch)), dim=1).numpy()

    adapter = sliding_window(image, (20, 28, 20), forward, overlap=0.5)
    assert np.abs(adapter - full).max() < 0.02


def test_the_learning_rate_anneals_when_the_time_budget_ends_training_first() -> None:
    from harness.train import TrainConfig
    from harness.train.trainer import _lr

    both = TrainConfig(epochs=1000, time_budget=1, lr=3e-3)
    assert _lr(both, epoch=10, elapsed=59.0, budget_s=60.0) < 0.2 * both.lr  # was 0.00298: no decay at all
    epochs_only = TrainConfig(epochs=10, lr=3e-3)
    assert _lr(epochs_only, epoch=5, elapsed=1e6, budget_s=float("inf")) == pytest.approx(3e-3 * 0.5 ** 0.9)
