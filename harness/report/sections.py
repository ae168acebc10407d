"""Result sections of the report, each a plain dict for the templates (None: section skipped).

Sections read only the run folder (:class:`~harness.report.rundir.RunDir`); statistics come from
``harness.analysis`` with the run's seed, so regenerating gives the same numbers. Optional
analyses (adversarial, shift, fairness) are imported inside a ``try``: a section appears when its
module is installed and the run has the data.
"""
from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pandas as pd

from harness.analysis.robustness import (
    corruption_error,
    higher_is_better,
    robustness_table,
)
from harness.records import CLEAN, failed_items
from harness.report import plots
from harness.report.artifacts import primary_metric
from harness.report.rundir import RunDir
from harness.report.units import run_unit_label

_ORDER = {"ERROR": 0, "FAIL": 1, "INCONCLUSIVE": 2, "WARN": 3, "PASS": 4}
BOUNDED = {"dice", "iou", "nsd", "precision", "recall"}


def _direction(metric: str) -> str:
    return "higher" if higher_is_better(metric) else "lower"


def summary_section(run: RunDir) -> dict[str, Any]:
    gates = run.summary.get("gates", [])
    counts = {k: sum(g["outcome"] == k for g in gates) for k in ("PASS", "WARN", "FAIL", "ERROR", "INCONCLUSIVE")}
    problems = sorted((g for g in gates if g["outcome"] != "PASS"), key=lambda g: _ORDER[g["outcome"]])
    outcome = run.summary.get("outcome", "PASS")
    headline = {"PASS": "All gates passed", "WARN": "Passed with warnings",
                "INCONCLUSIVE": "Inconclusive: some gates could not be decided (too few cases or groups)",
                "FAIL": "Failed: the model does not meet the acceptance criteria",
                "ERROR": "Error: the evaluation is incomplete; its gates cannot be trusted"}[outcome]
    if run.summary.get("strict") and outcome in ("WARN", "INCONCLUSIVE"):  # exit 1: not a pass
        headline = {"WARN": "Warnings", "INCONCLUSIVE": headline}[outcome] + " — blocked: this run used --strict"
    clean = run.summary.get("clean", {})
    labels = run.summary.get("labels") or {}
    by_number = [name for _, name in sorted((int(k), str(v)) for k, v in labels.items() if str(k).isdigit())]
    columns = sorted({k for v in clean.values() for k in v},  # classes in class-number order, then the mean
                     key=lambda k: (k == "mean", by_number.index(k) if k in by_number else len(by_number), k))
    return {"outcome": outcome, "headline": headline, "counts": counts, "problems": problems, "n_gates": len(gates),
            "clean": clean, "clean_columns": columns, "directions": {m: _direction(m) for m in clean},
            "clean_ci": _clean_ci(run, list(clean))}


def _clean_ci(run: RunDir, metrics: list[str]) -> dict[str, dict[str, Any]]:
    """Per metric: n clean cases and the 95 % bootstrap-t CI of the mean over cases (classes averaged
    per case; with [suite].cluster, resampling clusters), as the robustness tables compute it; metrics
    the records lack are left out."""
    from harness.analysis.clusters import cluster_of
    from harness.analysis.robustness import bootstrap_mean_ci, per_case

    clusters = _clusters(run)
    out: dict[str, dict[str, Any]] = {}
    records = run.records
    for metric in metrics:
        if metric not in records.columns:
            continue
        values = per_case(records, metric)
        values = values[values["perturbation"] == CLEAN].dropna(subset=["value"])
        ids = None if clusters is None else cluster_of(values["case_id"], clusters).to_numpy()
        low, high = bootstrap_mean_ci(values["value"].to_numpy(dtype=float), seed=int(run.settings.get("seed", 0)),
                                      clusters=ids)
        out[metric] = {"n": len(values), "low": low, "high": high}
    return out


def _clusters(run: RunDir) -> pd.Series | None:
    """``case_id -> cluster id`` for the run's ``[suite].cluster`` (None without one)."""
    from harness.analysis.clusters import cluster_ids

    return cluster_ids(run.cases, run.settings["cluster"]) if run.settings["cluster"] else None


