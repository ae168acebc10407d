"""Fairness: metric per cohort group, gaps between groups, and whether a gap is real.

Group tables come from fairlearn's :class:`~fairlearn.metrics.MetricFrame` (the attribute is the
sensitive feature; label × perturbation × severity are control features, so fairness is measured
*under* every perturbation too). On top of the numbers FairSeg / FairMedFM report (gap, ratio,
SER, ES-Dice) we add what a reviewer needs to trust them: group-stratified bootstrap CIs, a
permutation test of the gap per attribute, Holm/BH correction over every test in the result,
effect sizes with CIs, and a minimum group size below which nothing is concluded (or, with
``small_groups="exclude"``, below which a group is reported but left out of the comparison). The
statistical analysis plan is ``docs/statistics.md``.

>>> import pandas as pd
>>> rng = np.random.default_rng(0)
>>> records = pd.DataFrame({"case_id": [f"c{i}" for i in range(40)], "perturbation": "clean",
...                         "severity": 0, "label": 1, "status": "OK", "dice": rng.uniform(0.8, 0.9, 40)})
>>> cases = pd.DataFrame({"case_id": [f"c{i}" for i in range(40)], "sex": ["F", "M"] * 20})
>>> result = fairness_tables(records, cases, cohorts=["sex"], metrics=["dice"], n_boot=200, n_perm=200)
>>> result.gaps[["attribute", "metric", "n_groups"]].to_dict("records")
[{'attribute': 'sex', 'metric': 'dice', 'n_groups': 2}]
"""
from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame

from harness.analysis.case_values import case_values, cells, metric_directions
from harness.analysis.clusters import by_cluster, cluster_ids, clustering_note, unclustered_note
from harness.analysis.cohorts import BinSpec, auto_skipped, resolve_cohorts
from harness.analysis.fairness_cell import GAP_STATS, CellOptions, Test, compare_groups
from harness.analysis.fairness_gates import fairness_gates
from harness.analysis.stats import Correction, adjust_pvalues
from harness.errors import ConfigError
from harness.options import CORRECTIONS, FAIRNESS_TESTS, SMALL_GROUP_POLICIES, must_be_one_of

__all__ = ["FairnessResult", "fairness_gates", "fairness_tables", "resolve_cohorts"]

MAX_PERM_CAP = 200_000
CONTROL = ["label", "perturbation", "severity"]
GROUP_COLUMNS = ["attribute", "group", "label", "perturbation", "severity", "metric", "n", "mean", "median",
                 "worst_decile", "ci_low", "ci_high", "small"]
GAP_COLUMNS = (["attribute", "label", "perturbation", "severity", "metric", "higher_is_better", "bounded", "n",
                "n_groups", "min_n", "small_groups", "excluded_groups", "best_group", "best_value", "worst_group",
                "worst_value", "worst_value_ci_low", "worst_value_ci_high"]
               + [f"{k}{s}" for k in GAP_STATS for s in ("", "_ci_low", "_ci_high")]
               + ["effect_size", "effect_size_ci_low", "effect_size_ci_high", "test", "statistic", "p_value",
                  "n_permutations", "p_adjusted", "correction"])


