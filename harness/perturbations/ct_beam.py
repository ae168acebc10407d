"""CT beam hardening (cupping and dark bands between dense structures), projection domain.

Each axial plane is converted to water-equivalent attenuation, forward-projected (Radon), and the
first-order polychromatic error of an uncorrected scanner, ``p' = p - b p^2``, is
reconstructed by filtered back-projection. The resulting HU error field (centre of large
objects darker: cupping; dark streaks along lines through two dense objects) is normalised so
its 99th percentile of |error| inside the body (> -500 HU) is 1, then scaled to the ladder's
depth in HU. The field is computed on a working grid of at most 128 pixels and, for volumes, on
at most 12 planes with linear interpolation along the slice axis (the field is smooth), then
added to the image. Deterministic.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from harness.case import Case
from harness.perturbations import register
from harness.perturbations._ct import (
    WorkGrid,
    hu_to_mu,
    in_plane_spacing,
    interpolate_planes,
    mu_to_hu,
    planes,
    sample_indices,
    scanner_range,
    unplanes,
)
from harness.perturbations._util import ladder
from harness.perturbations.base import Perturbation

DEPTH_HU = (10.0, 25.0, 45.0, 75.0, 120.0)
MAX_PLANES = 12
BODY_HU = -500.0


def cupping_field(stack: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    """Unit beam-hardening error field (HU per unit depth) for a stack of axial planes."""
    grid = WorkGrid(stack.shape[1:], min(in_plane_spacing(spacing)))
    fields: dict[int, np.ndarray] = {}
    for i in sample_indices(stack.shape[0], MAX_PLANES):
        work = grid.to_work(stack[i].astype(np.float64), fill=-1000.0)
        p = grid.radon(hu_to_mu(work))
        error = mu_to_hu(grid.fbp(-(p ** 2)))
        fields[int(i)] = grid.from_work(error)
    field = np.stack(list(interpolate_planes(fields, stack.shape[0])))
    body = stack > BODY_HU
    scale = float(np.percentile(np.abs(field[body]), 99)) if body.any() else float(np.abs(field).max())
    return field / (scale or 1.0)


@register
class BeamHardening(Perturbation):
    """Uncorrected water beam hardening. Params: ``depth_hu`` (99th percentile of |HU error| in
    the body)."""

    name = "beam_hardening"
    options_doc = {}
    modalities = frozenset({"ct"})
    parameter_doc = "cupping / dark-band HU error, 99th pct in the body = {10, 25, 45, 75, 120} HU"

    def draw(self, case: Case, severity: int, rng: np.random.Generator) -> dict[str, Any]:
        return {"depth_hu": ladder(DEPTH_HU, severity)}

    def apply(self, case: Case, params: dict[str, Any]) -> Case:
        out = np.empty_like(case.image)
        for c, x in enumerate(case.image):
            stack, axis = planes(x, case.spacing)
            out[c] = scanner_range(x + params["depth_hu"] * unplanes(cupping_field(stack, case.spacing), axis), x)
        return case.with_(image=out)
