"""Every attack: ε-ball and valid range, ε = 0, determinism and replay, RNG hygiene, gradient
masking check, black-box on models without gradients."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from harness.errors import ModelError
from harness.models import load_model
from harness.perturbations import get
from harness.perturbations.adversarial.blackbox import hard_dice
from tests.adversarial import fakes

FAST = {"fgsm": {}, "pgd_linf": {"steps": 2}, "pgd_l2": {"steps": 2}, "segpgd": {"steps": 2},
        "cospgd": {"steps": 2}, "erase": {"steps": 2}, "square_attack": {"queries": 4}, "random_linf": {}}


def attack(name, model, case, severity=4, seed=0, **options):
    fam = get(name, **{**FAST[name], **options})
    fam.bind_model(model)
    return fam, *fam(case, severity, np.random.default_rng(seed))


def check_ball(case, out, params):
    delta = out.image.astype(np.float64) - case.image
    eps = params["eps"][0]
    assert out.image.dtype == np.float32 and out.image.shape == case.image.shape
    np.testing.assert_array_equal(out.label, case.label)
    if params["norm"] == "linf" or params["threat"] == "blackbox":
        assert np.abs(delta).max() <= eps  # exact: no float32 overshoot
        assert params["achieved_linf"][0] == pytest.approx(np.abs(delta).max())
    else:  # L2 ball of RMS eps
        assert np.sqrt((delta ** 2).mean()) <= eps * (1 + 1e-5)
        assert params["achieved_rms_fraction"] <= params["eps_fraction"] * (1 + 1e-5)
    lo, hi = params["clip"][0]
    assert out.image.min() >= np.float32(lo) and out.image.max() <= np.float32(hi)
    assert np.abs(delta).max() > 0  # the attack did move the image
    json.dumps(params)  # stored per record as JSON


@pytest.mark.parametrize("name", sorted(FAST))
def test_stays_in_the_eps_ball_and_the_valid_range(name):
    case = fakes.threshold_case()
    _, out, params = attack(name, fakes.ThresholdModel(), case, severity=5)
    check_ball(case, out, params)


def test_stays_in_the_eps_ball_on_the_reference_model(reference):
    case = fakes.small_case()
    _, out, params = attack("pgd_linf", reference, case, severity=5)
    check_ball(case, out, params)
    assert params["attack_dice"] < 0.9  # and it hurts (clean Dice of this crop ~0.94)


def test_explicit_clip_range_is_respected_and_never_worsened():
    case = fakes.threshold_case()
    lo, hi = 0.2, 0.8
    _, out, params = attack("pgd_linf", fakes.ThresholdModel(), case, severity=5, clip=[lo, hi])
    assert params["clip"] == [[lo, hi]]
    x, y = case.image, out.image
    inside = (x >= np.float32(lo)) & (x <= np.float32(hi))
    assert y[inside].min() >= np.float32(lo) and y[inside].max() <= np.float32(hi)
    # voxels the clean image already has out of range never move further out
    assert np.all(y[x > hi] <= x[x > hi]) and np.all(y[x < lo] >= x[x < lo])


@pytest.mark.parametrize("name", sorted(FAST))
def test_eps_zero_leaves_the_image_and_prediction_unchanged(name, reference):
    case = fakes.small_case()
    _, out, params = attack(name, reference, case, severity=2, eps_fractions=[0, 0, 0, 0, 0])
    np.testing.assert_array_equal(out.image, case.image)
    assert params["achieved_linf"] == [0.0] and params.get("grad_steps", 0) == 0 and params.get("queries", 0) == 0
    if name == "pgd_linf":  # one model check suffices: identical arrays give identical predictions
        np.testing.assert_array_equal(reference.predict(out.image, out.spacing).labels,
                                      reference.predict(case.image, case.spacing).labels)


@pytest.mark.parametrize("name, real", [("pgd_l2", True), ("segpgd", False), ("cospgd", False),
                                        ("square_attack", False), ("random_linf", False)])
def test_deterministic_replayable_and_leaves_global_rng_alone(name, real, reference):
    case = fakes.small_case() if real else fakes.threshold_case()
    model = reference if real else fakes.ThresholdModel()
    # small steps: with steps of eps, a linear model's PGD lands on the same corner from any start
    options = {"step_size": 0.25} if name in ("segpgd", "cospgd") else {}
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()
    fam, first, params = attack(name, model, case, severity=4, seed=7, **options)
    _, second, params2 = attack(name, model, case, severity=4, seed=7, **options)
    np.testing.assert_array_equal(first.image, second.image)
    assert params == params2
    np.testing.assert_array_equal(fam.apply(case, params).image, first.image)  # replay from the record
    _, other, _ = attack(name, model, case, severity=4, seed=8, **options)
    assert not np.array_equal(other.image, first.image)
    assert torch.equal(torch_state, torch.get_rng_state())
    assert all(np.array_equal(a, b) for a, b in zip(np_state, np.random.get_state()))


def test_pgd_is_optimal_on_a_threshold_model_and_masking_is_not_flagged():
    model, case = fakes.ThresholdModel(), fakes.threshold_case()
    _, out, params = attack("pgd_linf", model, case, severity=5, steps=6, step_size=0.5, check_masking=True,
                            masking_queries=20)
    eps = params["eps"][0]
    x = case.image[0]
    reachable = np.abs(x - fakes.LEVEL) < eps * 0.999  # voxels an L∞ attack can flip
    flipped = (out.image[0] > fakes.LEVEL) != (x > fakes.LEVEL)
    assert flipped[reachable].mean() > 0.99
    assert params["gradient_masking_suspected"] is False
    assert params["masking_blackbox_dice"] >= params["masking_whitebox_dice"]
    assert params["zero_grad_fraction"] < 0.5


def test_masked_gradients_are_flagged():
    model, case = fakes.MaskedModel(), fakes.threshold_case()
    _, out, params = attack("pgd_linf", model, case, severity=5, steps=3, random_start=False, check_masking=True,
                            masking_queries=20)
    assert params["zero_grad_fraction"] == 1.0
    np.testing.assert_array_equal(out.image, case.image)  # zero gradient: PGD never moves
    assert params["masking_whitebox_dice"] == 1.0 and params["masking_blackbox_dice"] < 0.98
    assert params["gradient_masking_suspected"] is True


def test_whitebox_families_fall_back_to_the_blackbox_attack_without_gradients():
    model, case = fakes.LabelsOnlyModel(), fakes.threshold_case()
    _, out, params = attack("segpgd", model, case, severity=5, queries=15)
    assert params["threat"] == "blackbox" and "square_attack" in params["fallback"]
    assert params["queries"] == 15 and model.calls == 15
    assert np.abs(out.image.astype(np.float64) - case.image).max() <= params["eps"][0]
    assert params["attack_dice"] < 1.0  # decision-based (labels only) progress
    with pytest.raises(ModelError, match="no gradients"):
        attack("segpgd", model, case, severity=5, nondifferentiable="error")


def test_blackbox_attacks_a_callable_adapter_within_its_query_budget(tmp_path):
    card = fakes.write_card(tmp_path, '[model]\nformat = "callable"\nentry = "tests.adversarial.fakes:threshold_scores"\n'
                                      '[output]\nkind = "logits"\nlabels = {1 = "fg"}\n')
    model = load_model(card)
    case = fakes.threshold_case()
    _, out, params = attack("square_attack", model, case, severity=5, queries=12)
    assert params["queries"] == 12 and params["threat"] == "blackbox"
    after = hard_dice(model.predict(out.image, out.spacing).labels, case.label, [1])
    assert after == pytest.approx(params["attack_dice"]) and after < 1.0


def test_erase_keeps_the_iterate_with_the_least_foreground_even_on_an_empty_reference():
    """Its best iterate once followed the untargeted criterion: on an empty reference, the most foreground."""
    model, case = fakes.ThresholdModel(), fakes.threshold_case()
    case = case.with_(label=np.zeros_like(case.label))
    clean = (model.predict(case.image, case.spacing).labels > 0).mean()
    family = get("erase", steps=6)
    family.bind_model(model)
    out, params = family(case, 3, np.random.default_rng(0))
    attacked = (model.predict(out.image, case.spacing).labels > 0).mean()
    assert attacked < clean and params["attack_foreground_fraction"] == pytest.approx(attacked)
    assert "attack_dice" not in params


def test_the_untargeted_masking_check_is_skipped_for_the_targeted_erase():
    model, case = fakes.MaskedModel(), fakes.threshold_case()
    _, _, params = attack("erase", model, case, severity=5, steps=3, random_start=False, check_masking=True,
                          masking_queries=20)
    assert params["check_masking"] is True and "gradient_masking_suspected" not in params
    _, _, pgd = attack("pgd_linf", model, case, severity=5, steps=3, random_start=False, check_masking=True,
                       masking_queries=20)
    assert pgd["gradient_masking_suspected"] is True  # the same model, untargeted: checked and flagged
