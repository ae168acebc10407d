"""Ultrasound helpers: the B-mode display model shared by the ultrasound families.

A B-mode image is a log-compressed echo amplitude: display value ``x`` in ``[0, I_ref]`` maps to
``(x / I_ref - 1) * DR`` dB below the brightest echo, ``DR`` the displayed dynamic range (option
``dynamic_range_db``, default 60 dB). ``I_ref`` is 255 for 8-bit images (whole numbers in
0..255, brightest above 1) and the channel maximum otherwise, so a dim 8-bit scan gets the same dB
change in grey levels as a bright one. Depth is the first spatial axis (rows);
lateral axes are the others.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from harness.case import Case

DYNAMIC_RANGE_DB = 60.0


def display_max(case: Case) -> list[float]:
    """``I_ref`` per channel."""
    out = []
    for x in case.image:
        lo, hi = float(x.min()), float(x.max())
        eight_bit = lo >= 0 and 1 < hi <= 255 and bool(np.all(x == np.round(x)))
        out.append(255.0 if eight_bit else (hi if hi > 0 else 1.0))
    return out


def dynamic_range(options: dict[str, Any]) -> float:
    return float(options.get("dynamic_range_db", DYNAMIC_RANGE_DB))


def to_db(x: np.ndarray, i_ref: float, dr: float) -> np.ndarray:
    """Display value -> dB relative to the brightest displayable echo."""
    return (np.asarray(x, dtype=np.float64) / i_ref - 1.0) * dr


def display_bounds(x: np.ndarray, i_ref: float) -> tuple[float, float]:
    """The range results are clipped to: [0, I_ref], widened to keep values ``x`` already has
    outside it (a normalised image's negative values stay, as the display model cannot place them)."""
    return min(0.0, float(x.min())), max(i_ref, float(x.max()))


def from_db(db: np.ndarray, i_ref: float, dr: float, bounds: tuple[float, float] | None = None) -> np.ndarray:
    """dB -> display value, clipped to ``bounds`` (default: the displayable range [0, I_ref])."""
    lo, hi = bounds if bounds is not None else (0.0, i_ref)
    return np.clip((db / dr + 1.0) * i_ref, lo, hi)


def to_amplitude(x: np.ndarray, i_ref: float, dr: float) -> np.ndarray:
    """Display value -> linear echo amplitude (1 = brightest displayable echo)."""
    return 10.0 ** (to_db(x, i_ref, dr) / 20.0)


def from_amplitude(a: np.ndarray, i_ref: float, dr: float, bounds: tuple[float, float] | None = None) -> np.ndarray:
    """Linear amplitude -> display value (log compression, clipped to ``bounds``, default [0, I_ref])."""
    return from_db(20.0 * np.log10(np.maximum(a, 1e-300)), i_ref, dr, bounds)  # 1e-300: -6000 dB


def add_db(case: Case, db_field: np.ndarray, params: dict[str, Any]) -> Case:
    """Add a (broadcastable, spatial) dB field to every channel in the display domain, keeping
    values already outside [0, I_ref] where the field does not push them."""
    out = np.empty_like(case.image)
    for c, x in enumerate(case.image):
        i_ref, dr = params["i_ref"][c], params["dynamic_range_db"]
        shifted = x.astype(np.float64) + db_field * i_ref / dr
        out[c] = np.clip(shifted, *display_bounds(x, i_ref))
    return case.with_(image=out)


def depth_coordinate(shape: tuple[int, ...]) -> np.ndarray:
    """Normalised depth in [0, 1] along the first axis, broadcastable to ``shape``."""
    d = np.linspace(0.0, 1.0, shape[0])
    return d.reshape((-1,) + (1,) * (len(shape) - 1))
