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
from harness.analysis.fairness_gates import GATE_DEFAULTS as FAIRNESS_DEFAULTS
from harness.gates import GateContext, GateResult, check_keys, compare, gate_check, label_problems, with_defaults
from harness.metrics import metric_info, value_range
from harness.records import CLEAN


# The optional keys of each bundled kind and what an absent one means (None: all / none).
CLEAN_DEFAULTS: dict[str, Any] = {"label": "each", "min_cases": 3, "warn": None}
DEGRADATION_DEFAULTS: dict[str, Any] = {"label": "mean", "mode": "absolute", "min_cases": 3, "warn_drop": None,
                                        "families": None, "severities": None}


def _labels(gate: dict[str, Any], context: GateContext) -> list[tuple[str, int | str]]:
    choice = gate["label"]
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
    name = gate.get("name")
    problems = check_keys(gate, required={"metric"}, optional={"min", "max", *CLEAN_DEFAULTS},
                          numbers={"min", "max", "warn"}, counts={"min_cases"})
    problems += label_problems(gate, each=True)
    if not isinstance(gate.get("metric"), str) or metric_info(gate["metric"]) is None:
        return problems  # an unknown metric is named by the suite's metric check; no direction to advise on
    better_high = higher_is_better(gate["metric"])
    key, wrong = ("min", "max") if better_high else ("max", "min")
    if wrong in gate:
        problems.append(f"gate {name!r}: {gate['metric']} is {'higher' if better_high else 'lower'}-is-better, "
                        f"so its threshold is {key!r}, not {wrong!r}")
    elif key not in gate:
        problems.append(f"gate {name!r}: needs {key!r} (the {'lowest' if better_high else 'highest'} acceptable "
                        f"clean mean {gate['metric']})")
    elif _finite(gate.get(key)) and _finite(gate.get("warn")) and \
            (gate["warn"] < gate[key] if better_high else gate["warn"] > gate[key]):
        problems.append(f"gate {name!r}: warn {gate['warn']:g} must lie on the passing side of {key} {gate[key]:g}")
    low, high = value_range(gate["metric"])
    for k in (key, "warn"):
        if _finite(gate.get(k)) and not low <= gate[k] <= high:
            problems.append(f"gate {name!r}: {k} {gate[k]:g} lies outside what {gate['metric']} can take "
                            f"({low:g}..{high:g}), so the gate could never pass or never fail")
    return problems


def _validate_degradation(gate: dict[str, Any]) -> list[str]:
    name = gate.get("name")
    problems = check_keys(gate, required={"metric", "max_drop"}, optional=set(DEGRADATION_DEFAULTS),
                          numbers={"max_drop", "warn_drop"}, counts={"min_cases"})
    problems += label_problems(gate, each=True)
    if {**DEGRADATION_DEFAULTS, **gate}["mode"] not in ("absolute", "relative"):
        problems.append(f"gate {name!r}: mode must be 'absolute' or 'relative'")
    if _finite(gate.get("max_drop")) and gate["max_drop"] < 0:
        problems.append(f"gate {name!r}: max_drop must be >= 0 (how much worse than clean is allowed), "
                        f"got {gate['max_drop']!r}")
    if _finite(gate.get("warn_drop")) and gate["warn_drop"] < 0:
        problems.append(f"gate {name!r}: warn_drop must be >= 0 (a negative one warns on every family), "
                        f"got {gate['warn_drop']!r}")
    if _finite(gate.get("max_drop")) and _finite(gate.get("warn_drop")) and gate["warn_drop"] > gate["max_drop"]:
        problems.append(f"gate {name!r}: warn_drop {gate['warn_drop']:g} must not exceed max_drop {gate['max_drop']:g}")
    return problems


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and bool(np.isfinite(value))


@gate_check("clean", validate=_validate_clean, defaults=CLEAN_DEFAULTS,
            meaning="mean metric over clean cases against a minimum (maximum for distances)")
