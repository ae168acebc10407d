"""The validation dossier's own sections: what a reviewer files beside the results.

Intended use, device identity, data manifest and cohort tables, the suite (hash and full text),
metric definitions with the empty-mask policy, the pre-specified acceptance criteria, the
statistical analysis plan, limitations and the run record. All from the run folder.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from harness.report.junit import revision_text
from harness.report.rundir import RunDir

EMPTY_POLICY = [
    ("Both reference and prediction empty for a class: overlap metrics (Dice, IoU, NSD, precision, recall) = 1, "
     "distances = 0 mm, volume errors = 0."),
    ("Exactly one of them empty: overlap metrics = 0, distances = the image's physical diagonal (mm); the record's "
     "`empty` column says which one was empty. No metric is ever NaN."),
    ("Surface distances use boundary voxels (foreground voxels with a background face-neighbour), in mm using the "
     "voxel spacing; percentile distances take the percentile of each directed distance set and the maximum "
     "of the two directions (as MONAI / MetricsReloaded), with linear interpolation."),
    ("Background (label 0) is not scored. Per-class values are averaged per case (label \"mean\") before any "
     "statistic unless a gate selects a class."),
]


def empty_policy(run: RunDir) -> list[str]:
    """:data:`EMPTY_POLICY` in this run's length unit ("mm", or "px" where the cases had no spacing)."""
    from harness.report.units import run_unit

    unit = run_unit(run.summary, "mm")
    if unit == "mm":
        return list(EMPTY_POLICY)
    return [p.replace("(mm)", f"({unit})").replace("0 mm", f"0 {unit}").replace(
        "in mm using the voxel spacing", f"in {unit} (1 mm per pixel assumed where a case had no spacing)")
        for p in EMPTY_POLICY]


_META_SKIP = {"case_id", "image_sha256", "label_sha256"}


def identity(run: RunDir) -> list[tuple[str, str]]:
    s, card = run.summary, run.model_card.get("model", {}) if isinstance(run.model_card, dict) else {}
    rows = [("model name", s["model"].get("name", "")), ("model sha256", s["model"].get("sha256", "")),
            ("model specification", str(s["model"].get("spec", "")))]
    if card:
        rows += [("format", str(card.get("format", ""))), ("entry / file", str(card.get("entry") or card.get("path") or ""))]
        if card.get("weights"):  # what the model sha256 hashes
            rows.append(("weights file", Path(str(card["weights"])).name))
    if s["model"].get("card_sha256"):
        rows += [("model card sha256", s["model"]["card_sha256"]), ("prediction settings", prediction_settings(run))]
    labels = run.summary.get("labels", {})
    scored = ", ".join(f"{k} = {v}" for k, v in labels.items())
    output = (run.model_card.get("output") or {}) if isinstance(run.model_card, dict) else {}
    model_labels = output.get("labels") if isinstance(output.get("labels"), dict) else {}
    try:
        from harness.datasets.label_values import class_name_conflicts

        conflicts = class_name_conflicts({int(k): str(v) for k, v in labels.items()},
                                         {int(k): str(v) for k, v in model_labels.items()})
    except (TypeError, ValueError):  # labels that are not class numbers: nothing to compare
        conflicts = []
    if conflicts:
        scored += f" — MISMATCH: {'; '.join(conflicts)} (the data's class k is scored against the model's output k)"
    rows += [("classes scored", scored),
             ("harness version", s.get("harness_version", "")), ("suite sha256", s["suite"].get("sha256", "")),
             ("data manifest sha256", s["data"].get("manifest_sha256", ""))]
    return [(k, v) for k, v in rows if v]


