"""Fairness gates: outcomes from a :class:`~harness.analysis.fairness.FairnessResult` and suite data.

Rule, per attribute (and per perturbation × severity when the gate asks for them):

* INCONCLUSIVE when fewer than two groups have data, or any compared group has fewer cases than
  the suite's ``min_group_size`` (the numbers are still reported in the detail); with the suite's
  ``small_groups = "exclude"`` such groups are not compared (the detail names them) and the rule
  applies to the others;
* FAIL when the adjusted p-value < ``alpha`` **and** the gap (max − min of group means) > ``max_gap``;
* WARN when exactly one of the two holds (a significant but clinically small gap, or a large gap
  the data cannot distinguish from noise);
* PASS otherwise.

Gate keys (suite data): ``name``, ``metric``, ``max_gap`` (required); ``alpha`` (default: the
analysis α); ``perturbation`` = ``"clean"`` (default), ``"all"`` or one perturbation's name;
``attributes`` (subset of the analysed ones); ``label`` (when the analysis kept labels apart).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from harness.errors import ConfigError
from harness.gates import SuiteSetting, exceeds, key_problems

if TYPE_CHECKING:
    from harness.analysis.fairness import FairnessResult
    from harness.gates import GateResult

# The optional keys and what an absent one means (None: every analysed attribute).
GATE_DEFAULTS: dict[str, Any] = {"alpha": SuiteSetting("alpha", 0.05), "perturbation": "clean", "attributes": None,
                                 "label": "mean"}
GATE_KEYS = {"name", "check", "metric", "max_gap", "description", *GATE_DEFAULTS}


def _fmt(x: float) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.4g}"


def _rows_for(gaps: pd.DataFrame, perturbation: str) -> pd.DataFrame:
    if perturbation == "all":
        return gaps
    return gaps[gaps["perturbation"] == perturbation]


def _outcome(row: pd.Series, *, max_gap: float, alpha: float, min_group_size: int,
             level: float = 0.95, cluster: str = "") -> tuple[str, str]:
    where = f"{row['attribute']} (by {cluster}: n counts {cluster} values)" if cluster else row["attribute"]
    excluded = row["excluded_groups"]
    left_out = f"; left out (below min_group_size {min_group_size}): {excluded}" if excluded else ""
    if row["n_groups"] < 2 or not np.isfinite(row["p_value"]):
        enough = f" of at least {min_group_size} {f'{cluster} values' if cluster else 'cases'}" if excluded else ""
        return "INCONCLUSIVE", (f"{where}: fewer than two groups{enough} with data "
                                f"({row['best_group'] or 'none'}){left_out}")
    worst = (f"worst group {row['worst_group']}: {row['metric']} {_fmt(row['worst_value'])} "
             f"({level * 100:g}% CI {_fmt(row['worst_value_ci_low'])}–{_fmt(row['worst_value_ci_high'])}) vs best "
             f"{row['best_group']} {_fmt(row['best_value'])}")
    gap = (f"gap {_fmt(row['difference'])} (CI {_fmt(row['difference_ci_low'])}–{_fmt(row['difference_ci_high'])}; "
           f"margin {max_gap:g})")
    test = (f"p_adj {_fmt(row['p_adjusted'])} ({row['correction']}, {row['test']}; α {alpha:g}); "
            f"effect r {_fmt(row['effect_size'])}")
    if row["small_groups"]:
        return "INCONCLUSIVE", (f"{where}: group(s) {row['small_groups']} below min_group_size {min_group_size}, "
                                f"not gated; {worst}; {gap}; {test}")
    significant = bool(row["p_adjusted"] < alpha)
    large = exceeds(row["difference"], max_gap)
    outcome = "FAIL" if significant and large else "WARN" if significant or large else "PASS"
    why = {"FAIL": "significant and above the margin", "PASS": "",
           "WARN": "significant but within the margin" if significant else "above the margin but not significant"}
    text = f"{where}: {worst}; {gap}; {test}{left_out}"
    return outcome, text + (f" → {why[outcome]}" if why[outcome] else "")


def gate_problems(gate: Mapping[str, Any]) -> list[str]:
    """Problems with a fairness gate's keys and values that need no data (for suite validation)."""
    name = gate.get("name", "<unnamed>")
    problems = key_problems(gate, required=("name", "metric", "max_gap"), allowed=GATE_KEYS)
    if "max_gap" in gate and not (isinstance(gate["max_gap"], (int, float)) and not isinstance(gate["max_gap"], bool)
                                  and 0 <= gate["max_gap"] < float("inf")):
        problems.append(f"gate {name!r}: max_gap must be a number >= 0, got {gate['max_gap']!r}")
    alpha = gate.get("alpha", 0.05)
    if not (isinstance(alpha, (int, float)) and not isinstance(alpha, bool) and 0 < alpha < 1):
        problems.append(f"gate {name!r}: alpha must be in (0, 1), got {alpha!r}")
    if not isinstance(gate.get("perturbation", "clean"), str):
        problems.append(f"gate {name!r}: perturbation must be 'clean', 'all' or a perturbation's name")
    attributes = gate.get("attributes")
    if attributes is not None and not (isinstance(attributes, list) and all(isinstance(a, str) for a in attributes)):
        problems.append(f"gate {name!r}: attributes must be a list of cohort names, got {attributes!r}")
    return problems


