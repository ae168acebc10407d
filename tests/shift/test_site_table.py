"""site_table, family matching and the site_drop gate on synthetic tables with planted site effects."""
from __future__ import annotations

import doctest
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from harness.analysis import quality, shift
from harness.analysis.shift import (
    check_config,
    equivalent_severity,
    family_matches,
    gate_problems,
    site_drop_gate,
    site_table,
)
from harness.errors import ConfigError
from harness.gates import GateContext, check_kinds

from ._data import make_tables

FAST = {"n_boot": 300, "n_perm": 500}


@pytest.fixture(scope="module")
def tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    return make_tables({"A": 40, "B": 20, "C": 15, "D": 3}, dice={"A": 0.90, "B": 0.90, "C": 0.75, "D": 0.60},
                       ladder={"blur": {1: 0.02, 3: 0.08, 5: 0.20}, "gamma": {1: 0.05, 3: 0.15, 5: 0.40}})


def test_docstring_examples() -> None:
    for module in (shift, quality):
        assert doctest.testmod(module).failed == 0


def test_planted_drop_is_found_and_unit_is_the_case(tables) -> None:
    records, cases = tables
    table = site_table(records, cases, attribute="site", metrics=["dice", "hd95"], min_cases=5, **FAST)
    dice = table[table["metric"] == "dice"].set_index("site")
    assert list(dice.index) == ["A", "B", "C", "D"]  # reference (largest) first
    assert dice.loc["A", "is_reference"] and (table["reference"] == "A").all()
    assert dice["n"].to_dict() == {"A": 40, "B": 20, "C": 15, "D": 3}  # 2 labels per case count once
    c = dice.loc["C"]
    assert c["drop"] == pytest.approx(0.15, abs=0.03)
    assert 0 < c["drop_ci_low"] < c["drop"] < c["drop_ci_high"]
    assert c["p_adjusted"] < 0.01 and c["effect_size"] > 0.8
    assert c["ci_low"] < c["mean"] < c["ci_high"] and c["median_ci_low"] <= c["median"] <= c["median_ci_high"]
    assert dice.loc["B", "p_adjusted"] > 0.05 and abs(dice.loc["B", "drop"]) < 0.03
    # D is below min_cases: reported, not tested, not in the Holm family (B and C are)
    assert np.isnan(dice.loc["D", "p_value"]) and np.isnan(dice.loc["D", "p_adjusted"])
    assert dice.loc["C", "p_adjusted"] == pytest.approx(min(1.0, 2 * dice.loc["C", "p_value"]))
    # HD95: lower is better, so a larger HD95 at C is a positive drop
    hd = table[table["metric"] == "hd95"].set_index("site")
    assert hd.loc["C", "drop"] == pytest.approx(10 * c["drop"], rel=1e-6) and not hd.loc["C", "higher_is_better"]


def test_reference_choice_and_errors(tables) -> None:
    records, cases = tables
    table = site_table(records, cases, attribute="site", metrics=["dice"], reference_site="C", **FAST)
    assert table["site"].iloc[0] == "C" and table.set_index("site").loc["A", "drop"] < -0.1
    with pytest.raises(ConfigError, match="reference site 'Z' is not a value of 'site'"):
        site_table(records, cases, attribute="site", metrics=["dice"], reference_site="Z", **FAST)
    with pytest.raises(ConfigError, match="site attribute 'hospital' is not in the case metadata"):
        site_table(records, cases, attribute="hospital", metrics=["dice"], **FAST)


def test_mannwhitney_missing_sites_and_ties(tables) -> None:
    records, cases = tables
    cases = cases.assign(site=cases["site"].where(cases["site"] != "B", ""))  # B's cases have no site
    table = site_table(records, cases, attribute="site", metrics=["dice"], test="mannwhitney", **FAST)
    assert "B" not in set(table["site"]) and table.set_index("site").loc["C", "p_value"] < 0.001
    flat = records.assign(dice=0.5)
    table = site_table(flat, cases, attribute="site", metrics=["dice"], test="mannwhitney", **FAST)
    assert (table.loc[~table["is_reference"], "p_value"] == 1.0).all()
    with pytest.raises(ConfigError, match="site test must be one of"):
        site_table(records, cases, attribute="site", metrics=["dice"], test="ttest")  # type: ignore[arg-type]