def _attack_names(records: pd.DataFrame) -> set[str]:
    try:
        from harness.analysis.adversarial import attack_params
    except ImportError:
        return set()
    return set(attack_params(records)["perturbation"])


def _shade(rel: float) -> str:
    """A red tint growing with relative degradation up to 50 % (presentation only; gates decide
    outcomes); at most half opaque, so the cell's ink-coloured text keeps a contrast above 7:1."""
    if not np.isfinite(rel) or rel <= 0:
        return "background:transparent"
    return f"background:rgba(198,40,40,{min(rel, 0.5):.2f})"


def robustness_section(run: RunDir) -> dict[str, Any] | None:
    attacks = _attack_names(run.records)
    records = run.records[~run.records["perturbation"].isin(attacks)]
    if records.empty or (records["perturbation"] != CLEAN).sum() == 0:
        return None
    metrics, seed = run.metrics, run.settings["seed"]
    table = robustness_table(records, metrics, seed=seed, clusters=_clusters(run))
    if table.empty:  # no item was scored (every one an ERROR): nothing to plot or tabulate
        return None
    base = None
    if run.baseline is not None:
        base_records = run.baseline.records[~run.baseline.records["perturbation"].isin(attacks)]
        base = robustness_table(base_records, [m for m in metrics if m in base_records.columns], seed=seed,
                                clusters=_clusters(run.baseline))
    curves = [{"metric": m, "uri": plots.severity_curves(table, m, better=_direction(m), baseline=base,
                                                         label=run_unit_label(run.summary, m))}
              for m in metrics]
    primary = primary_metric(metrics)
    rows = table[(table["metric"] == primary) & (table["perturbation"] != CLEAN)]
    severities = sorted(rows["severity"].unique().tolist())
    pivot = []
    for family, group in rows.groupby("perturbation", sort=True):
        cells = {int(r.severity): {"rel": r.relative_degradation, "abs": r.degradation, "lo": r.degradation_ci_low,
                                   "hi": r.degradation_ci_high, "style": _shade(float(r.relative_degradation))}
                 for r in group.itertuples()}
        pivot.append({"family": family, "cells": [cells.get(s) for s in severities]})
    ce = corruption_error(table, metric=primary) if primary in BOUNDED else pd.DataFrame()
    clean = table[(table["metric"] == primary) & (table["perturbation"] == CLEAN)]
    return {"curves": [c for c in curves if c["uri"]], "primary": primary, "severities": severities, "pivot": pivot,
            "clean_mean": float(clean["mean"].iloc[0]) if len(clean) else float("nan"),
            "ce": ce.to_dict("records"), "table": table.to_dict("records"), "has_baseline": base is not None}


def adversarial_section(run: RunDir) -> dict[str, Any] | None:
    try:
        from harness.analysis.adversarial import adversarial_table
    except ImportError:
        return None
    metric = primary_metric(run.metrics)
    table = adversarial_table(run.records, metric=metric)
    if table.empty:
        return None
    return {"metric": metric, "uri": plots.epsilon_curves(table, metric=metric), "table": table.to_dict("records")}


def _call_flexibly(fn: Any, run: RunDir) -> Any:
    """Call an analysis function with the keyword arguments it accepts among the run's settings."""
    available = {"records": run.records, "cases": run.cases, "metrics": run.metrics,
                 "metric": primary_metric(run.metrics), "site_attribute": run.settings["site_attribute"],
                 "reference_site": run.settings["reference_site"] or None, "seed": run.settings["seed"],
                 "alpha": run.settings["alpha"], "correction": run.settings["correction"],
                 "n_boot": run.settings["n_bootstrap"], "n_perm": run.settings["n_permutations"],
                 "min_group_size": run.settings["min_group_size"]}
    params = inspect.signature(fn).parameters
    positional = [available[n] for n, p in params.items()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]
    keywords = {n: available[n] for n, p in params.items() if p.kind == p.KEYWORD_ONLY and n in available}
    return fn(*positional, **keywords)


