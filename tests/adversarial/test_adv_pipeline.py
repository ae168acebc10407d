"""White-box attacks through models that resample and run sliding windows, in 2D and 3D: the
differentiable rebuild of the pipeline must agree with ``predict``."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.datasets.phantom import phantom_dataset
from harness.models import build_model, reference_card_path
from harness.models import preprocessing as pp
from harness.models.card import parse_card
from harness.perturbations import get
from harness.perturbations.adversarial._torch import LogitFn, attack_device
from harness.perturbations.adversarial.blackbox import hard_dice
from tests.adversarial import fakes

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def reference_with(**inp):
    path = reference_card_path(2)
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    data["input"] = {**data["input"], **inp}
    return build_model(parse_card(data, source=None, base_dir=path.parent, default_name="ref-sw"))


def tiny_3d(batch_size=4, **inp):
    data = {"model": {"format": "torch", "entry": "harness.train.unet:build_unet", "name": "tiny3d",
                      "batch_size": batch_size,
                      "kwargs": {"spatial_dims": 3, "in_channels": 1, "out_channels": 3, "features": [4, 8]}},
            "input": {"channels": 1, "normalize": "zscore", "pad_multiple": 2, **inp},
            "output": {"kind": "logits", "labels": {1: "organ", 2: "lesion"}}}
    with torch.random.fork_rng():  # random weights, but the same ones every run
        torch.manual_seed(0)
        return build_model(parse_card(data, source=None, base_dir=Path("."), default_name="tiny3d"), ndim_hint=3)


def case_3d():
    ds = phantom_dataset(3)
    case = ds.load(ds.case_ids[0])
    return case.with_(image=case.image[:, 8:24, 16:48, 16:48].copy(), label=case.label[8:24, 16:48, 16:48].copy())


def _canvas(model, case, spacing):
    """(canvas, image shape) of the prepared image, as the model pads it."""
    x, _, info = model._prepare(case.image, tuple(spacing or case.spacing))
    return x.shape[1:], tuple(c.stop - c.start for c in info["crop"])


def agree_with_predict(model, case):
    fn = LogitFn(model, case.spacing)
    assert fn.pipeline
    x = torch.from_numpy(case.image[None]).requires_grad_(True)
    logits = fn(x)
    (grad,) = torch.autograd.grad(logits[:, 1].mean(), x)
    probs = torch.softmax(logits.detach(), dim=1)[0].numpy()
    pred = model.predict(case.image, case.spacing)
    assert np.abs(probs - pred.probabilities).max() < 1e-4
    assert float(grad.abs().sum()) > 0


def test_sliding_window_and_resampling_2d_match_predict_and_can_be_attacked():
    model = reference_with(patch_size=[64, 64], spacing=[1.0, 1.0])  # 96 px @ 0.8 mm -> 77 px, 4 windows
    case = fakes.crop(fakes.phantom(0), 96)
    agree_with_predict(model, case)
    fam = get("fgsm")
    fam.bind_model(model)
    out, params = fam(case, 5, np.random.default_rng(0))
    classes = [1, 2]
    clean = hard_dice(model.predict(case.image, case.spacing).labels, case.label, classes)
    attacked = hard_dice(model.predict(out.image, out.spacing).labels, case.label, classes)
    assert attacked < clean - 0.02
    assert params["forward_passes"] == 1


def test_3d_sliding_window_attack():
    # 4 windows, one per chunk: gradient-checkpointed chunks (blending is tested in 2D)
    model = tiny_3d(batch_size=1, patch_size=[16, 16, 16], overlap=0.0)
    case = case_3d()
    agree_with_predict(model, case)
    assert attack_device(model) == torch.device("cpu")  # no GPU here; a CUDA card would move it
    fam = get("pgd_linf", steps=2)
    fam.bind_model(model)
    out, params = fam(case, 5, np.random.default_rng(0))
    assert out.image.shape == case.image.shape
    assert np.abs(out.image.astype(np.float64) - case.image).max() <= params["eps"][0]
    np.testing.assert_array_equal(fam.apply(case, params).image, out.image)


def test_3d_whole_volume_model_uses_torch_logits():
    model = tiny_3d()
    case = case_3d()
    assert not LogitFn(model, case.spacing).pipeline
    fam = get("segpgd", steps=1)
    fam.bind_model(model)
    _, params = fam(case, 3, np.random.default_rng(0))
    assert params["grad_steps"] == 1 and params["achieved_linf_fraction"] <= params["eps_fraction"] + 1e-6


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_attack_runs_on_the_gpu_when_the_model_does():  # pragma: no cover - no GPU in CI
    path = reference_card_path(2)
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    data["model"] = {**data["model"], "device": "cuda"}
    model = build_model(parse_card(data, source=None, base_dir=path.parent, default_name="ref-cuda"))
    assert attack_device(model).type == "cuda"
    fam = get("pgd_linf", steps=2)
    fam.bind_model(model)
    case = fakes.small_case()
    out, params = fam(case, 4, np.random.default_rng(0))
    assert np.abs(out.image.astype(np.float64) - case.image).max() <= params["eps"][0]


@pytest.mark.parametrize("build, size, spacing", [
    (lambda: reference_with(tta_flip_axes=[0, 1]), 61, None),  # odd size: uneven padding along both flipped axes
    (lambda: reference_with(tta_flip_axes=[1], spacing=[1.1, 1.3]), 58, None),  # the card resamples
    (lambda: reference_with(tta_flip_axes=[0], patch_size=[48, 48]), 61, None),  # sliding windows
    (lambda: tiny_3d(tta_flip_axes=[0, 2], patch_size=[8, 16, 16]), None, (2.0, 1.0, 1.0)),
    (lambda: reference_with(tta_flip_axes=[1], tta_shifts=True), 61, None),  # placements in the padding
    (lambda: reference_with(tta_shifts=True, spacing=[1.1, 1.3]), 58, None),
    (lambda: tiny_3d(tta_shifts=True, pad_multiple=4, patch_size=[8, 16, 16]), None, (2.0, 1.0, 1.0)),
])
def test_test_time_flips_mirror_the_prepared_image_as_predict_does(build, size, spacing):
    """predict mirrors the normalised, resampled, padded image and averages probabilities on that
    grid; the attack's function must be the same when padding is uneven or the card resamples (it
    once mirrored the raw image: up to 0.4 apart, other argmax voxels)."""
    model = build()
    if size is None:  # 3D: 16 x 32 x 31 voxels
        case = case_3d()
        case = case.with_(image=case.image[..., :-1].copy(), label=case.label[..., :-1].copy())
    else:
        case = fakes.crop(fakes.phantom(1), size)
    fn = LogitFn(model, spacing or case.spacing)
    x = torch.from_numpy(case.image[None]).requires_grad_(True)
    logits = fn(x)
    (grad,) = torch.autograd.grad(logits[:, 1].mean(), x)
    probs = torch.softmax(logits.detach(), dim=1)[0].numpy()
    expected = model.predict(case.image, spacing or case.spacing).probabilities
    assert np.abs(probs - expected).max() < 1e-4
    placements = len(pp.placements(*_canvas(model, case, spacing))) if fn.shifts else 1
    assert placements > 1 or not fn.shifts  # the case has padding to move the image in
    assert float(grad.abs().sum()) > 0 and fn.calls == len(fn.flips) * placements


def test_test_time_flips_average_probability_outputs_as_predict_does():
    """``kind = "probabilities"`` from independent sigmoids (not summing to 1): predict averages the
    mirrored copies' values as they are; the attack once renormalised each copy first (a softmax of
    their log), so its argmax could differ from predict's."""
    data = {"model": {"format": "torch", "entry": "tests.adversarial.fakes:sigmoid_net", "name": "sigmoids"},
            "input": {"channels": 1, "normalize": "zscore", "pad_multiple": 8, "tta_flip_axes": [0, 1]},
            "output": {"kind": "probabilities", "labels": {1: "a", 2: "b"}}}
    model = build_model(parse_card(data, source=None, base_dir=Path("."), default_name="sigmoids"))
    case = fakes.crop(fakes.phantom(1), 37)
    with torch.no_grad():
        attacked = LogitFn(model, case.spacing)(torch.from_numpy(case.image[None]))[0].exp().numpy()
    expected = model.predict(case.image, case.spacing).probabilities
    assert np.abs(expected.sum(0) - 1).max() > 0.1  # the outputs really are not a distribution
    np.testing.assert_allclose(attacked, expected, atol=1e-5)


def test_the_attack_differentiates_the_model_with_its_test_time_flips():
    """A card's tta_flip_axes: the attack's probabilities are predict's (mean over mirrored copies)."""
    model = reference_with(tta_flip_axes=[0, 1])
    case = fakes.small_case()
    fn = LogitFn(model, case.spacing)
    with torch.no_grad():
        attacked = torch.softmax(fn(torch.from_numpy(case.image[None])), 1)[0].numpy()
    np.testing.assert_allclose(attacked, model.predict(case.image, case.spacing).probabilities, atol=1e-5)
    assert fn.calls == 4  # one forward per flip combination
    family = get("pgd_linf", steps=3)
    family.bind_model(model)
    out, params = family(case, 3, np.random.default_rng(0))
    assert params["attack_dice"] == pytest.approx(hard_dice(model.predict(out.image, case.spacing).labels,
                                                            case.label, [1, 2]))