def test_equivalent_severity_and_family_matches(tables) -> None:
    assert equivalent_severity([1, 3, 5], [0.02, 0.08, 0.20], 0.0) == 0.0
    assert equivalent_severity([1, 3, 5], [0.02, 0.08, 0.20], 0.05) == pytest.approx(2.0)
    assert np.isnan(equivalent_severity([1, 3, 5], [0.02, 0.08, 0.20], 0.5))
    records, cases = tables
    ev = shift.shift_evidence(records, cases, attribute="site", metrics=["dice"], min_cases=5, **FAST)
    ladder = ev.ladder.set_index(["family", "severity"])["degradation"]
    assert ladder[("gamma", 3)] == pytest.approx(0.15, abs=1e-9)  # paired on the reference's cases
    best = ev.matches.set_index("site")
    assert best.loc["C", "family"] == "gamma" and best.loc["C", "severity"] == 3
    assert best["drop_significant"].tolist() == (best["drop_ci_low"] > 0).tolist()
    unsure = family_matches(ev.table.assign(drop_ci_low=-0.01), ev.ladder)[0].set_index("site")
    assert unsure.loc["C", "family"] == "gamma" and not unsure["drop_significant"].any()  # still matched, flagged
    unknown = family_matches(ev.table.assign(drop_ci_low=np.nan), ev.ladder)[0]
    assert not unknown["drop_significant"].any()
    eq = ev.equivalents[(ev.equivalents["site"] == "C")].set_index("family")["equivalent_severity"]
    assert 3.5 < eq["blur"] < 5 and 2.5 < eq["gamma"] < 3.5
    assert "no image statistics" in " ".join(ev.notes)
    no_drop = ev.table.assign(drop=-0.1)
    assert family_matches(no_drop, ev.ladder)[0]["family"].isna().all()
    out_of_reach = family_matches(ev.table, ev.ladder.assign(degradation=-0.01))[0]  # no rung is closer than 0
    assert out_of_reach["family"].isna().all() and len(out_of_reach) == 3


def _context(records, cases, **suite) -> GateContext:
    defaults = {"site_attribute": "site", "reference_site": "", "alpha": 0.05, "min_group_size": 10,
                "correction": "holm", "n_bootstrap": 300, "n_permutations": 500, "seed": 0, "gates": (),
                "path": "suite.toml"}
    return GateContext(records=records, cases=cases, suite=SimpleNamespace(**{**defaults, **suite}))


