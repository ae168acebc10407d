"""Adversarial analysis: ε curves per attack, the ROG robust-case rule, and its gate.

Attack rows are the records whose ``params`` carry an ``attack`` key (written by the families in
:mod:`harness.perturbations.adversarial`). The unit of analysis is the case (labels averaged per
case unless a label is chosen), as in :mod:`harness.analysis.robustness`; of an attack's repeats
(independent restarts) the worst counts, as the adversary would keep it.

ROG rule (Daza et al. 2021, "Towards robust general medical image segmentation"): a case is
*robust* to an attack when its attacked Dice exceeds ``ratio`` (0.5) times the mean clean Dice of
the evaluated cases.
"""
from __future__ import annotations

import json
from typing import Any, Literal

import numpy as np
import pandas as pd

from harness.analysis.robustness import higher_is_better, per_case
from harness.gates import GateContext, GateResult, check_keys, compare, gate_check, label_problems, with_defaults
from harness.metrics import metric_info
from harness.records import CLEAN, ITEM_COLUMNS

PARAM_COLUMNS = ("attack", "threat", "targeted", "norm", "eps_unit", "eps_fraction", "achieved_linf_fraction",
                 "achieved_rms_fraction", "grad_steps", "queries", "gradient_masking_suspected", "fallback",
                 "zero_grad_fraction")
NO_GRADIENT = 0.99  # a white-box attack whose input gradient is this share zero moved only by its random start
BLACKBOX_MARGIN = 0.02  # a black-box attack "beats" a white-box one when its mean Dice is this much lower
ENSEMBLE_THREATS = ("whitebox", "blackbox")  # attacks a case must all survive (the random control is not one)


def attack_params(records: pd.DataFrame) -> pd.DataFrame:
    """One row per attacked (case_id, perturbation, severity): the parsed attack params."""
    if not len(records):
        return pd.DataFrame(columns=["case_id", "perturbation", "severity", *PARAM_COLUMNS])
    ok = records[(records["status"] == "OK") & (records["perturbation"] != CLEAN)]
    ok = ok.drop_duplicates(ITEM_COLUMNS)
    rows = []
    for rec in ok.itertuples(index=False):
        params = _params(rec.params)
        if "attack" not in params:
            continue
        rows.append({"case_id": rec.case_id, "perturbation": rec.perturbation, "severity": int(rec.severity),
                     **{k: params.get(k) for k in PARAM_COLUMNS}})
    frame = pd.DataFrame(rows, columns=["case_id", "perturbation", "severity", *PARAM_COLUMNS])
    frame["gradient_masking_suspected"] = frame["gradient_masking_suspected"].map(lambda v: bool(v))
    frame["fallback"] = frame["fallback"].map(lambda v: bool(v))
    frame["targeted"] = frame["targeted"].map(lambda v: bool(v))
    return frame


