"""Ultrasound speckle: multiplicative gamma-distributed noise on the echo amplitude.

Fully developed speckle multiplies the echo *intensity* by a gamma variate (exponential for one
look, i.e. a Rayleigh amplitude; gamma with ``L`` looks after compounding). We multiply the linear
*amplitude* (see :mod:`harness.perturbations._us`) by ``n ~ Gamma(L, 1/L)`` (mean 1, relative std
``1/sqrt(L)``) and log-compress again, so in the displayed image the speckle is additive and
brightness independent, as in real B-mode. Multiplying the amplitude rather than the intensity
makes the grain stronger for a given ``L``: the added speckle has a display std of
``20/ln 10 * sqrt(trigamma(L))`` dB = 2.2, 3.1, 4.6, 6.9, 10.3 dB at severities 1–5, against
5.6 dB for single-look Rayleigh speckle, so severities 4–5 deliberately exceed physical speckle
(and add to the speckle the image already has). Speckle grains are correlated over ``grain_px`` (Gaussian sigma
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
    # the Gaussian filter's kernel spans 8 sigma: a huge grain asks for gigabytes
    numbers = {"dynamic_range_db": DR_OPTION, "grain_px": NumberOption(above=0, at_most=64, length=2)}
    options_doc = {"dynamic_range_db": DR_DOC,
                   "grain_px": "[depth, lateral] grain sigma in pixels, each ≤ 64 (default [1, 2])"}
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