def _records(frame: Any) -> list[dict[str, Any]]:
    return frame.to_dict("records") if isinstance(frame, pd.DataFrame) and not frame.empty else []


def _found_matches(frame: Any) -> list[dict[str, Any]]:
    """The site/metric pairs that have a matching synthetic family, with the share of the real drop
    that family reproduces (``share``: its degradation / the drop); pairs without a drop or a match
    are left out."""
    found = []
    for m in _records(frame):
        family = m.get("family")
        if family is None or (isinstance(family, float) and family != family):
            continue
        drop = float(m["drop"])
        found.append({**m, "severity": int(m["severity"]), "share": float(m["degradation"]) / drop if drop else float("nan")})
    return found


def _generic(frame: Any) -> dict[str, Any] | None:
    if not isinstance(frame, pd.DataFrame) or frame.empty:
        return None
    return {"columns": [str(c) for c in frame.columns], "rows": frame.astype(object).values.tolist()}


# The shift evidence tables (attribute of a ShiftEvidence, title, what its columns mean)
SHIFT_EVIDENCE = (
    ("quality", "Image statistics per site",
     "Per site and image statistic (docs/shift.md: snr, cnr, sharpness and foreground_fraction are ratios; "
     "voxel_mm and fov_mm in mm; the others in intensity units): n cases, median and quartiles; "
     "shift = site median − reference median; effect = rank-biserial P(site > reference) − P(site < reference), "
     "from −1 (every site value below every reference value) to 1; blank for the reference site."),
    ("distances", "Intensity distribution distance to the reference site",
     "Pooled voxel intensities of each site against the reference site's: w1 = Wasserstein-1 distance (intensity "
     "units), w1_relative = w1 / the reference's inter-quartile range, ks = largest difference of the cumulative "
     "distributions (0 to 1)."),
    ("equivalents", "Equivalent synthetic severity per family",
     "For each site's drop (reference mean − site mean) and each synthetic family: equivalent_severity = the severity "
     "(0–5, interpolated) at which the family's degradation of the reference site's cases reaches that drop; blank "
     "when even its largest degradation (max_degradation) stays below it; 0 when the site shows no drop."),
)


def shift_section(run: RunDir) -> dict[str, Any] | None:
    """Per-site tables from :mod:`harness.analysis.shift` (its ``run_shift_evidence`` when present,
    else ``shift_table`` rendered as is)."""
    try:
        from harness.analysis import shift
    except ImportError:
        return None
    try:
        if hasattr(shift, "run_shift_evidence"):
            evidence = shift.run_shift_evidence(run.path)
        else:
            site = run.settings["site_attribute"]
            if site not in run.cases.columns or run.cases[site].nunique() < 2 or not hasattr(shift, "shift_table"):
                return None
            table = _call_flexibly(shift.shift_table, run)
            generic = _generic(getattr(table, "table", table))
            return {"error": "", "blocks": [], "generic": generic} if generic else None
    except Exception as exc:  # noqa: BLE001 - an analysis bug must not lose the report
        return {"error": f"{type(exc).__name__}: {exc}", "blocks": [], "generic": None}
    blocks = []
    for ev in evidence:
        extra = [(title, _generic(getattr(ev, key, None)), caption) for key, title, caption in SHIFT_EVIDENCE]
        blocks.append({"attribute": ev.attribute, "reference": ev.reference, "rows": _records(ev.table),
                       "matches": _found_matches(ev.matches), "extra": [(t, g, c) for t, g, c in extra if g],
                       "notes": list(ev.notes)})
    if not blocks:
        return None
    return {"error": "", "blocks": blocks, "generic": None, "alpha": run.settings["alpha"]}


