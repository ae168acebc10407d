"""Self-contained HTML report of a run folder (regenerable from the folder alone)."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from harness.analysis.robustness import corruption_error, robustness_table
from harness.records import read_records

TEMPLATES = Path(__file__).parent / "templates"


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _pct(value: Any) -> str:
    return "–" if value is None or not math.isfinite(float(value)) else f"{100 * float(value):.1f} %"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES),
                             autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
                             undefined=jinja2.StrictUndefined)
    env.globals.update(fmt=_fmt, pct=_pct)
    return env


def render_report(run_dir: Path) -> str:
    """HTML text for the run in ``run_dir`` (reads summary.json, records.csv, suite.toml)."""
    from harness.report.plots import severity_curves

    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    records = read_records(run_dir / "records.csv")
    metrics = summary["metrics"]
    table = robustness_table(records, metrics, seed=summary["seed"]) if len(records) else pd.DataFrame()
    ce = corruption_error(table) if "dice" in metrics and len(table) else pd.DataFrame()
    curves = [(m, severity_curves(table, m)) for m in metrics[:3]] if len(table) else []
    errors = records[records["status"] == "ERROR"].drop_duplicates(["case_id", "perturbation", "severity", "repeat"])
    clean_columns = sorted({k for v in summary["clean"].values() for k in v}, key=lambda k: (k == "mean", k))
    suite_text = (run_dir / "suite.toml").read_text(encoding="utf-8") if (run_dir / "suite.toml").exists() else ""
    return _environment().get_template("report.html.j2").render(
        summary=summary, robustness=table.to_dict("records"), ce=ce.to_dict("records"), curves=curves,
        errors=errors.head(200).to_dict("records"), clean_columns=clean_columns, suite_text=suite_text)


def write_report(run_dir: Path) -> Path:
    path = run_dir / "report.html"
    path.write_text(render_report(run_dir), encoding="utf-8")
    return path