@dataclass(frozen=True)
class FairnessResult:
    """Group and gap tables plus the analysis plan they were computed under.

    ``groups``: one row per attribute × group × label × perturbation × severity × metric.
    ``gaps``: one row per attribute × label × perturbation × severity × metric (see GAP_COLUMNS).
    ``levels``: the groups of each attribute in display order. ``notes``: exclusions and caveats.
    ``small_groups``: ``"inconclusive"`` (groups below ``min_group_size`` are compared, and their
    attribute's gates are INCONCLUSIVE) or ``"exclude"`` (they are left out of the comparison).
    ``cluster``: the metadata column whose values were the unit of analysis ("" = the case).
    """

    groups: pd.DataFrame
    gaps: pd.DataFrame
    alpha: float
    correction: str
    test: str
    min_group_size: int
    n_boot: int
    n_perm: int
    seed: int
    label: str
    levels: dict[str, list[str]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    small_groups: str = "inconclusive"
    level: float = 0.95  # of every confidence interval in the tables
    cluster: str = ""


def _check_options(*, alpha: float, correction: str, test: str, min_group_size: int, n_boot: int,
                   n_perm: int, small_groups: str, level: float) -> None:
    problems = []
    for name, value in (("alpha", alpha), ("level", level)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"fairness analysis options are invalid: {name} must be a number, got {value!r}")
    for name, value in (("min_group_size", min_group_size), ("n_boot", n_boot), ("n_perm", n_perm)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ConfigError(f"fairness analysis options are invalid: {name} must be a whole number, got {value!r}")
    if not 0 < alpha < 1:
        problems.append(f"alpha must be in (0, 1), got {alpha!r}")
    if not 0 < level < 1:
        problems.append(f"level (of the confidence intervals) must be in (0, 1), got {level!r}")
    if correction not in CORRECTIONS:
        problems.append(f"correction {must_be_one_of(CORRECTIONS, correction)}")
    if test not in FAIRNESS_TESTS:
        problems.append(f"test {must_be_one_of(FAIRNESS_TESTS, test)}")
    if min_group_size < 2:  # a group of one has no spread: the Welch statistic would give it all the weight
        problems.append(f"min_group_size must be >= 2 (a group of one case has no variance to test), "
                        f"got {min_group_size!r}")
    if small_groups not in SMALL_GROUP_POLICIES:
        problems.append(f"small_groups {must_be_one_of(SMALL_GROUP_POLICIES, small_groups)}")
    if n_boot < 0 or n_perm < 1:
        problems.append(f"need n_boot >= 0 and n_perm >= 1, got {n_boot!r}, {n_perm!r}")
    if problems:
        raise ConfigError("fairness analysis options are invalid:", problems=problems)


def _stats_function(x: np.ndarray, higher: np.ndarray):
    """MetricFrame metric: y_true carries row positions into ``x``; returns (4, M) n/mean/median/q."""
    q = np.where(higher, 0.1, 0.9)  # worst decile: 10th percentile (90th for lower-is-better)

    def group_stats(y_true, y_pred) -> np.ndarray:
        rows = x[np.asarray(y_true, dtype=int)]
        out = np.full((4, x.shape[1]), np.nan)
        for j in range(x.shape[1]):
            v = rows[:, j][~np.isnan(rows[:, j])]
            out[0, j] = v.size
            if v.size:
                out[1, j], out[2, j], out[3, j] = v.mean(), np.median(v), np.quantile(v, q[j])
        return out

    return group_stats


def _group_table(frame: pd.DataFrame, attribute: str, metrics: list[str], higher: np.ndarray) -> pd.DataFrame:
    """n, mean, median, worst decile per group × control cell, via fairlearn MetricFrame."""
    x = frame[metrics].to_numpy(dtype=float)
    mf = MetricFrame(metrics={"stats": _stats_function(x, higher)}, y_true=np.arange(len(frame)),
                     y_pred=np.zeros(len(frame)), sensitive_features=frame[attribute].astype(str).rename(attribute),
                     control_features=frame[CONTROL])
    rows = []
    for key, arr in mf.by_group["stats"].items():
        if not isinstance(arr, np.ndarray):
            continue  # a group absent from this cell
        label, pert, sev, group = key
        for j, metric in enumerate(metrics):
            if arr[0, j] == 0:
                continue
            rows.append({"attribute": attribute, "group": str(group), "label": str(label), "perturbation": str(pert),
                         "severity": int(sev), "metric": metric, "n": int(arr[0, j]), "mean": arr[1, j],
                         "median": arr[2, j], "worst_decile": arr[3, j]})
    return pd.DataFrame(rows)


def _cell_seed(seed: int, *parts: object) -> np.random.Generator:
    key = "/".join(str(p) for p in parts)
    return np.random.default_rng([seed, zlib.crc32(key.encode("utf-8"))])


def fairness_tables(records: pd.DataFrame, cases: pd.DataFrame, *, cohorts: Sequence[str] | str,
                    metrics: Sequence[str], bins: Mapping[str, BinSpec] | None = None, min_group_size: int = 10,
                    alpha: float = 0.05, correction: Correction = "holm", test: Test = "permutation",
                    n_boot: int = 1000, n_perm: int = 2000, seed: int = 0, by_perturbation: bool = True,
                    label: int | str = "mean", directions: dict[str, bool] | None = None,
                    level: float = 0.95, small_groups: str = "inconclusive",
                    cluster: str | None = None) -> FairnessResult:
    """Group tables, gaps and tests for every cohort attribute (see module docstring).

    ``label``: ``"mean"`` (mean over foreground labels per case), ``"each"`` (labels separately, all
    in one correction family) or a label id/name. ``by_perturbation=False`` analyses clean rows only.
    ``n_boot=0`` skips CIs (NaN). The correction family is every test in the result.
    ``small_groups="exclude"`` leaves groups below ``min_group_size`` out of each gap, test and effect
    size (their own means and CIs are still reported; ``excluded_groups`` lists them), so an
    attribute can be decided on its adequately sized groups. ``cluster`` (a metadata column such as
    a patient id): the unit of analysis is the cluster, not the case (``harness.analysis.clusters``):
    n, means, CIs and tests count patients, each the mean of its cases in the group and cell.
    """
    _check_options(alpha=alpha, correction=correction, test=test, min_group_size=min_group_size,
                   n_boot=n_boot, n_perm=n_perm, small_groups=small_groups, level=level)
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)  # one metric's name is not its letters
    direction = metric_directions(metrics, overrides=directions)
    higher = np.array([direction[m] for m in metrics])
    values = case_values(records, metrics=metrics, label=label, by_perturbation=by_perturbation)
    groups_by_attr = resolve_cohorts(cases, cohorts, bins=bins)
    finite = values[metrics].to_numpy(dtype=float)
    bounded = higher & np.array([bool(np.all((c[~np.isnan(c)] >= 0) & (c[~np.isnan(c)] <= 1))) for c in finite.T])
    notes: list[str] = []
    unknown = sorted(set(values["case_id"]) - set(next(iter(groups_by_attr.values())).index)) if groups_by_attr else []
    if unknown:
        notes.append(f"{len(unknown)} case(s) in the records are not in the case table and are left out "
                     f"(e.g. {unknown[0]})")

    if cohorts == "auto" and (skipped := auto_skipped(cases)):
        notes.append(f"cohorts = \"auto\" analysed {', '.join(groups_by_attr) or 'no attribute'}; left out: "
                     f"{', '.join(skipped)} (name attributes in [suite].cohorts to choose them)")
    notes += _aliases(groups_by_attr)
    clusters = cluster_ids(cases, cluster) if cluster else None
    if clusters is None and (loose := unclustered_note(values, cases)):
        notes.append(loose)
    plan = []  # (attribute, frame with codes)
    for attribute, labels in groups_by_attr.items():
        frame = values.join(labels.rename(attribute), on="case_id")
        known = frame["case_id"].isin(labels.index)
        n_missing = frame.loc[frame[attribute].isna() & known, "case_id"].nunique()
        if n_missing:
            notes.append(f"{attribute}: {n_missing} case(s) without a value are left out of this attribute")
        frame = frame[frame[attribute].notna()].reset_index(drop=True)
        if clusters is not None:
            if note := clustering_note(frame, clusters, cluster=str(cluster), group=attribute):
                notes.append(note)
            frame = by_cluster(frame, clusters, groups=[attribute], metrics=metrics)
        plan.append((attribute, list(labels.cat.categories), frame))
    n_tests = sum(len(metrics) * int((f.groupby(CONTROL, observed=True)[a].nunique() >= 2).sum())
                  for a, _, f in plan if not f.empty)
    max_perm = int(min(MAX_PERM_CAP, max(n_perm, math.ceil(20 * max(n_tests, 1) / alpha))))
    opts = CellOptions(n_boot=n_boot, n_perm=n_perm, max_perm=max_perm, test=test,
                       min_group_size=min_group_size, level=level, exclude_small=small_groups == "exclude")

    group_tables, group_cis, gap_rows = [], [], []
    for attribute, levels, frame in plan:
        if frame.empty:
            continue
        group_tables.append(_group_table(frame, attribute, metrics, higher))
        codes_all = pd.Categorical(frame[attribute], categories=levels).codes
        for cell in cells(frame):
            mask = ((frame["label"] == cell[0]) & (frame["perturbation"] == cell[1])
                    & (frame["severity"] == cell[2])).to_numpy()
            g_rows, p_rows = compare_groups(frame.loc[mask, metrics].to_numpy(dtype=float), codes_all[mask],
                                            names=levels, metrics=metrics, higher=higher, bounded=bounded,
                                            opts=opts, rng=_cell_seed(seed, attribute, *cell))
            keys = {"attribute": attribute, "label": cell[0], "perturbation": cell[1], "severity": cell[2]}
            group_cis += [{**keys, **r} for r in g_rows]
            gap_rows += [{**keys, **r} for r in p_rows]

    groups = _assemble_groups(group_tables, group_cis, min_group_size=min_group_size,
                              levels={a: lv for a, lv, _ in plan}, metrics=metrics)
    gaps = pd.DataFrame(gap_rows, columns=[c for c in GAP_COLUMNS if c not in ("p_adjusted", "correction",
                                                                                 "higher_is_better", "bounded")])
    gaps["higher_is_better"] = gaps["metric"].map(direction).astype(bool)
    gaps["bounded"] = gaps["metric"].map(dict(zip(metrics, bounded))).astype(bool)
    gaps["p_adjusted"] = adjust_pvalues(gaps["p_value"].to_numpy(dtype=float), method=correction)
    gaps["correction"] = correction
    if n_tests and max_perm == MAX_PERM_CAP and test == "permutation":
        notes.append(f"{n_tests} tests: permutation p-values are resolved down to 1/{MAX_PERM_CAP + 1}")
    return FairnessResult(groups=groups, gaps=gaps[GAP_COLUMNS].reset_index(drop=True), alpha=alpha,
                          correction=correction, test=test, min_group_size=min_group_size, n_boot=n_boot,
                          n_perm=n_perm, seed=seed, label=str(label),
                          levels={a: lv for a, lv, _ in plan}, notes=tuple(notes), small_groups=small_groups,
                          level=level, cluster=cluster or "")


def _aliases(groups_by_attr: dict[str, pd.Series]) -> list[str]:
    """Notes for attributes that split the cases into the same groups (e.g. device ≡ site): each
    is tested, so the correction family counts the same comparison twice."""
    seen: dict[tuple, str] = {}
    notes = []
    for name, labels in groups_by_attr.items():
        if labels.dropna().nunique() < 2:  # one group: nothing is tested, so nothing is counted twice
            continue
        key = tuple(pd.factorize(labels.astype("object"), use_na_sentinel=True)[0])
        if key in seen:
            notes.append(f"{name} defines the same groups as {seen[key]} (aliased attributes; consider listing one)")
        else:
            seen[key] = name
    return notes


def _assemble_groups(tables: list[pd.DataFrame], cis: list[dict], *, min_group_size: int,
                     levels: dict[str, list[str]], metrics: list[str]) -> pd.DataFrame:
    keys = ["attribute", "group", "label", "perturbation", "severity", "metric"]
    if not tables or all(t.empty for t in tables):
        return pd.DataFrame(columns=GROUP_COLUMNS)
    table = pd.concat([t for t in tables if not t.empty], ignore_index=True)
    ci = pd.DataFrame(cis, columns=keys + ["ci_low", "ci_high"])
    table = table.merge(ci, on=keys, how="left")
    table["small"] = table["n"] < min_group_size
    rank = {(a, g): i for a, lv in levels.items() for i, g in enumerate(lv)}
    order = pd.DataFrame({
        "a": table["attribute"].map({a: i for i, a in enumerate(levels)}),
        "l": table["label"], "dirty": table["perturbation"] != "clean", "p": table["perturbation"],
        "s": table["severity"], "m": table["metric"].map({m: i for i, m in enumerate(metrics)}),
        "g": [rank.get(k, -1) for k in zip(table["attribute"], table["group"])]})
    table = table.loc[order.sort_values(list(order.columns), kind="stable").index]
    return table[GROUP_COLUMNS].reset_index(drop=True)