def independence(run: RunDir) -> tuple[str, bool] | None:
    """Whether the evaluated images are independent of the model's training, in words, and whether
    that is a problem (images seen in training or validation); None for runs that did not record it."""
    td = run.summary.get("training_data")
    if not isinstance(td, dict):
        return None
    n = run.summary.get("data", {}).get("n_cases", "")
    record = td.get("record")
    if not record:
        return "not checkable: the model card names no training record (training.json)", False
    if td.get("unchecked"):
        return f"not checkable: {td['unchecked']} ({record})", False
    if not td.get("readable", True) or "seen_train" not in td:
        return f"not checkable: the training record {record} is missing or unreadable", False
    seen = int(td.get("seen_train") or 0) + int(td.get("seen_val") or 0)
    if seen:
        return (f"NOT independent: {seen} of the {n} evaluated images were seen by the model ({td.get('seen_train')} "
                f"in training, {td.get('seen_val')} in validation, per {record}); these results overstate how it "
                "performs on new patients"), True
    sizes = [f"{td[k]} {w}" for k, w in (("training_images", "training"), ("validation_images", "validation"))
             if isinstance(td.get(k), int)]
    among = f"the {' / '.join(sizes)} images" if sizes else "the images"
    return (f"no overlap found: none of the {n} evaluated images is identical (image sha256) to one of {among} of "
            f"its training record {record}; re-encoded or resampled copies and other images of the same patients "
            "would not be found"), False


def hashes(run: RunDir) -> list[tuple[str, str]]:
    """The sha256 digests that identify what produced the numbers (model weights, card settings,
    suite text, data manifest), for the report's run record; absent ones are left out."""
    s = run.summary
    rows = [("model sha256", s["model"].get("sha256", "")), ("model card sha256", s["model"].get("card_sha256", "")),
            ("suite sha256", s["suite"].get("sha256", "")), ("data manifest sha256", s["data"].get("manifest_sha256", ""))]
    return [(k, str(v)) for k, v in rows if v]


def prediction_settings(run: RunDir) -> str:
    """The card's [input]/[output] settings that change predictions (what ``card_sha256`` covers
    besides the model's entry and options), e.g. ``normalize zscore · tta_flip_axes [0, 1] · ...``."""
    card = run.summary["model"].get("prediction") or (run.model_card if isinstance(run.model_card, dict) else {})
    keys = {"input": ("normalize", "window", "spacing", "patch_size", "overlap", "pad_multiple", "tta_flip_axes",
                      "tta_shifts"),
            "output": ("kind", "postprocess")}
    shown = []
    for section, names in keys.items():
        values = card.get(section) if isinstance(card.get(section), dict) else {}
        for key in names:
            value = values.get(key)
            if (value is None or value == [] or value is False
                    or (key == "overlap" and values.get("patch_size") is None)):
                continue  # unset, no TTA flips or shifts, or an overlap without a sliding window
            shown.append(f"{key} {value}")
    return " · ".join(shown)


# metric options and the metrics that read them (harness.metrics.scoring.Options)
_OPTION_METRICS = {"percentile": ("hd95",), "nsd_tolerance": ("nsd",), "nsd_method": ("nsd",),
                   "connectivity": ("fp_lesions", "fn_lesions")}


def metric_options(run: RunDir) -> dict[str, Any]:
    """The metric options in effect for the run's metrics: the suite's, else the defaults (so the
    dossier states e.g. the NSD tolerance even when the suite left it at 1 mm)."""
    from dataclasses import fields

    from harness.metrics.scoring import Options

    given = dict(run.settings.get("metric_options") or {})
    computed = set(run.metrics)
    out: dict[str, Any] = {}
    for f in fields(Options):
        if f.name in given or computed & set(_OPTION_METRICS.get(f.name, ())):
            value = given.get(f.name, getattr(Options(), f.name))
            out[f.name] = "full (every neighbour)" if f.name == "connectivity" and value is None else value
    out.update({k: v for k, v in given.items() if k not in out})  # plugin metrics' own options
    return out


