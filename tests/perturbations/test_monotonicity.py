"""Severity ladders are strictly monotone: PSNR and SSIM to the clean image strictly fall from
severity 1 to 5, for every family, on phantoms (2D, 3D; HU-scaled for CT) and on one real case
per modality (busbra ultrasound PNG, hippocampus MRI NIfTI; skipped when ../shared/data is absent).

Stochastic families are checked draw by draw: with the same seed at every severity (coupled
draws) the ladder must hold for each seed, which is stronger than holding on average. The fast
test uses one seed; the ``slow`` one repeats it for two more seeds.

(With the runner's seeds, a different one per severity, the random structure -- affine
direction, bias-field shape, metal position, intensity direction -- is re-drawn at every
severity, so one case's curve is monotone only in expectation over draws.)
"""
from __future__ import annotations

import numpy as np
import pytest

from harness import perturbations
from tests.perturbations import cases


def _params(stochastic_only: bool = False) -> list:
    out = []
    for family, tag in cases.FAMILIES.items():
        if stochastic_only and family in cases.DETERMINISTIC:
            continue
        for key in cases.CASES_FOR[tag]:
            marks = [pytest.mark.realdata] if key in cases.REAL else []
            out.append(pytest.param(family, key, id=f"{family}-{key}", marks=marks))
    return out


def _load(key: str):
    case = cases.load(key)
    if case is None:
        pytest.skip("../shared/data is absent")
    return case


def _check(family: str, key: str, psnr: list[float], ssim: list[float], what: str) -> None:
    assert np.all(np.diff(psnr) < 0), f"{family} on {key}, {what}: PSNR {np.round(psnr, 2)}"
    assert np.all(np.diff(ssim) < 0), f"{family} on {key}, {what}: SSIM {np.round(ssim, 4)}"
    assert psnr[0] < 60 and ssim[0] < 0.9999, f"{family} on {key}: severity 1 changes nothing"


@pytest.mark.parametrize(("family", "key"), _params())
def test_distortion_strictly_increases(family: str, key: str) -> None:
    case = _load(key)
    fam = perturbations.get(family)
    psnr, ssim = zip(*(cases.distortion(case, fam(case, s, 0)[0]) for s in range(1, 6)))
    _check(family, key, list(psnr), list(ssim), "seed 0")


@pytest.mark.slow
@pytest.mark.parametrize(("family", "key"), _params(stochastic_only=True))
def test_distortion_strictly_increases_more_seeds(family: str, key: str) -> None:
    case = _load(key)
    fam = perturbations.get(family)
    for seed in (1, 2):
        psnr, ssim = zip(*(cases.distortion(case, fam(case, s, seed)[0]) for s in range(1, 6)))
        _check(family, key, list(psnr), list(ssim), f"seed {seed}")