def _params(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    try:
        out = json.loads(value) if isinstance(value, str) and value else {}
    except json.JSONDecodeError:
        return {}
    return out if isinstance(out, dict) else {}


def robust_cases(records: pd.DataFrame, *, metric: str = "dice", label: int | Literal["mean"] = "mean",
                 ratio: float = 0.5) -> pd.DataFrame:
    """Per attacked case: ``value``, ``clean`` (its clean value), ``clean_mean`` (mean clean value of
    the family's cases) and ``robust`` (``value > ratio * clean_mean``; the ROG rule)."""
    attacks = attack_params(records)
    cols = ["case_id", "perturbation", "severity", "value", "clean", "clean_mean", "robust"]
    if attacks.empty:
        return pd.DataFrame(columns=cols)
    values = per_case(records, metric, label=label)
    clean = values[values["perturbation"] == CLEAN].set_index("case_id")["value"]
    keys = attacks[["case_id", "perturbation", "severity"]].drop_duplicates()
    rows = per_case(records, metric, label=label, repeats="worst").merge(
        keys, on=["case_id", "perturbation", "severity"])
    rows = rows[rows["case_id"].isin(clean.index)].copy()
    rows["clean"] = rows["case_id"].map(clean)
    means = rows.groupby("perturbation")["case_id"].agg(lambda ids: float(clean.loc[ids.unique()].mean()))
    rows["clean_mean"] = rows["perturbation"].map(means)
    rows["robust"] = rows["value"] > ratio * rows["clean_mean"]
    return rows[cols].reset_index(drop=True)


def ensemble_robust_cases(records: pd.DataFrame, *, metric: str = "dice", label: int | Literal["mean"] = "mean",
                          ratio: float = 0.5, families: list[str] | None = None) -> pd.DataFrame:
    """Robust cases against an ensemble of attacks (AutoAttack, RobustBench, ROG): per (norm,
    eps_unit, severity), a case counts as robust only when it survives *every* attack family of that
    norm run on it (white-box and black-box; the random control is not an attack). Columns: norm,
    eps_unit, severity, eps_fraction, attacks (families, comma-joined), n (cases attacked by all of
    them), clean_mean, robust_fraction. Only budgets with at least two attacks."""
    attacks = attack_params(records)
    cases = robust_cases(records, metric=metric, label=label, ratio=ratio)
    cols = ["norm", "eps_unit", "severity", "eps_fraction", "attacks", "n", "clean_mean", "robust_fraction"]
    if cases.empty:
        return pd.DataFrame(columns=cols)
    kind = attacks.drop_duplicates(["perturbation", "severity"]).set_index(["perturbation", "severity"])
    cases = cases.join(kind[["threat", "norm", "eps_unit", "eps_fraction"]], on=["perturbation", "severity"])
    cases = cases[cases["threat"].isin(ENSEMBLE_THREATS)]
    if families:
        cases = cases[cases["perturbation"].isin(families)]
    out = []
    for (norm, unit, sev), group in cases.groupby(["norm", "eps_unit", "severity"], sort=True):
        names = sorted(group["perturbation"].unique())
        if len(names) < 2:
            continue
        if group.groupby("perturbation")["eps_fraction"].first().nunique() > 1:
            continue  # different budgets at this severity: not one ball
        every = group.groupby("case_id")["perturbation"].nunique() == len(names)  # attacked by all
        shared = group[group["case_id"].isin(every[every].index)]
        if shared.empty:
            continue
        per_case_clean = shared.groupby("case_id")["clean"].first()
        clean_mean = float(per_case_clean.mean())
        survived = shared.groupby("case_id")["value"].min() > ratio * clean_mean
        out.append({"norm": norm, "eps_unit": unit, "severity": int(sev),
                    "eps_fraction": float(group["eps_fraction"].iloc[0]), "attacks": ", ".join(names),
                    "n": int(len(survived)), "clean_mean": clean_mean, "robust_fraction": float(survived.mean())})
    return pd.DataFrame(out, columns=cols)


def adversarial_table(records: pd.DataFrame, *, metric: str = "dice", label: int | Literal["mean"] = "mean",
                      ratio: float = 0.5) -> pd.DataFrame:
    """ε curves: one row per (perturbation, severity) of the attack families.

    Columns: perturbation, attack, threat, targeted, norm, eps_unit, severity, eps_fraction, n, clean_mean,
    mean (attacked ``metric``), drop (paired clean - attacked), robust_fraction (ROG rule),
    ``hd95`` (mean attacked HD95 over cases and repeats, when recorded; ``mean`` takes each case's
    worst repeat), achieved_linf_fraction (max over cases), achieved_rms_fraction (mean), grad_steps,
    queries (means), masking_suspected (cases flagged by ``check_masking``), fallback (cases a white-box
    family attacked black-box: no gradients),
    no_gradient (cases whose input gradient was ≥ 99 % exactly zero at the first step: the attack
    was its random start, not a gradient attack),
    blackbox_stronger (a black-box family at the same ε reached a lower mean than this white-box
    one by more than 0.02: suspect gradient masking or a too weak white-box setting; untargeted
    white-box attacks only), and weaker_than_noise (an untargeted white-box attack did no more
    damage than the random control at the same ε, or left the mean above clean: the first sign of
    masked gradients on Carlini et al.'s checklist).
    """
    attacks = attack_params(records)
    cases = robust_cases(records, metric=metric, label=label, ratio=ratio)
    columns = ["perturbation", "attack", "threat", "targeted", "norm", "eps_unit", "severity", "eps_fraction", "n",
               "clean_mean", "mean", "drop", "robust_fraction", "hd95", "achieved_linf_fraction",
               "achieved_rms_fraction", "grad_steps", "queries", "masking_suspected", "fallback",
               "no_gradient", "blackbox_stronger", "weaker_than_noise"]
    if cases.empty:
        return pd.DataFrame(columns=columns)
    hd = None
    if "hd95" in records.columns and metric != "hd95":
        hd = per_case(records, "hd95", label=label).set_index(["case_id", "perturbation", "severity"])["value"]
    out = []
    for (pert, sev), group in cases.groupby(["perturbation", "severity"], sort=True):
        meta = attacks[(attacks["perturbation"] == pert) & (attacks["severity"] == sev)]
        first = meta.iloc[0]
        keys = list(zip(group["case_id"], group["perturbation"], group["severity"]))
        out.append({
            "perturbation": pert, "attack": first["attack"], "threat": first["threat"],
            "targeted": bool(meta["targeted"].any()), "norm": first["norm"],
            "eps_unit": first["eps_unit"], "severity": int(sev), "eps_fraction": float(first["eps_fraction"]),
            "n": len(group), "clean_mean": float(group["clean_mean"].iloc[0]), "mean": float(group["value"].mean()),
            "drop": float((group["clean"] - group["value"]).mean()),
            "robust_fraction": float(group["robust"].mean()),
            "hd95": float(hd.reindex(keys).mean()) if hd is not None else np.nan,
            "achieved_linf_fraction": _num(meta["achieved_linf_fraction"], "max"),
            "achieved_rms_fraction": _num(meta["achieved_rms_fraction"], "mean"),
            "grad_steps": _num(meta["grad_steps"], "mean"), "queries": _num(meta["queries"], "mean"),
            "masking_suspected": int(meta["gradient_masking_suspected"].sum()),
            "fallback": int(meta["fallback"].sum()),
            "no_gradient": int((pd.to_numeric(meta["zero_grad_fraction"], errors="coerce") >= NO_GRADIENT).sum()),
            "blackbox_stronger": False, "weaker_than_noise": False})
    table = pd.DataFrame(out, columns=columns)
    return _mark_weaker_than_noise(_mark_blackbox_stronger(table, higher_is_better(metric)), higher_is_better(metric))


def _num(series: pd.Series, how: str) -> float:
    values = pd.to_numeric(series, errors="coerce").dropna()
    if values.empty:
        return float("nan")
    return float(values.max() if how == "max" else values.mean())


def _mark_blackbox_stronger(table: pd.DataFrame, better_high: bool) -> pd.DataFrame:
    black = table[table["threat"] == "blackbox"]
    for i, row in table.iterrows():
        if row["threat"] != "whitebox" or row["targeted"]:
            continue  # a targeted attack (erase) does not aim at the lowest Dice: not comparable
        same = black[(black["eps_unit"] == row["eps_unit"]) & np.isclose(black["eps_fraction"], row["eps_fraction"])]
        if same.empty:
            continue
        best = same["mean"].min() if better_high else same["mean"].max()
        stronger = best < row["mean"] - BLACKBOX_MARGIN if better_high else best > row["mean"] + BLACKBOX_MARGIN
        table.at[i, "blackbox_stronger"] = bool(stronger)
    return table


def _mark_weaker_than_noise(table: pd.DataFrame, better_high: bool) -> pd.DataFrame:
    noise = table[table["threat"] == "random"]
    for i, row in table.iterrows():
        if row["threat"] != "whitebox" or row["targeted"]:
            continue
        if row["drop"] < 0 if better_high else row["drop"] > 0:  # the attack improved the mean on clean
            table.at[i, "weaker_than_noise"] = True
            continue
        same = noise[(noise["eps_unit"] == row["eps_unit"]) & (noise["norm"] == row["norm"])
                     & np.isclose(noise["eps_fraction"], row["eps_fraction"])]
        if not same.empty:
            control = same["mean"].iloc[0]
            table.at[i, "weaker_than_noise"] = bool(row["mean"] >= control if better_high else row["mean"] <= control)
    return table


def _label_id(label: Any, records: pd.DataFrame) -> int | Literal["mean"]:
    """A gate's ``label`` (``"mean"``, a class number or a class name) as the class number; -1 when
    the records hold no such class (the gate then finds no rows)."""
    if label == "mean":
        return "mean"
    if isinstance(label, int):
        return label
    names = dict(zip(records["label_name"].astype(str), records["label"])) if len(records) else {}
    if str(label) in names:
        return int(names[str(label)])
    return int(label) if str(label).isdigit() else -1


# The optional keys of a ``robust_cases`` gate and what an absent one means (None: all / none).
GATE_DEFAULTS: dict[str, Any] = {"metric": "dice", "ratio": 0.5, "label": "mean", "min_cases": 3, "on_masking": "warn",
                                 "warn_fraction": None, "families": None, "severities": None}


def _validate(gate: dict[str, Any]) -> list[str]:
    """Key problems of a ``robust_cases`` gate, found at suite load (exit 3)."""
    name = gate.get("name", "<unnamed>")
    full = {**GATE_DEFAULTS, **gate}
    problems = check_keys(gate, required={"min_fraction"}, optional=set(GATE_DEFAULTS),
                          numbers={"min_fraction", "warn_fraction", "ratio"}, counts={"min_cases"})
    problems += label_problems(gate)
    for key in ("min_fraction", "warn_fraction"):
        value = gate.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not 0 <= value <= 1:
            problems.append(f"gate {name!r}: {key} is a fraction of cases, in [0, 1]; got {value}")
    low, warn = gate.get("min_fraction"), gate.get("warn_fraction")
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, warn)) and warn < low:
        problems.append(f"gate {name!r}: warn_fraction {warn:g} must lie on the passing side of min_fraction {low:g} "
                        "(>= it)")
    ratio = full["ratio"]
    if isinstance(ratio, (int, float)) and not isinstance(ratio, bool) and ratio <= 0:
        problems.append(f"gate {name!r}: ratio must be > 0 (ROG uses 0.5), got {ratio}")
    if full["on_masking"] not in ("warn", "fail", "ignore"):
        problems.append(f"gate {name!r}: on_masking must be warn, fail or ignore, got {gate['on_masking']!r}")
    metric = full["metric"]
    # an unknown metric is named by the suite's metric check (with a spelling hint); no direction to judge
    if not isinstance(metric, str) or (metric_info(metric) is not None and not higher_is_better(metric)):
        problems.append(f"gate {name!r}: robust_cases needs a higher-is-better metric such as dice, got {metric!r}")
    return problems


