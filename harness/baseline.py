"""Regression against a previous run (``harness run --baseline RUN_DIR``), e.g. the released model.

Pairing is by case: only cases present in both runs with the same image and label hashes are
compared (others are listed in the gate's detail). For each comparison the per-case "regression"
is how much worse the current run is, in the metric's unit (labels averaged per case):

* ``clean``: baseline clean value − current clean value (sign flipped for lower-is-better metrics);
* each perturbation family: current degradation − baseline degradation, where a case's degradation
  is its clean value minus its perturbed value averaged over the family's severities in both runs.

Gate ``check = "baseline"`` (added with the defaults below by ``--baseline`` when the suite has
none): a one-sided paired test of H0 "mean regression ≤ margin" against H1 "> margin" — a
sign-flip permutation test over all sign patterns (Monte Carlo with ``n_permutations`` draws above
16 cases; exact for regressions symmetric about the margin, docs/ci.md), ``test = "wilcoxon"``
(signed-rank on regression − margin) or ``test = "bootstrap-t"`` (no symmetry assumed; nearer its
nominal level when a few cases change a lot) — with the suite's correction (Holm/BH)
across the comparisons of the gate. FAIL: significantly worse by more than ``margin``. WARN: the
mean regression exceeds the margin without significance, or the regression is significant but
within the margin. INCONCLUSIVE: fewer than ``min_cases`` paired cases, or no baseline given.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.analysis.clusters import cluster_ids, cluster_means
from harness.analysis.robustness import bootstrap_mean_ci, higher_is_better, per_case
from harness.errors import ConfigError
from harness.gates import GateContext, GateResult, SuiteSetting, check_keys, gate_check, with_defaults
from harness.options import must_be_one_of
from harness.records import CLEAN

# The gate's keys and what an absent one means (families None: every family); ``--baseline`` adds
# a gate named "baseline" with all of them. alpha: the suite's (0.05 where there is none).
GATE_DEFAULTS: dict[str, Any] = {"metric": "dice", "margin": 0.02, "alpha": SuiteSetting("alpha", 0.05),
                                 "min_cases": 5, "test": "permutation", "families": None}
DEFAULTS: dict[str, Any] = {"name": "baseline", **GATE_DEFAULTS, "alpha": 0.05}
FILES = ("summary.json", "records.csv", "cases.csv", "suite.toml")
EXACT_MAX_N = 16


def load_baseline(path: str | Path, *, given_as: str = "--baseline") -> Any:
    """The baseline run folder read as `harness report` reads it (a ``RunDir``), else ConfigError
    naming where it was given (``--baseline``, or a gate's ``baseline =``; exit 3, before any model
    call)."""
    path = Path(path)
    missing = [name for name in ("summary.json", "records.csv") if not (path / name).is_file()]
    if missing:
        raise ConfigError(f"{given_as} {path}: not a run folder of `harness run` (missing {', '.join(missing)})")
    from harness.report.rundir import load_run

    try:  # every file the gate and the report read, checked
        return load_run(path, with_baseline=False)
    except ConfigError as exc:
        raise ConfigError(f"{given_as} {path}: {exc}") from exc


def check_run_dir(path: str | Path, *, given_as: str = "--baseline") -> Path:
    """``path`` if it holds a finished, readable run, else ConfigError (see :func:`load_baseline`)."""
    load_baseline(path, given_as=given_as)
    return Path(path)


def apply_baseline(suite: Any, baseline: str | Path | None) -> Any:
    """The suite with the baseline run folder attached to its ``baseline`` gates (one with the
    defaults is added when the suite has none). Called before any model call, so a gate's own
    ``baseline = "RUN_DIR"`` that is not a finished run is refused here too (exit 3)."""
    if baseline is None:
        for gate in suite.gates:
            if gate["check"] == "baseline" and gate.get("baseline"):
                try:
                    check_run_dir(gate["baseline"], given_as="baseline =")
                except ConfigError as exc:
                    raise ConfigError(f"suite {getattr(suite, 'path', '')}: gate {gate['name']!r}: {exc}") from None
        return suite
    path = str(check_run_dir(baseline).resolve())
    gates = [dict(g, baseline=path) if g["check"] == "baseline" else g for g in suite.gates]
    if not any(g["check"] == "baseline" for g in suite.gates):
        gates.append({k: v for k, v in {**DEFAULTS, "check": "baseline", "baseline": path}.items()
                      if v is not None and k != "alpha"})  # no alpha: the gate takes the suite's
    return dataclasses.replace(suite, gates=tuple(gates))


def copy_baseline(out: Path, baseline: str | Path | None) -> None:
    """Copy the baseline's tables into ``<out>/baseline/`` so the report regenerates without it;
    without a baseline, remove a copy an earlier (resumed) run left there."""
    target = Path(out) / "baseline"
    if baseline is None:
        if (target / "summary.json").is_file():
            shutil.rmtree(target)
        return
    target.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        if (Path(baseline) / name).is_file():
            shutil.copyfile(Path(baseline) / name, target / name)


def paired_cases(cases: pd.DataFrame, base_cases: pd.DataFrame) -> tuple[set[str] | None, list[str]]:
    """Case ids whose image/label hashes agree in both runs (None: no hashes to check) and those that differ."""
    cols = [c for c in ("image_sha256", "label_sha256") if c in cases.columns and c in base_cases.columns]
    if not cols or cases.empty or base_cases.empty:
        return None, []
    joined = cases[["case_id", *cols]].merge(base_cases[["case_id", *cols]], on="case_id", suffixes=("", "_b"))
    same = np.logical_and.reduce([joined[c].astype(str) == joined[f"{c}_b"].astype(str) for c in cols])
    return set(joined.loc[same, "case_id"]), sorted(joined.loc[~same, "case_id"])


def regressions(records: pd.DataFrame, base: pd.DataFrame, metric: str, *, keep: set[str] | None = None,
                families: list[str] | None = None) -> dict[str, pd.Series]:
    """Per-case regression (positive = current worse) for ``clean`` and each shared family."""
    sign = 1.0 if higher_is_better(metric) else -1.0
    cur, old = per_case(records, metric), per_case(base, metric)
    if keep is not None:
        cur, old = cur[cur["case_id"].isin(keep)], old[old["case_id"].isin(keep)]
    out: dict[str, pd.Series] = {}

    def clean_of(v: pd.DataFrame) -> pd.Series:
        return v[v["perturbation"] == CLEAN].set_index("case_id")["value"]

    c_cur, c_old = clean_of(cur), clean_of(old)
    both = c_cur.index.intersection(c_old.index)
    out[CLEAN] = (sign * (c_old[both] - c_cur[both])).dropna().sort_index()  # finite pairs only
    shared = sorted((set(cur["perturbation"]) & set(old["perturbation"])) - {CLEAN})
    for family in shared:
        if families and family not in families:
            continue
        degr = []
        for values, clean in ((cur, c_cur), (old, c_old)):
            rows = values[values["perturbation"] == family]
            degr.append(rows.assign(d=sign * (rows["case_id"].map(clean) - rows["value"]))[["case_id", "severity", "d"]])
        # per case, the severities scored in both runs: a severity that failed in one run (an ERROR
        # record) must not drop out of that run's mean only, which would bias the case's regression
        pairs = degr[0].merge(degr[1], on=["case_id", "severity"], suffixes=("_cur", "_old")).dropna()
        per_case_mean = pairs.groupby("case_id")[["d_cur", "d_old"]].mean()
        out[family] = (per_case_mean["d_cur"] - per_case_mean["d_old"]).sort_index()
    return out


TESTS = ("permutation", "wilcoxon", "bootstrap-t")


def one_sided_p(x: np.ndarray, *, test: str = "permutation", n_perm: int = 2000, seed: int = 0) -> float:
    """p-value of H1 "mean(x) > 0": a paired sign-flip permutation over all sign patterns up to 16
    values (exact for x symmetric about 0); Wilcoxon, a test of the pseudo-median; or bootstrap-t
    (``n_perm`` resamples), which does not assume symmetry (docs/ci.md "What the test assumes")."""
    x = np.asarray(x, dtype=float)
    if len(x) == 0:
        return float("nan")
    if test == "bootstrap-t":
        return _bootstrap_t_p(x, n_boot=n_perm, seed=seed)
    if test == "wilcoxon":
        from scipy.stats import wilcoxon

        if np.allclose(x, 0):
            return 1.0
        return float(wilcoxon(x, alternative="greater", zero_method="zsplit").pvalue)
    observed = x.mean()
    if len(x) <= EXACT_MAX_N:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=len(x))))
        return float(np.mean((signs * np.abs(x)).mean(axis=1) >= observed - 1e-12))
    rng = np.random.default_rng(seed)
    signs = rng.choice((1.0, -1.0), size=(n_perm, len(x)))
    hits = int(((signs * np.abs(x)).mean(axis=1) >= observed - 1e-12).sum())
    return (hits + 1) / (n_perm + 1)


def _bootstrap_t_p(x: np.ndarray, *, n_boot: int, seed: int) -> float:
    """One-sided bootstrap-t p-value of H1 "mean(x) > 0": how often the studentized mean of a
    resample, centred on the sample mean, reaches the observed t = mean / SE (Hall & Wilson 1991).
    A resample without spread counts as reaching it when its mean lies above the sample mean."""
    n, mean = len(x), float(x.mean())
    se = float(x.std(ddof=1)) / np.sqrt(n) if n > 1 else 0.0
    if se == 0:  # no spread: the sign of the mean decides
        return 1.0 if mean <= 0 else 1.0 / (n_boot + 1)
    draws = x[np.random.default_rng(seed).integers(0, n, size=(n_boot, n))]
    means, ses = draws.mean(axis=1), draws.std(axis=1, ddof=1) / np.sqrt(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(ses > 0, (means - mean) / np.where(ses > 0, ses, 1.0), np.sign(means - mean) * np.inf)
    return float((1 + np.sum(t >= mean / se)) / (n_boot + 1))


def gate_problems(gate: dict[str, Any]) -> list[str]:
    """Problems with a ``check = "baseline"`` gate's keys (run at suite load; exit 3)."""
    problems = check_keys(gate, required=set(), optional={*GATE_DEFAULTS, "baseline"},
                          numbers={"margin", "alpha"}, counts={"min_cases"})
    if gate.get("test", "permutation") not in TESTS:
        problems.append(f"gate {gate.get('name')!r}: test {must_be_one_of(TESTS, gate.get('test'))}")
    if "baseline" in gate and not (isinstance(gate["baseline"], str) and gate["baseline"].strip()):
        problems.append(f"gate {gate.get('name')!r}: baseline must be the path of a run folder, got {gate['baseline']!r}")
    alpha = gate.get("alpha", 0.05)
    if isinstance(alpha, (int, float)) and not isinstance(alpha, bool) and not 0 < alpha < 1:
        problems.append(f"gate {gate.get('name')!r}: alpha must be in (0, 1), got {alpha!r}")
    return problems


