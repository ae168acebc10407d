"""Input validation shared by every metric: masks, label maps, spacing, options.

Errors are ``ValueError`` with a one-line message that names the argument and the problem.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Literal

import numpy as np

Empty = Literal["none", "both", "reference", "prediction"]


def as_mask(x: object, name: str) -> np.ndarray:
    """``x`` as a boolean array; integer/float arrays must hold only 0 and 1."""
    arr = np.asarray(x)
    if arr.dtype == bool:
        return arr
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"{name} must be a boolean or numeric mask, got dtype {arr.dtype}")
    if arr.size and not bool(np.all((arr == 0) | (arr == 1))):
        bad = arr[(arr != 0) & (arr != 1)].flat[0]
        raise ValueError(f"{name} is not a binary mask (it holds {bad.item()!r}, expected only 0 and 1); "
                         "pass a boolean mask such as labels == k, or score label maps with "
                         "harness.metrics.evaluate")
    return arr != 0


def as_label_map(x: object, name: str) -> np.ndarray:
    """``x`` as an integer (or boolean) label map."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "biu":
        raise ValueError(f"{name} must be an integer label map, got dtype {arr.dtype}")
    if arr.dtype.kind == "i" and arr.size and arr.min() < 0:
        raise ValueError(f"{name} has negative values (lowest {int(arr.min())}); class numbers are 0 (background), 1, 2, ...")
    return arr


def check_pair(pred: np.ndarray, ref: np.ndarray) -> None:
    """Equal shapes with two or three spatial axes."""
    if pred.shape != ref.shape:
        raise ValueError(f"pred and ref shapes differ: {pred.shape} vs {ref.shape}")
    if pred.ndim not in (2, 3):
        raise ValueError(f"masks must be 2D or 3D (spatial axes only), got shape {pred.shape}")


def as_spacing(spacing: float | Sequence[float] | np.ndarray | None,
               ndim: int) -> tuple[float, ...]:
    """Spacing in mm per spatial axis; ``None`` is 1 mm, a scalar is isotropic."""
    if spacing is None:
        return (1.0,) * ndim
    try:
        values = np.asarray(spacing)
        items = spacing if isinstance(spacing, (list, tuple)) else (spacing,)
        if values.dtype.kind not in "iuf" or any(isinstance(v, (bool, np.bool_)) for v in items):
            raise TypeError  # not True (1 mm), "2" or b"2", which numpy would convert
        values = values.astype(np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"spacing must be a number or a sequence of numbers (mm), got {spacing!r}") from None
    if values.ndim > 1:
        raise ValueError(f"spacing must be a number or a sequence of numbers, got {spacing!r}")
    if values.ndim == 0:  # a scalar: isotropic (a one-element sequence is one axis, checked below)
        values = np.repeat(values, ndim)
    if values.size != ndim:
        raise ValueError(f"spacing has {values.size} values but the masks have {ndim} spatial "
                         f"axes: {tuple(values.tolist())}")
    if not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ValueError(f"spacing must be finite and positive (mm), got {tuple(values.tolist())}")
    return tuple(float(v) for v in values)


def _real(value: object, what: str) -> float:
    """``value`` as a float; ValueError for a bool, a string or anything else that is not a real number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{what} must be a number, got {value!r}")
    return float(value)


def check_percentile(percentile: float) -> float:
    q = _real(percentile, "percentile")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile must lie in [0, 100], got {percentile!r}")
    return q


def check_tolerance(tolerance: float) -> float:
    tau = _real(tolerance, "NSD tolerance")
    if not (math.isfinite(tau) and tau >= 0.0):
        raise ValueError(f"NSD tolerance must be a finite distance >= 0 mm, got {tolerance!r}")
    return tau


def check_connectivity(connectivity: int | None, ndim: int) -> int:
    """Neighbourhood for connected components: 1 (faces) .. ndim (full); ``None`` is ndim."""
    if connectivity is None:
        return ndim
    if isinstance(connectivity, bool) or not isinstance(connectivity, (int, np.integer)) \
            or not 1 <= int(connectivity) <= ndim:
        raise ValueError(f"connectivity must be an integer from 1 (faces) to {ndim} (full) for "
                         f"{ndim}D masks, got {connectivity!r}")
    return int(connectivity)


def empty_case(n_pred: int, n_ref: int) -> Empty:
    """Which of the two masks is empty: "none", "both", "reference" or "prediction"."""
    if n_pred and n_ref:
        return "none"
    if not n_pred and not n_ref:
        return "both"
    return "reference" if n_pred else "prediction"


def diagonal(shape: tuple[int, ...], spacing: tuple[float, ...]) -> float:
    """Physical diagonal of the image (mm): sqrt(sum((n_i * s_i)^2)), the one-empty distance."""
    return float(math.sqrt(sum((n * s) ** 2 for n, s in zip(shape, spacing, strict=True))))
