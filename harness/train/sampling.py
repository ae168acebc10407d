"""Foreground-oversampled patch sampling (nnU-Net's idea, simplified).

In each batch the last ``round(batch_size · fg_fraction)`` patches (at least one when
``fg_fraction > 0``; nnU-Net forces the last third) are centred, with a small jitter, on a random
voxel of a random foreground class present in their case (so rare classes such as small lesions
are seen often); the others are placed uniformly. Images smaller than the patch are padded (image
with 0 = the normalised mean, label with 0). All randomness comes from the
``numpy.random.Generator`` passed in.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from harness.train.data import CachedCase


def _crop_padded(array: np.ndarray, start: Sequence[int], size: Sequence[int], lead: int) -> np.ndarray:
    """``array[..., start:start+size]`` on the last ``len(size)`` axes, zero outside the array."""
    spatial = array.shape[lead:]
    out = np.zeros(array.shape[:lead] + tuple(size), dtype=array.dtype)
    src, dst = [slice(None)] * lead, [slice(None)] * lead
    for s, n, dim in zip(start, size, spatial):
        lo, hi = max(s, 0), min(s + n, dim)
        src.append(slice(lo, hi))
        dst.append(slice(lo - s, hi - s))
    out[tuple(dst)] = array[tuple(src)]
    return out


def sample_patch(case: CachedCase, patch: Sequence[int], rng: np.random.Generator, *,
                 fg_fraction: float = 0.33, force_fg: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """One ``(image (C, *patch) float32, label (*patch) int64)`` patch from ``case``."""
    shape = case.label.shape
    patch = tuple(int(p) for p in patch)
    want_fg = force_fg or rng.random() < fg_fraction
    classes = sorted(case.class_locations)
    if want_fg and classes:
        k = classes[int(rng.integers(len(classes)))]
        locs = case.class_locations[k]
        centre = locs[int(rng.integers(len(locs)))]
        # Jitter so the foreground voxel is not always at the patch centre.
        start = [int(c) - p // 2 + int(rng.integers(-(p // 4), p // 4 + 1)) for c, p in zip(centre, patch)]
        start = [min(max(s, min(0, d - p)), max(0, d - p)) for s, d, p in zip(start, shape, patch)]
    else:
        start = []
        for d, p in zip(shape, patch):
            if d >= p:
                start.append(int(rng.integers(0, d - p + 1)))
            else:  # pad around: place the image at a random offset inside the patch
                start.append(-int(rng.integers(0, p - d + 1)))
    image = _crop_padded(case.image, start, patch, lead=1).astype(np.float32)
    label = _crop_padded(case.label, start, patch, lead=0).astype(np.int64)
    return image, label


def sample_batch(cases: Sequence[CachedCase], patch: Sequence[int], batch_size: int,
                 rng: np.random.Generator, *, fg_fraction: float = 0.33) -> list[tuple[np.ndarray, np.ndarray]]:
    """``batch_size`` patches from randomly drawn cases, the last ``round(batch_size · fg_fraction)``
    of them (at least one when ``fg_fraction > 0``) centred on foreground, the others uniform."""
    idx = rng.integers(0, len(cases), size=batch_size)
    n_forced = max(1, int(round(batch_size * fg_fraction))) if fg_fraction > 0 else 0
    out = []
    for j, i in enumerate(idx):
        force = j >= batch_size - n_forced
        out.append(sample_patch(cases[int(i)], patch, rng, fg_fraction=0.0 if not force else 1.0,
                                force_fg=force))
    return out