@gate_check("baseline", validate=gate_problems, defaults=GATE_DEFAULTS,
            meaning="paired regression vs a previous run: FAIL when significantly worse by more than the margin; "
                    "WARN when worse by more than the margin without significance, or significantly worse within it",
            settings=("correction", "cluster"))
def baseline_gate(gate: dict[str, Any], context: GateContext, *,
                  p_adjusted: dict[str, float] | None = None, own_errors: bool = True) -> list[GateResult]:
    """The gate (see the module docstring); ``p_adjusted``, when given, receives each tested
    comparison's adjusted p-value (``harness compare`` tables them). A baseline run with ERROR
    records adds an ERROR result ``<name>[baseline-run]`` (exit 2: its results are incomplete), unless
    ``own_errors`` is False (``harness compare`` reports each run's errors itself)."""
    from harness.analysis.stats import adjust_pvalues

    cfg = with_defaults({"name": DEFAULTS["name"], **gate}, context.suite, kind="baseline")  # gate α, else the suite's
    name, metric, margin, alpha = str(cfg["name"]), str(cfg["metric"]), float(cfg["margin"]), float(cfg["alpha"])
    if not cfg.get("baseline"):
        return [GateResult(f"{name}[{CLEAN}]", "INCONCLUSIVE", None, margin,
                           "no baseline run given: pass --baseline RUN_DIR (or baseline = \"RUN_DIR\" in the gate)")]
    base = load_baseline(cfg["baseline"])  # read once: records, cases and summary
    base_records, base_cases = base.records, base.cases
    if metric not in base_records.columns or metric not in context.records.columns:
        return [GateResult(f"{name}[{CLEAN}]", "INCONCLUSIVE", None, margin,
                           f"{metric} is not in both runs' records; the baseline cannot be compared")]
    n_base_errors = int((base_records["status"] == "ERROR").sum()) if "status" in base_records.columns else 0
    keep, changed = paired_cases(context.cases, base_cases)
    diffs = regressions(context.records, base_records, metric, keep=keep, families=cfg.get("families"))
    suite = context.suite
    cluster = getattr(suite, "cluster", "")  # a suite-like object from before the key existed has none
    n_cases = {k: len(v) for k, v in diffs.items()}
    if cluster:  # one regression per patient: its paired cases' mean
        ids = cluster_ids(context.cases, cluster)
        diffs = {k: cluster_means(v, ids) for k, v in diffs.items()}
    unit = f" {cluster} values" if cluster else " paired case(s)"
    n_perm, seed = int(getattr(suite, "n_permutations", 2000)), int(getattr(suite, "seed", 0))
    tested = {k: v for k, v in diffs.items() if len(v) >= int(cfg["min_cases"])}
    raw = {k: one_sided_p(v.to_numpy() - margin, test=cfg["test"], n_perm=n_perm, seed=seed) for k, v in tested.items()}
    raw0 = {k: one_sided_p(v.to_numpy(), test=cfg["test"], n_perm=n_perm, seed=seed) for k, v in tested.items()}
    method: Any = getattr(suite, "correction", "holm")
    adj = dict(zip(raw, adjust_pvalues(np.array(list(raw.values()), float), method=method))) if raw else {}
    adj0 = dict(zip(raw0, adjust_pvalues(np.array(list(raw0.values()), float), method=method))) if raw0 else {}
    if p_adjusted is not None:
        p_adjusted.update(adj)
    note = f"; {len(changed)} case(s) with different image/label hashes left out (e.g. {changed[0]})" if changed else ""
    note += _setup_differences(base.summary, suite)
    results = [GateResult(f"{name}[{family}]", "INCONCLUSIVE", None, margin,
                          f"{family}: not a perturbation of both runs (shared: "
                          f"{', '.join(k for k in diffs if k != CLEAN) or 'none'}); nothing to compare")
               for family in (cfg.get("families") or []) if family not in diffs]  # named, so never dropped silently
    if n_base_errors and own_errors:
        results.append(GateResult(f"{name}[baseline-run]", "ERROR", float(n_base_errors), 0.0,
                                  f"the baseline run {cfg['baseline']} has {n_base_errors} ERROR record(s): its "
                                  "results are incomplete, so this comparison cannot be trusted; finish it "
                                  "(harness run --resume --retry-errors) or compare with a complete run"))
    for key, values in diffs.items():
        gname = f"{name}[{key}]"
        what = f"clean {metric}" if key == CLEAN else f"{metric} degradation under {key}"
        if key not in tested:
            results.append(GateResult(gname, "INCONCLUSIVE", None, margin,
                                      f"{what}: {len(values)}{unit}, need {cfg['min_cases']}{note}"))
            continue
        mean = float(values.mean())
        lo, hi = bootstrap_mean_ci(values.to_numpy(), seed=seed)
        per = f" ({len(values)}{unit}, the unit of the test)" if cluster else ""
        significant, large = adj[key] < alpha, mean > margin
        outcome = "FAIL" if significant else "WARN" if large or adj0[key] < alpha else "PASS"
        why = {"FAIL": " → significantly worse than the baseline by more than the margin",
               "WARN": (" → worse by more than the margin, not significant" if large
                        else " → significantly worse, within the margin"), "PASS": ""}[outcome]
        results.append(GateResult(gname, outcome, mean, margin, (
            f"{what}: regression vs baseline {mean:+.4g} (95% CI {lo:+.4g} – {hi:+.4g}; positive = worse) "
            f"over {n_cases[key]} paired cases{per}; H1 regression > margin {margin:g}: p_adj {adj[key]:.3g} "
            f"({method}, {cfg['test']}; α {alpha:g}){why}{note}")))
    return results


