"""Compiled inner loops (numba) behind the surface metrics.

Every mask arrives as a C-contiguous ``uint8`` array of three axes; a 2D mask is ``(1, H, W)`` and
``flat0=True`` says that axis 0 is not spatial (never a face neighbour, never padded). Point sets
are ``int64`` voxel coordinates in raster order, so the points of one *row* (fixed axis 0 and 1)
are contiguous and sorted along axis 2; ``rowstart[i * n1 + j]`` indexes them. Squared distances
are always formed by :func:`_d2` in the same order, so every path returns the same floats.

The numpy/scipy equivalents live in :mod:`harness.metrics._fallback`.

Compiled kernels are cached under ``$NUMBA_CACHE_DIR`` when set, else
``$XDG_CACHE_HOME/harness/numba`` (``~/.cache/harness/numba``), never beside this file: numba's
default (``__pycache__`` next to the source) writes into the installed package, which fails on
read-only installs and leaves files pip does not know about, so an uninstalled harness leaves a
``harness/`` folder in site-packages that shadows a later editable install. Only these kernels
are affected; numba's setting for other code is restored at once. When that folder cannot be
created, numba chooses as it would by default.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numba import config as numba_config
from numba import njit as numba_njit


def cache_dir() -> Path:
    """Where the kernels' compiled code is cached (see the module docstring)."""
    if numba_config.CACHE_DIR:
        return Path(numba_config.CACHE_DIR)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "harness" / "numba"


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK)


def njit(**options: Any) -> Callable[[Callable[..., Any]], Any]:
    """``numba.njit(cache=True, **options)`` caching in :func:`cache_dir` (numba picks the cache
    location when the function is decorated, so the setting is held only while decorating)."""
    def decorate(fn: Callable[..., Any]) -> Any:
        before = numba_config.CACHE_DIR
        if _writable(cache_dir()):  # otherwise numba's own choice (its user-wide fallback)
            numba_config.CACHE_DIR = str(cache_dir())
        try:
            return numba_njit(cache=True, **options)(fn)
        finally:
            numba_config.CACHE_DIR = before
    return decorate


@njit(nogil=True, inline="always")
def _d2(di, dj, dk, s0, s1, s2):  # type: ignore[no-untyped-def]
    a = di * s0
    b = dj * s1
    c = dk * s2
    return a * a + b * b + c * c


@njit(nogil=True)
def scan_pair(a, b):  # type: ignore[no-untyped-def]
    """One pass over both masks: per-mask bounding boxes and the counts |a|, |b|, |a & b|.

    Returns ``(box, counts)``: ``box[m, 0]`` the low and ``box[m, 1]`` the high corner
    (inclusive) of mask ``m`` (0 = a, 1 = b); high < low when the mask is empty.
    """
    n0, n1, n2 = a.shape
    box = np.empty((2, 2, 3), np.int64)
    for m in range(2):
        box[m, 0, 0] = n0
        box[m, 0, 1] = n1
        box[m, 0, 2] = n2
        box[m, 1, :] = -1
    ca = 0
    cb = 0
    cab = 0
    for i in range(n0):
        for j in range(n1):
            ra = np.int64(0)
            rb = np.int64(0)
            rab = np.int64(0)
            for k in range(n2):
                x = np.int64(a[i, j, k])
                y = np.int64(b[i, j, k])
                ra += x
                rb += y
                rab += x & y
            ca += ra
            cb += rb
            cab += rab
            for m in range(2):
                if (ra if m == 0 else rb) == 0:
                    continue
                arr = a if m == 0 else b
                first = 0
                while arr[i, j, first] == 0:
                    first += 1
                last = n2 - 1
                while arr[i, j, last] == 0:
                    last -= 1
                box[m, 0, 0] = min(box[m, 0, 0], i)
                box[m, 1, 0] = max(box[m, 1, 0], i)
                box[m, 0, 1] = min(box[m, 0, 1], j)
                box[m, 1, 1] = max(box[m, 1, 1], j)
                box[m, 0, 2] = min(box[m, 0, 2], first)
                box[m, 1, 2] = max(box[m, 1, 2], last)
    return box, np.array([ca, cb, cab], np.int64)


