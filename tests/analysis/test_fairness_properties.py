"""Hypothesis properties: gap ≥ 0, invariance to group renaming, equal groups → no gap, ES = mean.

Most properties run on the per-cell engine (fast); one runs the whole ``fairness_tables`` path.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from harness.analysis.fairness import fairness_tables
from harness.analysis.fairness_cell import CellOptions, compare_groups
from harness.analysis.stats import gap_statistics

OPTS = CellOptions(n_boot=60, n_perm=60, max_perm=60, test="permutation", min_group_size=1)
SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NUMERIC = ["difference", "ratio", "ser", "es_fairseg", "es_fairmedfm", "worst_value", "best_value", "p_value",
           "effect_size", "difference_ci_low", "difference_ci_high", "worst_value_ci_low", "statistic"]
TINY = 1e-12


def _cell(values, codes, names, hd=None):
    x = np.column_stack([values, hd if hd is not None else values])
    return compare_groups(x, np.asarray(codes), names=names, metrics=["dice", "hd95"], higher=np.array([True, False]),
                          bounded=np.array([True, False]), opts=OPTS, rng=np.random.default_rng(0))


data = st.integers(2, 4).flatmap(lambda k: st.lists(
    st.tuples(st.floats(0, 1, allow_nan=False), st.integers(0, k - 1), st.floats(0, 50, allow_nan=False)),
    min_size=2 * k, max_size=30).filter(lambda rows: len({g for _, g, _ in rows}) >= 2))


@SETTINGS
@given(rows=data)
def test_gap_is_nonnegative_and_bounded(rows):
    values, codes, hd = map(np.array, zip(*rows))
    _, gaps = _cell(values, codes, ["g0", "g1", "g2", "g3"], hd)
    dice, dist = gaps
    for row in gaps:
        assert row["difference"] >= 0 and 0 <= row["ratio"] <= 1 + TINY
        if row["min_n"] >= 2:
            assert row["difference_ci_low"] <= row["difference_ci_high"]
        else:  # a group of one case has no spread to resample: no CI rather than a zero-width one
            assert np.isnan(row["difference_ci_low"]) and np.isnan(row["difference_ci_high"])
        assert 0 < row["p_value"] <= 1
        assert -1 <= row["effect_size"] <= 1
    assert dice["ser"] >= 1 - TINY
    assert dice["es_fairseg"] <= values.mean() + TINY and dice["es_fairmedfm"] <= values.mean() + TINY
    assert np.isnan(dist["ser"]) and np.isnan(dist["es_fairseg"])  # n/a for unbounded metrics


@SETTINGS
@given(rows=data, names=st.permutations(["w", "x", "y", "z"]))
def test_invariant_to_group_renaming(rows, names):
    values, codes, hd = map(np.array, zip(*rows))
    g_a, gaps_a = _cell(values, codes, ["g0", "g1", "g2", "g3"], hd)
    g_b, gaps_b = _cell(values, codes, names, hd)  # same partition, other names (and name order)
    mapping = dict(zip(["g0", "g1", "g2", "g3"], names))
    for a, b in zip(gaps_a, gaps_b):
        for key in NUMERIC:
            assert a[key] == pytest.approx(b[key], nan_ok=True, rel=TINY, abs=TINY), key
        if a["difference"] > TINY:
            assert mapping[a["worst_group"]] == b["worst_group"]
    ci_a = {(mapping[r["group"]], r["metric"]): (r["ci_low"], r["ci_high"]) for r in g_a}
    ci_b = {(r["group"], r["metric"]): (r["ci_low"], r["ci_high"]) for r in g_b}
    assert ci_a.keys() == ci_b.keys()
    for key, bounds in ci_a.items():
        assert bounds == pytest.approx(ci_b[key], nan_ok=True)


@SETTINGS
@given(value=st.floats(0, 1, allow_nan=False), sizes=st.lists(st.integers(1, 6), min_size=2, max_size=4))
@example(value=0.9999999999999999, sizes=[1, 5])  # group means differ by rounding only: SER must stay 1
def test_constant_values_have_no_gap(value, sizes):
    codes = np.repeat(np.arange(len(sizes)), sizes)
    groups, (row, _) = _cell(np.full(len(codes), value), codes, ["a", "b", "c", "d"])
    assert row["difference"] == pytest.approx(0, abs=TINY) and row["ratio"] == pytest.approx(1)
    assert row["ser"] == pytest.approx(1)
    assert row["es_fairseg"] == pytest.approx(value) and row["es_fairmedfm"] == pytest.approx(value)
    assert row["p_value"] == 1 and row["effect_size"] == 0
    names = dict(zip("abcd", sizes))
    for r in groups:
        if names[r["group"]] >= 2:
            assert r["ci_low"] == pytest.approx(r["ci_high"])
        else:  # one case: no CI
            assert np.isnan(r["ci_low"]) and np.isnan(r["ci_high"])


@SETTINGS
@given(sample=st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=8), k=st.integers(2, 4),
       seed=st.integers(0, 2**16))
def test_groups_with_identical_values_have_no_gap_and_es_is_the_mean(sample, k, seed):
    values = np.tile(sample, k)
    codes = np.repeat(np.arange(k), len(sample))
    order = np.random.default_rng(seed).permutation(len(values))  # case order must not matter
    _, (row, _) = _cell(values[order], codes[order], ["a", "b", "c", "d"])
    assert row["difference"] == pytest.approx(0, abs=TINY)
    assert row["es_fairseg"] == pytest.approx(values.mean()) and row["es_fairmedfm"] == pytest.approx(values.mean())
    assert row["p_value"] == 1


@SETTINGS
@given(means=st.lists(st.floats(0, 1, allow_nan=False), min_size=2, max_size=6))
def test_es_definitions_order(means):
    m = np.array(means)[:, None]
    g = gap_statistics(m, np.ones(len(means)), higher_is_better=np.array([True]), bounded=np.array([True]))
    assert g["difference"][0] >= 0 and g["worst"][0] == m.min()
    assert g["es_fairseg"][0] <= g["es_fairmedfm"][0] + TINY  # Σ_g |m_g − m| ≥ SD of the group means


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=data, names=st.permutations(["w", "x", "y", "z"]))
def test_full_path_invariant_to_group_renaming(rows, names):
    values, codes, _ = map(list, zip(*rows))
    ids = [f"c{i:03d}" for i in range(len(values))]
    records = pd.DataFrame({"case_id": ids, "perturbation": "clean", "severity": 0, "label": 1, "status": "OK",
                            "dice": values})
    opts = {"cohorts": ["grp"], "metrics": ["dice"], "n_boot": 60, "n_perm": 60, "min_group_size": 2}
    base = fairness_tables(records, pd.DataFrame({"case_id": ids, "grp": [f"g{c}" for c in codes]}), **opts)
    renamed = fairness_tables(records, pd.DataFrame({"case_id": ids, "grp": [names[c] for c in codes]}), **opts)
    for key in NUMERIC:
        assert base.gaps.iloc[0][key] == pytest.approx(renamed.gaps.iloc[0][key], nan_ok=True, rel=TINY, abs=TINY)
    mapping = {f"g{c}": names[c] for c in codes}
    a = base.groups.assign(group=base.groups["group"].map(mapping)).set_index("group").sort_index()
    b = renamed.groups.set_index("group").sort_index()
    pd.testing.assert_frame_equal(a[["n", "mean", "median", "worst_decile", "ci_low", "ci_high"]],
                                  b[["n", "mean", "median", "worst_decile", "ci_low", "ci_high"]])
