"""Robustness tables: metric per perturbation family and severity, paired degradation vs clean.

Unit of analysis is the case: rows of one case are averaged over repeats (and over labels unless a
label is selected) before any statistic, so several rows of a case never count as independent.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from harness.analysis.case_values import metric_directions
from harness.analysis.clusters import cluster_of
from harness.analysis.stats import bootstrap_t_interval, cluster_bootstrap_mean, group_bootstrap, studentized_ci
from harness.records import CLEAN


def higher_is_better(metric: str) -> bool:
    """Whether a larger ``metric`` is better: the registry (plugins included), else the local table.

    Raises ConfigError for a metric neither knows (e.g. a run folder scored with a plugin metric
    that is not installed here): reading it as lower-is-better would flip every sign."""
    return metric_directions([metric])[metric]


def per_case(records: pd.DataFrame, metric: str, *, label: int | Literal["mean"] = "mean",
             repeats: Literal["mean", "worst"] = "mean") -> pd.DataFrame:
    """Per-case values: columns case_id, perturbation, severity, value (OK rows only).

    ``repeats``: ``"mean"`` averages a case's rows (labels and repeats); ``"worst"`` takes the worst
    repeat of the label-averaged metric (lowest, or highest for a lower-is-better metric): a repeat
    of an attack is a random restart, and the adversary keeps its best."""
    ok = records[records["status"] == "OK"]
    if label != "mean":
        ok = ok[ok["label"] == label]
    keys = ["case_id", "perturbation", "severity"]
    if repeats == "mean":
        return ok.groupby(keys, sort=True)[metric].mean().rename("value").reset_index()
    by_repeat = ok.groupby([*keys, "repeat"] if "repeat" in ok.columns else keys, sort=True)[metric].mean()
    worst = by_repeat.groupby(level=keys, sort=True)
    return (worst.min() if higher_is_better(metric) else worst.max()).rename("value").reset_index()


def bootstrap_mean_ci(values: np.ndarray, *, n_boot: int = 1000, level: float = 0.95,
                      seed: int = 0, clusters: np.ndarray | None = None) -> tuple[float, float]:
    """Bootstrap-t CI of the mean, limited to the values' range ((nan, nan) for fewer than 2 values).

    The studentised interval (:func:`harness.analysis.stats.studentized_ci`) rather than the
    percentile one, which under-covers small skewed samples (a mean regression over 5 normal
    differences: 82 % instead of 95 %; docs/statistics.md §3). ``clusters`` (one id per value, e.g.
    the patient): the mean stays the mean over values, but whole clusters are resampled and the
    standard error is cluster-robust (:func:`harness.analysis.stats.cluster_bootstrap_mean`), so
    two images of one patient do not count as two independent draws; with no cluster holding two
    values the interval is the one without clusters, with a single cluster (nan, nan).
    """
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return (float("nan"), float("nan"))
    if clusters is not None and len(np.unique(clusters)) < len(values):
        if len(np.unique(clusters)) < 2:  # one patient: nothing says how another would score
            return (float("nan"), float("nan"))
        estimate, se, boot, boot_ses = cluster_bootstrap_mean(values, np.asarray(clusters), n_boot=n_boot,
                                                              rng=np.random.default_rng(seed))
        lo, hi = bootstrap_t_interval(np.array([estimate]), np.array([se]), boot[:, None], boot_ses[:, None],
                                      limits=(values.min(keepdims=True), values.max(keepdims=True)), level=level)
        return float(lo[0]), float(hi[0])
    x = values[:, None]
    means, ses, _ = group_bootstrap([x], n_boot=n_boot, rng=np.random.default_rng(seed))
    lo, hi = studentized_ci(x, means[:, 0], ses[:, 0], level=level)
    return float(lo[0]), float(hi[0])


def robustness_table(records: pd.DataFrame, metrics: list[str], *, label: int | Literal["mean"] = "mean",
                     n_boot: int = 1000, seed: int = 0, clusters: pd.Series | None = None) -> pd.DataFrame:
    """One row per (perturbation, severity, metric), clean first.

    Columns: n, mean, ci_low, ci_high, degradation (paired mean of how much worse than clean, in the
    metric's unit, positive = worse), degradation_ci_low/high, relative_degradation (degradation /
    clean mean; 0 when both are 0, NaN (undefined) when only the clean mean is 0). ``clusters``
    (``case_id -> cluster id``, e.g. from :func:`harness.analysis.clusters.cluster_ids`): the CIs
    resample whole clusters (:func:`bootstrap_mean_ci`); means stay over cases.
    """
    def ids(case_ids: pd.Index) -> np.ndarray | None:
        return None if clusters is None else cluster_of(case_ids.to_series(), clusters).to_numpy()

    out = []
    for metric in metrics:
        better_high = higher_is_better(metric)
        values = per_case(records, metric, label=label)
        clean = values[values["perturbation"] == CLEAN].set_index("case_id")["value"].dropna()
        clean_mean = float(clean.mean()) if len(clean) else float("nan")
        for (pert, sev), group in values.groupby(["perturbation", "severity"], sort=False):
            group = group.dropna(subset=["value"])  # a missing value leaves that case out of this metric only
            v = group["value"].to_numpy()
            lo, hi = bootstrap_mean_ci(v, n_boot=n_boot, seed=seed, clusters=ids(pd.Index(group["case_id"])))
            paired = group.set_index("case_id")["value"].align(clean, join="inner")
            diff = (paired[1] - paired[0]) if better_high else (paired[0] - paired[1])
            d_lo, d_hi = bootstrap_mean_ci(diff.to_numpy(), n_boot=n_boot, seed=seed, clusters=ids(diff.index))
            degradation = float(diff.mean()) if len(diff) else float("nan")
            # relative to the clean mean of the same (paired) cases, as the degradation gate divides
            base = float(paired[1].mean()) if len(diff) else clean_mean
            out.append({"perturbation": pert, "severity": int(sev), "metric": metric, "n": len(v),
                        "mean": float(v.mean()) if len(v) else float("nan"), "ci_low": lo, "ci_high": hi,
                        "degradation": degradation, "degradation_ci_low": d_lo, "degradation_ci_high": d_hi,
                        "relative_degradation": (degradation / abs(base) if base
                                                 else 0.0 if degradation == 0 else float("nan"))})
    table = pd.DataFrame(out)
    if len(table):
        table["_clean_first"] = table["perturbation"] != CLEAN
        table = table.sort_values(["metric", "_clean_first", "perturbation", "severity"]).drop(columns="_clean_first")
    return table.reset_index(drop=True)


def corruption_error(table: pd.DataFrame, *, metric: str = "dice") -> pd.DataFrame:
    """ImageNet-C style aggregate per family for a [0, 1] higher-is-better metric.

    ``ce`` = mean over severities of the error (1 - metric); ``relative_ce`` = mean over severities of
    (error - clean error) over the same cases (the paired degradation: an item the model failed on
    takes its case out of both sides). The ``mean`` row averages families (the unnormalised mCE).
    """
    rows = table[table["metric"] == metric]
    clean = rows[rows["perturbation"] == CLEAN]
    if clean.empty:
        return pd.DataFrame(columns=["perturbation", "ce", "relative_ce"])
    out = []
    for pert, group in rows[rows["perturbation"] != CLEAN].groupby("perturbation", sort=True):
        err = 1.0 - group["mean"].to_numpy()
        out.append({"perturbation": pert, "ce": float(err.mean()), "relative_ce": float(group["degradation"].mean())})
    frame = pd.DataFrame(out)
    if len(frame):
        frame = pd.concat([frame, pd.DataFrame([{"perturbation": "mean", "ce": frame["ce"].mean(),
                                                 "relative_ce": frame["relative_ce"].mean()}])])
    return frame.reset_index(drop=True)
