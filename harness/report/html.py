"""Self-contained HTML report and validation dossier of a run folder (regenerable from the folder alone).

``report.html`` is what people read (verdict first, then each analysis); ``dossier.html`` is the
validation dossier (intended use, identity, data manifest, suite, metric definitions, acceptance
criteria, analysis plan, results, failure analysis, limitations, run record). Both are one file:
inline CSS, plots as data URIs, no scripts and a Content-Security-Policy that forbids network
access. Every user-provided string goes through jinja2's autoescaping.

Rendering is deterministic: regenerating from the same run folder gives the same bytes (no
wall-clock timestamp is written; the run's own creation time is).
"""
from __future__ import annotations

import math
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import jinja2

from harness import atomic
from harness.records import CLEAN, failed_items
from harness.report import dossier, sections
from harness.report.rundir import RunDir, load_run
from harness.report.units import run_unit_label

TEMPLATES = Path(__file__).parent / "templates"
Format = Literal["html", "dossier"]
FILES: dict[str, str] = {"html": "report.html", "dossier": "dossier.html"}
DOSSIER_TOC = [("intended-use", "Intended use"), ("identity", "Identity"), ("data", "Data manifest"),
               ("suite", "Suite"), ("metrics", "Metrics"), ("criteria", "Acceptance criteria"),
               ("sap", "Analysis plan"), ("results", "Results"), ("failures", "Failure analysis"),
               ("limitations", "Limitations"), ("run-record", "Run record")]


def _finite(value: Any) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _fmt(value: Any, digits: int = 4) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float)) or hasattr(value, "dtype"):
        return f"{float(value):.{digits}g}" if _finite(value) else "–"
    if value is None:
        return "–"
    return str(value)


def _signed(value: Any) -> str:
    return f"{float(value):+.3g}" if _finite(value) else "–"


def _pct(value: Any) -> str:
    return f"{100 * float(value):.1f} %" if _finite(value) else "–"


def _ci(low: Any, high: Any, signed: bool = False) -> str:
    if not (_finite(low) and _finite(high)):
        return "–"
    f = _signed if signed else _fmt
    return f"{f(low)} – {f(high)}"


def _pval(value: Any, alpha: float | None = None) -> str:
    """A p-value to 2 significant digits (more when rounding would carry it across ``alpha``: an
    adjusted 0.0496 marked significant at 0.05 must not read "0.050"); "< 0.001" below 0.001."""
    if not _finite(value):
        return "–"
    p = float(value)
    if p < 0.001:
        return "< 0.001"
    for digits in range(2, 18):
        text = f"{p:.{digits}g}"
        if alpha is None or (float(text) < alpha) == (p < alpha):
            return text
    return repr(p)  # exact: no shorter text stays on its side of alpha


