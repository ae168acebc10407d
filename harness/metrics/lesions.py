"""Lesion-level detection counts from connected components.

A *lesion* is a connected component of a mask (``connectivity`` 1 = face neighbours only, up to
``ndim`` = faces, edges and corners; default ``ndim``, i.e. 8-connected in 2D and 26-connected
in 3D, as in BraTS 2023 lesion-wise scoring; autoPET's evaluation uses 18-connectivity, i.e. ``2``).
A predicted lesion is a true detection when it shares at least one voxel with the reference mask,
and a reference lesion is found when it shares at least one voxel with the prediction. Then

* ``fp_lesions`` = number of predicted lesions that touch no reference voxel;
* ``fn_lesions`` = number of reference lesions that touch no predicted voxel.

Counts are exact integers (returned as floats by :func:`harness.metrics.evaluate`), lower is
better, and need no special empty case: both empty -> 0 and 0; reference empty -> every predicted
lesion is a false positive; prediction empty -> every reference lesion is missed.

>>> import numpy as np
>>> ref = np.zeros((6, 6), bool); ref[0, 0] = ref[4, 4] = True
>>> pred = np.zeros((6, 6), bool); pred[0, 0] = pred[2, 2] = pred[2, 5] = True
>>> lesion_counts(pred, ref)
LesionCounts(n_pred=3, n_ref=2, fp=2, fn=1)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from harness.metrics._checks import as_mask, check_connectivity, check_pair


@dataclass(frozen=True)
class LesionCounts:
    """Connected-component counts of one prediction/reference pair."""

    n_pred: int  # lesions in the prediction
    n_ref: int  # lesions in the reference
    fp: int  # predicted lesions touching no reference voxel
    fn: int  # reference lesions touching no predicted voxel


def _unmatched(mask: np.ndarray, other: np.ndarray, structure: np.ndarray) -> tuple[int, int]:
    labels, n = ndimage.label(mask, structure=structure)
    if n == 0:
        return 0, 0
    hit = np.unique(labels[other & mask])
    return n, n - int(np.count_nonzero(hit))


def from_masks(pred: np.ndarray, ref: np.ndarray, *, connectivity: int,
               box: tuple[np.ndarray, np.ndarray] | None = None) -> LesionCounts:
    """Counts for validated boolean masks; ``box`` (low, high corners, inclusive) may crop them
    to a region that holds every foreground voxel of both."""
    if box is not None:
        window = tuple(slice(int(a), int(b) + 1) for a, b in zip(*box, strict=True))
        pred, ref = pred[window], ref[window]
    structure = ndimage.generate_binary_structure(pred.ndim, connectivity)
    n_pred, fp = _unmatched(pred, ref, structure)
    n_ref, fn = _unmatched(ref, pred, structure)
    return LesionCounts(n_pred=n_pred, n_ref=n_ref, fp=fp, fn=fn)


def lesion_counts(pred: object, ref: object, *, connectivity: int | None = None) -> LesionCounts:
    """Lesion counts and unmatched lesions of ``pred`` against ``ref`` (binary masks)."""
    p, r = as_mask(pred, "pred"), as_mask(ref, "ref")
    check_pair(p, r)
    return from_masks(p, r, connectivity=check_connectivity(connectivity, p.ndim))


def fp_lesions(pred: object, ref: object, *, connectivity: int | None = None) -> int:
    """Number of predicted lesions that overlap no reference voxel."""
    return lesion_counts(pred, ref, connectivity=connectivity).fp


def fn_lesions(pred: object, ref: object, *, connectivity: int | None = None) -> int:
    """Number of reference lesions that overlap no predicted voxel."""
    return lesion_counts(pred, ref, connectivity=connectivity).fn
