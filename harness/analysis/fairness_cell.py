"""One analysis cell: the groups of one attribute under one (label, perturbation, severity).

:func:`compare_groups` takes the per-case values ``(n, M)`` and group codes of a cell and returns
the per-group CIs and the per-metric gap row (statistics, CIs, test, effect size). Metrics with
missing values for some cases are analysed on their own complete cases (partitioned by missing
pattern, each partition vectorised). Groups below ``min_group_size`` are compared with the others
and listed in ``small_groups``, or, with ``exclude_small``, given their CIs but left out of the gap,
test and effect size and listed in ``excluded_groups``.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from harness.analysis import stats

Test = Literal["permutation", "kruskal"]
GAP_STATS = ("difference", "ratio", "ser", "es_fairseg", "es_fairmedfm")


@dataclass(frozen=True)
class CellOptions:
    n_boot: int
    n_perm: int
    max_perm: int
    test: Test
    min_group_size: int
    level: float = 0.95
    exclude_small: bool = False  # leave groups below min_group_size out of gap, test and effect size


def _nan_row(metric: str, n: int, names: list[str], sizes: list[int], small: list[str],
             excluded: list[str]) -> dict:
    row = {"metric": metric, "n": n, "n_groups": len(names), "min_n": min(sizes, default=0),
           "small_groups": ", ".join(small), "excluded_groups": ", ".join(excluded), "test": "none",
           "statistic": np.nan, "p_value": np.nan,
           "n_permutations": 0, "best_group": names[0] if names else "", "worst_group": names[0] if names else ""}
    for key in ("best_value", "worst_value", "worst_value_ci_low", "worst_value_ci_high", "effect_size",
                "effect_size_ci_low", "effect_size_ci_high", *GAP_STATS):
        row[key] = np.nan
    for key in GAP_STATS:
        row[f"{key}_ci_low"] = row[f"{key}_ci_high"] = np.nan
    return row


def _effect_sizes(groups: list[np.ndarray], indices: list[np.ndarray], best: np.ndarray, worst: np.ndarray,
                  sign: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rank-biserial effect (best vs worst group, oriented so positive = best is better)."""
    n_metrics = len(best)
    point = np.empty(n_metrics)
    boot = np.empty((indices[0].shape[0] if indices else 0, n_metrics))
    for j in range(n_metrics):
        b, w, s = best[j], worst[j], sign[j]
        point[j] = stats.rank_biserial(s * groups[b][:, j], s * groups[w][:, j])
        if indices:
            boot[:, j] = stats.rank_biserial(s * groups[b][indices[b], j], s * groups[w][indices[w], j])
    return point, boot


