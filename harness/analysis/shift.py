"""Real site / scanner shift: per-site performance against a reference site, and its evidence.

Unit of analysis: the case. Clean rows (``perturbation == "clean"``) of the records are reduced to
one value per case — repeats averaged, foreground labels averaged per case (``label="mean"``) unless
one label is selected — and joined on ``case_id`` with the case table's site attribute. Cases with
no site value are left out.

* :func:`site_table` — per site: n, mean (bootstrap-t CI), median (percentile CI); the **drop**
  against the reference site (reference mean − site mean for higher-is-better metrics, site −
  reference otherwise, so positive = worse) with an unpaired bootstrap CI, the rank-biserial effect
  size (positive = the site tends to be worse), and a two-sided unpaired test (studentized
  permutation test of equal means, or Mann–Whitney U) with Holm/BH adjustment across the non-reference
  sites of each metric. Sites below ``min_cases`` are reported but not tested.
* The reference site is the suite's ``reference_site``, else the largest site (ties: first by name).
* :func:`family_matches` — which synthetic family/severity, applied to the reference site's cases,
  degrades the metric by as much as each real site drop (and each family's equivalent severity).
* :func:`shift_evidence` — all of the above plus image-statistics evidence
  (:mod:`harness.analysis.quality`); :func:`run_shift_evidence` builds it from a run folder.
* Gate ``site_drop`` (:func:`site_drop_gate`): one result per site; :func:`check_config` validates
  it and the suite's site keys before the first model call; :func:`write_quality` writes quality.csv.
"""
from __future__ import annotations

import json
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats as _st

from harness import atomic
from harness.analysis.case_values import CLEAN, case_values, metric_directions
from harness.analysis.clusters import by_cluster, cluster_ids
from harness.analysis.stats import (
    Correction,
    adjust_pvalues,
    bootstrap_t_interval,
    group_bootstrap,
    percentile_ci,
    rank_biserial,
    studentized_ci,
)
from harness.errors import ConfigError
from harness.gates import GateResult, SuiteSetting, exceeds, gate_check, key_problems, label_problems, with_defaults
from harness.metrics import value_range
from harness.options import must_be_one_of
from harness.tomlread import tomllib

ShiftTest = Literal["permutation", "mannwhitney"]
TESTS = ("permutation", "mannwhitney")
SCANNER_ATTRIBUTES = ("scanner", "device", "vendor", "manufacturer")
MAX_PERM_CAP = 200_000
TABLE_COLUMNS = ["attribute", "site", "metric", "reference", "is_reference", "n", "mean", "ci_low", "ci_high",
                 "median", "median_ci_low", "median_ci_high", "drop", "drop_ci_low", "drop_ci_high",
                 "relative_drop", "effect_size", "p_value", "p_adjusted", "test", "correction",
                 "higher_is_better"]


