"""Low resolution: acquisition at a coarser resolution, then interpolated back to the grid.

2D: both axes coarsened by the factor. 3D (default ``axes="slice"``): only the slice axis, i.e.
thicker slices (anisotropic acquisition); ``axes="all"`` coarsens every axis. The coarse sample is
the PSF-weighted average (Gaussian anti-aliasing matched to the factor, linear sampling) and the
way back is cubic-spline interpolation, so the result returns to the **original grid**: shape,
spacing and label are unchanged. Severity 1 is the edge of nnU-Net's low-resolution augmentation
(zoom 0.5, i.e. factor 2). Deterministic (no random draws).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from harness.case import Case
from harness.errors import ConfigError
from harness.perturbations import register
from harness.perturbations._resample import down_up
from harness.perturbations._util import ladder, slice_axis
from harness.perturbations.base import Perturbation

FACTOR = (2.0, 3.0, 4.0, 5.0, 6.0)


@register
class LowResolution(Perturbation):
    """Down-sample-up-sample. Params: ``factors`` (per spatial axis), ``acquired_spacing`` (mm).

    Options: ``axes`` ("slice" | "all"; 3D only, default "slice").
    """

    name = "low_resolution"
    options_doc = {"axes": "3D only: 'slice' (default, thicker slices) or 'all' axes"}
    choices = {"axes": ("slice", "all")}
    parameter_doc = ("resolution coarsened x{2, 3, 4, 5, 6} (2D: both axes; 3D: slice axis only), "
                     "back to the original grid")

    def draw(self, case: Case, severity: int, rng: np.random.Generator) -> dict[str, Any]:
        f = ladder(FACTOR, severity)
        mode = self.options.get("axes", "slice")
        if mode not in ("slice", "all"):
            raise ConfigError(f"low_resolution: axes must be 'slice' or 'all', got {mode!r}")
        if case.ndim == 2 or mode == "all":
            factors = [f] * case.ndim
        else:
            factors = [1.0] * case.ndim
            factors[slice_axis(case.spacing)] = f
        return {"factors": factors, "acquired_spacing": [s * k for s, k in zip(case.spacing, factors)]}

    def apply(self, case: Case, params: dict[str, Any]) -> Case:
        offsets = [0.5] * case.ndim  # centred coarse grid
        out = np.stack([down_up(x, params["factors"], offsets, antialias=True, order_down=1, order_up=3)
                        for x in case.image]).astype(np.float32)
        return case.with_(image=out)
