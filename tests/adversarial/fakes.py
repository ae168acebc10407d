"""Test doubles for the attack tests: tiny models with known gradients, and cases.

``ThresholdModel`` segments ``x > 0.5`` with logits ``GAIN * [0.5 - x, x - 0.5]``: for it, the
optimal L∞ attack pushes every voxel within ε of the threshold across it, and PGD's signed steps
find exactly that. ``MaskedModel`` has the same outputs with zero gradients (the classic
gradient-masking failure). ``LabelsOnlyModel`` has no gradients and returns label maps only.
"""
from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from harness.case import Case
from harness.datasets.phantom import phantom_dataset
from harness.models.base import Prediction, softmax

GAIN = 20.0
LEVEL = 0.5


class ThresholdModel:
    name = "threshold"
    differentiable = True
    device = torch.device("cpu")
    labels: ClassVar[dict[int, str]] = {1: "fg"}

    def __init__(self) -> None:
        self.calls = 0

    def torch_logits(self, x: torch.Tensor) -> torch.Tensor:
        return GAIN * torch.cat([LEVEL - x[:, :1], x[:, :1] - LEVEL], dim=1)

    def predict(self, image: np.ndarray, spacing: tuple[float, ...]) -> Prediction:
        self.calls += 1
        scores = GAIN * np.stack([LEVEL - image[0], image[0] - LEVEL])
        probs = softmax(scores)
        return Prediction(labels=probs.argmax(axis=0).astype(np.int64), probabilities=probs)


class MaskedModel(ThresholdModel):
    name = "masked"

    def torch_logits(self, x: torch.Tensor) -> torch.Tensor:
        return super().torch_logits(x.detach()) + 0 * x[:, :1]  # same values, zero gradient


class LabelsOnlyModel(ThresholdModel):
    name = "labels-only"
    differentiable = False

    def predict(self, image: np.ndarray, spacing: tuple[float, ...]) -> Prediction:
        return Prediction(labels=super().predict(image, spacing).labels)


def sigmoid_net() -> torch.nn.Module:
    """A torch-format entry: three independent sigmoid channels (``kind = "probabilities"`` whose
    values do not sum to 1), fixed weights."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3, padding=1), torch.nn.Sigmoid())


def threshold_scores(image: np.ndarray) -> np.ndarray:
    """A callable-adapter entry: two-class logits (kind = "logits")."""
    return GAIN * np.stack([LEVEL - image[0], image[0] - LEVEL])


@cache
def phantom(index: int = 0) -> Case:
    ds = phantom_dataset(2)
    return ds.load(ds.case_ids[index])


def crop(case: Case, size: int) -> Case:
    """The central ``size`` x ``size`` crop of a 2D case."""
    a = (case.label.shape[0] - size) // 2
    b = (case.label.shape[1] - size) // 2
    return case.with_(image=case.image[:, a:a + size, b:b + size].copy(),
                      label=case.label[a:a + size, b:b + size].copy())


@cache
def small_case() -> Case:
    """A 64 x 64 crop of phantom case 1 (the reference model still segments it, Dice ~0.94)."""
    return crop(phantom(1), 64)


def threshold_case() -> Case:
    """A case whose reference is the threshold model's own clean prediction (clean Dice 1)."""
    case = small_case()
    return case.with_(label=(case.image[0] > LEVEL).astype(np.int64))


def write_card(folder: Path, text: str, name: str = "card.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path
