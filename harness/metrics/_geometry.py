"""Shared geometry for the surface metrics: backend choice, the bounding-box scan, boundaries
and exact nearest-boundary distances.

The fast path scans both masks once (boxes and counts), crops to the union bounding box, marks
boundary voxels row by row, and finds each boundary voxel's nearest boundary voxel of the other
mask exactly: a per-row map holds the distance along axis 2 to each row's nearest point, and a
walk over neighbouring rows, in order of their physical distance, stops once no row can be
closer. Rare far points are settled lazily (:mod:`._directed`) by a wider walk or a KD-tree.
Without numba the same functions run on numpy/scipy (a KD-tree for every distance).
"""
from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import ModuleType

import numpy as np

from harness.metrics import _fallback
from harness.metrics._directed import Directed

try:  # numba is optional: the fallback gives the same numbers, only slower
    from harness.metrics import _kernels
except ImportError:  # pragma: no cover - exercised where numba is absent
    _kernels = None  # type: ignore[assignment]

HAVE_NUMBA = _kernels is not None
_state = {"numba": HAVE_NUMBA}
ROW_OFFSETS = 2048  # rows walked per point (a disc of ~25 voxels)
WIDE_OFFSETS = 32768  # rows walked by the few points the first walk leaves (~100 voxels)
WIDE_SHARE = 256  # the wide walk is used when at most 1/WIDE_SHARE of the points need it


def backend() -> ModuleType:
    """The module that runs the inner loops (compiled kernels or the numpy fallback)."""
    return _kernels if _state["numba"] else _fallback  # type: ignore[return-value]


@contextlib.contextmanager
def use_numba(enabled: bool) -> Iterator[None]:
    """Temporarily choose the compiled kernels (when installed) or the numpy fallback."""
    before = _state["numba"]
    _state["numba"] = bool(enabled) and HAVE_NUMBA
    try:
        yield
    finally:
        _state["numba"] = before


def slice_axis(shape: tuple[int, ...]) -> int | None:
    """The axis of a 3D shape that is one voxel thick while the other two are longer (one slice of a
    scan, or a 2D image stored as 3D such as an (H, W, 1) NIfTI), else None. Such a mask is scored in
    its plane: its boundary is the in-plane contour, not every voxel of a one-voxel-thick slab."""
    return shape.index(1) if len(shape) == 3 and shape.count(1) == 1 else None


def is_planar(shape: tuple[int, ...]) -> bool:
    """True for 2D shapes and single-slice 3D shapes: axis 0 of :func:`as3d`'s view is then not spatial."""
    return len(shape) == 2 or slice_axis(shape) is not None


def as3d(mask: np.ndarray) -> np.ndarray:
    """A boolean mask as a C-contiguous uint8 view of three axes: 2D gets a leading axis, and a
    single-slice 3D mask has its one-voxel axis moved first (a copy), so that axis 0 is the
    non-spatial one of every planar mask."""
    m = np.ascontiguousarray(mask, dtype=bool)
    if m.ndim == 2:
        m = m[None]
    elif thin := slice_axis(m.shape):  # the thin axis is 1 or 2 (0 is first already)
        m = np.ascontiguousarray(np.moveaxis(m, thin, 0))
    return m.view(np.uint8)


def spacing3(spacing: tuple[float, ...], shape: tuple[int, ...]) -> np.ndarray:
    """Spacing of a mask of ``shape`` in :func:`as3d`'s axis order (a 2D mask's dummy axis gets 1 mm;
    a planar mask's axis 0 never varies, so its spacing never counts)."""
    if len(spacing) == 2:
        return np.array((1.0, *spacing), np.float64)
    thin = slice_axis(shape)
    order = [0, 1, 2] if thin is None else [thin] + [i for i in range(3) if i != thin]
    return np.array([spacing[i] for i in order], np.float64)


@dataclass(frozen=True)
class Scan:
    """What one pass over a mask pair finds: bounding boxes and voxel counts."""

    box: np.ndarray  # (2, 2, 3): [pred|ref][lo|hi][axis], inclusive, hi < lo when empty
    n_pred: int
    n_ref: int
    n_both: int

    @property
    def union_box(self) -> tuple[np.ndarray, np.ndarray]:
        return self.box[:, 0].min(axis=0), self.box[:, 1].max(axis=0)


def scan(pred3: np.ndarray, ref3: np.ndarray) -> Scan:
    box, counts = backend().scan_pair(pred3, ref3)
    return Scan(box=box, n_pred=int(counts[0]), n_ref=int(counts[1]), n_both=int(counts[2]))


@dataclass(frozen=True)
class _Rows:
    """The row walk for one spacing: (di, dj) offsets sorted by squared length (mm²)."""

    offsets: np.ndarray  # (r, 2) int64
    d2: np.ndarray  # (r,) float64, ascending
    sq: np.ndarray  # (256,) float64: squared length of an axis-2 offset; sq[255] = inf
    pad: tuple[int, int]  # max |di|, max |dj|


