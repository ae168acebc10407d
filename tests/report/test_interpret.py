"""Uncertainty (TTA entropy) and saliency (SmoothGrad) maps, and worst-item selection."""
from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from harness.models.base import Prediction
from harness.report.artifacts import primary_metric, worst_items
from harness.report.interpret import saliency_unavailable, smoothgrad, tta_entropy


class LabelModel:
    labels: ClassVar[dict[int, str]] = {1: "organ"}
    differentiable = False

    def predict(self, image, spacing):
        return Prediction(labels=(image[0] > 0.5).astype(np.int64))


class ShiftedModel(LabelModel):
    """Segments one pixel to the right of the structure: flips change its answer."""

    def predict(self, image, spacing):
        return Prediction(labels=np.roll(image[0] > 0.5, 1, axis=-1).astype(np.int64))


class ScoreModel(LabelModel):
    """Two-class logits from a fixed 3x3 convolution: differentiable, not flip-invariant."""

    differentiable = True
    patch_size = None

    def torch_logits(self, x):
        import torch

        kernel = torch.tensor([[[[0.0, 1.0, 0.0], [0.0, 2.0, 1.0], [0.0, 0.0, 0.0]]]])
        fg = torch.nn.functional.conv2d(x, kernel, padding=1)
        return torch.cat([torch.zeros_like(fg), fg - 1.0], dim=1)


def test_entropy_is_zero_when_augmentations_agree_and_high_on_disagreement() -> None:
    image = np.zeros((1, 16, 16), np.float32)
    image[0, 4:12, 4:12] = 1.0
    assert tta_entropy(LabelModel(), image, (1.0, 1.0)).max() == pytest.approx(0.0)
    entropy = tta_entropy(ShiftedModel(), image, (1.0, 1.0))  # 2 of 3 passes shift right, 1 left
    assert entropy.shape == (16, 16) and entropy.min() == 0.0 and entropy.max() <= 1.0
    assert entropy[6, 12] == pytest.approx(-(1 / 3 * np.log(1 / 3) + 2 / 3 * np.log(2 / 3)) / np.log(2), rel=1e-5)


def test_smoothgrad_is_local_to_the_receptive_field() -> None:
    image = np.zeros((1, 16, 16), np.float32)
    mask = np.zeros((16, 16), bool)
    mask[8, 8] = True
    sal = smoothgrad(ScoreModel(), image, mask, 1, n=4, seed=0)
    assert sal.shape == (16, 16) and sal.max() == pytest.approx(1.0)
    assert np.count_nonzero(sal) == 3 and sal[8, 8] > 0 and sal[0, 0] == 0
    assert saliency_unavailable(LabelModel()) and saliency_unavailable(ScoreModel()) is None


def test_worst_items_one_per_case_and_perturbation() -> None:
    rows = []
    for cid, values in {"a": [0.9, 0.2, 0.1], "b": [0.8, 0.3, 0.5], "c": [0.05, 0.9, 0.9]}.items():
        for (pert, sev), v in zip([("clean", 0), ("noise", 1), ("noise", 3)], values):
            rows += [{"case_id": cid, "perturbation": pert, "severity": sev, "repeat": 0, "seed": 1,
                      "label": 1, "status": "OK", "dice": v}]
    worst = worst_items(pd.DataFrame(rows), "dice", 3)
    # perturbed pairs only: case c's clean image (0.05) is not a perturbation pair, and its panels repeated
    assert list(zip(worst["case_id"], worst["perturbation"], worst["severity"])) == [
        ("a", "noise", 3), ("b", "noise", 1), ("c", "noise", 1)]
    clean_only = worst_items(pd.DataFrame([r for r in rows if r["perturbation"] == "clean"]), "dice", 2)
    assert list(clean_only["case_id"]) == ["c", "b"]  # a run that perturbed nothing: its worst clean cases
    assert primary_metric(["hd95", "nsd"]) == "nsd" and primary_metric(["hd95"]) == "hd95"
