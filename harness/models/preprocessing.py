"""Preprocessing shared by every adapter: normalisation, padding, resampling, sliding windows.

Normalisation (statistics per image and per channel, over the spatial axes):

* ``none``: intensities as read (float32).
* ``zscore``: ``(x - mean) / std`` over all voxels (population std; ``std < 1e-8`` → divide by 1).
* ``zscore_nonzero``: the same statistics over the non-zero voxels only; non-zero voxels are
  normalised, zero voxels stay 0 (nnU-Net's scheme for MRI with a background mask).
* ``minmax``: ``(x - min) / (max - min)`` (a constant image becomes 0).
* ``window``: clip to ``[lo, hi]``, then ``(x - lo) / (hi - lo)`` (so the result is in [0, 1]).

:func:`normalize` (numpy) and :func:`normalize_torch` (differentiable torch) implement the same
definitions; a test holds them equal.

>>> import numpy as np
>>> normalize(np.array([[0.0, 1.0, 2.0, 3.0]], dtype=np.float32), "minmax").astype(float).round(3).tolist()
[[0.0, 0.333, 0.667, 1.0]]
"""
from __future__ import annotations

import math
from itertools import product
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
from scipy import ndimage as ndi

if TYPE_CHECKING:
    import torch

EPS = 1e-8


def normalize(image: np.ndarray, method: str, window: Sequence[float] | None = None) -> np.ndarray:
    """Normalise a ``(C, *spatial)`` image per channel; returns float32 (see module docstring)."""
    x = np.asarray(image, dtype=np.float32)
    axes = tuple(range(1, x.ndim))
    if method == "none":
        return x.copy()
    if method == "zscore":
        x64 = x.astype(np.float64)
        mean, std = x64.mean(axis=axes, keepdims=True), x64.std(axis=axes, keepdims=True)
        return ((x64 - mean) / np.where(std < EPS, 1.0, std)).astype(np.float32)
    if method == "zscore_nonzero":
        x64 = x.astype(np.float64)
        mask = x64 != 0
        count = np.maximum(mask.sum(axis=axes, keepdims=True), 1)
        mean = np.where(mask, x64, 0).sum(axis=axes, keepdims=True) / count
        var = np.where(mask, (x64 - mean) ** 2, 0).sum(axis=axes, keepdims=True) / count
        std = np.sqrt(var)
        return np.where(mask, (x64 - mean) / np.where(std < EPS, 1.0, std), 0).astype(np.float32)
    if method == "minmax":
        lo, hi = x.min(axis=axes, keepdims=True), x.max(axis=axes, keepdims=True)
        span = hi - lo
        return np.where(span < EPS, 0, (x - lo) / np.where(span < EPS, 1, span)).astype(np.float32)
    if method == "window":
        if window is None:
            raise ValueError("window normalisation needs window = (lo, hi)")
        lo, hi = float(window[0]), float(window[1])
        return ((np.clip(x, lo, hi) - lo) / (hi - lo)).astype(np.float32)
    raise ValueError(f"unknown normalisation {method!r}")


def normalize_torch(x: "torch.Tensor", method: str, window: Sequence[float] | None = None) -> "torch.Tensor":
    """:func:`normalize` for a ``(N, C, *spatial)`` tensor, differentiable w.r.t. ``x``."""
    import torch

    dims = tuple(range(2, x.ndim))
    if method == "none":
        return x
    if method in ("zscore", "zscore_nonzero"):  # statistics in float64, as normalize: in float32 a
        # constant region keeps a rounding spread above EPS and normalises to ±1 instead of 0
        return _zscore_torch(x.double(), dims, nonzero=method == "zscore_nonzero").to(x.dtype)
    if method == "minmax":
        lo = x.amin(dim=dims, keepdim=True)
        span = x.amax(dim=dims, keepdim=True) - lo
        return torch.where(span < EPS, torch.zeros_like(x), (x - lo) / torch.where(span < EPS, torch.ones_like(span), span))
    if method == "window":
        if window is None:
            raise ValueError("window normalisation needs window = (lo, hi)")
        lo, hi = float(window[0]), float(window[1])
        return (x.clamp(lo, hi) - lo) / (hi - lo)
    raise ValueError(f"unknown normalisation {method!r}")


def _zscore_torch(x: "torch.Tensor", dims: tuple[int, ...], *, nonzero: bool) -> "torch.Tensor":
    """``zscore`` / ``zscore_nonzero`` of :func:`normalize_torch` (differentiable; ``std < EPS``
    divides by 1, as :func:`normalize`)."""
    import torch

    mask = (x != 0).to(x.dtype) if nonzero else torch.ones_like(x)
    count = mask.sum(dim=dims, keepdim=True).clamp_min(1)
    mean = (x * mask).sum(dim=dims, keepdim=True) / count
    var = (((x - mean) * mask) ** 2).sum(dim=dims, keepdim=True) / count
    small = var < EPS * EPS  # sqrt's gradient at 0 is infinite: take the root only where std >= EPS
    std = torch.sqrt(torch.where(small, torch.ones_like(var), var))
    return mask * (x - mean) / std


