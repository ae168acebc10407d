"""Brute-force references for the metric tests: scipy erosion boundaries, all-pairs distances."""
from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial.distance import cdist


def boundary(mask: np.ndarray) -> np.ndarray:
    """Foreground voxels with a background face neighbour (outside the image is background)."""
    cross = ndimage.generate_binary_structure(mask.ndim, 1)
    return mask & ~ndimage.binary_erosion(mask, structure=cross, border_value=0)


def directed(a: np.ndarray, b: np.ndarray, spacing) -> tuple[np.ndarray, np.ndarray]:
    """All-pairs nearest distances (mm) between the boundaries of two non-empty masks."""
    pa = np.argwhere(boundary(a)) * np.asarray(spacing, float)
    pb = np.argwhere(boundary(b)) * np.asarray(spacing, float)
    d = cdist(pa, pb)
    return d.min(axis=1), d.min(axis=0)


def surface_metrics(a: np.ndarray, b: np.ndarray, spacing, *, q: float = 95.0,
                    tau: float = 1.0) -> dict[str, float]:
    """hd, hd_q, assd, masd and voxel NSD from brute force (both masks non-empty)."""
    da, db = directed(a, b, spacing)
    return {
        "hd": max(da.max(), db.max()),
        "hd95": max(np.percentile(da, q), np.percentile(db, q)),
        "assd": (da.sum() + db.sum()) / (da.size + db.size),
        "masd": 0.5 * (da.mean() + db.mean()),
        "nsd": ((da <= tau).sum() + (db <= tau).sum()) / (da.size + db.size),
    }


def blobs(rng: np.random.Generator, shape, *, sigma: float = 1.5, level: float = 0.1) -> np.ndarray:
    """A random smooth mask (thresholded Gaussian-filtered noise)."""
    return ndimage.gaussian_filter(rng.standard_normal(shape), sigma) > level


def speckle(rng: np.random.Generator, shape, *, p: float = 0.08) -> np.ndarray:
    """A random sparse mask: many single voxels and thin bits."""
    return rng.random(shape) < p