@gate_check("robust_cases", validate=_validate, defaults=GATE_DEFAULTS,
            meaning="fraction of cases keeping Dice above a share of the clean mean under attack (ROG rule)")
def robust_cases_gate(gate: dict[str, Any], context: GateContext) -> list[GateResult]:
    """Per attack family: the fraction of ROG-robust cases at each severity in ``severities``
    (default all) against ``min_fraction`` (optional ``warn_fraction``); the worst severity decides.

    Keys: name, metric (default dice; higher-is-better), min_fraction, warn_fraction, ratio (0.5),
    severities, families (default every attack family), label ("mean" or a class), min_cases (3),
    on_masking ("warn" | "fail" | "ignore": what a PASS becomes when a case of the family was flagged
    ``gradient_masking_suspected`` or a black-box family beat it at the same ε).
    """
    gate = with_defaults(gate, context.suite, kind="robust_cases")
    metric = gate["metric"]
    min_fraction = float(gate["min_fraction"])
    warn = gate["warn_fraction"]
    if not higher_is_better(metric):
        return [GateResult(gate["name"], "ERROR", None, min_fraction,
                           f"robust_cases needs a higher-is-better metric such as dice; got {metric!r}")]
    label = _label_id(gate["label"], context.records)
    key = f"adversarial_table/{metric}/{label}/{gate['ratio']}"
    if key not in context.cache:
        context.cache[key] = adversarial_table(context.records, metric=metric, label=label,
                                               ratio=float(gate["ratio"]))
    table = context.cache[key]
    wanted, severities = gate["families"], gate["severities"]
    on_masking = gate["on_masking"]
    results = []
    for pert, rows in table.groupby("perturbation", sort=True):
        if wanted and pert not in wanted:
            continue
        if severities:
            rows = rows[rows["severity"].isin(severities)]
        gname = f"{gate['name']}[{pert}]"
        if rows.empty:
            results.append(GateResult(gname, "INCONCLUSIVE", None, min_fraction,
                                      f"{pert}: no attacked cases at severities {severities}"))
            continue
        n = int(rows["n"].min())
        if n < int(gate["min_cases"]):
            results.append(GateResult(gname, "INCONCLUSIVE", None, min_fraction,
                                      f"{pert}: only {n} attacked case(s) with a clean result; need "
                                      f"{gate['min_cases']}"))
            continue
        worst, value, outcome = _worst_severity(rows, min_fraction, warn)
        detail = (f"{pert}: worst robust-case fraction {value:.3g} at severity {int(worst['severity'])} "
                  f"(eps = {worst['eps_fraction']:g} x {worst['eps_unit']}; attacked {metric} > "
                  f"{gate['ratio']:g} x clean mean {worst['clean_mean']:.3g}) over {int(worst['n'])} cases; "
                  f"required >= {min_fraction:g}")
        suspect = int(rows["masking_suspected"].sum()) + int(rows["blackbox_stronger"].sum())
        weaker = rows[rows["weaker_than_noise"].astype(bool)]
        no_gradient = int(rows["no_gradient"].sum())
        if suspect and on_masking != "ignore":
            detail += ("; gradient masking suspected (a black-box attack did more damage), so the white-box "
                       "result may overstate robustness")
        if not weaker.empty and on_masking != "ignore":
            detail += (f"; at severity {', '.join(str(int(s)) for s in weaker['severity'])} it did no more damage than "
                       "the random-noise control at the same eps (or raised the mean above clean): gradient masking "
                       "suspected, robustness is not shown")
        if no_gradient and on_masking != "ignore":
            detail += (f"; the model's input gradient was (almost) all zero on {no_gradient} attacked case(s), so "
                       "the white-box attack there was only its random start: robustness is not shown")
        fallback = rows[rows["fallback"] > 0]
        if not fallback.empty:  # the named white-box attack never ran: say so where CI reads the result
            queries = fallback["queries"].max()
            detail += (f"; {pert} ran as square_attack on {int(fallback['fallback'].max())} case(s) (the model "
                       "offers no gradients" + (f", {queries:.0f} queries" if np.isfinite(queries) else "")
                       + "): a black-box attack, usually weaker than the white-box one")
        if (suspect or no_gradient or not weaker.empty) and on_masking != "ignore" and outcome == "PASS":
            outcome = "FAIL" if on_masking == "fail" else "WARN"
        results.append(GateResult(gname, outcome, value, min_fraction, detail))
    results += _ensemble_results(gate, context, label, min_fraction, warn)
    if not results:
        results.append(GateResult(gate["name"], "INCONCLUSIVE", None, min_fraction,
                                  "no attack rows in the records (no adversarial family ran)"))
    return results


