"""MRI intensity non-uniformity (bias field), TorchIO ``BiasField``.

A smooth multiplicative field ``exp(sum_i c_i P_i(x))`` of 3rd-order polynomials over the
normalised coordinates. The unit coefficients are drawn once per draw (uniform in [-1, 1], as
TorchIO) and rescaled so that the field's largest log-gain equals the ladder value: the field
stays within ``[exp(-a), exp(a)]`` and its shape does not change with severity (coupled draws).
The field multiplies the magnitude: a channel with negative values (z-scored) is taken as the
intensity above its minimum, so tissue, not a negative background, is modulated.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from harness.case import Case
from harness.perturbations import register
from harness.perturbations._util import ladder
from harness.perturbations.base import Perturbation

MAX_LOG_GAIN = (0.2, 0.3, 0.4, 0.55, 0.7)
ORDER = 3


def _n_coefficients(order: int) -> int:
    return sum(1 for x in range(order + 1) for y in range(order + 1 - x) for _ in range(order + 1 - x - y))


@register
class BiasField(Perturbation):
    """Multiplicative polynomial bias field.

    Params: ``max_log_gain`` a (the field lies in [e^-a, e^a]), ``coefficients`` (the 20
    polynomial coefficients actually applied, order 3).
    """

    name = "bias_field"
    options_doc = {}
    modalities = frozenset({"mri"})
    parameter_doc = ("smooth multiplicative field, max |log gain| = {0.2, 0.3, 0.4, 0.55, 0.7} "
                     "(gain within x0.82-1.22 ... x0.50-2.0)")

    def draw(self, case: Case, severity: int, rng: np.random.Generator) -> dict[str, Any]:
        from torchio.transforms.augmentation.intensity.random_bias_field import BiasField as TioBias

        from harness.perturbations import _tio

        unit = rng.uniform(-1.0, 1.0, _n_coefficients(ORDER))
        shape = _tio.lift(np.zeros((1, *case.spatial_shape), dtype=np.float32), case.ndim, "last").shape
        log_field = np.log(TioBias.generate_bias_field(np.zeros(shape), ORDER, unit.tolist()))
        peak = float(np.abs(log_field).max()) or 1.0
        a = ladder(MAX_LOG_GAIN, severity)
        return {"max_log_gain": a, "coefficients": (unit * a / peak).tolist()}

    def apply(self, case: Case, params: dict[str, Any]) -> Case:
        import torchio as tio

        from harness.perturbations import _tio

        transform = tio.BiasField(coefficients=[float(c) for c in params["coefficients"]], order=ORDER)
        return _tio.run_on_magnitude(case, transform)