@njit(nogil=True)
def _row_boundary(m, i, j, lo, hi, flat0, buf):  # type: ignore[no-untyped-def]
    """Boundary flags of row (i, j) of the box into ``buf``; returns their count."""
    ii, jj, o2 = lo[0] + i, lo[1] + j, lo[2]
    s2 = hi[2] - lo[2] + 1
    row = m[ii, jj, o2:o2 + s2]
    at_edge = j == 0 or jj == hi[1] or (not flat0 and (i == 0 or ii == hi[0]))
    if at_edge or s2 <= 2:
        count = 0
        for k in range(s2):
            buf[k] = row[k]
            count += row[k]
        return count
    left = m[ii, jj - 1, o2:o2 + s2]
    right = m[ii, jj + 1, o2:o2 + s2]
    up = row if flat0 else m[ii - 1, jj, o2:o2 + s2]
    down = row if flat0 else m[ii + 1, jj, o2:o2 + s2]
    buf[0] = row[0]
    buf[s2 - 1] = row[s2 - 1]
    count = np.int64(row[0]) + np.int64(row[s2 - 1])
    for k in range(1, s2 - 1):
        inner = row[k - 1] & row[k + 1] & left[k] & right[k] & up[k] & down[k]
        flag = row[k] & (inner ^ 1)
        buf[k] = flag
        count += np.int64(flag)
    return count


@njit(nogil=True)
def boundary(m, lo, hi, flat0):  # type: ignore[no-untyped-def]
    """Boundary voxels of ``m`` inside the box ``[lo, hi]`` (which holds all of ``m``'s voxels).

    A boundary voxel is a foreground voxel with a background face neighbour; outside the box
    (and outside the image) is background. Returns ``(coords, rowstart)`` relative to ``lo``.
    """
    s0 = hi[0] - lo[0] + 1
    s1 = hi[1] - lo[1] + 1
    buf = np.empty(hi[2] - lo[2] + 1, np.uint8)
    rowstart = np.zeros(s0 * s1 + 1, np.int64)
    for i in range(s0):
        for j in range(s1):
            rowstart[i * s1 + j + 1] = _row_boundary(m, i, j, lo, hi, flat0, buf)
    for r in range(s0 * s1):
        rowstart[r + 1] += rowstart[r]
    coords = np.empty((rowstart[-1], 3), np.int64)
    for i in range(s0):
        for j in range(s1):
            t = rowstart[i * s1 + j]
            if rowstart[i * s1 + j + 1] == t:
                continue
            _row_boundary(m, i, j, lo, hi, flat0, buf)
            for k in range(buf.shape[0]):
                if buf[k]:
                    coords[t, 0] = i
                    coords[t, 1] = j
                    coords[t, 2] = k
                    t += 1
    return coords, rowstart


@njit(nogil=True)
def surfel_codes(m, lo, hi, flat0):  # type: ignore[no-untyped-def]
    """DeepMind neighbourhood codes of the cells centred on the voxel corners of the box.

    Cell ``(i, j, k)`` covers voxels ``lo + (i-1..i, j-1..j, k-1..k)`` (outside the box is
    background); bit weights follow the kernel ``[[[128, 64], [32, 16]], [[8, 4], [2, 1]]]``
    (``[[8, 4], [2, 1]]`` in 2D). Returns ``(coords, rowstart, codes)`` of the border cells (codes
    neither empty nor full), on the corner grid of shape ``box + 1`` (axis 0 stays 1 in 2D).
    """
    s0 = hi[0] - lo[0] + 1
    s1 = hi[1] - lo[1] + 1
    s2 = hi[2] - lo[2] + 1
    c0 = 1 if flat0 else s0 + 1
    full = 15 if flat0 else 255
    n = c0 * (s1 + 1) * (s2 + 1)
    coords = np.empty((n, 3), np.int64)
    codes = np.empty(n, np.uint8)
    rowstart = np.zeros(c0 * (s1 + 1) + 1, np.int64)
    t = 0
    for i in range(c0):
        for j in range(s1 + 1):
            for k in range(s2 + 1):
                code = 0
                for a in range(1 if flat0 else 2):
                    ii = i if flat0 else i - 1 + a
                    if ii < 0 or ii >= s0:
                        continue
                    for b in range(2):
                        jj = j - 1 + b
                        if jj < 0 or jj >= s1:
                            continue
                        for c in range(2):
                            kk = k - 1 + c
                            if kk >= 0 and kk < s2 and m[lo[0] + ii, lo[1] + jj, lo[2] + kk]:
                                bit = (2 * b + c) if flat0 else (4 * a + 2 * b + c)
                                code |= (full + 1) >> (bit + 1)
                if code != 0 and code != full:
                    coords[t, 0] = i
                    coords[t, 1] = j
                    coords[t, 2] = k
                    codes[t] = code
                    t += 1
            rowstart[i * (s1 + 1) + j + 1] = t
    return coords[:t].copy(), rowstart, codes[:t].copy()


