"""Ultrasound artefacts: acoustic shadowing and reverberation, in the echo-amplitude domain
(:mod:`harness.perturbations._us`). Geometry is drawn once per draw (coupled); only the artefact
strength follows the ladder, so distortion grows strictly. Depth is the first axis.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from harness.case import Case
from harness.perturbations import register
from harness.perturbations._us import (display_bounds, display_max, dynamic_range, from_amplitude,
                                        to_amplitude)
from harness.perturbations._util import DR_DOC, DR_OPTION, ladder
from harness.perturbations.base import Perturbation

SHADOW_LOSS_DB = (4.0, 8.0, 13.0, 19.0, 26.0)
ECHO_RATIO = (0.12, 0.2, 0.3, 0.42, 0.55)


def _band(coord: np.ndarray, centre: float, half_width: float, edge: float) -> np.ndarray:
    """Smooth top-hat in [0, 1]: 1 within ``half_width`` of ``centre``, raised-cosine edges."""
    dist = np.abs(coord - centre) - half_width
    return np.where(dist <= 0, 1.0, np.where(dist >= edge, 0.0, 0.5 * (1 + np.cos(np.pi * dist / edge))))


def _lateral_mask(shape: tuple[int, ...], centres: list[float], half_widths: list[float]) -> np.ndarray:
    """Product of bands over the lateral axes (normalised coordinates), broadcast over depth."""
    mask = np.ones((1,) * len(shape))
    for i, (c, hw) in enumerate(zip(centres, half_widths), start=1):
        coord = np.linspace(0, 1, shape[i]).reshape([-1 if j == i else 1 for j in range(len(shape))])
        mask = mask * _band(coord, c, hw, 0.35 * hw)
    return mask


@register
class AcousticShadow(Perturbation):
    """A shadow cast below a strongly attenuating/reflecting structure (calcification, bone, gas):
    from an onset depth down, a lateral band loses ``loss_db`` of echo amplitude (soft edges,
    1/3-width raised-cosine fall-off; onset ramps over 3 % of the depth).

    Params: ``loss_db``, ``onset`` (normalised depth), ``centres`` / ``half_widths`` (normalised
    lateral, per lateral axis), ``i_ref``, ``dynamic_range_db``.
    """

    name = "acoustic_shadow"
    numbers = {"dynamic_range_db": DR_OPTION}
    options_doc = {"dynamic_range_db": DR_DOC}
    modalities = frozenset({"us"})
    parameter_doc = ("lateral band (12-25 % wide) below a random depth loses {4, 8, 13, 19, 26} dB "
                     "of echo amplitude")

    def draw(self, case: Case, severity: int, rng: np.random.Generator) -> dict[str, Any]:
        lateral = case.ndim - 1
        return {"onset": float(rng.uniform(0.15, 0.5)),
                "centres": rng.uniform(0.2, 0.8, lateral).tolist(),
                "half_widths": (rng.uniform(0.12, 0.25, lateral) / 2).tolist(),
                "loss_db": ladder(SHADOW_LOSS_DB, severity),
                "i_ref": display_max(case), "dynamic_range_db": dynamic_range(self.options)}

    def apply(self, case: Case, params: dict[str, Any]) -> Case:
        shape = case.spatial_shape
        depth = np.linspace(0, 1, shape[0]).reshape((-1,) + (1,) * (case.ndim - 1))
        onset = np.clip((depth - params["onset"]) / 0.03, 0.0, 1.0)
        weight = onset * _lateral_mask(shape, params["centres"], params["half_widths"])
        gain = 10.0 ** (-params["loss_db"] * weight / 20.0)
        out = np.empty_like(case.image)
        for c, x in enumerate(case.image):
            i_ref, dr = params["i_ref"][c], params["dynamic_range_db"]
            out[c] = from_amplitude(to_amplitude(x, i_ref, dr) * gain, i_ref, dr, display_bounds(x, i_ref))
        return case.with_(image=out)


@register
class Reverberation(Perturbation):
    """Reverberation between the probe and a strong shallow reflector: echoes repeat at multiples
    of the reflector depth ``d0``, echo ``k`` (at ``(k + 1) d0``) with amplitude ``r^k`` times
    the reflector's (the image's 99th amplitude percentile), each a bright band of Gaussian
    profile over the reflector's lateral extent, added incoherently (``sqrt(A^2 + E^2)``).

    Params: ``ratio`` r, ``reflector_depth`` d0 and ``thickness`` (normalised depth),
    ``centres`` / ``half_widths`` (normalised lateral extent), ``i_ref``, ``dynamic_range_db``.
    """

    name = "reverberation"
    numbers = {"dynamic_range_db": DR_OPTION}
    options_doc = {"dynamic_range_db": DR_DOC}
    modalities = frozenset({"us"})
    parameter_doc = "echo k at (k+1) x reflector depth with amplitude r^k, r = {0.12, 0.2, 0.3, 0.42, 0.55}"

    def draw(self, case: Case, severity: int, rng: np.random.Generator) -> dict[str, Any]:
        lateral = case.ndim - 1
        return {"reflector_depth": float(rng.uniform(0.08, 0.2)),
                "thickness": float(rng.uniform(0.006, 0.015)),
                "centres": rng.uniform(0.3, 0.7, lateral).tolist(),
                "half_widths": (rng.uniform(0.3, 0.8, lateral) / 2).tolist(),
                "ratio": ladder(ECHO_RATIO, severity),
                "i_ref": display_max(case), "dynamic_range_db": dynamic_range(self.options)}

    def apply(self, case: Case, params: dict[str, Any]) -> Case:
        shape = case.spatial_shape
        depth = np.linspace(0, 1, shape[0]).reshape((-1,) + (1,) * (case.ndim - 1))
        d0, t, r = params["reflector_depth"], params["thickness"], params["ratio"]
        profile = np.zeros_like(depth)
        k = 1
        while (k + 1) * d0 - 3 * t * (1 + 0.3 * k) <= 1.0:
            width = t * (1 + 0.3 * k)  # later echoes are smeared a little more
            profile = profile + r ** k * np.exp(-0.5 * ((depth - (k + 1) * d0) / width) ** 2)
            k += 1
        echoes = profile * _lateral_mask(shape, params["centres"], params["half_widths"])
        out = np.empty_like(case.image)
        for c, x in enumerate(case.image):
            i_ref, dr = params["i_ref"][c], params["dynamic_range_db"]
            amp = to_amplitude(x, i_ref, dr)
            reflector = float(np.percentile(amp, 99))
            out[c] = from_amplitude(np.sqrt(amp ** 2 + (reflector * echoes) ** 2), i_ref, dr,
                                    display_bounds(x, i_ref))
        return case.with_(image=out)