def _worst_severity(rows: pd.DataFrame, min_fraction: float, warn: Any) -> tuple[pd.Series, float, str]:
    """The row with the lowest robust fraction (the higher severity on ties), that fraction and its
    outcome against ``min_fraction`` and the optional ``warn``."""
    worst = rows.sort_values(["robust_fraction", "severity"], ascending=[True, False]).iloc[0]
    value = float(worst["robust_fraction"])
    return worst, value, compare(value, higher_is_better=True, fail=min_fraction,
                                 warn=None if warn is None else float(warn))


def _ensemble_results(gate: dict[str, Any], context: GateContext, label: int | Literal["mean"],
                      min_fraction: float, warn: Any) -> list[GateResult]:
    """``name[all linf attacks]``: per norm with two or more attack families, the fraction of cases
    that survive every one of them (the worst severity decides), against the same thresholds."""
    key = f"ensemble_robust_cases/{gate['metric']}/{label}/{gate['ratio']}/{gate['families']}"
    if key not in context.cache:  # several robust_cases gates over the same records share it
        context.cache[key] = ensemble_robust_cases(context.records, metric=gate["metric"], label=label,
                                                   ratio=float(gate["ratio"]), families=gate["families"])
    table = context.cache[key]
    if gate["severities"]:
        table = table[table["severity"].isin(gate["severities"])]
    results = []
    for norm, rows in table.groupby("norm", sort=True):
        gname = f"{gate['name']}[all {norm} attacks]"
        n = int(rows["n"].min())
        if n < int(gate["min_cases"]):
            results.append(GateResult(gname, "INCONCLUSIVE", None, min_fraction,
                                      f"only {n} case(s) attacked by every {norm} attack; need {gate['min_cases']}"))
            continue
        worst, value, outcome = _worst_severity(rows, min_fraction, warn)
        detail = (f"cases surviving every {norm} attack ({worst['attacks']}): worst fraction {value:.3g} at "
                  f"severity {int(worst['severity'])} (eps = {worst['eps_fraction']:g} x {worst['eps_unit']}) over "
                  f"{int(worst['n'])} cases; required >= {min_fraction:g}")
        results.append(GateResult(gname, outcome, value, min_fraction, detail))
    return results
