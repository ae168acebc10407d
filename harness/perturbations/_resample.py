"""Down-/up-sampling on the case's own voxel grid (scipy.ndimage), shared by ``low_resolution``
and ``resample_spacing``.

A coarse grid with spacing ``factor x spacing`` per axis covers the whole field of view; its
first voxel centre sits ``offset`` (a fraction of a coarse voxel) from the fine grid's
centred position. The image is optionally smoothed with the point-spread-function matching
Gaussian (Cardoso et al., MICCAI 2015: sigma = sqrt(f^2 - 1) / (2 sqrt(2 ln 2)) fine voxels),
sampled on the coarse grid and interpolated back to the original grid, so shape, spacing and
label are unchanged. Edges use nearest extension (no zero padding at the borders).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

FWHM = 2.0 * np.sqrt(2.0 * np.log(2.0))


def down_up(x: np.ndarray, factors: Sequence[float], offsets: Sequence[float], *,
            antialias: bool, order_down: int, order_up: int) -> np.ndarray:
    """Resample a spatial array ``x`` to a grid coarser by ``factors`` and back (float64 math)."""
    x = np.asarray(x, dtype=np.float64)
    factors = [float(f) for f in factors]
    if antialias:
        sigmas = [np.sqrt(max(f * f - 1.0, 0.0)) / FWHM for f in factors]
        x = ndi.gaussian_filter(x, sigmas, mode="nearest")
    coarse_n = [max(1, int(np.ceil(n / f))) for n, f in zip(x.shape, factors)]
    # Fine-index coordinate of coarse voxel j: centred grid plus a sub-voxel offset.
    starts = [(n - (m - 1) * f - 1) / 2.0 + (o - 0.5) * f
              for n, m, f, o in zip(x.shape, coarse_n, factors, offsets)]
    coarse_axes = [s + f * np.arange(m) for s, f, m in zip(starts, factors, coarse_n)]
    coarse = ndi.map_coordinates(x, np.meshgrid(*coarse_axes, indexing="ij"),
                                 order=order_down, mode="nearest")
    fine_axes = [(np.arange(n) - s) / f for n, s, f in zip(x.shape, starts, factors)]
    return ndi.map_coordinates(coarse, np.meshgrid(*fine_axes, indexing="ij"),
                               order=order_up, mode="nearest")
