"""Pure numpy/scipy versions of :mod:`harness.metrics._kernels` (same signatures and results).

Used when numba is not installed, and by the tests to check both paths agree. Slower: the
boundaries come from shifted logical operations and every distance from a KD-tree.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree


def _d2(d: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    a = d[:, 0] * spacing[0]
    b = d[:, 1] * spacing[1]
    c = d[:, 2] * spacing[2]
    return a * a + b * b + c * c


def _box(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lo = np.full(3, 0, np.int64)
    hi = np.full(3, -1, np.int64)
    if not m.any():
        lo[:] = m.shape
        return lo, hi
    for axis in range(3):
        proj = np.flatnonzero(m.any(axis=tuple(x for x in range(3) if x != axis)))
        lo[axis], hi[axis] = proj[0], proj[-1]
    return lo, hi


def scan_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    box = np.empty((2, 2, 3), np.int64)
    box[0, 0], box[0, 1] = _box(a)
    box[1, 0], box[1, 1] = _box(b)
    ab, bb = a.view(bool), b.view(bool)
    counts = np.array([np.count_nonzero(ab), np.count_nonzero(bb), np.count_nonzero(ab & bb)],
                      np.int64)
    return box, counts


def _crop_padded(m: np.ndarray, lo: np.ndarray, hi: np.ndarray, flat0: bool) -> np.ndarray:
    crop = m[lo[0]:hi[0] + 1, lo[1]:hi[1] + 1, lo[2]:hi[2] + 1].view(bool)
    return np.pad(crop, [(0, 0) if flat0 else (1, 1), (1, 1), (1, 1)])


def _rowstart(coords: np.ndarray, n0: int, n1: int) -> np.ndarray:
    rows = np.bincount(coords[:, 0] * n1 + coords[:, 1], minlength=n0 * n1)
    return np.concatenate([[0], np.cumsum(rows)]).astype(np.int64)


def boundary(m: np.ndarray, lo: np.ndarray, hi: np.ndarray,
             flat0: bool) -> tuple[np.ndarray, np.ndarray]:
    p = _crop_padded(m, lo, hi, flat0)
    core = (slice(None) if flat0 else slice(1, -1), slice(1, -1), slice(1, -1))
    inner = p[core].copy()
    for axis in range(1 if flat0 else 0, 3):
        for shifted in (slice(None, -2), slice(2, None)):
            idx = list(core)
            idx[axis] = shifted
            inner &= p[tuple(idx)]
    out = p[core] & ~inner
    coords = np.argwhere(out).astype(np.int64)
    return coords, _rowstart(coords, out.shape[0], out.shape[1])


def surfel_codes(m: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                 flat0: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p = _crop_padded(m, lo, hi, flat0).astype(np.uint8)
    shape = (1 if flat0 else p.shape[0] - 1, p.shape[1] - 1, p.shape[2] - 1)
    codes = np.zeros(shape, np.uint8)
    full = 15 if flat0 else 255
    for a in (0,) if flat0 else (0, 1):
        for b in (0, 1):
            for c in (0, 1):
                bit = (2 * b + c) if flat0 else (4 * a + 2 * b + c)
                window = p[a:a + shape[0], b:b + shape[1], c:c + shape[2]]
                codes |= window * np.uint8((full + 1) >> (bit + 1))
    border = (codes != 0) & (codes != full)
    coords = np.argwhere(border).astype(np.int64)
    return coords, _rowstart(coords, shape[0], shape[1]), codes[border]


def kd_nearest(points: np.ndarray, other: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Exact distance (mm) from each of ``points`` to the nearest of ``other`` via a KD-tree."""
    if points.shape[0] == 0:
        return np.empty(0, np.float64)
    # An unbalanced tree with larger leaves builds ~2x faster; it is queried only once.
    tree = cKDTree(other * spacing, leafsize=32, balanced_tree=False, compact_nodes=False)
    _, idx = tree.query(points * spacing, k=1)
    return np.sqrt(_d2((points - other[idx]).astype(np.float64), spacing))