def _label(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or str(value).strip() == "":
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def has_sites(cases: pd.DataFrame, attribute: str) -> bool:
    """Whether the cases (metadata or a run's case table) hold two or more values of ``attribute``."""
    return attribute in cases.columns and site_labels(cases, attribute).nunique() >= 2


def _cases_without(cases: pd.DataFrame, attribute: str) -> int:
    """How many cases have no value of ``attribute`` (left out of the site analysis)."""
    if attribute not in cases.columns:
        return 0
    return int(sum(_label(v) is None for v in cases[attribute]))


def site_labels(cases: pd.DataFrame, attribute: str) -> pd.Series:
    """case_id → site name (str) for cases with a value of ``attribute``."""
    frame = cases.set_index("case_id") if "case_id" in cases.columns else cases
    if attribute not in frame.columns:
        raise ConfigError(f"site attribute {attribute!r} is not in the case metadata; columns: "
                          f"{', '.join(map(str, frame.columns))}")
    labels = pd.Series([_label(v) for v in frame[attribute]], index=frame.index.astype(str), dtype=object)
    return labels.dropna().rename(attribute)


def choose_reference(sizes: pd.Series, requested: str | None = None, *, attribute: str = "site") -> str:
    """``requested`` when given (ConfigError if absent), else the largest group (ties: by name)."""
    if requested:
        if requested not in sizes.index:
            raise ConfigError(f"reference site {requested!r} is not a value of {attribute!r}; values: "
                              f"{', '.join(map(str, sizes.index))}")
        return str(requested)
    order = sorted(sizes.items(), key=lambda kv: (-int(kv[1]), str(kv[0])))
    return str(order[0][0])


def max_permutations(n_perm: int, n_tests: int, alpha: float) -> int:
    """Sequential-permutation cap resolving p-values a Holm correction over ``n_tests`` needs."""
    return int(min(MAX_PERM_CAP, max(n_perm, math.ceil(20 * max(n_tests, 1) / alpha))))


def _welch_t(xa: np.ndarray, xb: np.ndarray) -> np.ndarray:
    """Welch t of mean(a) − mean(b) along axis −2 (zero spread: 0 when the means agree, else ±inf)."""
    diff = xa.mean(axis=-2) - xb.mean(axis=-2)
    se = np.sqrt(xa.var(axis=-2, ddof=1) / xa.shape[-2] + xb.var(axis=-2, ddof=1) / xb.shape[-2])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(se > 0, diff / np.where(se > 0, se, 1.0), np.where(diff == 0, 0.0, np.sign(diff) * np.inf))


def welch_permutation_test(a: np.ndarray, b: np.ndarray, *, n_perm: int, rng: np.random.Generator,
                           max_perm: int | None = None, min_exceed: int = 20) -> np.ndarray:
    """Two-sided studentized permutation test of equal means, per column of ``a`` ``(n_a, M)`` and
    ``b`` ``(n_b, M)`` (n ≥ 2 each): the Welch t is permuted, which keeps the test valid when the
    samples differ in spread and size (Janssen 1997; Chung & Romano 2013), unlike permuting the raw
    difference of means. ``p = (h + 1) / (L + 1)``; columns with fewer than ``min_exceed``
    exceedances keep drawing up to ``max_perm`` (sequential Monte Carlo)."""
    x = np.vstack([a, b])
    n, n_a, n_metrics = len(x), len(a), x.shape[1]
    t_obs = np.abs(_welch_t(a, b))
    tol = 1e-10 * np.maximum(1.0, np.where(np.isfinite(t_obs), t_obs, 1.0))
    max_perm = max(n_perm, max_perm or n_perm)
    exceed = np.zeros(n_metrics, dtype=np.int64)
    used = np.zeros(n_metrics, dtype=np.int64)
    active = np.ones(n_metrics, dtype=bool)
    step = max(1, 2_000_000 // max(1, n * n_metrics))
    while active.any():
        limit = n_perm if used.max() < n_perm else max_perm
        size = int(min(step, limit - used[active].max()))
        perms = rng.permuted(np.broadcast_to(np.arange(n), (size, n)), axis=1)
        xp = x[perms]  # (size, n, M)
        t = np.abs(_welch_t(xp[:, :n_a], xp[:, n_a:]))
        exceed[active] += (t[:, active] >= t_obs[active] - tol[active]).sum(axis=0)
        used[active] += size
        if used[active].max() >= n_perm:
            active &= (exceed < min_exceed) & (used < max_perm)
    return (exceed + 1.0) / (used + 1.0)


def unpaired_difference(a: np.ndarray, b: np.ndarray, *, higher_is_better: np.ndarray,
                        test: ShiftTest = "permutation", n_boot: int = 1000, n_perm: int = 2000,
                        max_perm: int | None = None, level: float = 0.95,
                        rng: np.random.Generator) -> dict[str, np.ndarray]:
    """How much worse sample ``b`` ``(n_b, M)`` is than ``a`` ``(n_a, M)``, per metric column.

    ``drop`` = mean(a) − mean(b) (higher-is-better metrics) or mean(b) − mean(a); ``drop_ci_*`` an
    unpaired bootstrap-t interval (each sample resampled within itself, Welch standard error, limited
    to the differences the values allow); ``effect_size`` the
    rank-biserial correlation oriented so that positive = b tends to be worse; ``p_value`` two-sided
    (``permutation``: :func:`welch_permutation_test` of equal means; ``mannwhitney``: U test, all
    values tied → 1).
    Fewer than 2 values in a sample → NaN CI and p.
    """
    sign = np.where(np.asarray(higher_is_better, dtype=bool), 1.0, -1.0)
    drop = sign * (a.mean(axis=0) - b.mean(axis=0))
    nan = np.full(a.shape[1], np.nan)
    out = {"drop": drop, "drop_ci_low": nan.copy(), "drop_ci_high": nan.copy(), "effect_size": nan.copy(),
           "p_value": nan.copy()}
    if len(a) < 2 or len(b) < 2:
        return out
    out["effect_size"] = sign * rank_biserial(a.T, b.T)
    if n_boot > 0:
        means, ses, _ = group_bootstrap([a, b], n_boot=n_boot, rng=rng)
        se = np.hypot(a.std(axis=0, ddof=1) / np.sqrt(len(a)), b.std(axis=0, ddof=1) / np.sqrt(len(b)))
        limits = np.stack([sign * (a.min(axis=0) - b.max(axis=0)), sign * (a.max(axis=0) - b.min(axis=0))])
        out["drop_ci_low"], out["drop_ci_high"] = bootstrap_t_interval(
            drop, se, sign * (means[:, 0] - means[:, 1]), np.hypot(ses[:, 0], ses[:, 1]),
            limits=(limits.min(axis=0), limits.max(axis=0)), level=level)
    if test == "permutation":
        out["p_value"] = welch_permutation_test(a, b, n_perm=n_perm, rng=rng, max_perm=max_perm)
    elif test == "mannwhitney":
        p = np.ones(a.shape[1])
        for m in range(a.shape[1]):
            if np.ptp(np.concatenate([a[:, m], b[:, m]])) > 0:
                p[m] = float(_st.mannwhitneyu(a[:, m], b[:, m], alternative="two-sided").pvalue)
        out["p_value"] = p
    else:
        raise ConfigError(f"test {must_be_one_of(TESTS, test)}")
    return out


def _cell_values(records: pd.DataFrame, groups: pd.Series, metrics: list[str], label: int | str,
                 perturbation: str, severity: int, clusters: pd.Series | None = None) -> pd.DataFrame:
    """Per case (per cluster with ``clusters``: the mean of its complete cases at each site) of one
    cell, indexed by case (cluster) id: the metrics and ``_site``."""
    values = case_values(records, metrics=metrics, label=label, by_perturbation=perturbation != CLEAN)
    cell = values[(values["perturbation"] == perturbation) & (values["severity"] == severity)]
    rows = cell.join(groups.rename("_site"), on="case_id", how="inner").dropna(subset=[*metrics, "_site"])
    if clusters is not None and not rows.empty:  # per cluster, site and label (label="each" keeps labels apart)
        rows = by_cluster(rows, clusters, groups=["_site"], metrics=metrics)
    return rows.set_index("case_id")[[*metrics, "_site"]]


def _medians(x: np.ndarray, idx: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    meds = np.concatenate([np.median(x[idx[s:s + 200]], axis=1) for s in range(0, len(idx), 200)])
    return percentile_ci(meds, level=level)


def site_table(records: pd.DataFrame, cases: pd.DataFrame, *, attribute: str, metrics: Sequence[str],
               reference_site: str | None = None, label: int | str = "mean", perturbation: str = CLEAN,
               severity: int = 0, test: ShiftTest = "permutation", correction: Correction = "holm",
               alpha: float = 0.05, min_cases: int = 2, n_boot: int = 1000, n_perm: int = 2000,
               level: float = 0.95, seed: int = 0, cluster: str | None = None) -> pd.DataFrame:
    """One row per (metric, site), the reference site first (columns: ``TABLE_COLUMNS``).

    See the module docstring for the definitions. The correction family of a metric is its tested
    non-reference sites. Empty when no case has both a metric value and a site; a case missing any
    of ``metrics`` is left out of all of them (the rows of one table share their cases: call it per
    metric to keep such cases; a run's records hold no NaN scores). ``cluster`` (a
    metadata column such as a patient id): sites are compared by cluster (``n`` counts clusters,
    each the mean of its cases at the site; ``harness.analysis.clusters``).
    """
    if test not in TESTS:
        raise ConfigError(f"site test {must_be_one_of(TESTS, test)}")
    metrics = list(metrics)
    direction = metric_directions(metrics)
    higher = np.array([direction[m] for m in metrics])
    frame = _cell_values(records, site_labels(cases, attribute), metrics, label, perturbation, severity,
                         clusters=cluster_ids(cases, cluster) if cluster else None)
    if frame.empty:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    sizes = frame.groupby("_site").size()
    reference = choose_reference(sizes, reference_site, attribute=attribute)
    sites = [reference] + sorted(set(sizes.index) - {reference})
    xs = [frame.loc[frame["_site"] == s, metrics].to_numpy(dtype=float) for s in sites]
    rng = np.random.default_rng([seed, zlib.crc32(f"{attribute}/{perturbation}/{severity}/{label}".encode())])
    tested = [i for i, x in enumerate(xs[1:], 1) if len(x) >= max(min_cases, 2) and len(xs[0]) >= max(min_cases, 2)]
    max_perm = max_permutations(n_perm, len(tested) * len(metrics), alpha)
    means, ses, idx = group_bootstrap(xs, n_boot=max(n_boot, 1), rng=rng)
    ref_mean = xs[0].mean(axis=0)
    ranges = [value_range(metric) for metric in metrics]
    bounds = (np.array([r[0] for r in ranges]), np.array([r[1] for r in ranges]))
    rows = []
    for g, (site, x) in enumerate(zip(sites, xs)):
        lo, hi = studentized_ci(x, means[:, g], ses[:, g], level=level)
        lo, hi = np.clip(lo, bounds[0], bounds[1]), np.clip(hi, bounds[0], bounds[1])  # a mean's possible values
        m_lo, m_hi = _medians(x, idx[g], level)
        if len(x) < 2:  # one case (cluster): resampling it gives a zero-width interval, not a CI
            lo = hi = m_lo = m_hi = np.full(len(metrics), np.nan)
        if g == 0:
            diff = {"drop": np.zeros(len(metrics))}
        elif g in tested:
            diff = unpaired_difference(xs[0], x, higher_is_better=higher, test=test, n_boot=n_boot,
                                       n_perm=n_perm, max_perm=max_perm, level=level, rng=rng)
        else:
            diff = unpaired_difference(xs[0], x, higher_is_better=higher, n_boot=0, n_perm=1, rng=rng)
            diff["p_value"] = np.full(len(metrics), np.nan)
        for m, metric in enumerate(metrics):
            drop = float(diff["drop"][m])
            rows.append({"attribute": attribute, "site": site, "metric": metric, "reference": reference,
                         "is_reference": g == 0, "n": len(x), "mean": float(x[:, m].mean()),
                         "ci_low": float(lo[m]), "ci_high": float(hi[m]), "median": float(np.median(x[:, m])),
                         "median_ci_low": float(m_lo[m]), "median_ci_high": float(m_hi[m]), "drop": drop,
                         **{k: float(diff[k][m]) if k in diff else float("nan")
                            for k in ("drop_ci_low", "drop_ci_high", "effect_size", "p_value")},
                         # from a reference mean of 0 a relative drop is undefined (NaN: the gate is INCONCLUSIVE)
                         "relative_drop": (drop / abs(float(ref_mean[m])) if ref_mean[m]
                                           else 0.0 if drop == 0 else float("nan")),
                         "test": test, "correction": correction, "higher_is_better": bool(higher[m])})
    table = pd.DataFrame(rows, columns=[c for c in TABLE_COLUMNS if c != "p_adjusted"])
    table["p_adjusted"] = np.nan
    for metric in metrics:
        mask = table["metric"] == metric
        table.loc[mask, "p_adjusted"] = adjust_pvalues(table.loc[mask, "p_value"].to_numpy(float), method=correction)
    if n_boot <= 0:
        table[["ci_low", "ci_high", "median_ci_low", "median_ci_high"]] = np.nan
    return table[TABLE_COLUMNS].reset_index(drop=True)


def degradation_ladder(records: pd.DataFrame, case_ids: Sequence[str], *, metrics: Sequence[str],
                       label: int | str = "mean") -> pd.DataFrame:
    """Paired degradation (clean − perturbed, positive = worse) of each synthetic (family, severity)
    over ``case_ids``: columns family, severity, metric, n, degradation."""
    metrics = list(metrics)
    direction = metric_directions(metrics)
    values = case_values(records, metrics=metrics, label=label)
    values = values[values["case_id"].isin(set(map(str, case_ids)))]
    clean = values[values["perturbation"] == CLEAN].set_index("case_id")[metrics]
    rows = []
    for (family, sev), group in values[values["perturbation"] != CLEAN].groupby(["perturbation", "severity"]):
        pert, base = group.set_index("case_id")[metrics].align(clean, join="inner")
        for metric in metrics:
            d = (base[metric] - pert[metric]) if direction[metric] else (pert[metric] - base[metric])
            d = d.dropna()
            if len(d):
                rows.append({"family": family, "severity": int(sev), "metric": metric, "n": len(d),
                             "degradation": float(d.mean())})
    return pd.DataFrame(rows, columns=["family", "severity", "metric", "n", "degradation"])


def equivalent_severity(severities: Sequence[int], degradations: Sequence[float], drop: float) -> float:
    """Severity at which the ladder (with (0, 0) prepended) first reaches ``drop``, by linear
    interpolation; 0 for drop ≤ 0, NaN when the ladder never reaches it.

    >>> equivalent_severity([1, 3, 5], [0.02, 0.10, 0.30], 0.20)
    4.0
    """
    if drop <= 0:
        return 0.0
    s = np.concatenate([[0.0], np.asarray(severities, dtype=float)])
    d = np.concatenate([[0.0], np.asarray(degradations, dtype=float)])
    for i in range(1, len(s)):
        if d[i] >= drop:
            frac = (drop - d[i - 1]) / (d[i] - d[i - 1]) if d[i] > d[i - 1] else 1.0
            return float(s[i - 1] + max(0.0, min(1.0, frac)) * (s[i] - s[i - 1]))
    return float("nan")


def family_matches(table: pd.DataFrame, ladder: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(best match per site and metric, equivalent severity per site, metric and family).

    The best match is the (family, severity) whose degradation on the reference site's cases is
    closest to the site's real drop (``gap`` = |degradation − drop|); none (family NaN) when the site
    has no drop (drop ≤ 0) or no rung comes closer to it than no perturbation does (gap ≥ drop).
    ``drop_significant`` is True when the drop's CI lies above 0; a match without it may be chance
    (False also when the CI is unknown, NaN).
    """
    best, equivalents = [], []
    for row in table[~table["is_reference"]].itertuples(index=False):
        cand = ladder[ladder["metric"] == row.metric]
        if cand.empty:
            continue
        hit: dict[str, Any] = {"family": None, "severity": None, "degradation": float("nan"), "gap": float("nan")}
        gaps = (cand["degradation"] - row.drop).abs()
        if row.drop > 0 and gaps.min() < row.drop:  # else no drop, or no rung closer than "unperturbed"
            top = cand.loc[gaps.idxmin()]
            hit = {"family": top["family"], "severity": int(top["severity"]),
                   "degradation": float(top["degradation"]), "gap": float(gaps.min())}
        best.append({"site": row.site, "metric": row.metric, "drop": row.drop, "drop_ci_low": row.drop_ci_low,
                     "drop_ci_high": row.drop_ci_high, "drop_significant": bool(row.drop_ci_low > 0), **hit})
        for family, rungs in cand.sort_values("severity").groupby("family", sort=True):
            equivalents.append({"site": row.site, "metric": row.metric, "drop": row.drop, "family": family,
                                "equivalent_severity": equivalent_severity(rungs["severity"].tolist(),
                                                                           rungs["degradation"].tolist(), row.drop),
                                "max_degradation": float(rungs["degradation"].max())})
    return (pd.DataFrame(best, columns=["site", "metric", "drop", "drop_ci_low", "drop_ci_high", "drop_significant",
                                        "family", "severity", "degradation", "gap"]),
            pd.DataFrame(equivalents, columns=["site", "metric", "drop", "family", "equivalent_severity",
                                               "max_degradation"]))


@dataclass(frozen=True)
class ShiftEvidence:
    """Everything the report shows for one site attribute (tables are DataFrames, possibly empty)."""

    attribute: str
    reference: str
    table: pd.DataFrame
    ladder: pd.DataFrame
    matches: pd.DataFrame
    equivalents: pd.DataFrame
    quality: pd.DataFrame
    histograms: pd.DataFrame
    distances: pd.DataFrame
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        tables = {k: json.loads(getattr(self, k).to_json(orient="records"))
                  for k in ("table", "ladder", "matches", "equivalents", "quality", "histograms", "distances")}
        return {"attribute": self.attribute, "reference": self.reference, **tables, "notes": list(self.notes)}


def shift_evidence(records: pd.DataFrame, cases: pd.DataFrame, quality: pd.DataFrame | None = None, *,
                   attribute: str, metrics: Sequence[str], reference_site: str | None = None,
                   label: int | str = "mean", test: ShiftTest = "permutation",
                   correction: Correction = "holm", alpha: float = 0.05, min_cases: int = 2,
                   n_boot: int = 1000, n_perm: int = 2000, seed: int = 0,
                   cluster: str | None = None) -> ShiftEvidence:
    """Site table, synthetic-family matches and image-statistics evidence for ``attribute``
    (``cluster``: sites compared by that column's values, see :func:`site_table`)."""
    from harness.analysis import quality as q

    table = site_table(records, cases, attribute=attribute, metrics=metrics, reference_site=reference_site,
                       label=label, test=test, correction=correction, alpha=alpha, min_cases=min_cases,
                       n_boot=n_boot, n_perm=n_perm, seed=seed, cluster=cluster)
    groups = site_labels(cases, attribute)
    notes: list[str] = []
    reference = str(table["reference"].iloc[0]) if len(table) else (reference_site or "")
    ladder = degradation_ladder(records, groups.index[groups == reference], metrics=metrics, label=label)
    matches, equivalents = family_matches(table, ladder) if len(table) else (pd.DataFrame(), pd.DataFrame())
    if cluster:
        notes.append(f"sites compared by {cluster}: n counts {cluster} values, each the mean of its cases at the site")
    if ladder.empty:
        notes.append("no synthetic perturbations on the reference site's cases: no family matching")
    small = sorted(set(table.loc[table["p_value"].isna() & ~table["is_reference"], "site"])) if len(table) else []
    if small:
        notes.append(f"below {min_cases} cases, not tested: {', '.join(small)}")
    if quality is None or quality.empty:
        notes.append("no image statistics (quality.csv) for this run")
        empty = pd.DataFrame()
        return ShiftEvidence(attribute, reference, table, ladder, matches, equivalents, empty, empty, empty,
                             tuple(notes))
    return ShiftEvidence(attribute, reference, table, ladder, matches, equivalents,
                         q.quality_summary(quality, groups, reference=reference),
                         q.intensity_histograms(quality, groups),
                         q.intensity_distances(quality, groups, reference=reference), tuple(notes))


def _same_partition(a: pd.Series, b: pd.Series) -> bool:
    a, b = a.align(b, join="inner")
    return bool(len(a)) and bool((b.groupby(a).nunique() == 1).all() and (a.groupby(b).nunique() == 1).all())


def shift_attributes(cases: pd.DataFrame, site_attribute: str = "site") -> list[str]:
    """The site attribute and scanner-like attributes (scanner, device, ...) with ≥ 2 values that
    split the cases differently from an attribute already listed (device ≡ site is listed once)."""
    frame = cases.reset_index() if "case_id" not in cases.columns else cases
    lower = {str(c).lower(): str(c) for c in frame.columns}
    chosen: dict[str, pd.Series] = {}
    for attr in dict.fromkeys([site_attribute] + [lower[a] for a in SCANNER_ATTRIBUTES if a in lower]):
        if attr not in frame.columns:
            continue
        labels = site_labels(frame, attr)
        if labels.nunique() >= 2 and not any(_same_partition(labels, other) for other in chosen.values()):
            chosen[attr] = labels
    return list(chosen)


def run_shift_evidence(run_dir: Path) -> list[ShiftEvidence]:
    """:func:`shift_evidence` for each of the run's site/scanner attributes ([] when none)."""
    from harness.records import read_records

    run_dir = Path(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    head: dict[str, Any] = {}
    if (run_dir / "suite.toml").is_file():
        head = tomllib.loads((run_dir / "suite.toml").read_text(encoding="utf-8")).get("suite", {})
    cases = pd.read_csv(run_dir / "cases.csv", dtype=str, keep_default_na=False).replace("", np.nan)  # "NA" is a site
    records = read_records(run_dir / "records.csv")
    quality = pd.read_csv(run_dir / "quality.csv", dtype={"case_id": str}) if (run_dir / "quality.csv").is_file() else None
    site_attribute = head.get("site_attribute", "site")
    out = []
    for attribute in shift_attributes(cases, site_attribute):
        ref = head.get("reference_site") if attribute == site_attribute else _derived_reference(
            cases, site_attribute, attribute, head.get("reference_site"))
        out.append(shift_evidence(records, cases, quality, attribute=attribute, metrics=summary["metrics"],
                                  reference_site=ref or None, correction=head.get("correction", "holm"),
                                  alpha=float(head.get("alpha", 0.05)),
                                  min_cases=int(head.get("min_group_size", 10)),
                                  n_boot=int(head.get("n_bootstrap", 1000)),
                                  n_perm=int(head.get("n_permutations", 2000)), seed=int(summary.get("seed", 0)),
                                  cluster=str(head.get("cluster", "")).strip() or None))
    return out


def _derived_reference(cases: pd.DataFrame, site_attribute: str, attribute: str, site: str | None) -> str | None:
    """The scanner of the reference site (``site``, else the largest) when that site uses one
    scanner only (else None: the largest scanner)."""
    if site_attribute not in cases.columns or attribute not in cases.columns:
        return None
    sites = site_labels(cases, site_attribute)
    if sites.empty:
        return None
    site = site or choose_reference(sites.value_counts(), attribute=site_attribute)
    scanners = site_labels(cases, attribute).reindex(sites.index[sites == site]).dropna().unique()
    return str(scanners[0]) if len(scanners) == 1 else None


# --- gate and run hooks --------------------------------------------------------------------------

# The optional keys and what an absent one means (reference None: the suite's reference site where the
# attribute is the suite's site attribute, else that site's value of the attribute, else the largest site).
GATE_DEFAULTS: dict[str, Any] = {"warn_drop": 0.0, "alpha": SuiteSetting("alpha", 0.05),
                                 "min_cases": SuiteSetting("min_group_size", 10),
                                 "attribute": SuiteSetting("site_attribute", "site"), "reference": None,
                                 "label": "mean", "test": "permutation", "mode": "absolute"}
GATE_KEYS = {"name", "check", "metric", "max_drop", "description", *GATE_DEFAULTS}


def gate_problems(gate: dict[str, Any]) -> list[str]:
    """Problems with a ``site_drop`` gate's keys and values that need no data."""
    name = gate.get("name", "<unnamed>")
    problems = key_problems(gate, required=("name", "metric", "max_drop"), allowed=GATE_KEYS)
    for key in ("max_drop", "warn_drop"):
        if key in gate and not (isinstance(gate[key], (int, float)) and not isinstance(gate[key], bool)
                                and 0 <= gate[key] < math.inf):
            problems.append(f"gate {name!r}: {key} must be a finite number >= 0, got {gate[key]!r}")
    if all(isinstance(gate.get(k), (int, float)) and not isinstance(gate.get(k), bool) for k in ("max_drop", "warn_drop")) \
            and gate["warn_drop"] > gate["max_drop"]:
        problems.append(f"gate {name!r}: warn_drop {gate['warn_drop']:g} must not exceed max_drop {gate['max_drop']:g}")
    if "alpha" in gate and not (isinstance(gate["alpha"], (int, float)) and 0 < gate["alpha"] < 1):
        problems.append(f"gate {name!r}: alpha must be in (0, 1), got {gate['alpha']!r}")
    for key in ("attribute", "reference"):
        if key in gate and not (isinstance(gate[key], str) and gate[key]):
            problems.append(f"gate {name!r}: {key} must be a non-empty string, got {gate[key]!r}")
    problems += label_problems(gate)
    if "min_cases" in gate and not (isinstance(gate["min_cases"], int) and gate["min_cases"] >= 2):
        problems.append(f"gate {name!r}: min_cases must be an integer >= 2, got {gate['min_cases']!r}")
    if gate.get("test", "permutation") not in TESTS:
        problems.append(f"gate {name!r}: test {must_be_one_of(TESTS, gate.get('test'))}")
    if gate.get("mode", "absolute") not in ("absolute", "relative"):
        problems.append(f"gate {name!r}: mode must be 'absolute' or 'relative', got {gate.get('mode')!r}")
    return problems


def check_config(suite: Any, metadata: pd.DataFrame) -> None:
    """Before the first model call: the site gates' keys, their attributes and reference sites must
    exist in the data (ConfigError, exit 3, listing every problem)."""
    problems: list[str] = []
    wanted: list[tuple[str, str | None]] = []  # (attribute, reference) pairs: every one is checked
    if suite.reference_site or suite.site_attribute != "site":  # set in the suite: must exist in the data
        wanted.append((suite.site_attribute, suite.reference_site or None))
    for gate in suite.gates:
        if gate.get("check") != "site_drop":
            continue
        gate_problem = gate_problems(gate)
        problems += gate_problem
        if gate_problem:
            continue
        attribute = gate.get("attribute", suite.site_attribute)
        ref = gate.get("reference") or (suite.reference_site if attribute == suite.site_attribute else None)
        wanted.append((attribute, ref or None))
    frame = metadata.reset_index() if "case_id" not in metadata.columns else metadata
    missing_attributes: set[str] = set()
    for attribute, ref in dict.fromkeys(wanted):
        if attribute in missing_attributes:
            continue
        if attribute not in frame.columns:
            problems.append(f"site attribute {attribute!r} is not in the data's metadata (columns: "
                            f"{', '.join(c for c in map(str, frame.columns) if c != 'case_id')}); set "
                            "[suite].site_attribute or the gate's 'attribute'")
            missing_attributes.add(attribute)
            continue
        values = sorted(set(site_labels(frame, attribute)))
        if ref and ref not in values:
            problems.append(f"reference site {ref!r} is not a value of {attribute!r} in the data; values: "
                            f"{', '.join(values[:20])}")
    if problems:
        raise ConfigError(f"suite {suite.path}: site-shift configuration is invalid:", problems=problems)


def write_quality(out: Path, dataset: Any, suite: Any) -> Path | None:
    """Write ``<out>/quality.csv`` (image statistics per case, no model involved) when the run has
    a ``site_drop`` gate or its data has ≥ 2 values of the suite's site attribute; kept as is on
    resume when it covers every case."""
    from harness.analysis.quality import image_statistics

    metadata = dataset.metadata
    if not (has_sites(metadata, suite.site_attribute) or any(g.get("check") == "site_drop" for g in suite.gates)):
        return None
    path = Path(out) / "quality.csv"
    if path.is_file():
        done = pd.read_csv(path, dtype={"case_id": str}, usecols=["case_id"])
        if set(done["case_id"]) == set(map(str, dataset.case_ids)):
            return path
    rows = []
    for case_id in dataset.case_ids:
        try:
            rows.append(image_statistics(dataset.load(case_id)))
        except (ConfigError, OSError, ValueError) as exc:  # the run itself reports unreadable cases
            rows.append({"case_id": case_id, "error": f"{type(exc).__name__}: {exc}"})
    atomic.write_text(path, pd.DataFrame(rows).to_csv(index=False))  # whole or not at all
    return path


def _fmt(x: float) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.4g}"


def _site_outcome(value: float, p_adj: float, *, max_drop: float, warn_drop: float, alpha: float) -> tuple[str, str]:
    if not np.isfinite(value):  # NaN compares False both ways: it must never pass
        return "INCONCLUSIVE", "the drop is undefined (no finite values to compare)"
    significant = bool(np.isfinite(p_adj) and p_adj < alpha and value > 0)
    large = exceeds(value, max_drop)
    if significant and large:
        return "FAIL", "significant and above max_drop"
    if large:
        return "WARN", "above max_drop but not significant"
    if significant and exceeds(value, warn_drop):
        return "WARN", "significant, above warn_drop but within max_drop"
    return "PASS", ""


@gate_check("site_drop", validate=gate_problems, defaults=GATE_DEFAULTS,
            meaning="per site, the drop of the mean vs the reference site: FAIL when significant after correction "
                    "and above max_drop; WARN when above max_drop without significance, or significant and above "
                    "warn_drop", settings=("correction", "cluster"))
def site_drop_gate(gate: dict[str, Any], context: Any) -> list[GateResult]:
    """``check = "site_drop"``: one result per non-reference site, named ``"<name>[<site>]"``.

    FAIL when the drop (``mode = "relative"``: divided by the reference mean) exceeds ``max_drop``
    and the adjusted p-value < ``alpha``; WARN when the drop exceeds ``max_drop`` without
    significance, or is significant and above ``warn_drop`` (default 0) but within ``max_drop``;
    INCONCLUSIVE when the site or the reference has fewer than ``min_cases`` cases (default: the
    suite's ``min_group_size``); PASS otherwise. ``value`` is the drop, ``threshold`` ``max_drop``.
    """
    suite = context.suite
    gate = with_defaults(gate, suite, kind="site_drop")
    name, metric, max_drop = gate["name"], gate["metric"], float(gate["max_drop"])
    warn_drop, alpha = float(gate["warn_drop"]), float(gate["alpha"])
    min_cases = int(gate["min_cases"])
    attribute = gate["attribute"]
    # on another attribute (a scanner): the reference site's own value, as the report does
    reference = gate["reference"] or (suite.reference_site if attribute == suite.site_attribute else
                                          _derived_reference(context.cases, suite.site_attribute, attribute,
                                                             suite.reference_site))
    relative = gate["mode"] == "relative"
    test = gate["test"]
    cluster = getattr(suite, "cluster", "")  # a suite-like object from before the key existed has none
    try:
        table = site_table(context.records, context.cases, attribute=attribute, metrics=[metric],
                           reference_site=reference or None, label=gate["label"], test=test,
                           correction=suite.correction, alpha=alpha, min_cases=min_cases,
                           n_boot=suite.n_bootstrap, n_perm=suite.n_permutations, seed=suite.seed,
                           cluster=cluster or None)
    except ConfigError as exc:
        return [GateResult(name, "INCONCLUSIVE", None, max_drop, str(exc))]
    if table.empty:
        return [GateResult(name, "INCONCLUSIVE", None, max_drop, f"no clean case with a {attribute!r} value")]
    ref = table[table["is_reference"]].iloc[0]
    others = table[~table["is_reference"]]
    if others.empty:
        return [GateResult(f"{name}[{ref['site']}]", "INCONCLUSIVE", None, max_drop,
                           f"only one {attribute} ({ref['site']}, n={ref['n']}): nothing to compare")]
    results = []
    scale = (abs(float(ref["mean"])) if ref["mean"] else float("nan")) if relative else 1.0
    without = _cases_without(context.cases, attribute)
    unit = "relative " if relative else ""
    per = f" {cluster} values" if cluster else ""
    for row in others.itertuples(index=False):
        value = float(row.relative_drop if relative else row.drop)
        detail = (f"{attribute} {row.site}: n={row.n}{per}, mean {metric} {_fmt(row.mean)} (95% CI {_fmt(row.ci_low)}–"
                  f"{_fmt(row.ci_high)}) vs reference {ref['site']} (n={ref['n']}, mean {_fmt(ref['mean'])}); "
                  f"{unit}drop {_fmt(value)} (CI {_fmt(row.drop_ci_low / scale)}–{_fmt(row.drop_ci_high / scale)}; "
                  f"max {max_drop:g}, warn {warn_drop:g}); p_adj {_fmt(row.p_adjusted)} "
                  f"({suite.correction}, {test}; α {alpha:g})"
                  + (f"; {without} case(s) without a {attribute} value left out" if without else ""))
        if row.n < min_cases or ref["n"] < min_cases:
            results.append(GateResult(f"{name}[{row.site}]", "INCONCLUSIVE", value, max_drop,
                                      f"{detail}; fewer than min_cases={min_cases}{per or ' cases'}, not gated"))
            continue
        outcome, why = _site_outcome(value, float(row.p_adjusted), max_drop=max_drop, warn_drop=warn_drop,
                                     alpha=alpha)
        results.append(GateResult(f"{name}[{row.site}]", outcome, value, max_drop,
                                  detail + (f" → {why}" if why else "")))
    return results



def shift_table(records: pd.DataFrame, cases: pd.DataFrame, *, metrics: Sequence[str], site_attribute: str = "site",
                reference_site: str | None = None, alpha: float = 0.05, correction: Correction = "holm",
                n_boot: int = 1000, n_perm: int = 2000, seed: int = 0, min_group_size: int = 10,
                cluster: str | None = None) -> pd.DataFrame:
    """:func:`site_table` for a run's suite settings (``min_group_size`` = the test's min n)."""
    return site_table(records, cases, attribute=site_attribute, metrics=metrics, reference_site=reference_site,
                      alpha=alpha, correction=correction, min_cases=min_group_size, n_boot=n_boot, n_perm=n_perm,
                      seed=seed, cluster=cluster)
