"""Families for another modality: skipped with one note per modality group, or refused (exit 3)."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.runner import resolve_families
from harness.suite import load_suite


def _suite(folder: Path, on_inapplicable: str | None) -> Path:
    path = folder / "mixed.toml"
    option = f'on_inapplicable = "{on_inapplicable}"\n' if on_inapplicable else ""
    families = ("gaussian_noise", "speckle", "acoustic_shadow", "ct_dose")
    blocks = "".join(f'\n[[perturbations]]\nfamily = "{f}"\nseverities = [1]\n' for f in families)
    path.write_text(f'[suite]\nname = "mixed"\ndata = "phantom2d:n=2"\nmetrics = ["dice"]\n{option}{blocks}')
    return path


def test_skip_keeps_the_applicable_families_and_notes_each_group_once(tmp_path):
    families, notes = resolve_families(load_suite(_suite(tmp_path, "skip")), "mri")
    assert list(families) == ["gaussian_noise"]
    assert sorted(notes) == ["1 perturbation(s) for ct images skipped on 'mri' data: ct_dose",
                             "2 perturbation(s) for us images skipped on 'mri' data: speckle, acoustic_shadow"]


def test_ultrasound_data_keeps_its_families_and_skips_ct(tmp_path):
    families, notes = resolve_families(load_suite(_suite(tmp_path, "skip")), "us")
    assert list(families) == ["gaussian_noise", "speckle", "acoustic_shadow"]
    assert notes == ["1 perturbation(s) for ct images skipped on 'us' data: ct_dose"]


def test_default_refuses_with_every_problem_and_the_fix(tmp_path):
    with pytest.raises(ConfigError) as info:
        resolve_families(load_suite(_suite(tmp_path, None)), "mri")
    text = str(info.value) + " ".join(getattr(info.value, "problems", []))
    for label in ("speckle", "acoustic_shadow", "ct_dose"):
        assert label in text
    assert "on_inapplicable" in text