def manifest(run: RunDir, *, fairness_attributes: list[str] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    """The data manifest section; ``fairness_attributes``: what the fairness analysis grouped by (the
    analysed cohorts when the suite says ``cohorts = "auto"``)."""
    cases = run.cases
    meta = [c for c in cases.columns if c not in _META_SKIP]
    hashes = [c for c in ("image_sha256", "label_sha256") if c in cases.columns]
    cohorts = run.summary.get("cohorts")
    named = cohorts if isinstance(cohorts, list) else list(fairness_attributes)
    # the run's cohorts ("site×sex" analyses site and sex)
    analysed = list(dict.fromkeys(part for c in named for part in str(c).split("×")))
    # identifiers (a value per case: image ids, boxes) are in the case table, not counted as cohorts
    identifiers = [c for c in meta if c not in analysed and len(cases) >= 10 and cases[c].nunique() == len(cases)
                   and not pd.api.types.is_numeric_dtype(cases[c])]
    ordered = [c for c in analysed if c in meta] + [c for c in meta if c not in analysed and c not in identifiers]
    return {"columns": ["case_id", *hashes, *meta], "rows": cases[["case_id", *hashes, *meta]].astype(str).values.tolist(),
            "n": len(cases), "cohorts": cohort_tables(cases, ordered, analysed=analysed), "identifiers": identifiers}


def cohort_tables(cases: pd.DataFrame, columns: list[str], *, analysed: list[str] = ()) -> list[dict[str, Any]]:  # type: ignore[assignment]
    """Per metadata column: level counts (text; empty cells counted as "missing") or n / min /
    quartiles / max (numbers); ``analysed`` columns (the run's cohorts) are marked."""
    out = []
    for col in columns:
        values = cases[col]
        mark = {"analysed": col in analysed}
        if pd.api.types.is_numeric_dtype(values) and values.nunique() > 6:
            q = values.quantile([0, 0.25, 0.5, 0.75, 1.0]).tolist()
            out.append({"attribute": col, "kind": "numeric", "more": 0, **mark,
                        "rows": [("n", str(int(values.notna().sum()))), ("min", f"{q[0]:g}"), ("Q1", f"{q[1]:g}"),
                                 ("median", f"{q[2]:g}"), ("Q3", f"{q[3]:g}"), ("max", f"{q[4]:g}")]})
        else:
            text = values.astype(str).where(values.notna() & (values.astype(str).str.strip() != ""), "missing")
            counts = text.value_counts().sort_index()
            rows = [(str(k), f"{int(v)} ({100 * v / max(len(values), 1):.0f} %)") for k, v in counts.items()]
            out.append({"attribute": col, "kind": "levels", "rows": rows[:40], **mark,
                        "more": max(0, len(rows) - 40)})
    return out


def metric_definitions(run: RunDir) -> list[dict[str, str]]:
    from harness.metrics import metric_info
    from harness.report.units import run_unit

    rows = []
    for m in run.metrics:
        i = metric_info(m)
        unit = run_unit(run.summary, getattr(i, "unit", ""))  # lengths of cases without a spacing: pixels
        rows.append({"name": m, "description": getattr(i, "description", ""), "unit": unit,
                     "better": "higher" if getattr(i, "higher_is_better", True) else "lower"})
    return rows


def acceptance_criteria(run: RunDir) -> list[dict[str, Any]]:
    """One row per declared gate (and per gate the command line added): the metric it gates, its
    keys as set in the suite (``criteria``), the keys it left at their defaults with the values the
    gate used (``defaults``, e.g. "min_cases = 3", "alpha = 0.05 ([suite].alpha)") and its kind's
    meaning."""
    declared = {str(g.get("name")) for g in run.suite_gates}
    added = sorted({g["name"].split("[", 1)[0] for g in run.summary.get("gates", [])} - declared - {"model-errors", "run-complete"})
    # the gate --baseline adds has every key at its default (alpha: the suite's)
    gates = [(g, "suite") for g in run.suite_gates] + [({"name": n, "check": n}, "command line (--baseline)")
                                                        for n in added]
    return [_criteria_row(gate, source, run.settings) for gate, source in gates]


def _criteria_row(gate: dict[str, Any], source: str, settings: dict[str, Any]) -> dict[str, Any]:
    from harness.gates import defaults_used, gate_meaning, settings_used, with_defaults

    extra = {k: v for k, v in gate.items() if k not in ("name", "check", "metric", "description")}
    defaults = [d for d in defaults_used(gate, settings) if not d.startswith("metric = ")]  # in its own column
    return {"name": gate.get("name", ""), "check": gate.get("check", ""),
            "metric": with_defaults(gate, settings).get("metric", ""),
            "criteria": ", ".join(f"{k} = {v}" for k, v in extra.items()), "defaults": ", ".join(defaults),
            "settings": ", ".join(settings_used(str(gate.get("check")), settings)),
            "meaning": gate_meaning(str(gate.get("check"))), "description": gate.get("description", ""),
            "source": source}


def analysis_plan(run: RunDir) -> list[str]:
    s = run.settings
    plan = [
        ("Unit of analysis: the case. Rows of one case are averaged over repeats, and over its foreground classes "
         "unless a gate or table selects a class (label = \"each\" or a class), before any statistic; ERROR rows "
         "are excluded (never imputed) and any ERROR makes the run exit 2."
         + (f" Subgroup (fairness), site and baseline comparisons take the {s['cluster']} value as their unit "
            "([suite].cluster): "
            "each one's cases are averaged within a group and cell, so their n, CIs and tests count "
            f"{s['cluster']} values, not cases; the other CIs keep the mean over cases and resample whole "
            f"{s['cluster']} values." if s["cluster"] else "")),
        (f"Confidence intervals: 95 %, bootstrap over "
         f"{'whole ' + s['cluster'] + ' values' if s['cluster'] else 'cases'}, seeded by the run's seed ({s['seed']}). "
         "Group and site "
         f"means and site drops: bootstrap-t (studentized, a drop with the Welch standard error; {s['n_bootstrap']} "
         "resamples), limited to the values the data allow; fairness gaps, ratios and effect sizes: percentile "
         f"bootstrap ({s['n_bootstrap']} resamples); robustness tables and baseline regressions: bootstrap-t "
         "(1000 resamples)."),
        ("Robustness: degradation is paired (each case's clean value minus its perturbed value, positive = worse); "
         "relative degradation divides by the clean mean. Corruption error (CE) per family = mean over severities "
         "of 1 − metric; relative CE subtracts the clean error (ImageNet-C style, unnormalised)."),
        (f"Gates are declared in the suite (sha256 {run.summary['suite'].get('sha256', '')[:16]}…; its last commit, "
         "when under version control, is in section 4). Threshold gates (clean, degradation, robust cases) compare "
         "point estimates (e.g. the mean over cases) with their thresholds, not a confidence bound; fairness, site "
         "and baseline gates also require a significant test. A gate with fewer cases than its min_cases is "
         "INCONCLUSIVE, never PASS."),
    ]
    if s["cohorts"]:
        small = ("reported but left out of the gaps and tests" if s["small_groups"] == "exclude"
                 else "reported, and an attribute with such a group is not gated (INCONCLUSIVE)")
        plan.append(f"Fairness: cohorts {s['cohorts']!s}; groups below {s['min_group_size']} "
                    f"{s['cluster'] + ' values' if s['cluster'] else 'cases'} are {small}. "
                    f"Gap = best − worst group mean; {_fairness_test(s)}, {s['correction']} correction across all "
                    f"fairness tests of the analysis (attributes × cells × metrics; one analysis per class a fairness "
                    f"gate selects), α = {s['alpha']}. Effect size r: the "
                    "rank-biserial correlation of the best and the worst group (0 = neither tends to score higher, "
                    "1 = every case of the best group beats every case of the worst). A gate FAILs only "
                    "when the gap is both significant and above its margin (a bootstrap CI of a max–min gap is "
                    "biased away from 0, so it is not gated on).")
    from harness.analysis.shift import has_sites

    if any(g.get("check") == "site_drop" for g in run.suite_gates) or has_sites(run.cases, s["site_attribute"]):
        plan.append(f"Site shift ({s['site_attribute']}): each site's clean mean against the reference site "
                    f"({s['reference_site'] or 'the largest site'}); drop = how much worse the site's mean is (reference − site, or "
                    "site − reference for lower-is-better metrics; positive = worse); "
                    "two-sided unpaired test of equal means (studentized permutation test, or Mann–Whitney U where a "
                    f"gate sets test = \"mannwhitney\"), {s['correction']} correction across the non-reference sites "
                    "of each metric (a family of its own, separate from the fairness tests); effect size: the "
                    "rank-biserial correlation. A site_drop gate FAILs when the drop is significant and above "
                    "max_drop.")
    if any(g["name"].startswith("baseline") for g in run.summary.get("gates", [])) or run.baseline is not None \
            or any(g.get("check") == "baseline" for g in run.suite_gates):
        plan.append("Baseline regression: per-case paired differences against the baseline run (cases with equal "
                    f"image and label hashes); {_baseline_tests(run)} of H1 regression > margin, corrected across "
                    "the gate's comparisons (a family of its own); FAIL when significant.")
    return plan


def _fairness_test(settings: dict[str, Any]) -> str:
    """The suite's test of a fairness gap, in words."""
    if settings.get("fairness_test") == "kruskal":
        return "Kruskal–Wallis rank test of equal group distributions"
    return (f"studentized (Welch) permutation test of equal group means ({settings['n_permutations']} permutations, "
            "more where a p-value needs resolving after the correction)")


def _baseline_tests(run: RunDir) -> str:
    """The test(s) of the run's baseline gates, in words: each suite gate's ``test``, the defaults for
    the gate ``--baseline`` adds."""
    from harness.baseline import DEFAULTS, EXACT_MAX_N

    gates = [g for g in run.suite_gates if g.get("check") == "baseline"]
    tests = sorted({str(g.get("test", DEFAULTS["test"])) for g in gates} or {str(DEFAULTS["test"])})
    words = {"permutation": f"one-sided sign-flip permutation test (exact up to {EXACT_MAX_N} cases, else "
                            f"{run.settings['n_permutations']} random sign flips)",
             "wilcoxon": "one-sided Wilcoxon signed-rank test",
             "bootstrap-t": f"one-sided bootstrap-t test ({run.settings['n_permutations']} resamples)"}
    return " / ".join(words.get(t, t) for t in tests)


def limitations(run: RunDir) -> list[str]:
    s, out = run.summary, []
    n = int(s.get("data", {}).get("n_cases", 0))
    if n and n < 30:
        out.append(f"Only {n} cases: confidence intervals are wide and small effects cannot be detected.")
    if "phantom" in str(s.get("data", {}).get("name", "")):
        out.append("The data are synthetic phantoms: results say nothing about clinical performance.")
    for note in s.get("notes", []):
        out.append(f"Run note: {note}")
    for change in suite_overrides(run):
        out.append(f"Deviation from the suite: {change}")
    revision = s.get("harness_revision")
    if isinstance(revision, dict) and revision.get("dirty"):
        out.append(f"The harness code had uncommitted changes (checkout {str(revision.get('commit', ''))[:12]}): "
                   f"its version ({s.get('harness_version', '')}) and commit do not fully identify the code that "
                   "produced these results.")
    inconclusive = [g["name"] for g in s.get("gates", []) if g["outcome"] == "INCONCLUSIVE"]
    if inconclusive:
        out.append(f"{len(inconclusive)} gate(s) could not be decided (INCONCLUSIVE): {', '.join(inconclusive[:8])}.")
    if s.get("n_errors"):
        out.append(f"{s['n_errors']} record(s) are ERRORs: the evaluation is incomplete.")
    out.append("Perturbations are simulated: they probe the model's sensitivity to modelled image degradations; they "
               "neither bound nor predict its performance on real acquisitions from new sites and devices.")
    out.append(_patients(run))
    for note in run.artifacts.get("notes", []):
        out.append(f"Artifacts: {note}")
    return out


def _patients(run: RunDir) -> str:
    """How many patients the cases come from (when the metadata has a patient column), and what that
    means for statistics that treat cases as independent."""
    from harness.datasets.columns import PATIENT_COLUMNS, column, ids_of

    cases = run.cases
    col = column(cases, PATIENT_COLUMNS) if len(cases) else None
    if col is None:
        return ("The data name no patient column: cases are treated as independent; if a patient contributes "
                "several cases, confidence intervals and tests are optimistic.")
    known = ids_of(cases[col]).dropna()
    n, k = len(cases), int(known.nunique())
    unknown = f"; {n - len(known)} case(s) name no patient" if len(known) < n else ""
    if k >= len(known):
        return (f"Each of the {len(known)} cases with a patient id comes from a different patient (column "
                f"{col}{unknown}).")
    head = f"The {len(known)} cases with a patient id come from {k} patients (column {col}{unknown}); "
    cluster = run.settings.get("cluster", "")
    if cluster:
        return (head + f"subgroup, site and baseline comparisons are made by {cluster} value ([suite].cluster), and "
                f"the confidence intervals of means over cases resample whole {cluster} values.")
    return (head + "confidence intervals and tests treat cases as independent, so with several cases per patient "
            f"they are optimistic (set [suite].cluster = \"{col}\" to compare subgroups, sites and baselines by patient).")


def suite_history(run: RunDir) -> str:
    """When the suite's text was committed (its version control shows that the criteria predate the
    run), or that nothing shows it."""
    suite = run.summary.get("suite", {})
    if "revision" not in suite:
        return ""  # a run from before this was recorded
    rev = suite.get("revision")
    if isinstance(rev, dict) and rev.get("unavailable"):
        return "Whether the suite file is under version control could not be checked (git did not run)."
    if not isinstance(rev, dict) or not rev.get("commit"):
        return ("The suite file is not under version control: nothing here shows that its criteria were fixed before "
                "the run.")
    changed = " The file differed from that commit when the run read it." if rev.get("modified") else ""
    return f"The suite file was last committed in {str(rev['commit'])[:12]} on {rev.get('date', '')}.{changed}"


def suite_overrides(run: RunDir) -> list[str]:
    """Where the run differed from the suite's text or its data (``--seed``, ``--cohorts``,
    ``--limit``, ``--held-out``): the text is shown as given (its sha256 identifies it), so the
    dossier says what the command line changed."""
    from harness.tomlread import tomllib

    try:
        head = tomllib.loads(run.suite_text).get("suite", {}) if run.suite_text else {}
    except (tomllib.TOMLDecodeError, RecursionError):
        return []
    s, out = run.summary, []
    written_seed = head.get("seed", 0)
    if s.get("seed") is not None and s["seed"] != written_seed:
        out.append(f"Run with seed {s['seed']} (harness run --seed), not the seed {written_seed} of the text below.")
    written = head.get("cohorts", [])
    ran = s.get("cohorts")
    if ran is not None and (ran if isinstance(ran, str) else list(ran)) != (
            written if isinstance(written, str) else list(written)):
        shown = ran if isinstance(ran, str) else ", ".join(map(str, ran)) or "none"
        out.append(f"Cohorts analysed: {shown} (harness run --cohorts), not those of the text below.")
    if s.get("limit"):
        out.append(f"Only the first {s['limit']} cases of the data were evaluated (harness run --limit): in the "
                   f"data's order, not a random sample; {s.get('data', {}).get('n_cases', '')} cases in the end.")
    if s.get("held_out"):
        out.append("Cases the model trained or validated on were left out (harness run --held-out).")
    return out


def run_record(run: RunDir) -> list[tuple[str, str]]:
    s = run.summary
    platform = s.get("platform", {})
    rows = [("command line", s.get("command_line", "")), ("created (UTC)", s.get("created", "")),
            ("seed", str(s.get("seed", ""))), ("harness version", s.get("harness_version", "")),
            ("harness revision", revision_text(s.get("harness_revision"))),
            ("software", " · ".join(f"{k} {v}" for k, v in platform.items() if k not in ("machine", "system"))),
            ("plugins", "; ".join(f"{k}: {v}" for k, v in (s.get("plugins") or {}).items())),
            ("machine", f"{platform.get('system', '')} ({platform.get('machine', '')}), {s.get('workers', '')} worker(s)"),
            ("timings", f"{s.get('seconds', 0):.1f} s total; {s.get('n_items', 0)} work items, {s.get('n_records', 0)} "
                        f"records" + (f"; artifacts {run.artifacts['seconds']:.1f} s" if "seconds" in run.artifacts else "")),
            ("suite file", str(s.get("suite", {}).get("path", ""))),
            ("data", f"{s['data'].get('spec', '')} ({s['data'].get('n_cases', '')} cases, {s['data'].get('modality', '')})")]
    return [(k, v) for k, v in rows if v]