@njit(nogil=True)
def offset_d2(offs, spacing):  # type: ignore[no-untyped-def]
    """Squared physical length (mm²) of each voxel offset, formed exactly as the search forms it."""
    out = np.empty(offs.shape[0], np.float64)
    for o in range(offs.shape[0]):
        out[o] = _d2(offs[o, 0], offs[o, 1], offs[o, 2], spacing[0], spacing[1], spacing[2])
    return out


@njit(nogil=True)
def row_map(coords, rowstart, n0, n1, width, h0, h1):  # type: ignore[no-untyped-def]
    """Axis-2 distance (voxels) from every cell of every row to the row's nearest point.

    Flat ``uint8`` array over rows padded by ``h0`` / ``h1`` empty rows on each side of axes 0
    and 1, ``width`` cells per row; 255 means "255 or more, or no point in this row".
    """
    n1p = n1 + 2 * h1
    out = np.full((n0 + 2 * h0) * n1p * width, 255, np.uint8)
    for i in range(n0):
        for j in range(n1):
            first, stop = rowstart[i * n1 + j], rowstart[i * n1 + j + 1]
            if first == stop:
                continue
            base = ((i + h0) * n1p + j + h1) * width
            prev = -(1 << 30)
            for u in range(first, stop + 1):
                nxt = coords[u, 2] if u < stop else (1 << 30)
                lo = max(prev, 0)
                hi = min(nxt, width - 1)
                for k in range(lo, hi + 1):
                    out[base + k] = min(k - prev, nxt - k, 255)
                prev = nxt
    return out


@njit(nogil=True)
def nearest(points, near, n1p, width, h0, h1, lin, rows_d2, sq):  # type: ignore[no-untyped-def]
    """Exact Euclidean distance (mm) from each of ``points`` to the nearest point of a set.

    The set is given by its :func:`row_map` ``near``. ``lin`` are row offsets (di, dj) as flat
    offsets into ``near``, sorted by their squared length ``rows_d2`` (mm²); ``sq[d]`` is the
    squared length of an axis-2 offset of ``d`` voxels (``sq[255]`` is inf). The walk stops once
    a row cannot beat the best distance found. A point whose answer may lie beyond the listed
    rows, or 255 or more voxels along axis 2, gets ``-1`` (the caller resolves it exactly).
    """
    out = np.empty(points.shape[0], np.float64)
    nrows = rows_d2.shape[0]
    limit = min(rows_d2[nrows - 1], sq[254])
    for t in range(points.shape[0]):
        base = ((points[t, 0] + h0) * n1p + points[t, 1] + h1) * width + points[t, 2]
        best = np.inf
        for o in range(nrows):
            if rows_d2[o] >= best:
                break
            d = rows_d2[o] + sq[near[base + lin[o]]]
            if d < best:
                best = d
        out[t] = np.sqrt(best) if best <= limit else -1.0
    return out


@njit(nogil=True)
def nearest_wide(points, near, n0, n1, width, h0, h1, rows, rows_d2, sq):  # type: ignore[no-untyped-def]
    """:func:`nearest` for the few points it could not settle: a wider list of row offsets
    ``rows`` (di, dj), bounds-checked because it reaches past the map's padding. Same result
    convention (``-1`` when the answer may lie beyond the listed rows)."""
    out = np.empty(points.shape[0], np.float64)
    nrows = rows_d2.shape[0]
    limit = min(rows_d2[nrows - 1], sq[254])
    n1p = n1 + 2 * h1
    for t in range(points.shape[0]):
        i, j, k = points[t, 0], points[t, 1], points[t, 2]
        best = np.inf
        for o in range(nrows):
            if rows_d2[o] >= best:
                break
            ii = i + rows[o, 0]
            jj = j + rows[o, 1]
            if ii < 0 or ii >= n0 or jj < 0 or jj >= n1:
                continue
            d = rows_d2[o] + sq[near[((ii + h0) * n1p + jj + h1) * width + k]]
            if d < best:
                best = d
        out[t] = np.sqrt(best) if best <= limit else -1.0
    return out
