"""fairness_gates: the FAIL / WARN / PASS / INCONCLUSIVE rule, names and details."""
from __future__ import annotations

import dataclasses

import pytest

from harness.analysis.fairness import fairness_gates, fairness_tables
from harness.analysis.fairness_gates import gate_problems
from harness.errors import ConfigError

from ._fairness_data import make_tables

pytest.importorskip("harness.gates")

FAST = {"n_boot": 200, "n_perm": 400}


@pytest.fixture(scope="module")
def result():
    records, cases = make_tables(n=90, seed=11, drop={"C": 0.1}, perturbations={"clean": [0], "noise": [1, 3]})
    return fairness_tables(records, cases, cohorts=["sex", "site"], metrics=["dice"], **FAST)


def _with(result, **changes):
    gaps = result.gaps.copy()
    for key, value in changes.items():
        gaps[key] = value
    return dataclasses.replace(result, gaps=gaps)


def test_fail_names_attribute_and_worst_group(result):
    gates = fairness_gates(result, gate={"name": "fair_dice", "metric": "dice", "max_gap": 0.03})
    by_name = {g.name: g for g in gates}
    assert set(by_name) == {"fair_dice[sex]", "fair_dice[site]"}
    site = by_name["fair_dice[site]"]
    assert site.outcome == "FAIL" and site.threshold == 0.03 and site.value > 0.03
    assert "worst group C" in site.detail and "site" in site.detail
    assert by_name["fair_dice[sex]"].outcome in ("PASS", "WARN")


@pytest.mark.parametrize("p, gap, expected", [
    (0.001, 0.10, "FAIL"), (0.001, 0.01, "WARN"), (0.5, 0.10, "WARN"), (0.5, 0.01, "PASS"),
    (0.001, 0.9 - 0.85, "WARN"),  # the margin up to float rounding is within it, as for every other gate
])
def test_rule_table(result, p, gap, expected):
    forced = _with(result, p_adjusted=p, difference=gap)
    gates = fairness_gates(forced, gate={"name": "g", "metric": "dice", "max_gap": 0.05, "attributes": ["sex"]})
    assert [g.outcome for g in gates] == [expected]


def test_gate_alpha_overrides_analysis_alpha(result):
    forced = _with(result, p_adjusted=0.03, difference=0.2)
    assert fairness_gates(forced, gate={"name": "g", "metric": "dice", "max_gap": 0.05, "alpha": 0.01,
                                        "attributes": ["site"]})[0].outcome == "WARN"


def test_small_groups_are_inconclusive_never_pass_or_fail(result):
    small = dataclasses.replace(result, min_group_size=40)
    forced = _with(small, small_groups="A (n=30)", p_adjusted=0.0001, difference=0.5)
    gates = fairness_gates(forced, gate={"name": "g", "metric": "dice", "max_gap": 0.05})
    assert {g.outcome for g in gates} == {"INCONCLUSIVE"}
    assert "below min_group_size 40" in gates[0].detail


def test_all_perturbations_one_gate_each(result):
    gates = fairness_gates(result, gate={"name": "g", "metric": "dice", "max_gap": 0.03, "perturbation": "all",
                                         "attributes": ["site"]})
    assert [g.name for g in gates] == ["g[site][clean@0]", "g[site][noise@1]", "g[site][noise@3]"]
    only = fairness_gates(result, gate={"name": "g", "metric": "dice", "max_gap": 0.03, "perturbation": "noise"})
    assert len(only) == 4


def test_missing_perturbation_is_inconclusive(result):
    gates = fairness_gates(result, gate={"name": "g", "metric": "dice", "max_gap": 0.03, "perturbation": "blur"})
    assert {g.outcome for g in gates} == {"INCONCLUSIVE"} and "blur" in gates[0].detail


