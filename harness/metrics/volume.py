"""Volume errors between a predicted and a reference mask.

* ``abs_volume_error`` = |V_pred - V_ref| in mm³ (mm² for 2D images), V = voxel count x voxel
  volume (the product of ``spacing``);
* ``rel_volume_error`` = |V_pred - V_ref| / V_ref, a fraction (0.1 = 10 % off).

Both are >= 0, lower is better, and never NaN. Empty policy: both empty -> 0 and 0; prediction
empty -> V_ref and 1 (all of the volume missed); reference empty -> V_pred and 1 (the relative
error is undefined there, x / 0, and is scored as a complete miss, the same as the converse).

>>> import numpy as np
>>> a = np.zeros((4, 4), bool); a[:2] = True   # 8 pixels
>>> b = np.zeros((4, 4), bool); b[:1] = True   # 4 pixels
>>> abs_volume_error(a, b, spacing=(0.5, 0.5)), rel_volume_error(a, b)
(1.0, 1.0)
"""
from __future__ import annotations

import math

import numpy as np

from harness.metrics._checks import as_mask, as_spacing, check_pair
from harness.metrics.surface import Spacing


def voxel_volume(spacing: tuple[float, ...]) -> float:
    """Volume of one voxel in mm³ (area of a pixel in mm² for 2D)."""
    return float(math.prod(spacing))


def abs_from_counts(n_pred: int, n_ref: int, voxel: float) -> float:
    """|V_pred - V_ref| from voxel counts and the voxel volume (mm³)."""
    return abs(n_pred - n_ref) * voxel


def rel_from_counts(n_pred: int, n_ref: int) -> float:
    """|V_pred - V_ref| / V_ref from voxel counts, with the empty policy above."""
    if n_ref == 0:
        return 0.0 if n_pred == 0 else 1.0
    return abs(n_pred - n_ref) / n_ref


def _counts(pred: object, ref: object) -> tuple[np.ndarray, int, int]:
    p, r = as_mask(pred, "pred"), as_mask(ref, "ref")
    check_pair(p, r)
    return p, int(np.count_nonzero(p)), int(np.count_nonzero(r))


def abs_volume_error(pred: object, ref: object, *, spacing: Spacing = None) -> float:
    """Absolute volume difference |V_pred - V_ref| in mm³ (2D: mm²)."""
    p, n_pred, n_ref = _counts(pred, ref)
    return abs_from_counts(n_pred, n_ref, voxel_volume(as_spacing(spacing, p.ndim)))


def rel_volume_error(pred: object, ref: object) -> float:
    """Relative volume difference |V_pred - V_ref| / V_ref (reference empty: 0 or 1)."""
    _, n_pred, n_ref = _counts(pred, ref)
    return rel_from_counts(n_pred, n_ref)
