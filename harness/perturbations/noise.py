"""Additive, Rician and shot noise, with sigma relative to the foreground intensity std.

Severity 1 matches the edge of nnU-Net's noise augmentation (variance 0.1 on a z-scored image,
i.e. sigma ~0.3 std); severity 5 is five times that. One noise realisation per draw: with the same
rng, severities 1..5 add the same pattern scaled by the ladder (coupled draws), so distortion
grows monotonically draw by draw, not only on average.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from harness.case import Case
from harness.perturbations import register
from harness.perturbations._util import draw_seed, foreground_mean, foreground_std, ladder, monai_transforms
from harness.perturbations.base import Perturbation

SIGMA_FRACTION = (0.3, 0.5, 0.75, 1.05, 1.5)


@register
class GaussianNoise(Perturbation):
    """Additive white Gaussian noise (TorchIO ``Noise``).

    Params: ``sigma`` (per channel, image units), ``sigma_fraction`` (x foreground std),
    ``noise_seed`` (seed of the noise realisation).
    """

    name = "gaussian_noise"
    options_doc = {}
    parameter_doc = "sigma = {0.3, 0.5, 0.75, 1.05, 1.5} x foreground intensity std"

    def draw(self, case: Case, severity: int, rng: np.random.Generator) -> dict[str, Any]:
        frac = ladder(SIGMA_FRACTION, severity)
        return {"sigma_fraction": frac, "sigma": [frac * s for s in foreground_std(case)],
                "noise_seed": draw_seed(rng)}

    def apply(self, case: Case, params: dict[str, Any]) -> Case:
        import torchio as tio

        from harness.perturbations import _tio

        out = []
        for c, sigma in enumerate(params["sigma"]):
            one = case.with_(image=case.image[c:c + 1])
            transform = tio.Noise(mean=0.0, std=float(sigma), seed=int(params["noise_seed"]) + c)
            out.append(_tio.run(one, transform, seed=params["noise_seed"]).image)
        return case.with_(image=np.concatenate(out).astype(np.float32))


@register
class RicianNoise(Perturbation):
    """Rician noise of an MRI magnitude image: ``sqrt((x + s n1)^2 + (s n2)^2)``, n1, n2 ~ N(0, 1)
    (MONAI ``RandRicianNoise`` with its own seeded ``RandomState``). An image with negative values
    (e.g. z-scored) is taken as magnitude above its minimum ``m``: ``m + sqrt((x - m + s n1)^2 + ...)``,
    so its negative voxels are not folded to positive ones.

    Params: ``sigma`` (per channel, image units), ``sigma_fraction``, ``offset`` (per channel: ``m``,
    0 for non-negative images), ``noise_seed``.
    """

    name = "rician_noise"
    options_doc = {}
    modalities = frozenset({"mri"})
    parameter_doc = ("sigma of each quadrature channel = {0.3, 0.5, 0.75, 1.05, 1.5} x foreground "
                     "intensity std (magnitude image)")

    def draw(self, case: Case, severity: int, rng: np.random.Generator) -> dict[str, Any]:
        frac = ladder(SIGMA_FRACTION, severity)
        return {"sigma_fraction": frac, "sigma": [frac * s for s in foreground_std(case)],
                "offset": [min(0.0, float(x.min())) for x in case.image], "noise_seed": draw_seed(rng)}

    def apply(self, case: Case, params: dict[str, Any]) -> Case:
        out = np.empty_like(case.image)
        offsets = params.get("offset", [0.0] * len(params["sigma"]))  # records before the offset: 0
        for c, (sigma, m) in enumerate(zip(params["sigma"], offsets)):
            t = monai_transforms().RandRicianNoise(prob=1.0, mean=0.0, std=float(sigma), relative=False,
                                channel_wise=False, sample_std=False)
            t.set_random_state(seed=(int(params["noise_seed"]) + c) % 2**32)
            magnitude = np.ascontiguousarray(case.image[c:c + 1] - np.float32(m))
            out[c] = np.asarray(t(magnitude))[0] + np.float32(m)
        return case.with_(image=out)


@register
class PoissonNoise(Perturbation):
    """Shot noise: intensities above the image minimum are treated as photon counts at a reduced
    count level so that the noise std at the foreground mean is ``sigma_fraction`` x foreground std
    (the whole image's mean and std when the foreground lies at the image minimum, e.g. a black
    lesion, where counts calibrated on it would round every voxel to 0).

    ``x' = m + g * Poisson((x - m) / g)`` with ``m`` the image minimum and ``g`` the gain
    (intensity per count), ``g = (sigma_fraction * std_fg)^2 / (mean_fg - m)``.
    Params: ``gain`` (per channel), ``offset`` (per channel), ``sigma_fraction``, ``noise_seed``.
    """

    name = "poisson_noise"
    options_doc = {}
    parameter_doc = ("Poisson counts scaled so the noise std at the foreground mean = "
                     "{0.3, 0.5, 0.75, 1.05, 1.5} x foreground std")

    def draw(self, case: Case, severity: int, rng: np.random.Generator) -> dict[str, Any]:
        frac = ladder(SIGMA_FRACTION, severity)
        gains, offsets = [], []
        for c, (std, mean) in enumerate(zip(foreground_std(case), foreground_mean(case))):
            m, whole_mean = float(case.image[c].min()), float(case.image[c].mean())
            if mean - m < 0.01 * (whole_mean - m):  # a foreground at the minimum (an anechoic lesion) would
                std, mean = float(case.image[c].std()) or 1.0, whole_mean  # give ~0 counts everywhere
            level = max(mean - m, 1e-6 * max(abs(mean), 1.0))
            gains.append((frac * std) ** 2 / level)
            offsets.append(m)
        return {"sigma_fraction": frac, "gain": gains, "offset": offsets, "noise_seed": draw_seed(rng)}

    def apply(self, case: Case, params: dict[str, Any]) -> Case:
        gen = np.random.default_rng(int(params["noise_seed"]))
        out = np.empty_like(case.image)
        for c, (gain, m) in enumerate(zip(params["gain"], params["offset"])):
            counts = np.clip((case.image[c].astype(np.float64) - m) / gain, 0, None)
            out[c] = (m + gain * gen.poisson(counts)).astype(np.float32)
        return case.with_(image=out)