def _validate(gate: Mapping[str, Any], result: FairnessResult) -> None:
    problems = gate_problems(gate)
    name = gate.get("name", "<unnamed>")
    metrics = set(result.gaps["metric"])
    if "metric" in gate and metrics and gate["metric"] not in metrics:
        problems.append(f"gate {name!r}: metric {gate['metric']!r} was not analysed ({', '.join(sorted(metrics))})")
    wanted = gate.get("attributes")
    if wanted is not None:
        missing = [a for a in wanted if a not in result.levels]
        if missing:
            problems.append(f"gate {name!r}: attribute(s) {', '.join(missing)} not analysed; "
                            f"analysed: {', '.join(result.levels) or '(none)'}")
    if problems:
        raise ConfigError("fairness gate is invalid:", problems=problems)


def fairness_gates(result: FairnessResult, *, gate: Mapping[str, Any]) -> list[GateResult]:
    """One :class:`harness.gates.GateResult` per attribute (× perturbation × severity when the gate's
    ``perturbation`` is not ``"clean"``), named ``"<name>[<attribute>]"`` (+ ``"[<pert>@<sev>]"``,
    + ``"[<label>]"`` when labels were kept apart). ``value`` is the gap, ``threshold`` ``max_gap``.
    """
    from harness.gates import GateResult

    _validate(gate, result)
    name, metric = str(gate["name"]), str(gate["metric"])
    max_gap, alpha = float(gate["max_gap"]), float(gate.get("alpha", result.alpha))
    perturbation = str(gate.get("perturbation", "clean"))
    attributes = list(gate.get("attributes") or result.levels)
    gaps = result.gaps[result.gaps["metric"] == metric]
    if gate.get("label", "mean") not in ("mean", "each") and gaps["label"].nunique() > 1:  # one class of several
        gaps = gaps[gaps["label"] == str(gate["label"])]
    many_labels = gaps["label"].nunique() > 1
    out: list[GateResult] = []
    for attribute in attributes:
        rows = _rows_for(gaps[gaps["attribute"] == attribute], perturbation)
        if rows.empty:
            out.append(GateResult(f"{name}[{attribute}]", "INCONCLUSIVE", None, max_gap,
                                  f"{attribute}: no {metric} values for perturbation {perturbation!r}"))
            continue
        for _, row in rows.iterrows():
            gname = f"{name}[{attribute}]"
            if perturbation != "clean":
                gname += f"[{row['perturbation']}@{row['severity']}]"
            if many_labels:
                gname += f"[{row['label']}]"
            outcome, detail = _outcome(row, max_gap=max_gap, alpha=alpha, min_group_size=result.min_group_size,
                                       level=result.level, cluster=result.cluster)
            value = float(row["difference"]) if np.isfinite(row["difference"]) else None
            out.append(GateResult(gname, outcome, value, max_gap, detail))
    return out
