"""DeepMind-style surface elements ("surfels") for the area-weighted NSD (surface Dice).

As in ``deepmind/surface-distance`` (Nikolov et al. 2021): the surface lives on the grid of
voxel corners. Each corner's 2x2x2 (2D: 2x2) neighbourhood of voxels gives a code; corners whose
code is neither empty nor full are surface elements, with an area (2D: a contour length) looked
up from the code and the spacing. Distances run between corner points, in mm. Then

    NSD_tau = (sum of pred areas with d <= tau + sum of ref areas with d <= tau)
              / (sum of pred areas + sum of ref areas).

The 2D length table is built here; the 3D area table (marching-cubes normals) is DeepMind's, as
shipped by MONAI (``monai.metrics.utils.get_code_to_measure_table``; float32, so areas carry a
relative error of about 1e-7). Empty policy as for the voxel NSD: both empty 1, one empty 0.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from harness.metrics import _geometry as geo
from harness.metrics._checks import Empty, check_tolerance, empty_case
from harness.metrics._directed import Directed
from harness.metrics.surface import Spacing, prepare, slack


@functools.lru_cache(maxsize=32)
def measure_table(spacing: tuple[float, ...]) -> np.ndarray:
    """Surfel measure per neighbourhood code: contour length (mm, 16 codes) in 2D, surface area
    (mm², 256 codes) in 3D. Codes use DeepMind's kernel ``[[8, 4], [2, 1]]`` (2D) or
    ``[[[128, 64], [32, 16]], [[8, 4], [2, 1]]]`` (3D) over the voxels around the corner."""
    if len(spacing) == 2:
        first, second = spacing
        diag = 0.5 * float(np.hypot(first, second))
        table = np.full(16, diag)
        table[[0, 15]] = 0.0
        table[[0b0011, 0b1100]] = second  # an edge running along axis 1
        table[[0b0101, 0b1010]] = first  # an edge running along axis 0
        table[[0b0110, 0b1001]] = 2.0 * diag  # two opposite corners: two diagonal edges
    else:
        from monai.metrics.utils import get_code_to_measure_table

        areas, _ = get_code_to_measure_table(tuple(spacing))
        table = np.asarray(areas.cpu().numpy(), dtype=np.float64)
    table.flags.writeable = False
    return table


@dataclass(frozen=True)
class SurfelDistances:
    """Directed corner-grid distances (mm) with each surface element's area (mm², 2D: mm)."""

    pred: Directed
    ref: Directed
    pred_areas: np.ndarray
    ref_areas: np.ndarray
    empty: Empty

    @property
    def pred_to_ref(self) -> np.ndarray:
        return self.pred.all()

    @property
    def ref_to_pred(self) -> np.ndarray:
        return self.ref.all()

    def nsd(self, tolerance: float = 1.0) -> float:
        """Area-weighted fraction of both surfaces within ``tolerance`` mm of the other."""
        tau = slack(check_tolerance(tolerance))
        if self.empty != "none":
            return 1.0 if self.empty == "both" else 0.0
        hit = float(self.pred_areas[self.pred.within(tau)].sum()) + \
            float(self.ref_areas[self.ref.within(tau)].sum())
        return hit / (float(self.pred_areas.sum()) + float(self.ref_areas.sum()))


def from_scan(pred3: np.ndarray, ref3: np.ndarray, scan: geo.Scan, shape: tuple[int, ...],
              spacing: tuple[float, ...]) -> SurfelDistances:
    """Surfel distances of validated masks (see :func:`harness.metrics.surface.prepare`)."""
    empty = empty_case(scan.n_pred, scan.n_ref)
    if empty != "none":
        none = np.empty(0, np.float64)
        return SurfelDistances(Directed.exact(none), Directed.exact(none), none, none, empty)
    flat0 = geo.is_planar(shape)
    lo, hi = scan.union_box
    sp = geo.spacing3(spacing, shape)
    table = measure_table(tuple(float(v) for v in sp[1:]) if flat0 else spacing)  # planar: contour lengths
    sp_pred, codes_pred = geo.surfels(pred3, lo, hi, flat0)
    sp_ref, codes_ref = geo.surfels(ref3, lo, hi, flat0)
    return SurfelDistances(geo.nearest(sp_pred.coords, sp_ref, sp, flat0),
                           geo.nearest(sp_ref.coords, sp_pred, sp, flat0),
                           table[codes_pred], table[codes_ref], empty)


def surfel_distances(pred: object, ref: object, *, spacing: Spacing = None) -> SurfelDistances:
    """DeepMind-style surfel distances and areas between two binary masks."""
    return from_scan(*prepare(pred, ref, spacing))
