"""Registry, metadata and modality filtering of the bundled families."""
from __future__ import annotations

import re

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


def test_plugin_reference_string() -> None:
    fam = perturbations.get("harness.perturbations.blur:Blur")
    assert fam.name == "blur"


@pytest.mark.parametrize("name", ["contrast", "gamma", "brightness", "hu_offset", "gain", "window_shift"])
def test_direction_option(name: str) -> None:
    case = cases.small(cases.FAMILIES[name], 2)
    for direction, sign in (("up", 1), ("down", -1)):
        fam = perturbations.get(name, direction=direction)
        signs = {fam(case, 3, seed)[1].get("sign", sign) for seed in range(6)}
        params = fam(case, 3, 0)[1]
        assert signs == {sign}
        for key in ("offset_hu", "gain_db"):
            if key in params:
                assert params[key] * sign > 0
