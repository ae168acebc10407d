"""``harness compare RUN_A RUN_B``: compare two finished runs; A is the reference, B the candidate.

Mode (``auto`` picks it from the case tables):

* **paired** when some cases are in both runs with the same image and label hashes — a model
  regression (same data, another model). Only those cases are compared, with the statistics of the
  regression gate of :mod:`harness.baseline` (``harness run --baseline``): per case, how much worse B
  is; a one-sided sign-flip permutation test (or Wilcoxon with ``rank_test``) of "B is worse by more
  than the margin", Holm/BH across the comparisons of a metric. ``compare A B`` and
  ``run ... --baseline A`` therefore agree.
* **unpaired** when no case is shared — a site shift (same model, another site's data). Each run's
  per-case values are two independent samples (:func:`harness.analysis.shift.unpaired_difference`:
  difference of means with a bootstrap CI, two-sided permutation test or Mann–Whitney U, Holm/BH
  across the comparisons of a metric), and the outcome rule of the ``site_drop`` gate applies. The
  report adds distribution-shift evidence (image statistics, intensity histograms, which synthetic
  family of run A matches the real drop) through :func:`harness.analysis.shift.shift_evidence`.

Comparisons per common metric: ``clean`` (clean value) and each perturbation family both runs have
(per case, clean − perturbed averaged over the common severities). The regression is positive when
B is worse; labels are averaged per case. Each comparison is a gate ``regression-<metric>[<comparison>]``
with the usual outcomes; ERROR records in either run add an ERROR gate. Exit codes as ``harness run``:
3 bad input (not run folders, no common metric), 2 a run has ERROR records, 1 a regression FAILed
(``strict``: also WARN/INCONCLUSIVE), 0 otherwise. Writes ``compare.json`` and ``compare.html``.
"""
from __future__ import annotations

import json
import math
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

import numpy as np
import pandas as pd

from harness.analysis.robustness import higher_is_better, per_case
from harness.analysis.shift import (
    ShiftTest,
    _site_outcome,
    max_permutations,
    shift_evidence,
    unpaired_difference,
)
from harness.analysis.stats import Correction, adjust_pvalues
from harness.errors import ConfigError
from harness.gates import GateContext, GateResult, overall_outcome
from harness.metrics import metric_info
from harness.options import COMPARE_MODES, CORRECTIONS, must_be_one_of
from harness.records import CLEAN

CompareMode = Literal["auto", "paired", "unpaired"]  # == harness.options.COMPARE_MODES (tested)

ROW_COLUMNS = ["metric", "comparison", "n_a", "n_b", "mean_a", "mean_b", "regression", "ci_low", "ci_high",
               "p_adjusted"]


@dataclass(frozen=True)
class CompareOptions:
    mode: CompareMode = "auto"
    metrics: tuple[str, ...] | None = None
    max_drop: dict[str, float] = field(default_factory=dict)  # margin per metric; 0 when absent
    alpha: float = 0.05
    min_cases: int = 5
    rank_test: bool = False
    correction: Correction = "holm"
    n_boot: int = 1000
    n_perm: int = 2000
    seed: int = 0
    strict: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.metrics, str):  # "dice" or "dice,hd95", as --metrics takes it (not its letters)
            object.__setattr__(self, "metrics", tuple(m.strip() for m in self.metrics.split(",") if m.strip()))
        if self.seed < 0:
            raise ConfigError(f"--seed {self.seed}: give a whole number >= 0")
        for flag, value, allowed in (("--mode", self.mode, COMPARE_MODES), ("--correction", self.correction, CORRECTIONS)):
            if value not in allowed:
                raise ConfigError(f"{flag} {must_be_one_of(allowed, value)}")


