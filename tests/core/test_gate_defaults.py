"""Gate defaults: one registry read by the gate checks and by the dossier's acceptance criteria."""
from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from harness import gates
from harness.gates import GateContext, SuiteSetting, defaults_used, gate_check, gate_defaults, gate_meaning, with_defaults

BUNDLED = ("clean", "degradation", "fairness", "robust_cases", "site_drop", "baseline")


def _check(kind: str):
    gates.check_kinds()  # registers the bundled kinds
    return gates._CHECKS[kind]


def _records(n: int) -> pd.DataFrame:
    rows = [{"case_id": f"c{i}", "perturbation": p, "severity": s, "label": 1, "label_name": "organ",
             "status": "OK", "error": "", "dice": v}
            for i in range(n) for p, s, v in (("clean", 0, 0.9), ("blur", 2, 0.85))]
    return pd.DataFrame(rows)


def _context(n: int) -> GateContext:
    records = _records(n)
    return GateContext(records=records, cases=pd.DataFrame({"case_id": sorted(set(records["case_id"]))}),
                       suite=SimpleNamespace(gates=[], alpha=0.05, min_group_size=10))


@pytest.mark.parametrize(("gate", "key"), [
    ({"name": "c", "check": "clean", "metric": "dice", "min": 0.5}, "min_cases"),
    ({"name": "d", "check": "degradation", "metric": "dice", "max_drop": 0.1}, "min_cases"),
])
def test_a_gate_reads_the_defaults_the_dossier_lists(monkeypatch: pytest.MonkeyPatch, gate: dict, key: str) -> None:
    """Changing the registered default changes what the gate does: the check has no literal of its own."""
    check = _check(gate["check"])
    [decided] = check(gate, _context(4))
    assert decided.outcome == "PASS"
    monkeypatch.setitem(gates._DEFAULTS, gate["check"], {**gates._DEFAULTS[gate["check"]], key: 5})
    [undecided] = check(gate, _context(4))
    assert undecided.outcome == "INCONCLUSIVE" and "need 5" in undecided.detail
    assert f"{key} = 5" in defaults_used(gate, {})
    [explicit] = check({**gate, key: 4}, _context(4))  # a key the suite sets is its own, not the default
    assert explicit.outcome == "PASS" and f"{key} = 5" not in defaults_used({**gate, key: 4}, {})


@pytest.mark.parametrize(("kind", "gate"), [
    ("clean", {"name": "c", "metric": "dice", "min": 0.5}),
    ("degradation", {"name": "d", "metric": "dice", "max_drop": 0.1}),
])
def test_a_check_called_directly_without_its_kind_key_still_takes_its_defaults(kind: str, gate: dict) -> None:
    [result] = _check(kind)(gate, _context(4))
    assert result.outcome == "PASS"


def test_every_bundled_kind_registers_its_meaning_and_defaults() -> None:
    for kind in BUNDLED:
        assert gate_meaning(kind), kind
        assert gate_defaults(kind), kind
    assert gate_defaults("no-such-kind") == {} and gate_meaning("no-such-kind") == ""


def test_suite_settings_are_resolved_from_a_suite_or_a_run_settings_mapping() -> None:
    gate = {"name": "s", "check": "site_drop", "metric": "dice", "max_drop": 0.1}
    suite = SimpleNamespace(alpha=0.01, min_group_size=7, site_attribute="Device")
    full = with_defaults(gate, suite)
    assert (full["alpha"], full["min_cases"], full["attribute"], full["reference"]) == (0.01, 7, "Device", None)
    assert with_defaults(gate, {"alpha": 0.1})["alpha"] == 0.1
    assert with_defaults(gate, SimpleNamespace())["alpha"] == 0.05  # the fallback of a suite-like without it
    words = defaults_used(gate, {"alpha": 0.01, "min_group_size": 7, "site_attribute": "Device"})
    assert "alpha = 0.01 ([suite].alpha)" in words and "min_cases = 7 ([suite].min_group_size)" in words
    assert "attribute = Device ([suite].site_attribute)" in words
    assert any(w.startswith("reference = the suite's reference site") for w in words)
    assert "families = all" in defaults_used({"name": "d", "check": "degradation"}, {})
    assert "warn_drop = none" in defaults_used({"name": "d", "check": "degradation"}, {})
    assert defaults_used({"name": "x", "check": "clean", "label": "mean", "min_cases": 2, "warn": 0.9}, {}) == []