def clean_gate(gate: dict[str, Any], context: GateContext) -> list[GateResult]:
    gate = with_defaults(gate, context.suite, kind="clean")
    metric = gate["metric"]
    better_high = higher_is_better(metric)
    threshold = float(gate["min" if better_high else "max"])
    warn = gate["warn"]
    min_cases = int(gate["min_cases"])
    results = []
    for name, label in _labels(gate, context):
        values = per_case(context.records, metric, label=label)  # type: ignore[arg-type]
        values = values[values["perturbation"] == CLEAN]["value"]
        missing = int(values.isna().sum())  # undefined for a case (e.g. a plugin metric's inf)
        values = values.dropna()
        left_out = f"; {missing} case(s) without a finite value left out" if missing else ""
        gname = f"{gate['name']}[{name}]"
        if len(values) < min_cases:
            results.append(GateResult(gname, "INCONCLUSIVE", None, threshold,
                                      f"only {len(values)} clean case(s) with label {name}; need "
                                      f"{min_cases}{left_out}"))
            continue
        mean = float(values.mean())
        outcome = compare(mean, higher_is_better=better_high, fail=threshold,
                          warn=None if warn is None else float(warn))
        op = ">=" if better_high else "<="
        what = f"clean {metric} (mean over classes per case)" if label == "mean" else f"clean mean {metric} of {name}"
        results.append(GateResult(gname, outcome, mean, threshold,
                                  f"{what} = {mean:.4g} over {len(values)} cases{_absent_in_both(context, label)} "
                                  f"(required {op} {threshold:g}{'' if warn is None else f', warn at {warn:g}'})"
                                  f"{left_out}"))
    return results


def _absent_in_both(context: GateContext, label: int | str) -> str:
    """", k of them without the class in reference and prediction (scored by the empty-mask policy)"
    for one class's clean cases; "" when there are none, or for the mean over classes."""
    records = context.records
    if label == "mean" or "empty" not in records.columns:
        return ""
    rows = records[(records["status"] == "OK") & (records["perturbation"] == CLEAN) & (records["label"] == label)]
    n = rows.loc[rows["empty"] == "both", "case_id"].nunique()
    return (f", {n} of them with the class absent from reference and prediction (scored by the empty-mask "
            "policy)") if n else ""


def _severity_drops(rows: Any, clean: Any, *, better_high: bool, relative: bool, min_cases: int,
                    planned: Any = ()) -> tuple[dict[int, tuple[float, int]], list[str], bool]:
    """Paired mean degradation per severity (finite pairs only) as severity -> (drop, n), why
    other severities were not gated (too few pairs, or a relative drop from a clean mean of 0, or
    ``planned`` severities without a scored case: every item failed), and whether any gated pair
    differed from clean at all."""
    drops, skipped, changed = {}, [], False
    for sev in sorted(set(int(v) for v in planned) - set(int(v) for v in rows["severity"])):
        skipped.append(f"severity {sev}: no scored case (every item failed)")
    for sev, group in rows.groupby("severity"):
        pert, base = group.set_index("case_id")["value"].align(clean, join="inner")
        finite = pert.notna() & base.notna()
        pert, base = pert[finite], base[finite]
        if len(pert) < min_cases:
            skipped.append(f"severity {int(sev)}: only {len(pert)} paired case(s), need {min_cases}")
            continue
        changed = changed or bool((pert != base).any())
        drop = float((base - pert).mean() if better_high else (pert - base).mean())
        if relative:
            if float(base.mean()) == 0:
                skipped.append(f"severity {int(sev)}: clean mean 0, a relative drop is undefined")
                continue
            drop /= abs(float(base.mean()))
        drops[int(sev)] = (drop, len(pert))
    return drops, skipped, changed


@gate_check("degradation", validate=_validate_degradation, defaults=DEGRADATION_DEFAULTS,
            meaning="per family, the worst paired mean degradation vs clean over the listed severities")
