"""Ultrasound gain errors: overall gain / time-gain-compensation (TGC) misadjustment, and
uncompensated depth attenuation. Both act in dB on the log-compressed display
(:mod:`harness.perturbations._us`): ``+1 dB`` shifts the display by ``I_ref / DR``; results are
clipped to the displayable range, as a scanner would.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.interpolate import PchipInterpolator

from harness.case import Case
from harness.perturbations import register
from harness.perturbations._us import add_db, depth_coordinate, display_max, dynamic_range
from harness.perturbations._util import DIRECTION_DOC, DIRECTIONS, DR_DOC, DR_OPTION, draw_sign, ladder
from harness.perturbations.base import Perturbation

GAIN_DB = (3.0, 6.0, 9.0, 12.0, 18.0)
ATTENUATION_DB = (6.0, 12.0, 18.0, 24.0, 32.0)
TGC_SLIDERS = 8


@register
class Gain(Perturbation):
    """Overall gain change plus TGC slider errors.

    The overall gain moves by ``+-G`` dB; each of 8 TGC sliders (evenly spaced in depth, joined
    by a monotone cubic) moves by ``G/2 * u_i``, ``u_i ~ U(-1, 1)``. Coupled draws (sign and
    slider pattern drawn once). Params: ``gain_db`` (signed), ``tgc_db`` (8 slider offsets),
    ``i_ref``, ``dynamic_range_db``. Options: ``direction``, ``dynamic_range_db``.
    """

    name = "gain"
    numbers = {"dynamic_range_db": DR_OPTION}
    options_doc = {"direction": DIRECTION_DOC, "dynamic_range_db": DR_DOC}
    choices = {"direction": DIRECTIONS}
    modalities = frozenset({"us"})
    parameter_doc = "overall gain +-{3, 6, 9, 12, 18} dB, 8 TGC sliders each within +-half of that"

    def draw(self, case: Case, severity: int, rng: np.random.Generator) -> dict[str, Any]:
        sign = draw_sign(rng, self.options.get("direction", "both"))
        sliders = rng.uniform(-1.0, 1.0, TGC_SLIDERS)
        g = ladder(GAIN_DB, severity)
        return {"gain_db": sign * g, "tgc_db": (0.5 * g * sliders).tolist(), "i_ref": display_max(case),
                "dynamic_range_db": dynamic_range(self.options)}

    def apply(self, case: Case, params: dict[str, Any]) -> Case:
        depth = depth_coordinate(case.spatial_shape)
        tgc = PchipInterpolator(np.linspace(0, 1, TGC_SLIDERS), params["tgc_db"])(depth)
        return add_db(case, params["gain_db"] + tgc, params)


@register
class DepthAttenuation(Perturbation):
    """Extra, uncompensated attenuation growing linearly with depth (e.g. a more attenuating
    patient, or a wrong frequency-dependent TGC preset): ``-A * depth / max depth`` dB.

    Params: ``attenuation_db`` (A, loss at the deepest row), ``db_per_cm`` (equivalent extra
    round-trip attenuation, from the spacing; meaningless when spacing is in pixels),
    ``i_ref``, ``dynamic_range_db``. Deterministic.
    """

    name = "depth_attenuation"
    numbers = {"dynamic_range_db": DR_OPTION}
    options_doc = {"dynamic_range_db": DR_DOC}
    modalities = frozenset({"us"})
    parameter_doc = "extra attenuation reaching {6, 12, 18, 24, 32} dB at the deepest row (linear in depth)"

    def draw(self, case: Case, severity: int, rng: np.random.Generator) -> dict[str, Any]:
        a = ladder(ATTENUATION_DB, severity)
        depth_cm = case.spatial_shape[0] * case.spacing[0] / 10.0
        return {"attenuation_db": a, "db_per_cm": a / depth_cm, "i_ref": display_max(case),
                "dynamic_range_db": dynamic_range(self.options)}

    def apply(self, case: Case, params: dict[str, Any]) -> Case:
        return add_db(case, -params["attenuation_db"] * depth_coordinate(case.spatial_shape), params)