def _fairness_result(run: RunDir) -> Any:
    """The fairness analysis the gates used (same metrics, tests and correction family): through
    ``harness.analysis.gate_checks.fairness_result`` when available, else called directly."""
    gate = next((g for g in run.suite_gates if g.get("check") == "fairness"), {})
    label = gate.get("label", "mean")
    shared: Any = None
    try:
        from harness.analysis.gate_checks import fairness_result as shared
    except ImportError:
        pass
    if shared is not None and run.suite is not None:
        from harness.gates import GateContext

        return shared(GateContext(records=run.records, cases=run.cases, suite=run.suite), label=label)
    from harness.analysis.fairness import fairness_tables

    s, cohorts = run.settings, run.settings["cohorts"]
    metrics = sorted({g["metric"] for g in run.suite_gates if g.get("check") == "fairness"} or {run.metrics[0]})
    return fairness_tables(run.records, run.cases, cohorts=cohorts if isinstance(cohorts, str) else list(cohorts),
                           metrics=metrics, bins=s["bins"] or None, min_group_size=s["min_group_size"],
                           alpha=s["alpha"], correction=s["correction"], n_boot=s["n_bootstrap"],
                           n_perm=s["n_permutations"], seed=s["seed"], label=label, test=s["fairness_test"],
                           small_groups=s["small_groups"], cluster=s["cluster"])


FAIRNESS_TEXT_COLUMNS = {"attribute", "group", "label", "perturbation", "metric", "small_groups", "excluded_groups",
                         "best_group", "worst_group", "test", "correction"}


def _saved_fairness(run: RunDir) -> Any:
    """The fairness tables the gates computed, as the run wrote them (``fairness_groups.csv``,
    ``fairness_gaps.csv`` and ``fairness_notes.txt``, suffixed by the label when not "mean"); None
    when absent (runs written before the notes file have no notes)."""
    from types import SimpleNamespace

    gate = next((g for g in run.suite_gates if g.get("check") == "fairness"), {})
    label = str(gate.get("label", "mean"))
    suffix = "" if label == "mean" else f"_{label}"
    paths = [run.path / f"fairness_{kind}{suffix}.csv" for kind in ("groups", "gaps")]
    if not all(p.is_file() for p in paths):
        return None
    # Text columns read as text, empty cells as "" (an all-empty column would otherwise be float NaN).
    groups, gaps = (pd.read_csv(p, dtype=dict.fromkeys(FAIRNESS_TEXT_COLUMNS, str), keep_default_na=False,
                                na_values=[""]) for p in paths)
    for frame in (groups, gaps):
        for col in FAIRNESS_TEXT_COLUMNS & set(frame.columns):
            frame[col] = frame[col].fillna("")
    if "small" in groups.columns:
        groups["small"] = groups["small"].astype(str).str.lower().isin(["true", "1"])
    notes_file = run.path / f"fairness_notes{suffix}.txt"
    notes = tuple(notes_file.read_text(encoding="utf-8").splitlines()) if notes_file.is_file() else ()
    s = run.settings
    tests = [t for t in gaps.get("test", []) if t not in ("", "none")]  # "none": fewer than two groups
    test = tests[0] if tests else "permutation"
    return SimpleNamespace(groups=groups, gaps=gaps, notes=notes, alpha=s["alpha"], correction=s["correction"],
                           test=test, min_group_size=s["min_group_size"], small_groups=s["small_groups"])


def fairness_section(run: RunDir) -> dict[str, Any] | None:
    if not run.settings["cohorts"]:
        return None
    try:
        import harness.analysis.fairness  # noqa: F401
    except ImportError:
        return None
    try:
        result = _saved_fairness(run) or _fairness_result(run)
    except Exception as exc:  # noqa: BLE001 - becomes a note in the report
        return {"error": f"{type(exc).__name__}: {exc}", "forests": [], "gaps": [], "notes": []}
    groups = result.groups[result.groups["perturbation"] == CLEAN]
    forests = []
    for (attribute, metric), rows in groups.groupby(["attribute", "metric"], sort=False):
        for label, sub in rows.groupby("label", sort=False):
            title = f"{metric} by {attribute} (clean{'' if label == 'mean' else f', {label}'})"
            forests.append({"attribute": attribute, "metric": metric,
                            "uri": plots.forest_plot(sub, title=title, xlabel=f"mean {run_unit_label(run.summary, metric)}, 95% CI")})
    gaps = result.gaps.sort_values(["p_adjusted", "attribute"], na_position="last", kind="mergesort")
    return {"error": "", "forests": forests, "gaps": gaps.to_dict("records"), "notes": list(result.notes),
            "groups": groups.to_dict("records"),  # the forest plots' numbers, as a table
            "alpha": result.alpha, "correction": result.correction, "test": result.test,
            "min_group_size": result.min_group_size, "small_groups": result.small_groups}


