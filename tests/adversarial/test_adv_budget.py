"""Budgets in physical units, options validation, registration, params (no model calls)."""
from __future__ import annotations

import json
from itertools import pairwise

import numpy as np
import pytest

from harness.errors import ConfigError
from harness.perturbations import available, get
from harness.perturbations._util import foreground_std, robust_range
from harness.perturbations.adversarial import BLACKBOX, EPS_LADDER, WHITEBOX
from harness.perturbations.adversarial.budget import inside_linf, intensity_bounds, perturbation_report
from tests.adversarial.fakes import small_case

FAMILIES = (*WHITEBOX, *BLACKBOX, "random_linf")


def test_families_are_registered_model_bound_and_generic():
    families = available()
    for name in FAMILIES:
        cls = families[name]
        assert cls.requires_model and cls.modalities == frozenset({"any"}) and not cls.geometric
        assert cls.parameter_doc


@pytest.mark.parametrize("unit", sorted(EPS_LADDER))
def test_ladders_are_five_increasing_budgets(unit):
    ladder = EPS_LADDER[unit]
    assert len(ladder) == 5 and all(0 < a < b for a, b in pairwise(ladder))
    assert EPS_LADDER["range"][2] == pytest.approx(8 / 255)  # severity 3 = ROG's budget


def test_draw_records_eps_in_physical_units_and_is_json():
    case = small_case()
    fam = get("pgd_linf", steps=3)
    params = fam.draw(case, 3, np.random.default_rng(0))
    assert params["eps_fraction"] == EPS_LADDER["fg_std"][2]
    assert params["eps"] == pytest.approx([params["eps_fraction"] * s for s in foreground_std(case)])
    assert params["clip"] == [[float(case.image.min()), float(case.image.max())]]
    assert (params["steps"], params["restarts"], params["random_start"]) == (3, 1, True)
    assert json.loads(json.dumps(params)) == params  # plain JSON, no default= needed
    assert params == fam.draw(case, 3, np.random.default_rng(0))


def test_range_unit_and_overrides():
    case = small_case()
    fam = get("fgsm", eps_unit="range", clip=[0.0, 2.0])
    params = fam.draw(case, 3, np.random.default_rng(0))
    lo, hi = robust_range(case)[0]
    assert params["eps"] == pytest.approx([8 / 255 * (hi - lo)])
    assert params["clip"] == [[0.0, 2.0]]
    fam = get("square_attack", eps_fractions=[0, 0.1, 0.2, 0.3, 0.3], clip="none", queries=7)
    params = fam.draw(case, 5, np.random.default_rng(0))
    assert params["eps_fraction"] == 0.3 and params["clip"] is None and params["queries_budget"] == 7


@pytest.mark.parametrize("family, options, needle", [
    ("pgd_linf", {"stepz": 3}, "stepz"),
    ("pgd_linf", {"steps": 0}, "steps must be >= 1"),
    ("pgd_linf", {"steps": 2.5}, "steps must be an integer"),
    ("fgsm", {"steps": 3}, "not an option of fgsm"),
    ("square_attack", {"check_masking": True}, "not an option of square_attack"),
    ("pgd_l2", {"eps_fractions": [0.1, 0.05, 0.2, 0.3, 0.4]}, "non-decreasing"),
    ("pgd_l2", {"eps_fractions": [0.1, 0.2]}, "5 non-decreasing"),
    ("cospgd", {"eps_unit": "hu"}, "eps_unit"),
    ("erase", {"clip": [1, 0]}, "lo < hi"),
    ("segpgd", {"nondifferentiable": "skip"}, "nondifferentiable"),
    ("square_attack", {"p_init": 0}, "p_init"),
    ("pgd_linf", {"eps_fractions": "12345"}, "eps_fractions must be a list of 5 numbers"),
    ("pgd_linf", {"eps_fractions": 0.25}, "eps_fractions must be a list of 5 numbers"),
    ("pgd_linf", {"eps_fractions": [True] * 5}, "eps_fractions must be a list of 5 numbers"),
    ("pgd_linf", {"clip": 5}, 'clip must be "image", "none" or [lo, hi]'),
    ("pgd_linf", {"clip": ["a", 1]}, 'clip must be "image", "none" or [lo, hi]'),
    ("pgd_linf", {"eps_unit": ["fg_std"]}, "eps_unit must be a string"),
    ("pgd_linf", {"masking_tolerance": float("nan")}, "masking_tolerance must be a finite number >= 0"),
])
def test_bad_options_are_config_errors(family, options, needle):
    with pytest.raises(ConfigError) as info:
        get(family, **options)
    assert needle in str(info.value)


def test_unbound_attack_says_what_to_do():
    with pytest.raises(ConfigError, match="bind_model"):
        get("fgsm")(small_case(), 1, 0)


def test_severity_zero_is_identity_without_a_model():
    case = small_case()
    out, params = get("pgd_linf")(case, 0, 0)
    assert out is case and params == {}


def test_inside_linf_moves_rounding_overshoot_back_into_the_ball():
    clean = np.array([[0.1, 0.7, 1.3]], dtype=np.float32)
    eps = [0.1]
    attacked = (clean.astype(np.float64) + 0.1).astype(np.float32)  # float32 rounding may overshoot
    attacked[0, 1] = np.nextafter(np.float32(0.8), np.float32(2))  # one ulp outside for sure
    fixed = inside_linf(clean, attacked, eps)
    assert np.all(np.abs(fixed.astype(np.float64) - clean) <= 0.1)
    assert np.all(np.abs(fixed.astype(np.float64) - attacked) < 1e-6)


def test_bounds_and_report():
    case = small_case()
    assert intensity_bounds(case, "none") is None
    report = perturbation_report(case.image, case.image + np.float32(0.01), [0.1])
    assert report["achieved_linf"] == pytest.approx([0.01], rel=1e-3)
    assert report["achieved_linf_fraction"] == pytest.approx(0.1, rel=1e-3)
    assert report["achieved_rms_fraction"] == pytest.approx(0.1, rel=1e-3)