def test_the_site_drop_gate_uses_the_suite_min_group_size_by_default() -> None:
    cases = pd.DataFrame({"case_id": [f"c{i}" for i in range(8)], "site": ["A"] * 4 + ["B"] * 4})
    records = _records(8)
    suite = SimpleNamespace(gates=[], alpha=0.05, min_group_size=5, site_attribute="site", reference_site="A",
                            correction="holm", n_bootstrap=200, n_permutations=200, seed=0)
    gate = {"name": "s", "check": "site_drop", "metric": "dice", "max_drop": 0.1}
    results = _check("site_drop")(gate, GateContext(records=records, cases=cases, suite=suite))
    assert [r.outcome for r in results] == ["INCONCLUSIVE"] and "min_cases=5" in results[0].detail
    suite.min_group_size = 4
    results = _check("site_drop")(gate, GateContext(records=records, cases=cases, suite=suite))
    assert [r.outcome for r in results] == ["PASS"]


def test_a_plugin_kind_registers_defaults_and_a_meaning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gates, "_CHECKS", dict(gates._CHECKS))
    monkeypatch.setattr(gates, "_DEFAULTS", dict(gates._DEFAULTS))
    monkeypatch.setattr(gates, "_MEANINGS", dict(gates._MEANINGS))

    @gate_check("worst-case", defaults={"metric": "dice", "alpha": SuiteSetting("alpha", 0.05)},
                meaning="the worst case against a minimum")
    def worst_case(gate: dict, context: GateContext) -> list:
        return []

    gate = {"name": "w", "check": "worst-case", "min": 0.5}
    assert gate_meaning("worst-case") == "the worst case against a minimum"
    assert with_defaults(gate, {"alpha": 0.2}) == {**gate, "metric": "dice", "alpha": 0.2}
    assert defaults_used(gate, {"alpha": 0.2}) == ["metric = dice", "alpha = 0.2 ([suite].alpha)"]


def test_the_dossier_lists_each_gate_defaults_with_the_values_used(tmp_path) -> None:
    from harness.report.dossier import acceptance_criteria
    from harness.report.rundir import load_run
    from tests.report.conftest import make_run

    extra = ('alpha = 0.01\nmin_group_size = 4\nsite_attribute = "scanner"\n\n'
             '[[gates]]\nname = "sites"\ncheck = "site_drop"\nmetric = "dice"\nmax_drop = 0.1\nmode = "relative"\n')
    run = make_run(tmp_path / "run", case_ids=[f"c{i}" for i in range(6)], suite_extra=extra,
                   metadata={"scanner": list("AAABBB")})
    rows = {r["name"]: r for r in acceptance_criteria(load_run(run))}
    sites, clean = rows["sites"], rows["clean-dice"]
    assert sites["criteria"] == "max_drop = 0.1, mode = relative" and sites["meaning"].startswith("per site")
    assert "alpha = 0.01 ([suite].alpha)" in sites["defaults"] and "min_cases = 4 ([suite].min_group_size)" in sites["defaults"]
    assert "attribute = scanner ([suite].site_attribute)" in sites["defaults"] and "mode" not in sites["defaults"]
    assert clean["defaults"] == "min_cases = 3, warn = none" and clean["meaning"] and clean["settings"] == ""
    assert sites["settings"] == "correction = holm"  # no cluster: left out


def test_the_fairness_criteria_name_the_suite_settings_their_outcome_depends_on() -> None:
    from harness.gates import settings_used

    settings = {"min_group_size": 20, "small_groups": "exclude", "fairness_test": "kruskal", "correction": "fdr_bh",
                "cluster": "Case"}
    assert settings_used("fairness", settings) == ["min_group_size = 20", "small_groups = exclude",
                                                   "fairness_test = kruskal", "correction = fdr_bh", "cluster = Case"]
    assert settings_used("clean", settings) == [] and settings_used("no-such-kind", settings) == []
