"""Shared helpers for perturbation families: intensity references, axes, signs, seeds.

Everything here is a pure function of its arguments. Intensity references are computed per
channel in ``draw`` and recorded in the params, so ``apply`` never re-derives them.
"""
from __future__ import annotations

import random
from collections.abc import Sequence
from types import ModuleType
from typing import Literal

import numpy as np

from harness.case import Case
from harness.errors import ConfigError
from harness.perturbations.base import NumberOption

Direction = Literal["both", "up", "down"]
DIRECTIONS: tuple[str, ...] = ("both", "up", "down")
DIRECTION_DOC = "'both' (default: sign drawn per call, recorded), 'up' or 'down'"
DR_DOC = "displayed dynamic range of the B-mode image in dB (default 60)"
DR_OPTION = NumberOption(above=0)  # 0 dB would divide by zero
SEED_BOUND = 2**31 - 1


def channel_values(case: Case, channel: int, *, foreground: bool = True) -> np.ndarray:
    """Intensities of one channel over the labelled foreground (all voxels when none)."""
    image = case.image[channel]
    fg = case.label > 0
    return image[fg] if foreground and fg.any() else image.ravel()


def foreground_std(case: Case) -> list[float]:
    """Per-channel intensity std over the labelled foreground (whole image when no foreground).

    Falls back to the whole-image std, then 1.0, so a flat foreground never yields sigma 0.
    """
    out = []
    for c in range(case.image.shape[0]):
        std = float(channel_values(case, c).std())
        if std <= 0:
            std = float(case.image[c].std()) or 1.0
        out.append(std)
    return out


def foreground_mean(case: Case) -> list[float]:
    """Per-channel mean intensity over the labelled foreground (whole image when none)."""
    return [float(channel_values(case, c).mean()) for c in range(case.image.shape[0])]


def robust_range(case: Case, low: float = 0.5, high: float = 99.5) -> list[tuple[float, float]]:
    """Per-channel ``(p_low, p_high)`` intensity percentiles of the whole image; a flat channel
    gets ``(v, v + 1)`` so ranges are never empty."""
    out = []
    for c in range(case.image.shape[0]):
        lo, hi = (float(v) for v in np.percentile(case.image[c], [low, high]))
        out.append((lo, hi if hi > lo else lo + 1.0))
    return out


def slice_axis(spacing: Sequence[float]) -> int:
    """Through-plane axis of a 3D volume from its voxel size (mm), assuming square in-plane pixels:

    * two axes agree within 1 % and the third differs from both: the third (thin-slice CT at
      0.9 × 0.9 × 0.625 mm as much as MRI at 0.7 × 0.7 × 3 mm);
    * otherwise, unless all three agree: the largest spacing;
    * all three agree (isotropic): the last axis (the NIfTI slice convention).
    """
    sp = np.asarray(spacing, dtype=float)
    same = [[max(a, b) <= 1.01 * min(a, b) for b in sp] for a in sp]
    if all(all(row) for row in same):
        return len(sp) - 1
    if len(sp) == 3:
        for axis in range(3):
            i, j = (a for a in range(3) if a != axis)
            if same[i][j] and not same[axis][i] and not same[axis][j]:
                return axis
    return int(np.argmax(sp))


def in_plane_axis(case: Case, rng: np.random.Generator) -> int:
    """One of the case's in-plane spatial axes, drawn (one draw): either axis of a 2D case, one of the
    two besides :func:`slice_axis` in 3D (where MRI phase encoding runs)."""
    through = None if case.ndim == 2 else slice_axis(case.spacing)
    axes = [a for a in range(case.ndim) if a != through]
    return int(axes[int(rng.integers(len(axes)))])


def draw_sign(rng: np.random.Generator, direction: str) -> int:
    """+1/-1 for ``direction`` "up"/"down"; a fair coin for "both" (always consumes one draw,
    so the draws that follow are the same whichever direction is configured)."""
    coin = 1 if rng.random() < 0.5 else -1
    if direction == "both":
        return coin
    if direction == "up":
        return 1
    if direction == "down":
        return -1
    raise ConfigError(f"direction must be 'both', 'up' or 'down', got {direction!r}")


def draw_seed(rng: np.random.Generator) -> int:
    """A fresh integer seed for a sub-generator (recorded in params so apply can replay it)."""
    return int(rng.integers(SEED_BOUND))


def ladder(values: Sequence[float], severity: int) -> float:
    """The ladder value for ``severity`` (1..5)."""
    return float(values[severity - 1])


def monai_transforms() -> ModuleType:
    """``monai.transforms``, imported lazily without leaking into Python's global ``random``
    (MONAI's import pulls in ``rich``, which draws ``random.getrandbits`` at import time)."""
    state = random.getstate()
    try:
        import monai.transforms as transforms
    finally:
        random.setstate(state)
    return transforms
