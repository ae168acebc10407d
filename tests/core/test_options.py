"""The option values spelled once in harness.options are the ones every layer accepts."""
from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest

from harness import compare
from harness.analysis import fairness_cell, stats
from harness.errors import ConfigError
from harness.options import (
    COMPARE_MODES,
    CORRECTIONS,
    FAIRNESS_TESTS,
    SUITE_CHOICES,
    closest,
    did_you_mean,
    must_be_one_of,
)
from harness.suite import parse_suite

SUITE = """
[suite]
name = "t"
metrics = ["dice"]
{extra}
[[perturbations]]
family = "gaussian_noise"
severities = [1]
"""


def test_literal_types_match_the_tuples() -> None:
    assert get_args(stats.Correction) == CORRECTIONS
    assert get_args(fairness_cell.Test) == FAIRNESS_TESTS
    assert get_args(compare.CompareMode) == COMPARE_MODES


@pytest.mark.parametrize("mode", COMPARE_MODES)
@pytest.mark.parametrize("correction", CORRECTIONS)
def test_compare_options_accept_every_allowed_value(mode: str, correction: str) -> None:
    options = compare.CompareOptions(mode=mode, correction=correction)  # type: ignore[arg-type]
    assert (options.mode, options.correction) == (mode, correction)


@pytest.mark.parametrize("flag, allowed", [("--mode", COMPARE_MODES), ("--correction", CORRECTIONS)])
def test_compare_cli_rejects_other_values_naming_the_allowed_ones(tmp_path: Path, flag: str, allowed: tuple[str, ...],
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), flag, "nope"]) == 3
    assert f"{flag} must be one of {', '.join(allowed)}, got 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("key, value", [(k, v) for k, values in SUITE_CHOICES.items() for v in values])
def test_suite_accepts_every_allowed_value(tmp_path: Path, key: str, value: str) -> None:
    suite = parse_suite(SUITE.format(extra=f'{key} = "{value}"'), path=tmp_path / "t.toml")
    assert getattr(suite, key) == value


@pytest.mark.parametrize("key", sorted(SUITE_CHOICES))
def test_suite_rejects_other_values_naming_the_allowed_ones(tmp_path: Path, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_suite(SUITE.format(extra=f'{key} = "nope"'), path=tmp_path / "bad.toml")
    assert f"[suite].{key}: must be one of {', '.join(SUITE_CHOICES[key])}, got 'nope'" in str(info.value)


def test_bad_choice_wording_is_spelled_once() -> None:
    """Every "must be one of" message comes from options.must_be_one_of (one wording to change)."""
    assert must_be_one_of(("a", "b"), "c") == "must be one of a, b, got 'c'"
    assert must_be_one_of((1, 2), None) == "must be one of 1, 2, got None"
    root = Path(__file__).resolve().parents[2] / "harness"
    by_hand = [str(f.relative_to(root)) for f in root.rglob("*.py")
               if f.name != "options.py" and "must be one of" in f.read_text(encoding="utf-8")]
    assert by_hand == []


def test_perturbation_choice_message() -> None:
    from harness import perturbations

    with pytest.raises(ConfigError, match="option 'axes' must be one of slice, all, got 'nope'"):
        perturbations.get("low_resolution", axes="nope")


def test_spelling_hint_names_the_closest_choice_or_the_fallback() -> None:
    assert did_you_mean("alpah", ["alpha", "cluster"]) == " (did you mean 'alpha'?)"
    assert did_you_mean("zzz", ["alpha", "cluster"]) == ""
    assert did_you_mean("zzz", ["alpha"], otherwise=" (allowed: alpha)") == " (allowed: alpha)"
    assert did_you_mean(5, ["alpha"]) == ""  # not text: no hint, no TypeError
    assert closest("ouput", {"output": 1, "input": 2}, cutoff=0.75) == "output"  # any iterable of names
    assert closest("inpt", ["output"], cutoff=0.75) is None
