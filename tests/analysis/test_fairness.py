"""fairness_tables: schema, unit of analysis, agreement with fairlearn, options and errors."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame

from harness.analysis.fairness import GAP_COLUMNS, GROUP_COLUMNS, fairness_tables
from harness.analysis.stats import adjust_pvalues
from harness.errors import ConfigError

from ._fairness_data import make_tables

FAST = {"n_boot": 200, "n_perm": 400}


@pytest.fixture(scope="module")
def planted():
    records, cases = make_tables(n=90, seed=1, drop={"C": 0.12}, perturbations={"clean": [0], "noise": [2]})
    return records, cases, fairness_tables(records, cases, cohorts=["sex", "site", "age"], metrics=["dice", "hd95"],
                                           bins={"age": [0, 50, 120]}, **FAST)


def test_schema(planted):
    _, _, result = planted
    assert list(result.groups.columns) == GROUP_COLUMNS
    assert list(result.gaps.columns) == GAP_COLUMNS
    assert set(result.gaps["perturbation"]) == {"clean", "noise"}
    assert result.levels["site"] == ["A", "B", "C"] and result.levels["age"] == ["[0, 50)", "[50, 120)"]
    assert result.groups.iloc[0][["attribute", "group", "perturbation", "metric"]].tolist() == ["sex", "F", "clean", "dice"]
    assert not result.gaps[result.gaps["metric"] == "dice"][["difference", "ser", "es_fairseg", "p_value"]].isna().any().any()


def test_planted_gap_found_and_named(planted):
    _, _, result = planted
    site = result.gaps[(result.gaps["attribute"] == "site") & (result.gaps["metric"] == "dice")]
    assert (site["worst_group"] == "C").all() and (site["p_adjusted"] < 0.05).all()
    assert (site["difference_ci_low"] > 0.05).all() and (site["effect_size"] > 0.5).all()
    hd = result.gaps[(result.gaps["attribute"] == "site") & (result.gaps["metric"] == "hd95")]
    assert (hd["worst_group"] == "C").all()  # lower is better: worst = largest mean
    assert hd[["ser", "es_fairseg", "es_fairmedfm"]].isna().all().all() and not hd["bounded"].any()


def test_case_is_the_unit(planted):
    records, cases, result = planted
    clean = result.groups[(result.groups["perturbation"] == "clean") & (result.groups["attribute"] == "sex")]
    assert clean["n"].tolist() == [45, 45, 45, 45]  # 2 labels per case, counted once
    doubled = pd.concat([records, records.assign(repeat=1)], ignore_index=True)
    again = fairness_tables(doubled, cases, cohorts=["sex", "site", "age"], metrics=["dice", "hd95"],
                            bins={"age": [0, 50, 120]}, **FAST)
    pd.testing.assert_frame_equal(again.gaps, result.gaps)


def test_means_and_gaps_agree_with_fairlearn(planted):
    records, cases, result = planted
    ok = records[records["perturbation"] == "clean"].groupby("case_id")["dice"].mean()
    site = cases.set_index("case_id")["site"].loc[ok.index]
    mf = MetricFrame(metrics={"mean": lambda y, p: float(np.mean(y))}, y_true=ok.to_numpy(), y_pred=ok.to_numpy(),
                     sensitive_features=site.to_numpy())
    row = result.gaps.query("attribute == 'site' and perturbation == 'clean' and metric == 'dice'").iloc[0]
    assert row["difference"] == pytest.approx(mf.difference()["mean"])
    assert row["ratio"] == pytest.approx(mf.ratio()["mean"])
    groups = result.groups.query("attribute == 'site' and perturbation == 'clean' and metric == 'dice'")
    np.testing.assert_allclose(groups["mean"], mf.by_group["mean"].to_numpy())
    assert (groups["ci_low"] < groups["mean"]).all() and (groups["mean"] < groups["ci_high"]).all()


def test_correction_family_is_every_test(planted):
    _, _, result = planted
    np.testing.assert_allclose(result.gaps["p_adjusted"], adjust_pvalues(result.gaps["p_value"].to_numpy(), method="holm"))
    assert (result.gaps["p_adjusted"] >= result.gaps["p_value"]).all()


def test_deterministic_given_seed(planted):
    records, cases, result = planted
    again = fairness_tables(records, cases, cohorts=["sex", "site", "age"], metrics=["dice", "hd95"],
                            bins={"age": [0, 50, 120]}, **FAST)
    pd.testing.assert_frame_equal(again.groups, result.groups)
    pd.testing.assert_frame_equal(again.gaps, result.gaps)


def test_label_modes_and_clean_only():
    records, cases = make_tables(n=30, seed=2, perturbations={"clean": [0], "blur": [1]})
    each = fairness_tables(records, cases, cohorts=["sex"], metrics=["dice"], label="each", **FAST)
    assert set(each.gaps["label"]) == {"organ", "lesion"} and len(each.gaps) == 4
    by_id = fairness_tables(records, cases, cohorts=["sex"], metrics=["dice"], label=2, by_perturbation=False, **FAST)
    by_name = fairness_tables(records, cases, cohorts=["sex"], metrics=["dice"], label="lesion",
                              by_perturbation=False, **FAST)
    pd.testing.assert_frame_equal(by_id.gaps, by_name.gaps)
    assert by_id.gaps["perturbation"].tolist() == ["clean"] and by_id.gaps["label"].tolist() == ["lesion"]
    with pytest.raises(ConfigError, match="labels present"):
        fairness_tables(records, cases, cohorts=["sex"], metrics=["dice"], label="tumour", **FAST)


def test_small_groups_flagged():
    records, cases = make_tables(n=30, seed=3)
    result = fairness_tables(records, cases, cohorts=["site", "sex×site"], metrics=["dice"], min_group_size=8, **FAST)
    inter = result.gaps[result.gaps["attribute"] == "sex×site"].iloc[0]
    assert inter["n_groups"] == 6 and inter["min_n"] == 5 and "F×A (n=5)" in inter["small_groups"]
    assert result.groups.loc[result.groups["attribute"] == "sex×site", "small"].all()
    assert result.gaps.loc[result.gaps["attribute"] == "site", "small_groups"].iloc[0] == ""


def test_error_rows_nan_values_and_unknown_cases_are_left_out():
    records, cases = make_tables(n=24, seed=4, labels=(1,))
    records.loc[0, ["status", "dice"]] = ["ERROR", np.nan]
    records.loc[1, "hd95"] = np.nan
    extra = records.iloc[[2]].assign(case_id="stranger")
    cases.loc[3, "sex"] = None
    result = fairness_tables(pd.concat([records, extra]), cases, cohorts=["sex"], metrics=["dice", "hd95"], **FAST)
    n = result.groups.groupby("metric")["n"].sum()
    assert n["dice"] == 22 and n["hd95"] == 21
    assert any("stranger" in note for note in result.notes) and any("sex: 1 case" in note for note in result.notes)


def test_one_group_and_kruskal():
    records, cases = make_tables(n=20, seed=5)
    cases["scanner"] = "same"
    result = fairness_tables(records, cases, cohorts=["scanner", "sex"], metrics=["dice"], test="kruskal", **FAST)
    one = result.gaps[result.gaps["attribute"] == "scanner"].iloc[0]
    assert one["n_groups"] == 1 and one["test"] == "none" and np.isnan(one["p_value"])
    sex = result.gaps[result.gaps["attribute"] == "sex"].iloc[0]
    assert sex["test"] == "kruskal" and 0 < sex["p_value"] <= 1


@pytest.mark.parametrize("kwargs, match", [
    ({"metrics": ["dice", "volume"]}, "volume"),
    ({"correction": "bonferroni"}, "correction"),
    ({"alpha": 1.5}, "alpha"),
    ({"alpha": "0.05"}, "alpha must be a number, got '0.05'"),
    ({"n_perm": 100.5}, "n_perm must be a whole number, got 100.5"),
    ({"cohorts": ["ethnicity"]}, "available columns"),
])
def test_configuration_errors(kwargs, match):
    records, cases = make_tables(n=10, seed=6)
    options = {"cohorts": ["sex"], "metrics": ["dice"], **FAST, **kwargs}
    with pytest.raises(ConfigError, match=match):
        fairness_tables(records, cases, **options)


def test_a_plain_per_case_table_is_clean_and_of_one_class():
    """A researcher's own table (case_id and scores only) gives what the full records give on their
    clean rows of the mean over classes; one metric may be named as a string."""
    records, cases = make_tables(n=30, seed=8)
    clean = records[(records["perturbation"] == "clean") & (records["status"] == "OK")]
    per_case = clean[clean["label"] != 0].groupby("case_id", as_index=False)["dice"].mean()
    plain = fairness_tables(per_case, cases, cohorts=["sex"], metrics="dice", **FAST)
    full = fairness_tables(records, cases, cohorts=["sex"], metrics=["dice"], by_perturbation=False, **FAST)
    columns = ["group", "n", "mean"]
    pd.testing.assert_frame_equal(plain.groups[columns], full.groups[columns])
    with pytest.raises(ConfigError, match="the records need a case_id column"):
        fairness_tables(per_case.drop(columns="case_id"), cases, cohorts=["sex"], metrics=["dice"], **FAST)


def test_unknown_metric_direction_needs_override():
    records, cases = make_tables(n=20, seed=7)
    records["sharpness"] = records["dice"]
    with pytest.raises(ConfigError, match="direction unknown"):
        fairness_tables(records, cases, cohorts=["sex"], metrics=["sharpness"], **FAST)
    result = fairness_tables(records, cases, cohorts=["sex"], metrics=["sharpness"], directions={"sharpness": True},
                             **FAST)
    assert result.gaps["bounded"].all()


def test_aliased_attributes_are_noted():
    records, cases = make_tables(n=30, seed=8)
    cases["scanner"] = cases["site"].map({"A": "s1", "B": "s2", "C": "s3"})
    result = fairness_tables(records, cases, cohorts=["site", "scanner"], metrics=["dice"], **FAST)
    assert any("scanner defines the same groups as site" in note for note in result.notes)
    # attributes with a single group (BUS-BRA --limit 4: one BIRADS, one Device) are not "aliased"
    cases["ward"], cases["unit"] = "W1", "U1"
    single = fairness_tables(records, cases, cohorts=["site", "ward", "unit"], metrics=["dice"], **FAST)
    assert not any("unit defines the same groups" in note for note in single.notes)


def _with_tiny_site(n: int = 60, seed: int = 5, tiny: int = 4):
    """Sites A/B/C plus a site D of ``tiny`` cases (taken from A) with a very low Dice."""
    records, cases = make_tables(n=n, seed=seed, labels=(1,))
    moved = cases.index[cases["site"] == "A"][:tiny]
    cases.loc[moved, "site"] = "D"
    records.loc[records["case_id"].isin(cases.loc[moved, "case_id"]), "dice"] = 0.2
    return records, cases, set(cases.loc[moved, "case_id"])


def test_excluded_small_groups_are_reported_but_not_compared():
    records, cases, tiny = _with_tiny_site()
    options = {"cohorts": ["site"], "metrics": ["dice"], "min_group_size": 10, "n_boot": 0, "n_perm": 400}
    excluded = fairness_tables(records, cases, small_groups="exclude", **options)
    gap = excluded.gaps.iloc[0]
    assert gap["excluded_groups"] == "D (n=4)" and gap["small_groups"] == ""
    assert gap["n_groups"] == 3 and gap["min_n"] == 16 and gap["n"] == 56 and gap["worst_group"] != "D"
    d = excluded.groups[excluded.groups["group"] == "D"].iloc[0]  # still reported, flagged small
    assert d["n"] == 4 and d["small"] and d["mean"] == pytest.approx(0.2)
    # Oracle: the same analysis of the data without D's cases (same cell seed, no bootstrap draws).
    without = fairness_tables(records[~records["case_id"].isin(tiny)], cases[~cases["case_id"].isin(tiny)],
                              **options).gaps.iloc[0]
    for key in ("difference", "ratio", "effect_size", "statistic", "p_value", "best_group", "worst_group"):
        assert gap[key] == without[key], key
    included = fairness_tables(records, cases, **options)
    row = included.gaps.iloc[0]
    assert row["small_groups"] == "D (n=4)" and row["excluded_groups"] == ""
    assert row["n_groups"] == 4 and row["worst_group"] == "D" and row["difference"] > 0.5
    assert excluded.small_groups == "exclude" and included.small_groups == "inconclusive"


def test_excluding_leaves_fewer_than_two_groups():
    records, cases, _ = _with_tiny_site(n=30, tiny=4)
    result = fairness_tables(records, cases, cohorts=["site"], metrics=["dice"], min_group_size=10,
                             small_groups="exclude", **FAST)
    gap = result.gaps.iloc[0]  # A keeps 6 cases: only B and C (10 each) are compared
    assert gap["n_groups"] == 2 and gap["excluded_groups"] == "A (n=6), D (n=4)"
    lone = fairness_tables(records, cases, cohorts=["site"], metrics=["dice"], min_group_size=11,
                           small_groups="exclude", **FAST).gaps.iloc[0]
    assert lone["n_groups"] == 0 and lone["test"] == "none" and np.isnan(lone["p_value"])


def test_unknown_small_group_policy_is_a_config_error():
    records, cases = make_tables(n=12, seed=6)
    with pytest.raises(ConfigError, match="small_groups must be one of inconclusive, exclude"):
        fairness_tables(records, cases, cohorts=["sex"], metrics=["dice"], small_groups="drop", **FAST)


def test_worst_group_ci_is_its_own_when_an_earlier_group_is_excluded():
    """The excluded group came first: the worst group's CI was read at the wrong index (another
    group's CI, not even holding the worst group's mean)."""
    rng = np.random.default_rng(0)
    sizes, centre = {"A": 3, "B": 20, "C": 20}, {"A": 0.5, "B": 0.9, "C": 0.7}
    site = np.repeat(list(sizes), list(sizes.values()))
    ids = [f"c{i}" for i in range(len(site))]
    dice = np.array([centre[s] for s in site]) + rng.normal(0, 0.02, len(site))
    records = pd.DataFrame({"case_id": ids, "perturbation": "clean", "severity": 0, "label": 1, "status": "OK",
                            "dice": dice})
    cases = pd.DataFrame({"case_id": ids, "site": site})
    result = fairness_tables(records, cases, cohorts=["site"], metrics=["dice"], n_boot=300, n_perm=200,
                             small_groups="exclude")
    gap = result.gaps.iloc[0]
    own = result.groups[result.groups["group"] == "C"].iloc[0]
    assert gap["worst_group"] == "C" and gap["worst_value_ci_low"] < gap["worst_value"] < gap["worst_value_ci_high"]
    assert (gap["worst_value_ci_low"], gap["worst_value_ci_high"]) == (own["ci_low"], own["ci_high"])


def test_level_is_checked_recorded_and_named_in_gate_details():
    from harness.analysis.fairness import fairness_gates

    records, cases = make_tables(n=60, seed=2)
    with pytest.raises(ConfigError, match=r"level \(of the confidence intervals\) must be in \(0, 1\), got 1.5"):
        fairness_tables(records, cases, cohorts=["site"], metrics=["dice"], level=1.5, **FAST)
    result = fairness_tables(records, cases, cohorts=["site"], metrics=["dice"], level=0.5, **FAST)
    assert result.level == 0.5
    (gate,) = fairness_gates(result, gate={"name": "f", "metric": "dice", "max_gap": 0.5})
    assert "(50% CI " in gate.detail and "95%" not in gate.detail