def _setup_differences(summary: dict[str, Any], suite: Any) -> str:
    """What the baseline run (its ``summary``) did differently from this one (seed, suite), for the
    gate detail: the comparison assumes the same suite, data and seed (docs/ci.md)."""
    differences = []
    # the run's own seed and suite (harness compare sets run_identity: its suite.seed resamples)
    seed, sha256 = getattr(suite, "run_identity", (getattr(suite, "seed", None), getattr(suite, "sha256", None)))
    if seed is not None and summary.get("seed") is not None and summary["seed"] != seed:
        differences.append(f"seed {summary['seed']} (this run {seed}: other perturbation draws)")
    base_suite = summary.get("suite") or {}
    if sha256 and base_suite.get("sha256") and base_suite["sha256"] != sha256:
        differences.append(f"suite {base_suite.get('name', '?')!r} of other content (sha256 {base_suite['sha256'][:12]}…)")
    return f"; NOTE the baseline ran with {' and '.join(differences)}" if differences else ""


def comparison_table(records: pd.DataFrame, cases: pd.DataFrame, base_records: pd.DataFrame,
                     base_cases: pd.DataFrame, metrics: list[str], *, seed: int = 0,
                     cluster: str = "") -> pd.DataFrame:
    """Deltas for the report: per metric × (clean, family): current and baseline means over paired
    cases, the mean regression (positive = worse) with a bootstrap CI, and n (paired cases). With
    ``cluster``, means and CI are over that column's values (each its cases' mean), as the gate's,
    and ``n_clusters`` counts them (None without)."""
    keep, _ = paired_cases(cases, base_cases)
    ids = cluster_ids(cases, cluster) if cluster else None
    rows = []
    for metric in metrics:
        if metric not in base_records.columns or metric not in records.columns:
            continue
        sign = 1.0 if higher_is_better(metric) else -1.0
        cur, old = per_case(records, metric), per_case(base_records, metric)
        for key, diff in regressions(records, base_records, metric, keep=keep).items():
            # the severities both runs have, as regressions() pairs them
            common = set(cur.loc[cur["perturbation"] == key, "severity"]) & set(old.loc[old["perturbation"] == key,
                                                                                       "severity"])

            def pick(v: pd.DataFrame, key: str = key, keep: Any = diff.index, sev: Any = frozenset(common)) -> float:
                picked = v[(v["perturbation"] == key) & v["case_id"].isin(keep) & v["severity"].isin(sev)]
                if ids is None:
                    return float(picked["value"].mean())
                return float(cluster_means(picked.groupby("case_id")["value"].mean(), ids).mean())

            units = cluster_means(diff, ids) if ids is not None else diff
            lo, hi = bootstrap_mean_ci(units.to_numpy(), seed=seed)
            rows.append({"metric": metric, "comparison": key, "n": len(diff),
                         "n_clusters": len(units) if ids is not None else None, "current": float(pick(cur)),
                         "baseline": float(pick(old)), "regression": float(units.mean()) if len(units) else np.nan,
                         "ci_low": lo, "ci_high": hi, "direction": "higher" if sign > 0 else "lower"})
    return pd.DataFrame(rows)


def baseline_summary(path: Path) -> dict[str, Any]:
    """The baseline run's summary.json (empty dict when absent)."""
    file = Path(path) / "summary.json"
    return json.loads(file.read_text(encoding="utf-8")) if file.is_file() else {}
