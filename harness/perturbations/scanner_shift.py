"""Scanner / site shift: another site's voxel grid, intensity histogram and vendor style.

All three keep the original grid, shape, spacing and label. Draws are coupled across severities
(grid offset, transfer-curve shape, vendor profile and noise pattern drawn once).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage as ndi

from harness.case import Case
from harness.errors import ConfigError
from harness.perturbations import register
from harness.perturbations._resample import down_up
from harness.perturbations._util import draw_seed, foreground_std, ladder
from harness.perturbations.base import Perturbation

SPACING_FACTOR = (1.3, 1.6, 2.0, 2.5, 3.2)
CURVE_SLOPE = (0.25, 0.4, 0.55, 0.7, 0.85)
STYLE_SCALE = (0.25, 0.4, 0.6, 0.8, 1.0)

# Vendor profiles at full strength (severity 5): log-gamma of the contrast curve, Gaussian blur
# sigma (voxels, finest spacing), unsharp-mask amount (sigma 1 voxel), noise (x foreground std).
PROFILES: dict[str, dict[str, float]] = {
    "smooth": {"log_gamma": 0.35, "blur": 2.0, "sharpen": 0.0, "noise": 0.4},
    "sharp": {"log_gamma": -0.25, "blur": 0.0, "sharpen": 2.5, "noise": 0.8},
    "contrast": {"log_gamma": 0.9, "blur": 0.6, "sharpen": 0.0, "noise": 0.4},
}


@register
class ResampleSpacing(Perturbation):
    """Another site's reconstruction grid: resampled (trilinear, no anti-aliasing, as most
    pipelines do) to ``factor x spacing`` on a grid shifted by a random sub-voxel offset, then
    back to the **original grid** (shape and spacing unchanged).

    Params: ``factor``, ``site_spacing`` (mm), ``offset`` (fraction of a site voxel, per axis).
    """

    name = "resample_spacing"
    options_doc = {}
    parameter_doc = ("site voxel spacing x{1.3, 1.6, 2, 2.5, 3.2} (random sub-voxel grid offset), "
                     "linear interpolation both ways")

    def draw(self, case: Case, severity: int, rng: np.random.Generator) -> dict[str, Any]:
        offset = rng.uniform(0.0, 1.0, case.ndim).tolist()
        f = ladder(SPACING_FACTOR, severity)
        return {"factor": f, "site_spacing": [s * f for s in case.spacing], "offset": offset}

    def apply(self, case: Case, params: dict[str, Any]) -> Case:
        factors = [params["factor"]] * case.ndim
        out = np.stack([down_up(x, factors, params["offset"], antialias=False, order_down=1, order_up=1)
                        for x in case.image]).astype(np.float32)
        return case.with_(image=out)


def transfer_curve(q: np.ndarray, coefficients: list[float], slope: float) -> np.ndarray:
    """Monotone curve on [0, 1]: ``q + s * sum_j c_j sin(j pi q) / (j pi) / m`` with ``m`` the
    largest ``|sum_j c_j cos(j pi q)|``, so its derivative stays within ``[1 - s, 1 + s]``."""
    j = np.arange(1, len(coefficients) + 1)
    c = np.asarray(coefficients)
    grid = np.linspace(0, 1, 1025)
    m = float(np.abs(np.cos(np.pi * np.outer(grid, j)) @ c).max()) or 1.0
    bump = np.sin(np.pi * np.multiply.outer(q, j)) / (np.pi * j) @ c
    return q + slope * bump / m


@register
class HistogramShift(Perturbation):
    """Intensities remapped through another site's monotone transfer curve (a MONAI
    ``RandHistogramShift``-like smooth curve with controlled slope) on the min-max normalised
    intensities: the end points stay fixed, local contrast changes by a factor within
    ``[1 - s, 1 + s]``.

    Params: ``slope`` s, ``coefficients`` (3 Fourier-sine weights, sum |c| = 1).
    """

    name = "histogram_shift"
    options_doc = {}
    parameter_doc = "monotone transfer curve, local contrast factor within 1 +- {0.25, 0.4, 0.55, 0.7, 0.85}"

    def draw(self, case: Case, severity: int, rng: np.random.Generator) -> dict[str, Any]:
        w = rng.dirichlet(np.ones(3)) * np.where(rng.random(3) < 0.5, -1.0, 1.0)
        return {"slope": ladder(CURVE_SLOPE, severity), "coefficients": w.tolist()}

    def apply(self, case: Case, params: dict[str, Any]) -> Case:
        out = np.empty_like(case.image)
        for c, x in enumerate(case.image.astype(np.float64)):
            lo, hi = float(x.min()), float(x.max())
            span = hi - lo or 1.0
            q = transfer_curve((x - lo) / span, params["coefficients"], params["slope"])
            out[c] = lo + span * q
        return case.with_(image=out)


@register
class VendorStyle(Perturbation):
    """A vendor's look: contrast curve (gamma on min-max normalised intensities) + blur or edge
    enhancement (unsharp mask) + noise, all scaled together by severity from a profile.

    Profiles (at severity 5): ``smooth`` (gamma e^0.35, blur 2 vox, noise 0.4 std), ``sharp``
    (gamma e^-0.25, unsharp 2.5, noise 0.8 std), ``contrast`` (gamma e^0.9, blur 0.6 vox,
    noise 0.4 std). The result is clipped to the clean channel's [min, max]. Params: ``profile``, ``scale``, ``gamma``, ``blur_mm``, ``sharpen``,
    ``noise_sigma`` (per channel), ``noise_seed``. Options: ``profile`` (default: drawn).
    """

    name = "vendor_style"
    options_doc = {"profile": "smooth | sharp | contrast (default: drawn per call)"}
    choices = {"profile": tuple(sorted(PROFILES))}
    parameter_doc = ("profile (smooth | sharp | contrast) scaled by {0.25, 0.4, 0.6, 0.8, 1.0}: gamma, "
                     "blur/unsharp and noise together")

    def draw(self, case: Case, severity: int, rng: np.random.Generator) -> dict[str, Any]:
        names = sorted(PROFILES)
        drawn = names[int(rng.integers(len(names)))]
        profile = self.options.get("profile", drawn)
        if profile not in PROFILES:
            raise ConfigError(f"vendor_style: unknown profile {profile!r}; choose from {', '.join(names)}")
        p, s = PROFILES[profile], ladder(STYLE_SCALE, severity)
        return {"profile": profile, "scale": s, "gamma": float(np.exp(s * p["log_gamma"])),
                "blur_mm": s * p["blur"] * min(case.spacing), "sharpen": s * p["sharpen"],
                "noise_sigma": [s * p["noise"] * v for v in foreground_std(case)],
                "noise_seed": draw_seed(rng)}

    def apply(self, case: Case, params: dict[str, Any]) -> Case:
        gen = np.random.default_rng(int(params["noise_seed"]))
        unit_blur = [min(case.spacing) / s for s in case.spacing]
        out = np.empty_like(case.image)
        for c, x in enumerate(case.image.astype(np.float64)):
            lo, hi = float(x.min()), float(x.max())
            span = hi - lo or 1.0
            y = lo + span * ((x - lo) / span) ** params["gamma"]
            if params["blur_mm"] > 0:
                y = ndi.gaussian_filter(y, [params["blur_mm"] / s for s in case.spacing], mode="nearest")
            if params["sharpen"] > 0:
                y = y + params["sharpen"] * (y - ndi.gaussian_filter(y, unit_blur, mode="nearest"))
            # a scanner delivers values within its range: sharpening and noise stay within the clean
            # channel's [min, max] (8-bit ultrasound cannot hold -116 or 385)
            out[c] = np.clip(y + params["noise_sigma"][c] * gen.standard_normal(x.shape), lo, hi)
        return case.with_(image=out)