@functools.lru_cache(maxsize=64)
def _rows(spacing: tuple[float, float, float], flat0: bool, count: int = ROW_OFFSETS) -> _Rows:
    """Row offsets within a disc of about ``count`` rows (all rows up to its radius)."""
    s0, s1 = spacing[0], spacing[1]
    radius = count / 2.0 * s1 if flat0 else math.sqrt(count * s0 * s1 / math.pi)
    half0 = 0 if flat0 else int(radius / s0) + 1
    half1 = int(radius / s1) + 1
    di, dj = np.meshgrid(np.arange(-half0, half0 + 1), np.arange(-half1, half1 + 1), indexing="ij")
    offs = np.stack([di.ravel(), dj.ravel(), np.zeros(di.size, np.int64)], axis=1).astype(np.int64)
    sp = np.array(spacing)
    d2 = _kernels.offset_d2(offs, sp)
    keep = d2 <= radius * radius
    order = np.argsort(d2[keep], kind="stable")
    offs, d2 = offs[keep][order], d2[keep][order]
    ks = np.zeros((256, 3), np.int64)
    ks[:, 2] = np.arange(256)
    sq = _kernels.offset_d2(ks, sp)
    sq[255] = np.inf
    rows = _Rows(np.ascontiguousarray(offs[:, :2]), np.ascontiguousarray(d2), sq,
                 (int(np.abs(offs[:, 0]).max()), int(np.abs(offs[:, 1]).max())))
    for arr in (rows.offsets, rows.d2, rows.sq):
        arr.flags.writeable = False
    return rows


@dataclass
class PointSet:
    """Voxel (or corner-grid) points in raster order, with the row index the search uses."""

    coords: np.ndarray  # (n, 3) int64
    rowstart: np.ndarray  # (shape[0] * shape[1] + 1,) int64
    shape: tuple[int, int, int]  # extent of the box the coordinates live in
    _near: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.coords.shape[0])

    def near(self, pad: tuple[int, int]) -> np.ndarray:
        """Per-row axis-2 distance map, padded by ``pad`` rows (built once per padding)."""
        if pad not in self._near:
            self._near[pad] = _kernels.row_map(self.coords, self.rowstart, self.shape[0],
                                               self.shape[1], self.shape[2], *pad)
        return self._near[pad]


def nearest(points: np.ndarray, other: PointSet, spacing: np.ndarray, flat0: bool) -> Directed:
    """Exact distance (mm) from each of ``points`` to the nearest point of ``other`` (non-empty).

    A walk over nearby rows settles almost every point. The rest are settled on first need
    (see :class:`Directed`): the few walk a wider disc, and what is still left (or a large
    share of far points) is finished with a KD-tree.
    """
    if not _state["numba"]:
        return Directed.exact(_fallback.kd_nearest(points, other.coords, spacing))
    key = tuple(float(x) for x in spacing)
    rows = _rows(key, flat0)
    h0, h1 = rows.pad
    n1p, width = other.shape[1] + 2 * h1, other.shape[2]
    near = other.near(rows.pad)
    lin = (rows.offsets[:, 0] * n1p + rows.offsets[:, 1]) * width
    out = _kernels.nearest(points, near, n1p, width, h0, h1, lin, rows.d2, rows.sq)
    far = np.flatnonzero(out < 0)

    def settle(far: np.ndarray) -> np.ndarray:
        found = np.full(far.size, -1.0)
        if far.size <= len(other) // WIDE_SHARE:
            wide = _rows(key, flat0, WIDE_OFFSETS)
            found = _kernels.nearest_wide(points[far], near, other.shape[0], other.shape[1],
                                          width, h0, h1, wide.offsets, wide.d2, rows.sq)
        left = found < 0
        if left.any():
            found[left] = _fallback.kd_nearest(points[far[left]], other.coords, spacing)
        return found

    # A point left by the walk has d^2 > the walk's reach, so d >= its square root.
    return Directed(out, far, math.sqrt(min(rows.d2[-1], rows.sq[254])), settle)


def boundary(mask3: np.ndarray, lo: np.ndarray, hi: np.ndarray, flat0: bool) -> PointSet:
    """Boundary voxels of a mask inside the box ``[lo, hi]`` (coordinates relative to ``lo``)."""
    coords, rowstart = backend().boundary(mask3, lo, hi, flat0)
    size = hi - lo + 1
    return PointSet(coords, rowstart, (1 if flat0 else int(size[0]), int(size[1]), int(size[2])))


def surfels(mask3: np.ndarray, lo: np.ndarray, hi: np.ndarray,
            flat0: bool) -> tuple[PointSet, np.ndarray]:
    """DeepMind border cells on the voxel-corner grid of the box, and their neighbourhood codes."""
    coords, rowstart, codes = backend().surfel_codes(mask3, lo, hi, flat0)
    size = hi - lo + 2
    shape = (1 if flat0 else int(size[0]), int(size[1]), int(size[2]))
    return PointSet(coords, rowstart, shape), codes