def parse_max_drop(text: str | None) -> dict[str, float]:
    """``"0.02"`` (every metric, key ``"*"``) or ``"dice=0.02,hd95=1.5"`` → {metric: margin}."""
    if not text:
        return {}
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.rpartition("=")
        try:
            margin = float(value)
        except ValueError:
            margin = float("nan")
        if not math.isfinite(margin) or margin < 0 or (sep and not key):
            raise ConfigError(f"--max-drop {text!r}: give one number >= 0 or metric=number pairs, e.g. dice=0.02,hd95=1")
        out[key.strip() if sep else "*"] = margin
    return out


def _load(path: Path, role: str) -> Any:
    from harness.report.rundir import load_run

    try:
        run = load_run(path, with_baseline=False)
    except ConfigError as exc:
        raise ConfigError(f"RUN_{role}: {exc}") from exc
    quality = path / "quality.csv"
    run.quality = pd.read_csv(quality, dtype={"case_id": str}) if quality.is_file() else None  # type: ignore[attr-defined]
    return run


def _pairing(a: Any, b: Any) -> tuple[list[str], list[str]]:
    """(case ids in both runs with equal hashes, ids in both whose hashes differ)."""
    from harness.baseline import paired_cases

    keep, changed = paired_cases(b.cases, a.cases)
    if keep is None:
        keep = set(a.records["case_id"].astype(str)) & set(b.records["case_id"].astype(str))
    return sorted(keep), changed


def _case_samples(values: pd.DataFrame, sign: float) -> dict[str, Any]:
    """``clean``: the clean value per case; per family: a frame case_id, s (severity), v (the perturbed
    value), d (clean − perturbed, positive = worse)."""
    clean = values[values["perturbation"] == CLEAN].set_index("case_id")["value"]
    out: dict[str, Any] = {CLEAN: clean}
    for family, rows in values[values["perturbation"] != CLEAN].groupby("perturbation"):
        d = sign * (rows["case_id"].map(clean) - rows["value"])
        out[str(family)] = rows.assign(d=d, s=rows["severity"], v=rows["value"]).dropna(subset=["d"])[
            ["case_id", "s", "v", "d"]]
    return out


def _run_clusters(run: Any, cluster: str) -> pd.Series | None:
    """``case_id -> cluster id`` of ``run`` for run B's ``[suite].cluster`` (None without one)."""
    from harness.analysis.clusters import cluster_ids

    if not cluster:
        return None
    if cluster not in run.cases.columns:
        raise ConfigError(f"run B's suite compares by {cluster!r} ([suite].cluster), but run {run.path}'s cases.csv "
                          "has no such column; compare runs over data with that column")
    return cluster_ids(run.cases, cluster)


def _units_of(values: pd.Series, clusters: pd.Series | None) -> np.ndarray:
    """Per-case values (indexed by case id) as the units the test compares: cases, or each cluster's mean."""
    from harness.analysis.clusters import cluster_means

    return (cluster_means(values, clusters) if clusters is not None else values).to_numpy(float)


