"""Bundled gate kinds (``check = ...`` in a suite's ``[[gates]]``).

* ``clean``: mean metric on clean cases against ``min`` (or ``max`` for distances), optional ``warn``.
  Per label by default (``label = "each"``); ``label = "mean"`` averages labels per case first.
* ``degradation``: per perturbation family, the paired mean degradation vs clean at ``severities``
  (default all) against ``max_drop`` / ``warn_drop``; ``mode = "relative"`` divides by the clean mean.
* ``fairness``: see :func:`harness.analysis.fairness.fairness_gates`.
Gates with fewer than ``min_cases`` (default 3) cases are INCONCLUSIVE.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from harness.analysis.robustness import higher_is_better, per_case
from harness.gates import GateContext, GateResult, check_keys, compare, gate_check
from harness.records import CLEAN


def _labels(gate: dict[str, Any], context: GateContext) -> list[tuple[str, int | str]]:
    choice = gate.get("label", "each")
    ok = context.records[context.records["status"] == "OK"]
    names = dict(zip(ok["label"], ok["label_name"])) if len(ok) else {}
    if choice == "mean":
        return [("mean", "mean")]
    if choice == "each":
        return [(str(names[k]), int(k)) for k in sorted(names)]
    for k, name in names.items():
        if choice in (k, name, str(k)):
            return [(str(name), int(k))]
    return [(str(choice), -1)]  # unknown label -> no data -> INCONCLUSIVE with a clear detail


def _validate_clean(gate: dict[str, Any]) -> list[str]:
    problems = check_keys(gate, required={"metric"}, optional={"min", "max", "warn", "label", "min_cases"},
                          numbers={"min", "max", "warn", "min_cases"})
    if "min" not in gate and "max" not in gate:
        problems.append(f"gate {gate.get('name')!r}: needs 'min' (or 'max' for distance metrics)")
    return problems


def _validate_degradation(gate: dict[str, Any]) -> list[str]:
    problems = check_keys(gate, required={"metric", "max_drop"},
                          optional={"warn_drop", "severities", "mode", "label", "families", "min_cases"},
                          numbers={"max_drop", "warn_drop", "min_cases"})
    if gate.get("mode", "absolute") not in ("absolute", "relative"):
        problems.append(f"gate {gate.get('name')!r}: mode must be 'absolute' or 'relative'")
    return problems


@gate_check("clean", validate=_validate_clean)
def clean_gate(gate: dict[str, Any], context: GateContext) -> list[GateResult]:
    metric = gate["metric"]
    better_high = higher_is_better(metric)
    key = "min" if better_high else "max"
    threshold = float(gate[key]) if key in gate else float(gate.get("min", gate.get("max", 0.0)))
    warn = gate.get("warn")
    results = []
    for name, label in _labels(gate, context):
        values = per_case(context.records, metric, label=label)  # type: ignore[arg-type]
        values = values[values["perturbation"] == CLEAN]["value"]
        gname = f"{gate['name']}[{name}]"
        if len(values) < int(gate.get("min_cases", 3)):
            results.append(GateResult(gname, "INCONCLUSIVE", None, threshold,
                                      f"only {len(values)} clean case(s) with label {name}; need "
                                      f"{gate.get('min_cases', 3)}"))
            continue
        mean = float(values.mean())
        outcome = compare(mean, higher_is_better=better_high, fail=threshold,
                          warn=None if warn is None else float(warn))
        op = ">=" if better_high else "<="
        results.append(GateResult(gname, outcome, mean, threshold,
                                  f"clean mean {metric} of {name} = {mean:.4g} over {len(values)} cases "
                                  f"(required {op} {threshold:g}{'' if warn is None else f', warn at {warn:g}'})"))
    return results


@gate_check("degradation", validate=_validate_degradation)
def degradation_gate(gate: dict[str, Any], context: GateContext) -> list[GateResult]:
    metric = gate["metric"]
    better_high = higher_is_better(metric)
    max_drop, warn_drop = float(gate["max_drop"]), gate.get("warn_drop")
    relative = gate.get("mode", "absolute") == "relative"
    wanted = gate.get("families")
    severities = gate.get("severities")
    results = []
    for name, label in _labels({"label": gate.get("label", "mean")}, context):
        values = per_case(context.records, metric, label=label)  # type: ignore[arg-type]
        clean = values[values["perturbation"] == CLEAN].set_index("case_id")["value"]
        for family in sorted(set(values["perturbation"]) - {CLEAN}):
            if wanted and family not in wanted:
                continue
            rows = values[(values["perturbation"] == family)]
            if severities:
                rows = rows[rows["severity"].isin(severities)]
            gname = f"{gate['name']}[{family}]" + ("" if label == "mean" else f"[{name}]")
            worst_sev, worst = None, -np.inf
            n = 0
            for sev, group in rows.groupby("severity"):
                pert, base = group.set_index("case_id")["value"].align(clean, join="inner")
                n = max(n, len(pert))
                drop = float((base - pert).mean() if better_high else (pert - base).mean())
                if relative:
                    drop = drop / float(base.mean()) if float(base.mean()) else 0.0
                if drop > worst:
                    worst_sev, worst = int(sev), drop
            if n < int(gate.get("min_cases", 3)):
                results.append(GateResult(gname, "INCONCLUSIVE", None, max_drop,
                                          f"{family}: only {n} paired case(s); need {gate.get('min_cases', 3)}"))
                continue
            outcome = compare(worst, higher_is_better=False, fail=max_drop,
                              warn=None if warn_drop is None else float(warn_drop))
            unit = "relative " if relative else ""
            results.append(GateResult(gname, outcome, worst, max_drop,
                                      f"{family}: worst {unit}{metric} degradation {worst:.4g} at severity "
                                      f"{worst_sev} (allowed <= {max_drop:g}) over {n} cases"))
    return results


def fairness_result(context: GateContext, *, label: int | str = "mean") -> Any:
    """One fairness analysis per run and label, shared by every fairness gate and the report, so
    the multiplicity correction covers the same family of tests everywhere."""
    from harness.analysis.fairness import fairness_tables

    key = f"fairness:{label}"
    if key not in context.cache:
        suite = context.suite
        metrics = sorted({g["metric"] for g in suite.gates if g["check"] == "fairness"} or {suite.metrics[0]})
        by_perturbation = any(g.get("perturbation", "clean") != "clean" for g in suite.gates if g["check"] == "fairness")
        context.cache[key] = fairness_tables(
            context.records, context.cases,
            cohorts=suite.cohorts if isinstance(suite.cohorts, str) else list(suite.cohorts),
            metrics=metrics, bins=suite.bins or None, min_group_size=suite.min_group_size, alpha=suite.alpha,
            correction=suite.correction, test=suite.fairness_test, n_boot=suite.n_bootstrap,
            n_perm=suite.n_permutations, seed=suite.seed, by_perturbation=by_perturbation, label=label,
            small_groups=suite.small_groups)
    return context.cache[key]


def _validate_fairness(gate: dict[str, Any]) -> list[str]:
    from harness.analysis.fairness_gates import gate_problems

    return gate_problems(gate)


@gate_check("fairness", validate=_validate_fairness)
def fairness_gate(gate: dict[str, Any], context: GateContext) -> list[GateResult]:
    from harness.analysis.fairness import fairness_gates

    return fairness_gates(fairness_result(context, label=gate.get("label", "mean")), gate=gate)


# Gate kinds that live beside their analysis; importing registers them.
from harness.analysis import adversarial as _adversarial  # noqa: E402,F401
from harness.analysis import shift as _shift  # noqa: E402,F401
from harness import baseline as _baseline  # noqa: E402,F401
