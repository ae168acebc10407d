"""Contract of every family: shape/dtype/spacing kept, labels untouched (or moved with the image
for geometric families), determinism, replay from recorded params, no global RNG side effects."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness import perturbations
from harness.case import Case
from tests.perturbations import cases

NAMES = sorted(cases.FAMILIES)
REPO = Path(__file__).resolve().parents[2]


def _case(family: str, ndim: int) -> Case:
    return cases.small(cases.FAMILIES[family], ndim)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("family", NAMES)
def test_contract(family: str, ndim: int) -> None:
    case = _case(family, ndim)
    fam = perturbations.get(family)
    out, params = fam(case, 3, 1234)
    assert out.image.shape == case.image.shape and out.image.dtype == np.float32
    assert np.isfinite(out.image).all()
    assert out.spacing == case.spacing  # every family returns to the original grid
    assert out.case_id == case.case_id and dict(out.metadata) == dict(case.metadata)
    assert out.label.dtype == case.label.dtype and out.label.shape == case.label.shape
    assert not np.array_equal(out.image, case.image)
    if family in cases.GEOMETRIC:
        assert set(np.unique(out.label)) <= set(np.unique(case.label))
    else:
        assert out.label is case.label
    # Determinism and replay: same seed -> bit-identical; params survive a JSON round trip.
    again, params_again = fam(case, 3, 1234)
    assert params_again == params
    assert again.image.tobytes() == out.image.tobytes() and np.array_equal(again.label, out.label)
    replayed = fam.apply(case, json.loads(json.dumps(params)))
    assert replayed.image.tobytes() == out.image.tobytes()
    # A Generator and its seed are interchangeable.
    assert fam(case, 3, np.random.default_rng(1234))[0].image.tobytes() == out.image.tobytes()


@pytest.mark.parametrize("family", NAMES)
def test_multichannel(family: str) -> None:
    case = _case(family, 2)
    two = case.with_(image=np.concatenate([case.image, 0.5 * case.image + 1.0]))
    out, params = perturbations.get(family)(two, 2, 7)
    assert out.image.shape == two.image.shape and np.isfinite(out.image).all()
    json.dumps(params)


@pytest.mark.parametrize("family", NAMES)
def test_stochastic_families_depend_on_seed(family: str) -> None:
    if family in cases.DETERMINISTIC:
        pytest.skip("deterministic family")
    case = _case(family, 2)
    fam = perturbations.get(family)
    a, pa = fam(case, 3, 1)
    b, pb = fam(case, 3, 2)
    # the image itself must change: params alone differ whenever a family records a drawn sub-seed
    assert pa != pb and not np.array_equal(a.image, b.image)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("family", sorted(cases.GEOMETRIC))
def test_geometric_label_stays_aligned(family: str, ndim: int) -> None:
    """Image and label move together: warp an image that *is* the label map and compare."""
    base = cases.phantom(ndim)
    probe = base.with_(image=(100.0 * base.label[None]).astype(np.float32))
    for severity in (1, 3, 5):
        out, _ = perturbations.get(family)(probe, severity, 3)
        assert np.issubdtype(out.label.dtype, np.integer)
        assert not np.array_equal(out.label, base.label), "the label did not move"
        for k in (1, 2):
            img, lab = np.abs(out.image[0] - 100.0 * k) < 50.0, out.label == k
            dice = 2 * (img & lab).sum() / max(img.sum() + lab.sum(), 1)
            assert dice > 0.85, f"{family} severity {severity}: class {k} Dice image/label {dice:.3f}"


def test_no_global_rng_side_effects() -> None:
    """In a fresh interpreter (so lazy imports are covered too): numpy's global RNG, Python's
    random and torch's global RNG are untouched, and torch's thread count is restored. 2D cases
    (the 3D code paths draw and apply the same way)."""
    code = """
import random, numpy as np, torch
random.seed(1); np.random.seed(2); torch.manual_seed(3); torch.set_num_threads(2)
state = (random.getstate(), np.random.get_state()[1].copy(), torch.random.get_rng_state().clone())
from harness import perturbations
from tests.perturbations import cases
for name, tag in sorted(cases.FAMILIES.items()):
    perturbations.get(name)(cases.small(tag, 2), 2, 11)
assert random.getstate() == state[0], "python random"
assert np.array_equal(np.random.get_state()[1], state[1]), "numpy global"
assert torch.equal(torch.random.get_rng_state(), state[2]), "torch global"
assert torch.get_num_threads() == 2, "torch threads"
print("ok")
"""
    result = subprocess.run([sys.executable, "-W", "error", "-c", code], cwd=REPO, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-3000:]


@pytest.mark.parametrize("family", NAMES)
def test_severity_validation(family: str) -> None:
    fam = perturbations.get(family)
    case = _case(family, 2)
    for bad in (-1, 6, 2.0, True):
        with pytest.raises(ValueError):
            fam(case, bad, 0)
