"""Boundary-distance metrics: Hausdorff (max and percentile), ASSD, MASD and NSD.

Definitions (as MONAI and MetricsReloaded): the *boundary* of a mask is its foreground voxels
with at least one background face neighbour (outside the image counts as background). For each
boundary voxel of one mask, its distance is the Euclidean distance in mm (voxel centres, with
``spacing``) to the nearest boundary voxel of the other mask. With ``d_P`` the distances from the
prediction's boundary and ``d_R`` those from the reference's:

* ``hd``  = max(max d_P, max d_R); ``hd95`` (percentile q) = max(P_q(d_P), P_q(d_R)), each
  directed percentile with linear interpolation (``numpy.percentile``'s default);
* ``assd`` = (sum d_P + sum d_R) / (|d_P| + |d_R|);
* ``masd`` = (mean d_P + mean d_R) / 2;
* ``nsd`` at tolerance tau = (#{d_P <= tau} + #{d_R <= tau}) / (|d_P| + |d_R|) (voxel boundaries;
  ``method="surfel"`` gives DeepMind's area-weighted version, see :mod:`.surfel`).

Distances count as within tau up to a relative slack of 1e-9, so that an offset of exactly tau
is not lost to floating-point rounding (e.g. 3 x 0.1 mm).

Empty policy (never NaN): both masks empty -> every distance 0 and NSD 1; exactly one empty ->
every distance is the image's physical diagonal sqrt(sum((n_i s_i)^2)) (larger than any distance
inside the image) and NSD 0.

>>> import numpy as np
>>> a = np.zeros((8, 8), bool); a[2:5, 2:5] = True
>>> hausdorff(a, np.roll(a, 2, axis=1), spacing=(1.0, 0.5))
1.0
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NamedTuple

import numpy as np

from harness.metrics import _geometry as geo
from harness.metrics._checks import (Empty, as_mask, as_spacing, check_pair, check_percentile,
                                     check_tolerance, diagonal, empty_case)
from harness.metrics._directed import Directed

Spacing = float | Sequence[float] | np.ndarray | None
TOLERANCE_SLACK = 1e-9


def slack(tolerance: float) -> float:
    """The tolerance actually compared against: ``tolerance`` plus the relative slack."""
    return tolerance * (1.0 + TOLERANCE_SLACK)


class SurfaceDistances:
    """Directed boundary distances of one prediction/reference pair, in mm.

    ``pred_to_ref`` holds one distance per boundary voxel of the prediction (to the reference's
    boundary), ``ref_to_pred`` the converse; both are empty unless ``empty == "none"``.
    """

    def __init__(self, pred: Directed, ref: Directed, empty: Empty, diagonal: float) -> None:
        self._pred, self._ref = pred, ref
        self.empty: Empty = empty
        self.diagonal = diagonal

    @property
    def pred_to_ref(self) -> np.ndarray:
        return self._pred.all()

    @property
    def ref_to_pred(self) -> np.ndarray:
        return self._ref.all()

    def _policy(self, both: float) -> float:
        return both if self.empty == "both" else self.diagonal

    def hausdorff(self, percentile: float = 100.0) -> float:
        """Max over the two directions of the directed ``percentile`` (100 = classic HD), mm."""
        q = check_percentile(percentile)
        if self.empty != "none":
            return self._policy(0.0)
        return max(self._pred.percentile(q), self._ref.percentile(q))

    def assd(self) -> float:
        """Average symmetric surface distance: all directed distances pooled, mm."""
        if self.empty != "none":
            return self._policy(0.0)
        total = float(self.pred_to_ref.sum()) + float(self.ref_to_pred.sum())
        return total / (self._pred.size + self._ref.size)

    def masd(self) -> float:
        """Mean average surface distance: the mean of the two directed means, mm."""
        if self.empty != "none":
            return self._policy(0.0)
        return 0.5 * (float(self.pred_to_ref.mean()) + float(self.ref_to_pred.mean()))

    def nsd(self, tolerance: float = 1.0) -> float:
        """Share of boundary voxels (both masks) within ``tolerance`` mm of the other boundary."""
        tau = slack(check_tolerance(tolerance))
        if self.empty != "none":
            return 1.0 if self.empty == "both" else 0.0
        hits = np.count_nonzero(self._pred.within(tau)) + np.count_nonzero(self._ref.within(tau))
        return hits / (self._pred.size + self._ref.size)


class Prepared(NamedTuple):
    """A validated mask pair as 3-axis uint8 views, with its scan, shape and spacing."""

    pred3: np.ndarray
    ref3: np.ndarray
    scan: geo.Scan
    shape: tuple[int, ...]
    spacing: tuple[float, ...]


def prepare(pred: object, ref: object, spacing: Spacing) -> Prepared:
    """Validate a mask pair (ValueError naming the problem) and scan it once."""
    p, r = as_mask(pred, "pred"), as_mask(ref, "ref")
    check_pair(p, r)
    sp = as_spacing(spacing, p.ndim)
    p3, r3 = geo.as3d(p), geo.as3d(r)
    return Prepared(p3, r3, geo.scan(p3, r3), p.shape, sp)


def from_scan(pred3: np.ndarray, ref3: np.ndarray, scan: geo.Scan, shape: tuple[int, ...],
              spacing: tuple[float, ...]) -> SurfaceDistances:
    """Surface distances of validated masks (see :func:`prepare`)."""
    empty = empty_case(scan.n_pred, scan.n_ref)
    diag = diagonal(shape, spacing)
    if empty != "none":
        none = Directed.exact(np.empty(0, np.float64))
        return SurfaceDistances(none, none, empty, diag)
    flat0 = geo.is_planar(shape)
    lo, hi = scan.union_box
    sp = geo.spacing3(spacing, shape)
    bp = geo.boundary(pred3, lo, hi, flat0)
    br = geo.boundary(ref3, lo, hi, flat0)
    return SurfaceDistances(geo.nearest(bp.coords, br, sp, flat0),
                            geo.nearest(br.coords, bp, sp, flat0), empty, diag)


def surface_distances(pred: object, ref: object, *, spacing: Spacing = None) -> SurfaceDistances:
    """Directed boundary distances (mm) between two binary masks, for any surface metric."""
    return from_scan(*prepare(pred, ref, spacing))


def hausdorff(pred: object, ref: object, *, spacing: Spacing = None,
              percentile: float = 100.0) -> float:
    """Hausdorff distance in mm; ``percentile=95`` gives HD95 (both empty: 0, one: diagonal)."""
    check_percentile(percentile)
    return surface_distances(pred, ref, spacing=spacing).hausdorff(percentile)


def hd95(pred: object, ref: object, *, spacing: Spacing = None) -> float:
    """95th-percentile Hausdorff distance in mm (both empty: 0, one empty: diagonal)."""
    return hausdorff(pred, ref, spacing=spacing, percentile=95.0)


def assd(pred: object, ref: object, *, spacing: Spacing = None) -> float:
    """Average symmetric surface distance in mm (both empty: 0, one empty: diagonal)."""
    return surface_distances(pred, ref, spacing=spacing).assd()


def masd(pred: object, ref: object, *, spacing: Spacing = None) -> float:
    """Mean average surface distance in mm (both empty: 0, one empty: diagonal)."""
    return surface_distances(pred, ref, spacing=spacing).masd()


def nsd(pred: object, ref: object, *, spacing: Spacing = None, tolerance: float = 1.0,
        method: Literal["voxel", "surfel"] = "voxel") -> float:
    """Normalised surface distance (surface Dice) at ``tolerance`` mm, in [0, 1].

    ``method="voxel"`` counts boundary voxels (MetricsReloaded, MONAI); ``"surfel"`` weights
    DeepMind's surface elements by area (length in 2D). Both empty: 1, one empty: 0.
    """
    tau = check_tolerance(tolerance)
    if method == "voxel":
        return surface_distances(pred, ref, spacing=spacing).nsd(tau)
    if method == "surfel":
        from harness.metrics.surfel import surfel_distances

        return surfel_distances(pred, ref, spacing=spacing).nsd(tau)
    raise ValueError(f"NSD method must be 'voxel' or 'surfel', got {method!r}")