def _unpaired(a: Any, b: Any, metrics: list[str], opts: CompareOptions) -> tuple[list[dict], list[GateResult]]:
    rows: list[dict] = []
    gates: list[GateResult] = []
    test: ShiftTest = "mannwhitney" if opts.rank_test else "permutation"
    cluster = b.settings["cluster"]  # B's suite's unit of analysis: patients are compared, not their images
    ca, cb = _run_clusters(a, cluster), _run_clusters(b, cluster)
    for metric in metrics:
        higher = higher_is_better(metric)
        sa = _case_samples(per_case(a.records, metric), 1.0 if higher else -1.0)
        sb = _case_samples(per_case(b.records, metric), 1.0 if higher else -1.0)
        samples: dict[str, tuple[np.ndarray, np.ndarray, bool]] = {
            CLEAN: (_units_of(sa[CLEAN], ca), _units_of(sb[CLEAN], cb), higher)}
        shown = {CLEAN: (sa[CLEAN].mean(), sb[CLEAN].mean())}  # mean A / B: the metric's values, as paired mode
        for family in sorted((set(sa) & set(sb)) - {CLEAN}):
            common = set(sa[family]["s"]) & set(sb[family]["s"])
            by_case = [s[family][s[family]["s"].isin(common)].groupby("case_id")[["v", "d"]].mean() for s in (sa, sb)]
            samples[family] = (_units_of(by_case[0]["d"], ca), _units_of(by_case[1]["d"], cb), False)  # a degradation
            shown[family] = (by_case[0]["v"].mean(), by_case[1]["v"].mean())
        tested = [k for k, (xa, xb, _) in samples.items() if min(len(xa), len(xb)) >= opts.min_cases]
        max_perm = max_permutations(opts.n_perm, len(tested), opts.alpha)
        stats: dict[str, dict[str, np.ndarray] | None] = {}
        for key, (xa, xb, hib) in samples.items():
            rng = np.random.default_rng([opts.seed, zlib.crc32(f"{metric}/{key}".encode())])
            res = unpaired_difference(xa[:, None], xb[:, None], higher_is_better=np.array([hib]), test=test,
                                      n_boot=opts.n_boot, n_perm=opts.n_perm, max_perm=max_perm, rng=rng) \
                if len(xa) and len(xb) else None
            stats[key] = res
        raw = np.array([float(res["p_value"][0]) if k in tested and (res := stats[k]) is not None else np.nan
                        for k in samples])
        adjusted = dict(zip(samples, adjust_pvalues(raw, method=opts.correction)))
        margin = opts.max_drop.get(metric, opts.max_drop.get("*", 0.0))
        for key, (xa, xb, hib) in samples.items():
            res = stats[key]
            value = float(res["drop"][0]) if res is not None else float("nan")
            row = {"metric": metric, "comparison": key, "n_a": len(xa), "n_b": len(xb),
                   "mean_a": float(shown[key][0]), "mean_b": float(shown[key][1]), "regression": value,
                   "ci_low": float(res["drop_ci_low"][0]) if res is not None else float("nan"),
                   "ci_high": float(res["drop_ci_high"][0]) if res is not None else float("nan"),
                   "p_adjusted": float(adjusted[key])}
            rows.append(row)
            what = f"clean {metric}" if key == CLEAN else f"{metric} degradation under {key}"
            compared = [float(x.mean()) if len(x) else float("nan") for x in (xa, xb)]  # what the test compares
            name = f"regression-{metric}[{key}]"
            unit = f"{cluster} value(s)" if cluster else "case(s)"
            if key not in tested:
                gates.append(GateResult(name, "INCONCLUSIVE", None if res is None else value, margin,
                                        f"{what}: {len(xa)} {unit} in A, {len(xb)} in B; need {opts.min_cases} each"))
                continue
            outcome, why = _site_outcome(value, float(adjusted[key]), max_drop=margin, warn_drop=0.0, alpha=opts.alpha)
            gates.append(GateResult(name, outcome, value, margin, (
                f"{what}: A {compared[0]:.4g} (n={len(xa)}) vs B {compared[1]:.4g} (n={len(xb)}"
                + (f" {cluster} values" if cluster else "") + "); regression "
                f"{value:+.4g} (95% CI {row['ci_low']:+.4g} – {row['ci_high']:+.4g}; positive = B worse; margin "
                f"{margin:g}); p_adj {row['p_adjusted']:.3g} ({opts.correction}, {test}, unpaired; α {opts.alpha:g})"
                + (f" → {why}" if why else ""))))
    return rows, gates