def baseline_section(run: RunDir) -> dict[str, Any] | None:
    if run.baseline is None:
        return None
    from harness.baseline import comparison_table

    b = run.baseline
    table = comparison_table(run.records, run.cases, b.records, b.cases, run.metrics, seed=run.settings["seed"],
                             cluster=run.settings["cluster"])
    names = {str(g.get("name", "baseline")) for g in run.suite_gates if g.get("check") == "baseline"} | {"baseline"}
    gates = [g for g in run.summary.get("gates", []) if g["name"].split("[", 1)[0] in names]
    return {"table": table.to_dict("records"), "gates": gates, "summary": b.summary,
            "cluster": run.settings["cluster"]}


def worst_section(run: RunDir) -> dict[str, Any] | None:
    art = run.artifacts
    if not art:
        return None
    items = []
    for entry in art.get("worst_cases", []):
        if not isinstance(entry, dict) or run.artifact_path(entry.get("file")) is None:
            continue  # a deleted panel: the report shows the others (and the gallery skips it alike)
        arrays = run.artifact_arrays(entry["file"])
        items.append({**entry, "uri": plots.case_panels(arrays, aspect=float(entry.get("aspect", 1.0))),
                      "has_saliency": "saliency" in arrays})
    labels = {}
    for key, name in run.summary.get("labels", {}).items():
        try:
            labels[int(key)] = str(name)
        except ValueError:
            continue
    return {"items": items, "metric": art.get("metric", ""), "k": art.get("k", 0),
            "colour_key": plots.label_colour_key(labels),
            "uncertainty_method": art.get("uncertainty_method", ""), "saliency_method": art.get("saliency_method", ""),
            "notes": art.get("notes", []), "any_saliency": any(i["has_saliency"] for i in items),
            "saliency_notes": sorted({i["saliency_note"] for i in items if i.get("saliency_note")})}


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def gallery_section(run: RunDir) -> list[dict[str, Any]]:
    """Gallery entries whose file is a PNG in the run's artifacts/ (anything else is left out)."""
    out = []
    for entry in run.artifacts.get("gallery", []):
        if isinstance(entry, dict) and run.artifact_path(entry.get("file")) is not None:
            data = run.artifact_bytes(entry["file"])
            if data.startswith(PNG_SIGNATURE):
                out.append({**entry, "uri": plots.png_file_uri(data)})
    return out


ERRORS_SHOWN = 200  # rows of the Errors table; all are in records.csv


def errors_section(run: RunDir) -> list[dict[str, Any]]:
    """The first ERRORS_SHOWN failed items (one row per item), clean images first (they change the
    clean gates and every paired comparison), then by perturbation, severity and case. Each row
    carries ``n_items`` (the total) and ``summary``: items per perturbation and message (first line,
    120 characters), most frequent first."""
    records = run.records
    errors = failed_items(records)
    if errors.empty:
        return []
    errors = errors.assign(_clean=errors["perturbation"] != CLEAN).sort_values(
        ["_clean", "perturbation", "severity", "case_id", "repeat"], kind="mergesort").drop(columns="_clean")
    message = errors["error"].astype(str).map(lambda text: (text.splitlines() or [""])[0][:120])
    counts = errors.assign(message=message).groupby(["perturbation", "message"], sort=False).size()
    summary = [{"perturbation": pert, "message": text, "items": int(n)}
               for (pert, text), n in counts.sort_values(ascending=False, kind="mergesort").items()]
    return [{**row, "n_items": len(errors), "summary": summary} for row in errors.head(ERRORS_SHOWN).to_dict("records")]
