"""Cheap callable models for the shift tests (numpy in, labels out)."""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def fixed_threshold(image: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    """Segments with intensity thresholds tuned on site A's acquisition profile (no normalisation):
    organ = filled (smoothed image > 0.5), lesion = organ interior below 0.5. Sites whose gain and
    gamma lift the background (phantom site C) leak into the organ: a planted site shift."""
    x = ndi.gaussian_filter(image[0].astype(np.float64), 1.0)
    organ = ndi.binary_fill_holes(ndi.binary_opening(x > 0.5, iterations=2))
    labels = np.zeros(x.shape, dtype=np.int64)
    labels[organ] = 1
    labels[ndi.binary_erosion(organ, iterations=3) & (x < 0.5)] = 2
    return labels


def threshold_8bit(image: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    """8-bit PNGs: foreground = smoothed intensity > 110, tuned on a scanner whose background is ~76;
    a brighter scanner (gain 1.5: background ~115) floods the image."""
    x = ndi.gaussian_filter(image[0].astype(np.float64), 1.0)
    return (x > 110).astype(np.int64)
