"""Ultrasound speckle: multiplicative gamma-distributed noise on the echo amplitude.

Fully developed speckle multiplies the echo intensity by a gamma variate (Rayleigh amplitude for
one look, gamma with ``L`` looks after compounding). We multiply the linear amplitude (see
:mod:`harness.perturbations._us`) by ``n ~ Gamma(L, 1/L)`` (mean 1, relative std ``1/sqrt(L)``)
and log-compress again, so in the displayed image the speckle is additive and brightness
independent, as in real B-mode. Speckle grains are correlated over ``grain_px`` (Gaussian sigma
in pixels, default 1 along depth, 2 laterally: lateral resolution is coarser). Coupled draws: one
correlated uniform field ``u`` per draw, ``n = F^-1_L(u)`` at every severity (inverse-CDF coupling).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage as ndi
from scipy.special import gammaincinv, ndtr

from harness.case import Case
from harness.perturbations import register
from harness.perturbations._us import (display_bounds, display_max, dynamic_range, from_amplitude,
                                        to_amplitude)
from harness.perturbations._util import DR_DOC, DR_OPTION, draw_seed, ladder
from harness.perturbations.base import NumberOption, Perturbation

RELATIVE_STD = (0.25, 0.35, 0.5, 0.7, 0.95)
GRAIN_PX = (1.0, 2.0)


@register
class Speckle(Perturbation):
    """Multiplicative speckle. Params: ``relative_std`` (1/sqrt(L)), ``looks`` L, ``grain_px``
    (depth, lateral), ``i_ref``, ``dynamic_range_db``, ``noise_seed``.
    Options: ``dynamic_range_db`` (60), ``grain_px`` ([depth, lateral] sigma in pixels)."""

    name = "speckle"
    numbers = {"dynamic_range_db": DR_OPTION, "grain_px": NumberOption(above=0, length=2)}
    options_doc = {"dynamic_range_db": DR_DOC,
                   "grain_px": "[depth, lateral] grain sigma in pixels (default [1, 2])"}
    modalities = frozenset({"us"})
    parameter_doc = ("echo amplitude x Gamma(L, 1/L), relative std 1/sqrt(L) = {0.25, 0.35, 0.5, 0.7, 0.95}, "
                     "grain sigma 1 x 2 px (depth x lateral)")

    def draw(self, case: Case, severity: int, rng: np.random.Generator) -> dict[str, Any]:
        r = ladder(RELATIVE_STD, severity)
        return {"relative_std": r, "looks": 1.0 / r ** 2,
                "grain_px": [float(g) for g in self.options.get("grain_px", GRAIN_PX)],
                "i_ref": display_max(case), "dynamic_range_db": dynamic_range(self.options),
                "noise_seed": draw_seed(rng)}

    def apply(self, case: Case, params: dict[str, Any]) -> Case:
        gen = np.random.default_rng(int(params["noise_seed"]))
        depth_sigma, lateral_sigma = params["grain_px"]
        sigmas = [depth_sigma] + [lateral_sigma] * (case.ndim - 1)
        out = np.empty_like(case.image)
        looks, dr = float(params["looks"]), float(params["dynamic_range_db"])
        for c, x in enumerate(case.image):
            z = ndi.gaussian_filter(gen.standard_normal(x.shape), sigmas, mode="wrap")
            u = np.clip(ndtr((z - z.mean()) / (z.std() or 1.0)), 1e-9, 1 - 1e-9)
            n = gammaincinv(looks, u) / looks
            amp = to_amplitude(x, params["i_ref"][c], dr) * n
            out[c] = from_amplitude(amp, params["i_ref"][c], dr, display_bounds(x, params["i_ref"][c]))
        return case.with_(image=out)