def _analyse_partition(x: np.ndarray, codes: np.ndarray, names: list[str], metrics: list[str],
                       higher: np.ndarray, bounded: np.ndarray, opts: CellOptions,
                       rng: np.random.Generator) -> tuple[list[dict], list[dict]]:
    present = np.unique(codes)
    local = np.searchsorted(present, codes)
    gnames = [names[g] for g in present]
    groups = [x[local == g] for g in range(len(present))]
    sizes = [len(g) for g in groups]
    small = [f"{gnames[g]} (n={sizes[g]})" for g in range(len(groups)) if sizes[g] < opts.min_group_size]
    means = np.stack([g.mean(axis=0) for g in groups])  # (G, M)
    group_rows: list[dict] = []
    if opts.n_boot > 0:
        # Draw groups in order of their first case, not of their names: relabelling-invariant.
        first = np.argsort([np.flatnonzero(local == g)[0] for g in range(len(groups))], kind="stable")
        drawn = stats.group_bootstrap([groups[g] for g in first], n_boot=opts.n_boot, rng=rng)
        back = np.argsort(first)
        boot_means, boot_ses = drawn[0][:, back], drawn[1][:, back]
        indices = [drawn[2][k] for k in back]
    else:  # no CIs: NaN replicates make every CI NaN
        boot_means = np.full((1, len(groups), len(metrics)), np.nan)
        boot_ses, indices = np.zeros_like(boot_means), []
    ci = np.full((2, len(groups), len(metrics)), np.nan)
    if opts.n_boot > 0:
        for g, xg in enumerate(groups):
            ci[0, g], ci[1, g] = stats.studentized_ci(xg, boot_means[:, g], boot_ses[:, g], level=opts.level)
    ci = np.where(bounded, np.clip(ci, 0.0, 1.0), ci)
    ci[:, [s < 2 for s in sizes]] = np.nan  # one case (cluster): resampling it gives a zero-width interval, not a CI
    for g in range(len(groups)):
        for j, metric in enumerate(metrics):
            group_rows.append({"group": gnames[g], "metric": metric, "ci_low": ci[0, g, j], "ci_high": ci[1, g, j]})
    excluded: list[str] = []
    if opts.exclude_small and small:  # compare the adequately sized groups only
        kept = [g for g in range(len(groups)) if sizes[g] >= opts.min_group_size]
        excluded, small = small, []
        in_kept = np.isin(local, kept)
        x, local = x[in_kept], np.searchsorted(kept, local[in_kept])
        gnames, groups, sizes = [gnames[g] for g in kept], [groups[g] for g in kept], [sizes[g] for g in kept]
        means, boot_means, ci = means[kept], boot_means[:, kept], ci[:, kept]
        indices = [indices[g] for g in kept] if indices else []
    if len(groups) < 2:
        return group_rows, [_nan_row(m, int(x.shape[0]), gnames, sizes, small, excluded) for m in metrics]

    weights = np.asarray(sizes, dtype=float)
    point = stats.gap_statistics(means, weights, higher_is_better=higher, bounded=bounded)
    boot = stats.gap_statistics(boot_means, weights, higher_is_better=higher, bounded=bounded)
    sign = np.where(higher, 1.0, -1.0)
    best = np.argmax(means * sign, axis=0)
    worst = np.argmin(means * sign, axis=0)
    effect, effect_boot = _effect_sizes(groups, indices, best, worst, sign)
    if opts.test == "permutation":
        statistic, p, used = stats.permutation_gap_test(x, local, n_perm=opts.n_perm, max_perm=opts.max_perm, rng=rng)
    else:
        statistic, p = stats.kruskal_test(x, local)
        used = np.zeros(len(metrics), dtype=int)
    gap_rows = []
    for j, metric in enumerate(metrics):
        row = {"metric": metric, "n": int(x.shape[0]), "n_groups": len(groups), "min_n": min(sizes),
               "small_groups": ", ".join(small), "excluded_groups": ", ".join(excluded),
               "best_group": gnames[best[j]], "best_value": means[best[j], j],
               "worst_group": gnames[worst[j]], "worst_value": means[worst[j], j],
               "worst_value_ci_low": ci[0, worst[j], j], "worst_value_ci_high": ci[1, worst[j], j]}
        with_ci = opts.n_boot > 0 and min(sizes) >= 2  # a group of one has no sampling spread to resample
        for key in GAP_STATS:
            row[key] = point[key][j]
            lo, hi = stats.percentile_ci(boot[key][:, j], level=opts.level) if with_ci else (np.nan, np.nan)
            row[f"{key}_ci_low"], row[f"{key}_ci_high"] = lo, hi
        row["effect_size"] = effect[j]
        lo, hi = stats.percentile_ci(effect_boot[:, j], level=opts.level) if with_ci else (np.nan, np.nan)
        row["effect_size_ci_low"], row["effect_size_ci_high"] = lo, hi
        row.update(test=opts.test, statistic=statistic[j], p_value=p[j], n_permutations=int(used[j]))
        gap_rows.append(row)
    return group_rows, gap_rows


def compare_groups(x: np.ndarray, codes: np.ndarray, *, names: Sequence[str], metrics: Sequence[str],
                   higher: np.ndarray, bounded: np.ndarray, opts: CellOptions,
                   rng: np.random.Generator) -> tuple[list[dict], list[dict]]:
    """Group CIs and gap rows for one cell; ``codes`` index ``names`` (−1 = no group, dropped)."""
    keep = codes >= 0
    x, codes = x[keep], codes[keep]
    complete = ~np.isnan(x)
    patterns, inverse = np.unique(complete.T, axis=0, return_inverse=True)
    group_rows: list[dict] = []
    gap_rows: list[dict] = []
    for k, pattern in enumerate(patterns):
        cols = np.flatnonzero(np.ravel(inverse) == k)
        if not pattern.any():
            continue  # no case has a value for these metrics in this cell
        g_rows, p_rows = _analyse_partition(x[pattern][:, cols], codes[pattern], list(names),
                                            [metrics[int(c)] for c in cols], higher[cols], bounded[cols], opts, rng)
        group_rows += g_rows
        gap_rows += p_rows
    return group_rows, gap_rows