def test_site_drop_gate_outcomes() -> None:
    assert "site_drop" in check_kinds()
    records, cases = make_tables({"A": 40, "B": 40, "C": 15, "E": 40, "F": 4, "G": 6},
                                 dice={"A": 0.90, "B": 0.90, "C": 0.75, "E": 0.865, "F": 0.5, "G": 0.80},
                                 sd=0.02, seed=3)
    records.loc[records["case_id"].isin(cases.loc[cases["site"] == "G", "case_id"]), "dice"] += \
        np.tile(np.repeat([0.25, -0.25, 0.2, -0.2, 0.1, -0.1], 2), 1)  # G: large drop, high variance
    gate = {"name": "site-dice", "check": "site_drop", "metric": "dice", "max_drop": 0.05, "warn_drop": 0.02,
            "min_cases": 5}
    results = {g.name: g for g in site_drop_gate(gate, _context(records, cases))}
    assert set(results) == {f"site-dice[{s}]" for s in "BCEFG"}
    assert results["site-dice[C]"].outcome == "FAIL"
    assert results["site-dice[C]"].value == pytest.approx(0.15, abs=0.03) and results["site-dice[C]"].threshold == 0.05
    detail = results["site-dice[C]"].detail
    assert detail.startswith("site C: n=15, mean dice") and "reference A (n=40" in detail and "drop 0.1" in detail
    assert results["site-dice[B]"].outcome == "PASS"
    assert results["site-dice[E]"].outcome == "WARN" and "significant, above warn_drop" in results["site-dice[E]"].detail
    assert results["site-dice[F]"].outcome == "INCONCLUSIVE" and "min_cases=5" in results["site-dice[F]"].detail
    assert results["site-dice[G]"].outcome == "WARN" and "not significant" in results["site-dice[G]"].detail
    rel = site_drop_gate({**gate, "metric": "hd95", "mode": "relative", "max_drop": 0.5},
                         _context(records, cases))
    assert {g.name: g.outcome for g in rel}["site-dice[C]"] == "FAIL"  # HD95 1.0 -> 2.5 mm: +150 %
    one = site_drop_gate(gate, _context(records, cases[cases["site"] == "A"]))
    assert [(g.name, g.outcome) for g in one] == [("site-dice[A]", "INCONCLUSIVE")]
    missing = site_drop_gate({**gate, "attribute": "hospital"}, _context(records, cases))
    assert missing[0].outcome == "INCONCLUSIVE" and "hospital" in missing[0].detail
    by_scanner = site_drop_gate({**gate, "attribute": "scanner"}, _context(records, cases))
    assert [g.name for g in by_scanner] == ["site-dice[S2]"]  # S1 (A, B) is the larger: the reference
    # no reference_site: the largest site's scanner, even when another scanner has more cases
    records3, cases3 = make_tables({"A": 20, "C": 15, "D": 15}, dice={"A": 0.9, "C": 0.9, "D": 0.9}, sd=0.02, seed=5)
    default = site_drop_gate({**gate, "attribute": "scanner"}, _context(records3, cases3))
    assert [g.name for g in default] == ["site-dice[S2]"] and "vs reference S1" in default[0].detail
    # with a reference site, a scanner gate compares with that site's scanner, as the report does
    from_site = site_drop_gate({**gate, "attribute": "scanner"}, _context(records, cases, reference_site="C"))
    assert [g.name for g in from_site] == ["site-dice[S1]"] and "vs reference S2" in from_site[0].detail


def test_gate_problems_and_check_config(tables) -> None:
    assert gate_problems({"name": "g", "check": "site_drop", "metric": "dice", "max_drop": 0.05}) == []
    problems = gate_problems({"name": "g", "metric": "dice", "max_drop": -1, "alpha": 2, "min_cases": 1,
                              "test": "t", "mode": "log", "colour": "red"})
    assert len(problems) == 6 and any("unknown key(s) colour" in p for p in problems)
    _, cases = tables
    metadata = cases.set_index("case_id")
    gates = ({"name": "g", "check": "site_drop", "metric": "dice", "max_drop": 0.05},)
    check_config(SimpleNamespace(site_attribute="site", reference_site="A", gates=gates, path="s.toml"), metadata)
    with pytest.raises(ConfigError) as err:
        check_config(SimpleNamespace(site_attribute="site", reference_site="Z",
                                     gates=gates + ({"name": "h", "check": "site_drop", "metric": "dice",
                                                     "max_drop": 0.1, "attribute": "hospital"},),
                                     path="s.toml"), metadata)
    text = str(err.value) + " ".join(getattr(err.value, "problems", []) or [])
    assert "reference site 'Z'" in text and "'hospital' is not in the data's metadata" in text