def _paired(a: Any, b: Any, metrics: list[str], opts: CompareOptions) -> tuple[list[dict], list[GateResult]]:
    from harness.baseline import baseline_gate, comparison_table

    identity = (b.summary.get("seed"), (b.summary.get("suite") or {}).get("sha256"))  # B is "this run"
    cluster = b.settings["cluster"]  # B's suite's unit of analysis, as its own --baseline gate used
    context = GateContext(records=b.records, cases=b.cases,
                          suite=SimpleNamespace(n_permutations=opts.n_perm, seed=opts.seed, correction=opts.correction,
                                                run_identity=identity, cluster=cluster))
    gates: list[GateResult] = []
    p_adjusted: dict[str, dict[str, float]] = {}
    for metric in metrics:
        margin = opts.max_drop.get(metric, opts.max_drop.get("*", 0.0))
        gates += baseline_gate({"name": f"regression-{metric}", "metric": metric, "margin": margin,
                                "alpha": opts.alpha, "min_cases": opts.min_cases, "baseline": str(a.path),
                                "test": "wilcoxon" if opts.rank_test else "permutation"}, context,
                               p_adjusted=p_adjusted.setdefault(metric, {}), own_errors=False)
    table = comparison_table(b.records, b.cases, a.records, a.cases, metrics, seed=opts.seed, cluster=cluster)
    rows = [{"metric": r["metric"], "comparison": r["comparison"], "n_a": int(r["n"]), "n_b": int(r["n"]),
             "mean_a": r["baseline"], "mean_b": r["current"], "regression": r["regression"],
             "ci_low": r["ci_low"], "ci_high": r["ci_high"],
             "p_adjusted": float(p_adjusted.get(r["metric"], {}).get(r["comparison"], float("nan")))}
            for r in table.to_dict("records")]
    return rows, gates


def _evidence(a: Any, b: Any, metrics: list[str], opts: CompareOptions) -> dict[str, Any]:
    """Distribution-shift evidence of B against A (runs as the two 'sites' A and B)."""
    parts, cases, quality = [], [], []
    for role, run in (("A", a), ("B", b)):
        records = run.records.assign(case_id=role + "/" + run.records["case_id"].astype(str))
        parts.append(records)
        cases.append(pd.DataFrame({"case_id": sorted(set(records["case_id"])), "run": role}))
        if run.quality is not None:
            quality.append(run.quality.assign(case_id=role + "/" + run.quality["case_id"].astype(str)))
    evidence = shift_evidence(pd.concat(parts, ignore_index=True), pd.concat(cases, ignore_index=True),
                              pd.concat(quality, ignore_index=True) if len(quality) == 2 else None,
                              attribute="run", metrics=metrics, reference_site="A", min_cases=opts.min_cases,
                              n_boot=opts.n_boot, n_perm=opts.n_perm, seed=opts.seed)
    out = evidence.to_dict()
    out.pop("table")  # the comparisons above are the tested ones
    return out


