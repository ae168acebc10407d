"""CT dose reduction: calibrated image-domain noise with a filtered-back-projection texture.

Quantum noise variance in CT scales as 1/dose. Reducing the dose to a fraction ``d`` of the
original adds independent noise of std ``sigma0 * sqrt(1/d - 1)``, where ``sigma0`` is the noise
of the original scan (option ``reference_noise_hu``, default 10 HU: routine abdominal CT with a
soft-tissue kernel). The noise is shaped like FBP noise: in each axial plane, white noise filtered
to a noise power spectrum ``NPS(f) ~ |f| * hann(f)^2`` (ramp filter x apodisation), normalised to
unit std, independent between planes. Stationary (no dependence on path length). Coupled draws:
the same noise pattern is scaled by the ladder.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from harness.case import Case
from harness.perturbations import register
from harness.perturbations._ct import planes, scanner_range, unplanes
from harness.perturbations._util import draw_seed, ladder
from harness.perturbations.base import NumberOption, Perturbation

DOSE_FRACTION = (0.5, 0.25, 0.125, 0.0625, 0.03)
REFERENCE_NOISE_HU = 10.0


def fbp_noise(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Unit-std noise with a ramp x Hann noise power spectrum in the last two axes."""
    gen = np.random.default_rng(seed)
    white = gen.standard_normal(shape)
    fy = np.fft.fftfreq(shape[-2])[:, None]
    fx = np.fft.rfftfreq(shape[-1])[None, :]
    f = np.sqrt(fy ** 2 + fx ** 2) / 0.5  # 1 at the Nyquist frequency along an axis
    hann = np.where(f < 1.0, 0.5 * (1.0 + np.cos(np.pi * np.clip(f, 0, 1))), 0.0)
    shaped = np.fft.irfft2(np.fft.rfft2(white) * np.sqrt(f) * hann, s=shape[-2:])
    std = shaped.std(axis=(-2, -1), keepdims=True)
    return shaped / np.where(std > 0, std, 1.0)


@register
class CTDose(Perturbation):
    """Simulated low-dose CT.

    Params: ``dose_fraction`` d, ``added_sigma_hu`` (std of the added noise),
    ``reference_noise_hu`` sigma0, ``noise_seed``. Options: ``reference_noise_hu``.
    """

    name = "ct_dose"
    numbers = {"reference_noise_hu": NumberOption(above=0)}
    options_doc = {"reference_noise_hu": "noise std of the original scan in HU (default 10)"}
    modalities = frozenset({"ct"})
    parameter_doc = ("dose x{0.5, 0.25, 0.125, 0.0625, 0.03}: added FBP-textured noise "
                     "sigma0 sqrt(1/d - 1) = {10, 17, 26, 39, 57} HU for sigma0 = 10 HU")

    def draw(self, case: Case, severity: int, rng: np.random.Generator) -> dict[str, Any]:
        d = ladder(DOSE_FRACTION, severity)
        sigma0 = float(self.options.get("reference_noise_hu", REFERENCE_NOISE_HU))
        return {"dose_fraction": d, "reference_noise_hu": sigma0,
                "added_sigma_hu": sigma0 * float(np.sqrt(1.0 / d - 1.0)), "noise_seed": draw_seed(rng)}

    def apply(self, case: Case, params: dict[str, Any]) -> Case:
        out = np.empty_like(case.image)
        for c, x in enumerate(case.image):
            stack, axis = planes(x, case.spacing)
            noise = fbp_noise(stack.shape, int(params["noise_seed"]) + c)
            out[c] = scanner_range(x + params["added_sigma_hu"] * unplanes(noise, axis), x)
        return case.with_(image=out)
