"""Per-case metric values: the unit of analysis for group comparisons.

Records hold one row per case × perturbation × severity × repeat × label. Rows of one case are
never independent samples, so they are reduced to one value per case (and per label when asked)
before any statistic: repeats are averaged, and labels are averaged (``label="mean"``), kept apart
(``label="each"``) or one is selected (a label id or name). Only ``status == "OK"`` rows count.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from harness.errors import ConfigError

CLEAN = "clean"
KEYS = ["case_id", "label", "perturbation", "severity"]

# Direction fallback when harness.metrics has no entry (plugins can pass ``directions=``).
HIGHER_IS_BETTER = {"dice": True, "iou": True, "nsd": True, "precision": True, "recall": True,
                    "hd": False, "hd95": False, "assd": False, "masd": False, "fp_lesions": False,
                    "fn_lesions": False}


def metric_directions(metrics: Sequence[str], *, overrides: dict[str, bool] | None = None) -> dict[str, bool]:
    """``{metric: higher_is_better}`` from ``overrides``, ``harness.metrics.available()``, or the
    local table (``*_volume_error``: lower is better). Unknown metrics are a ConfigError."""
    try:
        from harness.metrics import metric_info

        registry = {m: bool(info.higher_is_better) for m in metrics if (info := metric_info(m)) is not None}
    except (ImportError, AttributeError):  # metrics package not importable yet
        registry = {}
    out, unknown = {}, []
    for m in metrics:
        if overrides and m in overrides:
            out[m] = bool(overrides[m])
        elif m in registry:
            out[m] = registry[m]
        elif m in HIGHER_IS_BETTER:
            out[m] = HIGHER_IS_BETTER[m]
        elif m.endswith("_volume_error"):
            out[m] = False
        else:
            unknown.append(m)
    if unknown:
        raise ConfigError(f"metric(s) {', '.join(unknown)}: direction unknown (is higher better?); "
                          "install the plugin that registers them (entry-point group harness.metrics: "
                          "a run folder scored with it needs it to be read), or pass directions={name: bool}")
    return out


def _label_rows(ok: pd.DataFrame, label: int | str) -> tuple[pd.DataFrame, str]:
    names = ok["label_name"].astype(str) if "label_name" in ok.columns else ok["label"].astype(str)
    as_text = str(label)
    hit = (ok["label"].astype(str) == as_text) | (names == as_text)
    if not hit.any():
        known = sorted({f"{k} ({v})" for k, v in zip(ok["label"], names)})
        raise ConfigError(f"label {label!r} not in the records; labels present: {', '.join(known) or '(none)'}")
    rows = ok[hit]
    return rows, str(names[hit].iloc[0])


def case_values(records: pd.DataFrame, *, metrics: Sequence[str], label: int | str = "mean",
                by_perturbation: bool = True) -> pd.DataFrame:
    """One row per case (× label) × perturbation × severity.

    Columns: case_id (str), label (``"mean"`` or the label's name), perturbation, severity (int),
    then the metrics. ``by_perturbation=False`` keeps clean rows only.
    """
    missing = [m for m in metrics if m not in records.columns]
    if missing:
        present = [c for c in records.columns if pd.api.types.is_numeric_dtype(records[c])]
        raise ConfigError(f"metric column(s) {', '.join(missing)} not in the records; numeric columns: "
                          f"{', '.join(map(str, present))}")
    if "case_id" not in records.columns:
        raise ConfigError("the records need a case_id column (one row per case, or per case x class x "
                          f"perturbation x severity); columns: {', '.join(map(str, records.columns))}")
    # a plain per-case table (e.g. a researcher's own scores) is clean and of one class
    absent = {k: v for k, v in (("perturbation", CLEAN), ("severity", 0), ("label", 1)) if k not in records.columns}
    if absent:
        records = records.assign(**absent)
    ok = records[records["status"] == "OK"] if "status" in records.columns else records
    if not by_perturbation:
        ok = ok[ok["perturbation"] == CLEAN]
    cols = ["case_id", "perturbation", "severity", "label"] + list(metrics)
    if label == "mean":
        fg = ok[ok["label"] != 0] if (ok["label"] != 0).any() else ok
        frame = fg[cols].assign(label="mean")
    elif label == "each":
        names = ok["label_name"] if "label_name" in ok.columns else ok["label"]
        frame = ok[cols].assign(label=names.astype(str).to_numpy())
    else:
        rows, name = _label_rows(ok, label)
        frame = rows[cols].assign(label=name)
    frame = frame.assign(case_id=frame["case_id"].astype(str), severity=frame["severity"].astype(int))
    values = frame[list(metrics)].astype(float)
    frame = pd.concat([frame[KEYS], values], axis=1)
    # Mean over repeats and (for "mean") labels; NaN metric values are skipped, never imputed.
    out = frame.groupby(KEYS, sort=True, observed=True)[list(metrics)].mean().reset_index()
    return out


def cells(values: pd.DataFrame) -> list[tuple[str, str, int]]:
    """The (label, perturbation, severity) analysis cells, clean first."""
    keys = values[["label", "perturbation", "severity"]].drop_duplicates()
    keys = keys.assign(_dirty=keys["perturbation"] != CLEAN).sort_values(
        ["label", "_dirty", "perturbation", "severity"])
    return [(str(a), str(b), int(c)) for a, b, c in keys[["label", "perturbation", "severity"]].to_numpy()]


def value_matrix(values: pd.DataFrame, metrics: Sequence[str]) -> np.ndarray:
    return values[list(metrics)].to_numpy(dtype=float)