def _same_drop_ci(evidence: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """Give the evidence's "real drop" of each metric the CI of the tested clean comparison (the gate's),
    so one page shows one CI for one drop (the shift analysis bootstraps on its own)."""
    clean = {r["metric"]: r for r in rows if r["comparison"] == CLEAN}
    for match in evidence.get("matches", []):
        row = clean.get(match.get("metric"))
        if row is not None and math.isfinite(row["ci_low"]) and math.isfinite(row["ci_high"]):
            match["drop_ci_low"], match["drop_ci_high"] = row["ci_low"], row["ci_high"]
            match["drop_significant"] = bool(row["ci_low"] > 0)


def _run_info(run: Any) -> dict[str, Any]:
    s = run.summary
    return {"path": str(run.path), "suite": s.get("suite", {}).get("name", ""), "model": s.get("model", {}).get("name", ""),
            "model_sha256": s.get("model", {}).get("sha256", ""), "data": s.get("data", {}).get("name", ""),
            "n_cases": int(run.records["case_id"].nunique()), "outcome": s.get("outcome", ""),
            "created": s.get("created", "")}


def compare_runs(run_a: Path, run_b: Path, options: CompareOptions = CompareOptions()) -> dict[str, Any]:
    """Compare two run folders; the JSON-able result (ConfigError on bad input, exit 3)."""
    from harness.pipeline import exit_code_for

    a, b = _load(Path(run_a), "A"), _load(Path(run_b), "B")
    common = [m for m in a.metrics if m in b.metrics and m in a.records.columns and m in b.records.columns]
    if options.metrics:
        unknown = [m for m in options.metrics if m not in common]
        if unknown:
            raise ConfigError(f"--metrics {', '.join(unknown)}: not computed by both runs; common metrics: "
                              f"{', '.join(common) or '(none)'}")
        common = list(options.metrics)
    if not common:
        raise ConfigError(f"runs {run_a} and {run_b} have no metric in common ({', '.join(a.metrics)} vs "
                          f"{', '.join(b.metrics)})")
    unknown = sorted(set(options.max_drop) - {"*"} - set(common))
    if unknown:
        raise ConfigError(f"--max-drop {', '.join(unknown)}: not a compared metric; compared: {', '.join(common)}")
    keep, changed = _pairing(a, b)
    mode = options.mode if options.mode != "auto" else ("paired" if keep else "unpaired")
    if mode == "paired" and not keep:
        raise ConfigError("--mode paired: the runs share no case with the same id and image/label hashes")
    notes = []
    if changed:
        notes.append(f"{len(changed)} case id(s) in both runs have different image/label hashes (e.g. {changed[0]}): "
                     "different cases")
    labels_a, labels_b = (set(r.records["label"]) for r in (a, b))
    if labels_a != labels_b:
        notes.append(f"the runs scored different labels ({sorted(labels_a)} vs {sorted(labels_b)}); per-case means "
                     "average different label sets")
    if mode == "paired":
        rows, gates = _paired(a, b, common, options)
        n_only = (a.records["case_id"].nunique() - len(keep), b.records["case_id"].nunique() - len(keep))
        if any(n_only):
            notes.append(f"paired on {len(keep)} common case(s); {n_only[0]} only in A and {n_only[1]} only in B "
                         "are left out")
        evidence: dict[str, Any] = {}
    else:
        if keep:
            notes.append(f"{len(keep)} case(s) are in both runs: the samples are not independent")
        rows, gates = _unpaired(a, b, common, options)
        evidence = _evidence(a, b, common, options)
        _same_drop_ci(evidence, rows)
    for role, run in (("A", a), ("B", b)):  # what each run said of itself (e.g. cases its model trained on)
        notes.extend(f"run {role}: {note}" for note in run.summary.get("notes", []) if isinstance(note, str))
    for role, run in (("A", a), ("B", b)):
        n_err = int((run.records["status"] == "ERROR").sum())
        if n_err:
            gates.insert(0, GateResult(f"run-errors[{role}]", "ERROR", float(n_err), 0.0,
                                       f"run {role} ({run.path}) has {n_err} ERROR record(s): its results are "
                                       "incomplete, the comparison cannot be trusted"))
    return {"mode": mode, "run_a": _run_info(a), "run_b": _run_info(b), "metrics": common,
            "cases": {"common": len(keep), "hash_mismatch": len(changed)},
            "rows": [{k: row.get(k) for k in ROW_COLUMNS} for row in rows], "gates": [g.to_dict() for g in gates],
            "outcome": overall_outcome(gates), "exit_code": exit_code_for(gates, strict=options.strict),
            "evidence": evidence, "notes": notes, "units": _units(a, b, common),
            "options": {"alpha": options.alpha, "correction": options.correction, "min_cases": options.min_cases,
                        "max_drop": options.max_drop, "rank_test": options.rank_test, "seed": options.seed}}


def _units(a: Any, b: Any, metrics: list[str]) -> dict[str, str]:
    """Each compared metric's unit as the two runs' numbers are in it ("mm"; "px" where no case had a
    spacing; "A mm, B px" when the runs differ); fractions and unitless metrics are left out."""
    from harness.report.units import run_unit

    out = {}
    for metric in metrics:
        unit = getattr(metric_info(metric), "unit", "")
        if unit and unit != "fraction":
            ua, ub = run_unit(a.summary, unit), run_unit(b.summary, unit)
            out[metric] = ua if ua == ub else f"A {ua}, B {ub}"
    return out


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value.item() if hasattr(value, "item") else value


def _histogram_svg(histograms: list[dict[str, Any]], width: int = 560, height: int = 180) -> str:
    """Inline SVG polylines of the per-group intensity histograms (presentation only)."""
    if not histograms:
        return ""
    frame = pd.DataFrame(histograms)
    lo, hi, top = frame["bin_left"].min(), frame["bin_right"].max(), max(frame["mass"].max(), 1e-12)
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
    lines, legend = [], []
    for i, (group, part) in enumerate(frame.groupby("site", sort=True)):
        x = ((part["bin_left"] + part["bin_right"]) / 2 - lo) / (hi - lo or 1) * (width - 20) + 10
        y = height - 20 - part["mass"] / top * (height - 40)
        points = " ".join(f"{u:.1f},{v:.1f}" for u, v in zip(x, y))
        colour = colours[i % len(colours)]
        lines.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>')
        legend.append(f'<text x="{12 + 90 * i}" y="14" fill="{colour}" font-size="12">{group}</text>')
    axis = (f'<text x="10" y="{height - 4}" font-size="11">{lo:.3g}</text>'
            f'<text x="{width - 60}" y="{height - 4}" font-size="11">{hi:.3g}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
            f'aria-label="intensity histograms">{"".join(lines)}{"".join(legend)}{axis}</svg>')


def write_outputs(result: dict[str, Any], out: Path) -> tuple[Path, Path]:
    """Write ``compare.json`` and ``compare.html`` into ``out``."""
    import jinja2
    from markupsafe import Markup

    out.mkdir(parents=True, exist_ok=True)
    safe = _json_safe(result)
    json_path = out / "compare.json"
    json_path.write_text(json.dumps(safe, indent=2), encoding="utf-8")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "report" / "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
                             undefined=jinja2.StrictUndefined)
    env.globals["fmt"] = lambda v: "–" if v is None or (isinstance(v, float) and math.isnan(v)) else (
        f"{v:.4g}" if isinstance(v, float) else str(v))
    env.globals["margins"] = lambda d: ", ".join(f"{k} {v:g}" for k, v in d.items())
    units = safe.get("units", {})
    env.filters["unit"] = lambda metric: f"{metric} [{units[metric]}]" if metric in units else metric  # "hd95 [px]"
    svg = Markup(_histogram_svg(safe["evidence"].get("histograms", [])))  # built from numbers only
    html = env.get_template("compare.html.j2").render(r=safe, histogram_svg=svg)
    html_path = out / "compare.html"
    html_path.write_text(html, encoding="utf-8")
    return json_path, html_path


def compare_command(run_a: Path, run_b: Path, *, out: Path | None, options: CompareOptions) -> int:
    """CLI body: compare, write outputs, print the gates; returns the exit code."""
    from harness.terminal import make_console
    from rich.markup import escape

    result = compare_runs(run_a, run_b, options)
    out = out or Path("reports") / f"compare-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    _, html = write_outputs(result, out)
    console = make_console()  # no emoji: "mylab.pert:Ghost:" is a name
    console.print(f"{result['mode']} comparison, A = {escape(str(run_a))}, B = {escape(str(run_b))}: "
                  f"[bold]{result['outcome']}[/]")
    for gate in result["gates"]:
        console.print(f"  {gate['outcome']:<12} {escape(gate['name'])}: {escape(gate['detail'])}", soft_wrap=True)
    for note in result["notes"]:
        console.print(f"  note: {escape(note)}", soft_wrap=True)
    console.print(f"report: {html}  (exit code {result['exit_code']})")
    return int(result["exit_code"])
