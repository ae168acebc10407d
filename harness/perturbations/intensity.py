"""Global intensity changes: contrast, gamma and brightness.

Each has a ``direction`` option: ``"both"`` (default; the sign is a fair coin drawn first, and
recorded), ``"up"`` or ``"down"``. Magnitudes are symmetric in log space for contrast and gamma,
so both directions distort comparably. Severity 1 sits at the edge of nnU-Net's augmentation
(contrast 0.75-1.25, gamma 0.7-1.5); severity 5 is far outside it.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from harness.case import Case
from harness.perturbations import register
from harness.perturbations._util import (
    DIRECTION_DOC,
    DIRECTIONS,
    draw_sign,
    ladder,
    monai_transforms,
    robust_range,
)
from harness.perturbations.base import Perturbation

LOG_CONTRAST = (0.3, 0.5, 0.75, 1.0, 1.4)
LOG_GAMMA = (0.4, 0.6, 0.85, 1.1, 1.4)
SHIFT_FRACTION = (0.06, 0.12, 0.18, 0.25, 0.35)


@register
class Contrast(Perturbation):
    """Contrast scaling about the image mean, clipped to the original range (as nnU-Net).

    ``x' = clip(mean + c (x - mean), min, max)`` per channel. Params: ``factor`` c, ``sign``.
    Options: ``direction`` ("both" | "up" | "down").
    """

    name = "contrast"
    options_doc = {"direction": DIRECTION_DOC}
    choices = {"direction": DIRECTIONS}
    parameter_doc = ("factor c = exp(+-{0.3, 0.5, 0.75, 1.0, 1.4}) about the mean, clipped to the "
                     "original range (c = 0.74/1.35 ... 0.25/4.1)")

    def draw(self, case: Case, severity: int, rng: np.random.Generator) -> dict[str, Any]:
        sign = draw_sign(rng, self.options.get("direction", "both"))
        return {"sign": sign, "factor": math.exp(sign * ladder(LOG_CONTRAST, severity))}

    def apply(self, case: Case, params: dict[str, Any]) -> Case:
        out = np.empty_like(case.image)
        for c, x in enumerate(case.image):
            mean = float(x.mean())
            out[c] = np.clip(mean + params["factor"] * (x - mean), x.min(), x.max())
        return case.with_(image=out)


@register
class Gamma(Perturbation):
    """Gamma curve on the min-max normalised intensities (MONAI ``AdjustContrast``, as nnU-Net).

    ``x' = min + range * ((x - min) / range) ** gamma`` per channel. Params: ``gamma``, ``sign``.
    Options: ``direction`` ("both" | "up": gamma > 1 | "down": gamma < 1).
    """

    name = "gamma"
    options_doc = {"direction": DIRECTION_DOC}
    choices = {"direction": DIRECTIONS}
    parameter_doc = "gamma = exp(+-{0.4, 0.6, 0.85, 1.1, 1.4}) (0.67/1.49 ... 0.25/4.1)"

    def draw(self, case: Case, severity: int, rng: np.random.Generator) -> dict[str, Any]:
        sign = draw_sign(rng, self.options.get("direction", "both"))
        return {"sign": sign, "gamma": math.exp(sign * ladder(LOG_GAMMA, severity))}

    def apply(self, case: Case, params: dict[str, Any]) -> Case:
        transform = monai_transforms().AdjustContrast(gamma=float(params["gamma"]), retain_stats=False)
        out = np.empty_like(case.image)
        for c in range(case.image.shape[0]):
            out[c] = np.asarray(transform(np.ascontiguousarray(case.image[c:c + 1])))[0]
        return case.with_(image=out)


@register
class Brightness(Perturbation):
    """Additive brightness shift relative to the robust intensity range (p0.5-p99.5).

    Params: ``shift`` (per channel, image units), ``shift_fraction``, ``sign``.
    Options: ``direction`` ("both" | "up" | "down").
    """

    name = "brightness"
    options_doc = {"direction": DIRECTION_DOC}
    choices = {"direction": DIRECTIONS}
    parameter_doc = "shift = +-{0.06, 0.12, 0.18, 0.25, 0.35} x robust intensity range (p0.5-p99.5)"

    def draw(self, case: Case, severity: int, rng: np.random.Generator) -> dict[str, Any]:
        sign = draw_sign(rng, self.options.get("direction", "both"))
        frac = ladder(SHIFT_FRACTION, severity)
        return {"sign": sign, "shift_fraction": frac,
                "shift": [sign * frac * (hi - lo) for lo, hi in robust_range(case)]}

    def apply(self, case: Case, params: dict[str, Any]) -> Case:
        shift = np.asarray(params["shift"], dtype=np.float32).reshape(-1, *([1] * case.ndim))
        return case.with_(image=(case.image + shift).astype(np.float32))
