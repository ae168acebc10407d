"""Automatic patch size, network depth and batch size from the data (nnU-Net's idea, simplified).

1. **Patch**: start from the median image shape; while it exceeds the voxel budget, shrink the
   axis with the largest physical extent (size × spacing) by 10 %.
2. **Strides**: per level, an axis is downsampled (stride 2) when its feature map stays at least
   ``min_feature`` voxels and its spacing is less than twice the finest current spacing
   (so anisotropic 3D data is first pooled in-plane only). At most ``max_levels`` levels
   (2D 5, 3D 4 by default).
3. **Patch rounding**: each axis is rounded up to a multiple of its total stride.
4. **Batch**: as many patches as the per-iteration voxel budget allows (2..16).

Before planning, :func:`target_spacing` picks the grid the network trains on (written to the
card as ``[input] spacing``, so inference resamples the same way): the median spacing when the
cases' spacings differ (nnU-Net), and for 2D images larger than ``RESAMPLE_ABOVE`` pixels a
coarser grid on which the median image holds about that many pixels — on CPU a step costs in
proportion to the pixels, and for organ- or lesion-sized targets more steps buy more Dice than
finer pixels do.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

# CPU-sized budgets: voxels per patch and per iteration.
PATCH_BUDGET = {2: 256 * 256, 3: 96 * 96 * 96}
BATCH_BUDGET = {2: 8 * 128 * 128, 3: 2 * 32 * 64 * 64}
MAX_LEVELS = {2: 5, 3: 4}  # resolution levels (downsamplings + 1) at most
RESAMPLE_ABOVE = {2: 160 * 160}  # median image size (px) above which 2D data is coarsened
HETEROGENEOUS = 1.1  # spacing ratio (max/min over cases, any axis) above which cases are resampled


def target_spacing(shapes: Sequence[Sequence[int]], spacings: Sequence[Sequence[float]]) -> tuple[float, ...] | None:
    """The spacing (mm) to train on, or None to keep every case on its own grid (see module doc).

    >>> target_spacing([(128, 128)] * 3, [(0.8, 0.8)] * 3) is None
    True
    >>> target_spacing([(320, 320)] * 3, [(0.5, 0.5)] * 3)
    (1.0, 1.0)
    >>> target_spacing([(20, 64, 64)] * 2, [(3.0, 1.0, 1.0), (5.0, 1.0, 1.0)])
    (4.0, 1.0, 1.0)
    """
    sp = np.asarray(spacings, dtype=float)
    ndim = sp.shape[1]
    median = np.median(sp, axis=0)
    heterogeneous = bool(np.any(sp.max(axis=0) > HETEROGENEOUS * sp.min(axis=0)))
    target = median if heterogeneous else None
    if ndim in RESAMPLE_ABOVE:
        physical = np.median(np.asarray(shapes, dtype=float) * sp, axis=0)  # median extent (mm)
        pixels = float(np.prod(physical / median))
        if pixels > RESAMPLE_ABOVE[ndim]:
            target = median * math.sqrt(pixels / RESAMPLE_ABOVE[ndim])
    return None if target is None else tuple(round(float(t), 4) for t in target)


@dataclass(frozen=True)
class Plan:
    """Everything the trainer needs to build the network and sample patches."""

    ndim: int
    patch: tuple[int, ...]
    strides: tuple[tuple[int, ...], ...]
    features: tuple[int, ...]
    batch_size: int
    median_shape: tuple[int, ...]
    median_spacing: tuple[float, ...]
    flip_axes: tuple[int, ...] = field(default=())

    @property
    def axis_multiples(self) -> tuple[int, ...]:
        """Total stride per axis: inputs must be a multiple of it (the network pads otherwise)."""
        return tuple(math.prod(s[a] for s in self.strides) for a in range(self.ndim))

    @property
    def pad_multiple(self) -> int:
        """One multiple valid for every axis (lcm of the per-axis total strides)."""
        return math.lcm(*self.axis_multiples)

    def as_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["pad_multiple"] = self.pad_multiple
        return d


def make_plan(shapes: Sequence[Sequence[int]], spacings: Sequence[Sequence[float]], *,
              base_features: int = 16, max_features: int = 128, max_levels: int | None = None,
              min_feature: int = 4, patch_budget: int | None = None, batch_budget: int | None = None,
              flip_axes: Sequence[int] = (), patch: Sequence[int] | None = None,
              batch_size: int | None = None) -> Plan:
    """A :class:`Plan` from the training cases' spatial shapes and spacings (mm).

    ``patch``/``batch_size`` override the automatic choices.

    >>> p = make_plan([(128, 128)] * 3, [(0.8, 0.8)] * 3)
    >>> p.patch, p.features, p.batch_size, p.pad_multiple
    ((128, 128), (16, 32, 64, 128, 128), 8, 16)
    >>> make_plan([(32, 64, 64)], [(2.0, 1.0, 1.0)]).strides
    ((1, 2, 2), (2, 2, 2), (2, 2, 2))
    >>> make_plan([(160, 160, 8)], [(1.0, 1.0, 1.0)]).strides  # the thin axis stops, the others go on
    ((2, 2, 2), (2, 2, 1), (2, 2, 1))
    """
    ndim = len(shapes[0])
    max_levels = max_levels or MAX_LEVELS[ndim]
    median_shape = tuple(int(v) for v in np.median(np.asarray(shapes), axis=0))
    median_spacing = tuple(float(v) for v in np.median(np.asarray(spacings, dtype=float), axis=0))
    budget = patch_budget or PATCH_BUDGET[ndim]
    if patch is None:
        size = [float(s) for s in median_shape]
        while math.prod(size) > budget:
            extent = [s * sp for s, sp in zip(size, median_spacing)]
            axis = int(np.argmax(extent))
            size[axis] *= 0.9
        # an axis one voxel thick in the data (single-slice volumes) stays 1: padding it would make
        # most of every patch padding
        size_i = [max(min_feature, int(s)) if n > 1 else 1 for s, n in zip(size, median_shape)]
    else:
        size_i = [int(p) for p in patch]

    strides: list[tuple[int, ...]] = []
    feat = list(size_i)
    spacing = list(median_spacing)
    for _ in range(max_levels - 1):
        poolable = [a for a in range(ndim) if feat[a] / 2 >= min_feature]
        if not poolable:
            break
        # The finest spacing among the axes that can still be pooled (nnU-Net v2): an axis too short
        # to pool (a thin slab, a single slice) must not stop the others.
        finest = min(spacing[a] for a in poolable)
        step = tuple(2 if a in poolable and spacing[a] < 2 * finest else 1 for a in range(ndim))
        if step == (1,) * ndim:
            break
        strides.append(step)
        feat = [f / s for f, s in zip(feat, step)]
        spacing = [sp * s for sp, s in zip(spacing, step)]
    if not strides:
        strides = [(1,) * ndim]  # a single (non-downsampling) level pair still forms a U-Net
    mult = [math.prod(s[a] for s in strides) for a in range(ndim)]
    patch_t = tuple(int(math.ceil(p / m) * m) for p, m in zip(size_i, mult))
    features = tuple(min(max_features, base_features * 2 ** i) for i in range(len(strides) + 1))
    if batch_size is None:
        batch_size = int(np.clip((batch_budget or BATCH_BUDGET[ndim]) // math.prod(patch_t), 2, 16))
    return Plan(ndim=ndim, patch=patch_t, strides=tuple(strides), features=features,
                batch_size=int(batch_size), median_shape=median_shape, median_spacing=median_spacing,
                flip_axes=tuple(int(a) for a in flip_axes if patch_t[int(a)] > 1))  # a one-voxel axis: no flip