def test_relative_drop_from_a_zero_reference_mean_is_undefined() -> None:
    records, cases = make_tables({"A": 12, "B": 12}, dice={"A": 0.9, "B": 0.9}, sd=0.02, seed=1)
    a = records["case_id"].isin(cases.loc[cases["site"] == "A", "case_id"])
    records.loc[a, "hd95"] = 0.0
    records.loc[~a, "hd95"] = 12.0
    gate = {"name": "h", "check": "site_drop", "metric": "hd95", "max_drop": 0.5, "mode": "relative", "min_cases": 5}
    [result] = site_drop_gate(gate, _context(records, cases, reference_site="A"))
    assert result.outcome == "INCONCLUSIVE" and np.isnan(result.value)
    assert "relative drop n/a" in result.detail


def test_cases_without_a_site_are_counted_in_the_detail() -> None:
    records, cases = make_tables({"A": 12, "B": 12, "C": 6}, dice={"A": 0.9, "B": 0.9, "C": 0.5}, sd=0.02, seed=2)
    cases = cases.assign(site=cases["site"].where(cases["site"] != "C"))
    gate = {"name": "g", "check": "site_drop", "metric": "dice", "max_drop": 0.05, "min_cases": 5}
    results = site_drop_gate(gate, _context(records, cases))
    assert [r.name for r in results] == ["g[B]"] and "6 case(s) without a site value left out" in results[0].detail


def test_check_config_checks_every_reference_and_a_set_site_attribute(tables) -> None:
    _, cases = tables
    metadata = cases.set_index("case_id")
    gate = {"name": "g", "check": "site_drop", "metric": "dice", "max_drop": 0.05, "reference": "B"}
    with pytest.raises(ConfigError) as err:  # the suite's reference and the gate's: both are checked
        check_config(SimpleNamespace(site_attribute="site", reference_site="Zz", gates=(gate,), path="s.toml"),
                     metadata)
    assert "reference site 'Zz'" in " ".join(err.value.problems or [])
    with pytest.raises(ConfigError) as err:  # a site attribute set in the suite must exist, gates or not
        check_config(SimpleNamespace(site_attribute="hospital", reference_site="", gates=(), path="s.toml"),
                     metadata)
    assert "'hospital' is not in the data's metadata" in " ".join(err.value.problems or [])
    with pytest.raises(ConfigError) as err:
        check_config(SimpleNamespace(site_attribute="site", reference_site="", path="s.toml",
                                     gates=({**gate, "attribute": ["site"]},)), metadata)
    assert "attribute must be a non-empty string" in " ".join(err.value.problems or [])


def test_site_mean_cis_stay_within_what_the_metric_can_take() -> None:
    records, cases = make_tables({"A": 12, "B": 6}, dice={"A": 0.995, "B": 0.99}, sd=0.01, seed=4)
    records["dice"] = records["dice"].clip(upper=1.0)
    records["hd95"] = np.where(records["dice"] > 0.99, 0.0, records["hd95"])
    table = site_table(records, cases, attribute="site", metrics=["dice", "hd95"], min_cases=3, **FAST)
    dice, hd = table[table["metric"] == "dice"], table[table["metric"] == "hd95"]
    assert (dice["ci_high"] <= 1.0).all() and (hd["ci_low"] >= 0.0).all()


def test_a_site_of_one_case_has_no_ci_rather_than_a_zero_width_one() -> None:
    """A one-case site showed '95 % CI 0.9948 – 0.9948'."""
    import numpy as np
    import pandas as pd

    from harness.analysis.shift import site_table

    ids = [f"c{i}" for i in range(7)]
    records = pd.DataFrame({"case_id": ids, "perturbation": "clean", "severity": 0, "repeat": 0, "label": 1,
                            "status": "OK", "dice": np.linspace(0.7, 0.95, 7)})
    cases = pd.DataFrame({"case_id": ids, "site": ["A"] * 6 + ["B"]})
    table = site_table(records, cases, attribute="site", metrics=["dice"], n_boot=200, n_perm=100).set_index("site")
    assert table.loc["A", ["ci_low", "ci_high"]].notna().all()
    assert table.loc["B", ["ci_low", "ci_high", "median_ci_low", "median_ci_high"]].isna().all()