@pytest.mark.parametrize("gate, match", [
    ({"name": "g", "metric": "dice"}, "max_gap"),
    ({"name": "g", "metric": "hd95", "max_gap": 1}, "not analysed"),
    ({"name": "g", "metric": "dice", "max_gap": 0.1, "attributes": ["age"]}, "age"),
    ({"name": "g", "metric": "dice", "max_gap": 0.1, "margin": 2}, "unknown key"),
    ({"name": "g", "metric": "dice", "max_gap": -1}, ">= 0"),
])
def test_invalid_gates(result, gate, match):
    with pytest.raises(ConfigError, match=match):
        fairness_gates(result, gate=gate)


def test_gate_problems_need_no_data():
    assert gate_problems({"name": "g", "check": "fairness", "metric": "dice", "max_gap": 0.05,
                          "perturbation": "all", "attributes": ["sex"]}) == []
    problems = gate_problems({"name": "g", "metric": "dice", "max_gap": "big", "alpha": 5, "attributes": "sex"})
    assert len(problems) == 3


def test_no_ok_records_gives_inconclusive_not_a_crash():
    records, cases = make_tables(n=20, seed=12)
    records["status"] = "ERROR"
    empty = fairness_tables(records, cases, cohorts=["sex"], metrics=["dice"], **FAST)
    assert empty.gaps.empty and empty.groups.empty
    (gate,) = fairness_gates(empty, gate={"name": "g", "metric": "dice", "max_gap": 0.05})
    assert gate.outcome == "INCONCLUSIVE" and gate.value is None


def test_excluded_small_groups_let_the_gate_decide(result):
    small = dataclasses.replace(result, min_group_size=40, small_groups="exclude")
    forced = _with(small, small_groups="", excluded_groups="A (n=30)", p_adjusted=0.0001, difference=0.5)
    gates = fairness_gates(forced, gate={"name": "g", "metric": "dice", "max_gap": 0.05, "attributes": ["site"]})
    assert [g.outcome for g in gates] == ["FAIL"]
    assert "left out (below min_group_size 40): A (n=30)" in gates[0].detail


def test_excluded_down_to_one_group_is_inconclusive(result):
    lone = _with(dataclasses.replace(result, min_group_size=40), n_groups=1, p_value=float("nan"),
                 excluded_groups="A (n=30), B (n=30)")
    gate = fairness_gates(lone, gate={"name": "g", "metric": "dice", "max_gap": 0.05, "attributes": ["site"]})[0]
    assert gate.outcome == "INCONCLUSIVE"
    assert "fewer than two groups of at least 40 cases" in gate.detail and "A (n=30), B (n=30)" in gate.detail


def test_a_gate_naming_its_label_by_number_is_gated():
    """label = 2 once matched nothing (the gaps table holds the label's name) and was INCONCLUSIVE."""
    records, cases = make_tables(n=60, seed=3, drop={"C": 0.1})
    for label in (2, "lesion"):
        result = fairness_tables(records, cases, cohorts=["site"], metrics=["dice"], label=label, **FAST)
        [gate] = fairness_gates(result, gate={"name": "f", "metric": "dice", "max_gap": 0.03, "label": label})
        assert gate.outcome == "FAIL" and "worst group C" in gate.detail, label


def test_a_gate_on_each_class_gates_each_class_of_an_each_analysis() -> None:
    """label = "each" kept only the rows labelled "each" (none): INCONCLUSIVE "no dice values"."""
    records, cases = make_tables(n=60, seed=12, drop={"C": 0.1})
    each = fairness_tables(records, cases, cohorts=["site"], metrics=["dice"], label="each", **FAST)
    results = fairness_gates(each, gate={"name": "f", "metric": "dice", "max_gap": 0.05, "label": "each"})
    names = sorted(r.name for r in results)
    assert len(names) == each.gaps["label"].nunique() >= 2 and all(n.startswith("f[site][") for n in names)
    assert all(r.outcome != "INCONCLUSIVE" for r in results)