def pad_amounts(shape: Sequence[int], target: Sequence[int]) -> list[tuple[int, int]]:
    """(before, after) per axis to reach ``target`` (>= shape), split evenly, the extra after."""
    return [((t - s) // 2, (t - s) - (t - s) // 2) for s, t in zip(shape, target)]


def padded_shape(shape: Sequence[int], multiple: Sequence[int], minimum: Sequence[int] | None = None) -> tuple[int, ...]:
    """The smallest shape >= ``shape`` (and >= ``minimum``) that is a multiple of ``multiple``."""
    minimum = minimum or (1,) * len(shape)
    return tuple(int(math.ceil(max(s, lo) / m) * m) for s, lo, m in zip(shape, minimum, multiple))


def pad(image: np.ndarray, target: Sequence[int]) -> tuple[np.ndarray, tuple[slice, ...]]:
    """Zero-pad the spatial axes of ``(C, *spatial)`` to ``target``; returns the array and the
    spatial slices that crop the original region back out."""
    amounts = pad_amounts(image.shape[1:], target)
    crop = tuple(slice(b, b + s) for (b, _), s in zip(amounts, image.shape[1:]))
    if all(b == 0 and a == 0 for b, a in amounts):
        return image, crop
    return np.pad(image, [(0, 0), *amounts], mode="constant"), crop


def placements(canvas: Sequence[int], shape: Sequence[int]) -> list[tuple[int, ...]]:
    """Offsets of an image of ``shape`` in a zero-padded ``canvas`` for shift test-time augmentation:
    along each axis the middle of the padding (where :func:`pad` puts it), its start and its end, in
    every combination (up to 3 per axis); the centred placement first.

    >>> placements((8, 5), (5, 5))
    [(1, 0), (0, 0), (3, 0)]
    """
    axes = []
    for n, t in zip(shape, canvas):
        slack = t - n
        axes.append(list(dict.fromkeys([slack // 2, 0, slack])))
    return list(product(*axes))


def move(array: np.ndarray, src: Sequence[int], dst: Sequence[int], size: Sequence[int]) -> np.ndarray:
    """A zero array of ``array``'s shape holding ``array``'s block of ``size`` at ``src`` at ``dst``
    instead (on the last ``len(size)`` axes): moves a padded image, or its output, within its canvas."""
    out = np.zeros_like(array)
    lead = (slice(None),) * (array.ndim - len(size))
    out[lead + tuple(slice(d, d + n) for d, n in zip(dst, size))] = \
        array[lead + tuple(slice(s, s + n) for s, n in zip(src, size))]
    return out


def resample(array: np.ndarray, shape: Sequence[int], *, order: int) -> np.ndarray:
    """Resample the spatial axes of ``(C, *spatial)`` to ``shape`` (``order`` 0 nearest, 1 linear)."""
    if tuple(array.shape[1:]) == tuple(shape):
        return array
    factors = [t / s for t, s in zip(shape, array.shape[1:])]
    out = np.stack([ndi.zoom(channel, factors, order=order, mode="nearest", grid_mode=True)
                    for channel in array])
    if tuple(out.shape[1:]) != tuple(shape):  # guard against rounding in zoom's output shape
        slices = tuple(slice(0, t) for t in shape)
        out, _ = pad(out[(slice(None), *slices)], shape)
    return out


def resampled_shape(shape: Sequence[int], spacing: Sequence[float], target: Sequence[float]) -> tuple[int, ...]:
    """Voxel counts covering the same physical extent at ``target`` spacing."""
    return tuple(max(1, int(round(n * s / t))) for n, s, t in zip(shape, spacing, target))


def gaussian_weights(patch_size: Sequence[int], sigma_scale: float = 1 / 8) -> np.ndarray:
    """Gaussian importance map for blending patches (nnU-Net's: sigma = patch/8, peak 1; exact zeros
    take the smallest positive value). No larger floor: at 1e-6 a window's zero-padded edge weighed
    as much as another window's interior wherever both sat at the floor."""
    axes = []
    for n in patch_size:
        coords = np.arange(n, dtype=np.float64) - (n - 1) / 2
        sigma = max(n * sigma_scale, 1e-3)
        axes.append(np.exp(-0.5 * (coords / sigma) ** 2))
    weights = axes[0]
    for axis in axes[1:]:
        weights = np.multiply.outer(weights, axis)
    weights = weights / weights.max()
    return np.maximum(weights, weights[weights > 0].min()).astype(np.float32)


def window_starts(size: int, patch: int, overlap: float) -> list[int]:
    """Start offsets of patches covering ``size`` voxels (``size >= patch``), evenly spread."""
    if size <= patch:
        return [0]
    step = max(1, int(patch * (1 - overlap)))
    count = int(math.ceil((size - patch) / step)) + 1
    return sorted({int(round(v)) for v in np.linspace(0, size - patch, count)})


def sliding_window(image: np.ndarray, patch_size: Sequence[int], forward: Callable[[np.ndarray], np.ndarray],
                   *, overlap: float = 0.5, batch_size: int = 4) -> np.ndarray:
    """Gaussian-blended sliding-window inference.

    ``image`` is ``(C, *spatial)`` with every spatial axis >= ``patch_size``; ``forward`` maps a
    ``(B, C, *patch_size)`` batch to ``(B, K, *patch_size)`` scores. Returns ``(K, *spatial)``:
    the weighted average of the overlapping patch outputs.
    """
    spatial = image.shape[1:]
    starts = list(product(*[window_starts(s, p, overlap) for s, p in zip(spatial, patch_size)]))
    weights = gaussian_weights(patch_size)
    total: np.ndarray | None = None
    norm = np.zeros(spatial, dtype=np.float32)
    for first in range(0, len(starts), batch_size):
        chunk = starts[first:first + batch_size]
        regions = [tuple(slice(s, s + p) for s, p in zip(start, patch_size)) for start in chunk]
        batch = np.stack([image[(slice(None), *region)] for region in regions])
        scores = forward(batch)
        if total is None:
            total = np.zeros((scores.shape[1], *spatial), dtype=np.float32)
        for region, score in zip(regions, scores):
            total[(slice(None), *region)] += score * weights
            norm[region] += weights
    assert total is not None
    return total / norm