def degradation_gate(gate: dict[str, Any], context: GateContext) -> list[GateResult]:
    """Per family: FAIL/WARN on the worst severity with at least ``min_cases`` finite pairs;
    INCONCLUSIVE when no severity fails and some could not be gated (too few pairs)."""
    gate = with_defaults(gate, context.suite, kind="degradation")
    metric = gate["metric"]
    better_high = higher_is_better(metric)
    max_drop, warn_drop = float(gate["max_drop"]), gate["warn_drop"]
    relative = gate["mode"] == "relative"
    wanted = gate["families"]
    severities = gate["severities"]
    min_cases = int(gate["min_cases"])
    unit = "relative " if relative else ""
    results = []
    # every family and severity the run has records of, failed ones included (per_case keeps OK rows only)
    planned = context.records[["perturbation", "severity"]].drop_duplicates()
    by_class = _per_class(context, metric) if gate["label"] == "mean" else {}  # once, for every family
    for name, label in _labels(gate, context):
        values = per_case(context.records, metric, label=label)  # type: ignore[arg-type]
        clean = values[values["perturbation"] == CLEAN].set_index("case_id")["value"]
        for family in sorted(set(planned["perturbation"]) - {CLEAN}):
            if wanted and family not in wanted:
                continue
            rows = values[(values["perturbation"] == family)]
            sevs = planned.loc[planned["perturbation"] == family, "severity"]
            if severities:
                rows = rows[rows["severity"].isin(severities)]
                sevs = sevs[sevs.isin(severities)]
            gname = f"{gate['name']}[{family}]" + ("" if label == "mean" else f"[{name}]")
            drops, skipped, changed = _severity_drops(rows, clean, better_high=better_high, relative=relative,
                                                      min_cases=min_cases, planned=sevs)
            not_gated = f"; not gated: {'; '.join(skipped)}" if skipped else ""
            if not drops:
                results.append(GateResult(gname, "INCONCLUSIVE", None, max_drop,
                                          f"{family}: no severity could be gated{not_gated}"))
                continue
            worst_sev = max(drops, key=lambda s: drops[s][0])
            worst, n = drops[worst_sev]
            outcome = compare(worst, higher_is_better=False, fail=max_drop,
                              warn=None if warn_drop is None else float(warn_drop))
            if skipped and outcome != "FAIL":
                outcome = "INCONCLUSIVE"  # an ungated severity could hide a failure
            warn_text = "" if warn_drop is None else f", warn above {float(warn_drop):g}"
            classes = _class_drops(by_class, family, worst_sev, better_high=better_high, relative=relative)
            no_effect = (f"; no case's {metric} changed under {family}, so this gate saw no effect to judge "
                         "(check other metrics, or whether the model's input normalisation removes it)") \
                if not changed else ""
            results.append(GateResult(gname, outcome, worst, max_drop,
                                      f"{family}: worst {unit}{metric} degradation {worst:.4g} at severity "
                                      f"{worst_sev} (allowed <= {max_drop:g}{warn_text}) over {n} cases"
                                      f"{classes}{no_effect}{not_gated}"))
    return results


def _per_class(context: GateContext, metric: str) -> dict[str, tuple[Any, Any]]:
    """Class name -> (its per-case values, its clean values by case) when there are several classes;
    {} with one (a mean over one class hides nothing)."""
    labels = _labels({"label": "each"}, context)
    if len(labels) < 2:
        return {}
    out = {}
    for name, label in labels:
        values = per_case(context.records, metric, label=label)
        out[name] = (values, values[values["perturbation"] == CLEAN].set_index("case_id")["value"])
    return out


def _class_drops(by_class: dict[str, tuple[Any, Any]], family: str, severity: int, *, better_high: bool,
                 relative: bool) -> str:
    """For a gate on the mean over classes: each class's own drop at ``severity`` (a drop the mean
    hides), as "; mean over classes (organ 0.009, lesion 0.11)"; "" without several classes."""
    if not by_class:
        return ""
    parts = []
    for name, (values, clean) in by_class.items():
        rows = values[(values["perturbation"] == family) & (values["severity"] == severity)]
        drops, _, _ = _severity_drops(rows, clean, better_high=better_high, relative=relative, min_cases=1)
        parts.append(f"{name} {drops[severity][0]:.4g}" if severity in drops else f"{name} –")
    return f"; mean over classes ({', '.join(parts)})"


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
            small_groups=suite.small_groups, cluster=getattr(suite, "cluster", ""))  # none on older suite-likes
    return context.cache[key]


def _validate_fairness(gate: dict[str, Any]) -> list[str]:
    from harness.analysis.fairness_gates import gate_problems

    return gate_problems(gate) + label_problems(gate, each=True)


@gate_check("fairness", validate=_validate_fairness, defaults=FAIRNESS_DEFAULTS,
            meaning="per attribute, the max–min group gap: FAIL when significant after correction and above "
                    "max_gap; WARN when only one of the two holds",
            settings=("min_group_size", "small_groups", "fairness_test", "correction", "cluster"))
def fairness_gate(gate: dict[str, Any], context: GateContext) -> list[GateResult]:
    from harness.analysis.fairness import fairness_gates

    gate = with_defaults(gate, context.suite, kind="fairness")
    return fairness_gates(fairness_result(context, label=gate["label"]), gate=gate)


# Gate kinds that live beside their analysis; importing registers them.
from harness.analysis import adversarial as _adversarial  # noqa: E402,F401
from harness.analysis import shift as _shift  # noqa: E402,F401
from harness import baseline as _baseline  # noqa: E402,F401