def environment(summary: dict[str, Any] | None = None) -> jinja2.Environment:
    """The templates' environment; metric units follow ``summary`` (a run's: pixels where its cases
    had no physical spacing)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=False, keep_trailing_newline=True)
    env.globals.update(fmt=_fmt, pct=_pct, signed=_signed, pval=_pval, ci=_ci)
    env.filters["unit"] = lambda metric: run_unit_label(summary or {}, metric)  # "hd95 [mm]"
    return env


def _worst_cell(rob: dict[str, Any]) -> dict[str, Any] | None:
    best: dict[str, Any] | None = None
    for row in rob.get("pivot", []):
        for sev, cell in zip(rob["severities"], row["cells"]):
            if cell and _finite(cell["rel"]) and (best is None or cell["rel"] > best["rel"]):
                best = {"family": row["family"], "severity": sev, "rel": cell["rel"]}
    return best


def _failed_perturbed(run: RunDir) -> str:
    """``gaussian_noise 8, blur 2``: failed perturbed items per family (the drops are measured on the
    cases that did not fail, so the summary's largest drop must say what it leaves out); "" when none."""
    failed = failed_items(run.records)
    counts = failed[failed["perturbation"] != CLEAN].groupby("perturbation").size()
    ordered = counts.sort_values(ascending=False, kind="mergesort")
    return ", ".join(f"{family} {int(n)}" for family, n in ordered.items())


def _generator(summary: dict[str, Any]) -> str:
    """The harness that writes this file, and the one that made the run when that differs
    ("0.2.0 (run made with harness 0.1.0)"): a report regenerated later is not the run's own."""
    from harness import __version__

    made = str(summary.get("harness_version", ""))
    return __version__ if made in ("", __version__) else f"{__version__} (run made with harness {made})"


def build_context(run: RunDir) -> dict[str, Any]:
    """Everything both templates need (plots rendered once)."""
    robustness = sections.robustness_section(run)
    if robustness is not None:
        robustness["worst"] = _worst_cell(robustness)
        robustness["failed"] = _failed_perturbed(run)
    s = run.summary
    label = re.sub(r"[^A-Za-z0-9 ._()-]", "", f"harness - {s['suite'].get('name', '')} - {s['model'].get('name', '')}")
    return {
        "s": s, "sm": sections.summary_section(run), "description": run.settings.get("description", ""),
        "robustness": robustness, "adversarial": sections.adversarial_section(run),
        "shift": sections.shift_section(run), "fairness": sections.fairness_section(run),
        "baseline": sections.baseline_section(run), "worst": sections.worst_section(run),
        "gallery": sections.gallery_section(run), "errors": sections.errors_section(run),
        "suite_text": run.suite_text, "run_record": dossier.run_record(run), "hashes": dossier.hashes(run),
        "deviations": dossier.suite_overrides(run),  # --limit, --seed, --cohorts, --held-out: beside the verdict
        "page_label": label[:90], "generator": _generator(s),
        "for_print": False,  # True for the copy printed to PDF: every <details> open (print shows no closed ones)
    }


def _dossier_context(run: RunDir, ctx: dict[str, Any]) -> dict[str, Any]:
    numbers = {anchor: str(i + 1) for i, (anchor, _) in enumerate(DOSSIER_TOC)}
    present = {"results": [k for k in ("baseline", "robustness", "adversarial", "shift", "fairness") if ctx[k]],
               "failures": [k for k in ("worst", "errors", "gallery") if ctx[k]]}
    subs = {k: f"{numbers[parent]}.{i + 1}" for parent, keys in present.items() for i, k in enumerate(keys)}
    s = run.summary
    cover = [("model", f"{s['model'].get('name', '')} — sha256 {s['model'].get('sha256', '')}"),
             ("suite", f"{s['suite'].get('name', '')} — sha256 {s['suite'].get('sha256', '')}"),
             ("data", (f"{s['data'].get('name', '')}, {s['data'].get('n_cases', '')} cases — manifest sha256 "
                       f"{s['data'].get('manifest_sha256', '')}")),
             ("evaluated", f"{s.get('created', '')} with harness {s.get('harness_version', '')}, seed {s.get('seed', '')}")]
    independent = dossier.independence(run)
    if independent is not None:
        cover.append(("test data vs training", independent[0]))
    return {**ctx, "toc": [(a, t) for a, t in DOSSIER_TOC], "num": numbers.__getitem__, "cover": cover,
            "sub": subs.__getitem__, "identity": dossier.identity(run),
            "manifest": dossier.manifest(run, fairness_attributes=[str(g.get("attribute")) for g in
                                                                   (ctx["fairness"] or {}).get("groups", [])]),
            "metric_defs": dossier.metric_definitions(run), "metric_options": dossier.metric_options(run),
            "empty_policy": dossier.empty_policy(run), "criteria": dossier.acceptance_criteria(run),
            "plan": dossier.analysis_plan(run), "limitations": dossier.limitations(run),
            "suite_overrides": dossier.suite_overrides(run), "suite_history": dossier.suite_history(run),
            "not_independent": independent[0] if independent is not None and independent[1] else "",
            "independence": independent[0] if independent is not None else ""}


# C0 control characters (but tab, newline, carriage return) are not allowed in HTML; a model's
# error message can carry them into the Errors table
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def render(run: RunDir, fmt: Format = "html", *, context: dict[str, Any] | None = None) -> str:
    ctx = context if context is not None else build_context(run)
    env = environment(run.summary)
    if fmt == "dossier":
        return _CONTROL.sub("?", env.get_template("dossier.html.j2").render(**_dossier_context(run, ctx)))
    return _CONTROL.sub("?", env.get_template("report.html.j2").render(**ctx))


def render_report(run_dir: str | Path, fmt: Format = "html") -> str:
    """HTML text of ``report.html`` (``fmt="html"``) or ``dossier.html`` for the run in ``run_dir``."""
    return render(load_run(run_dir), fmt)


def write_report(run_dir: str | Path, *, formats: Iterable[Format] = ("html", "dossier"),
                 pdf: bool = False) -> list[Path]:
    """Write ``report.html`` / ``dossier.html`` (and their PDFs with ``pdf``: printed from a copy
    with every collapsible section open, so the PDF holds all the HTML's tables); returns the paths.

    PDF problems raise :class:`harness.report.pdf.PdfError` after the HTML files are written.
    """
    run = load_run(run_dir)
    context = build_context(run)
    formats = list(formats)
    written = []
    for fmt in formats:
        path = run.path / FILES[fmt]
        atomic.write_text(path, render(run, fmt, context=context))
        written.append(path)
    if pdf:
        from harness.report.pdf import html_to_pdf

        printed = {**context, "for_print": True}  # a closed <details> prints as its summary line only
        with tempfile.TemporaryDirectory(prefix="harness-print-") as tmp:
            for fmt, path in zip(formats, list(written)):
                copy = Path(tmp, path.name)
                copy.write_text(render(run, fmt, context=printed), encoding="utf-8")
                written.append(html_to_pdf(copy, path.with_suffix(".pdf")))
    return written
