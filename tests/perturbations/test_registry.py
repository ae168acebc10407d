"""Registry, metadata and modality filtering of the bundled families."""
from __future__ import annotations

import re

import numpy as np
import pytest

from harness import perturbations
from harness.errors import ConfigError
from harness.perturbations.base import Perturbation
from tests.perturbations import cases


def test_all_bundled_families_registered() -> None:
    found = perturbations.available()
    missing = sorted(set(cases.FAMILIES) - set(found))
    assert not missing, f"not registered: {missing}"


@pytest.mark.parametrize("name", sorted(cases.FAMILIES))
def test_metadata(name: str) -> None:
    fam = perturbations.get(name)
    assert isinstance(fam, Perturbation) and fam.name == name
    assert re.fullmatch(r"[a-z][a-z0-9_]*", name)
    tag = cases.FAMILIES[name]
    assert fam.modalities == frozenset({tag}), fam.modalities
    assert fam.geometric == (name in cases.GEOMETRIC)
    assert fam.parameter_doc and fam.options_doc is not None
    assert fam.applies_to(tag if tag != "any" else "other")
    for modality in ("mri", "ct", "us", "other"):
        assert fam.applies_to(modality) == (tag in ("any", modality))


def test_unknown_family_and_options() -> None:
    with pytest.raises(ConfigError, match="unknown perturbation"):
        perturbations.get("no_such_family")
    with pytest.raises(ConfigError, match="unknown option"):
        perturbations.get("blur", sigma=3)
    with pytest.raises(ConfigError, match="must be one of"):
        perturbations.get("gamma", direction="sideways")
    with pytest.raises(ConfigError, match="must be one of"):
        perturbations.get("vendor_style", profile="retro")
    with pytest.raises(ConfigError, match="must be one of"):
        perturbations.get("low_resolution", axes="diagonal")


@pytest.mark.parametrize(("name", "options", "fragment"), [
    ("ct_dose", {"reference_noise_hu": "ten"}, "'reference_noise_hu' must be a finite number"),
    ("ct_dose", {"reference_noise_hu": 0}, "'reference_noise_hu' must be > 0"),
    ("window_shift", {"level": [40]}, "'level' must be a finite number"),
    ("spike", {"spikes": 0}, "'spikes' must be ≥ 1"),
    ("spike", {"spikes": 1.7}, "'spikes' must be a whole number"),
    ("spike", {"spikes": True}, "'spikes' must be a whole number"),
    ("spike", {"spikes": 1000000}, "'spikes' must be ≤ 100"),  # compounding spikes gave values ~1e36
    ("window_shift", {"level": 1e308}, "'level' must be ≤ 4000"),  # an all-inf image
    ("window_shift", {"level": -5000}, "'level' must be ≥ -2000"),
    ("speckle", {"grain_px": 3}, "'grain_px' must be a list of 2 numbers"),
    ("speckle", {"grain_px": [1, float("nan")]}, "'grain_px' must be a finite number"),
    ("speckle", {"grain_px": [1, 0]}, "'grain_px' must be > 0"),
    ("acoustic_shadow", {"dynamic_range_db": 0}, "'dynamic_range_db' must be > 0"),
    ("gain", {"dynamic_range_db": "sixty"}, "'dynamic_range_db' must be a finite number"),
    ("motion", {"translation_voxels": -2}, "'translation_voxels' must be ≥ 0"),
])
def test_numeric_options_are_checked_when_the_family_is_built(name: str, options: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=f"perturbation '{name}': option {fragment}") as info:
        perturbations.get(name, **options)
    assert "\n" not in str(info.value)


def test_numeric_options_in_range_are_accepted() -> None:
    for name, options in [("ct_dose", {"reference_noise_hu": 12.5}), ("spike", {"spikes": 3}),
                          ("speckle", {"grain_px": [1, 2.5]}), ("gain", {"dynamic_range_db": 50}),
                          ("motion", {"degrees": 0, "translation_voxels": 3})]:
        assert perturbations.get(name, **options).options == options


def test_plugin_reference_string() -> None:
    fam = perturbations.get("harness.perturbations.blur:Blur")
    assert fam.name == "blur"


# the signed amount each family's ``direction`` acts on (positive = "up"), from its params
DIRECTED = {"contrast": lambda p: np.log(p["factor"]), "gamma": lambda p: np.log(p["gamma"]),
            "brightness": lambda p: p["shift"][0], "hu_offset": lambda p: p["offset_hu"],
            "gain": lambda p: p["gain_db"], "window_shift": lambda p: p["level_hu"] - 40.0}


@pytest.mark.parametrize("name", sorted(DIRECTED))
def test_direction_option(name: str) -> None:
    case = cases.small(cases.FAMILIES[name], 2)
    for direction, sign in (("up", 1), ("down", -1)):
        fam = perturbations.get(name, direction=direction)
        for seed in range(6):
            out, params = fam(case, 3, seed)
            assert DIRECTED[name](params) * sign > 0, (direction, seed, params)
            assert params.get("sign", sign) == sign
            if name in ("brightness", "hu_offset", "gain"):  # the image moves the same way
                assert (out.image.mean() - case.image.mean()) * sign > 0, (direction, seed)
