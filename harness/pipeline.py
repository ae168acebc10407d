"""One evaluation, end to end: load -> validate -> run -> analyse -> gate -> write outputs.

Everything that can be checked before the first model call is (exit 3 on a problem); failures during
the run become ERROR records (exit 2); a failed gate exits 1.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from harness import __version__, atomic
from harness.datasets import Dataset, open_dataset
from harness.datasets.label_values import check_named_classes, class_name_conflicts, classes_the_model_lacks
from harness.errors import ConfigError
from harness.hashing import text_sha256
from harness.gates import GateContext, GateResult, evaluate_gates, overall_outcome
from harness.records import Journal, json_safe, records_frame
from harness.runner import (Plan, card_sha256, case_data_hashes, default_workers, ensure_out_dir, execute,
                            plan_items, resolve_families)
from harness.suite import Suite, load_suite

EXIT_OK, EXIT_GATE_FAILED, EXIT_ERROR, EXIT_CONFIG = 0, 1, 2, 3


@dataclass
class RunOptions:
    suite: str | Path = "robustness"
    model: str | None = None
    data: str | None = None
    out: Path | None = None
    seed: int | None = None
    limit: int | None = None
    workers: int | None = None
    cohorts: list[str] | None = None
    resume: bool = False
    retry_errors: bool = False  # with resume: run the journal's ERROR items again
    strict: bool = False
    executor: str = "local"  # local | dask
    scheduler: str | None = None  # dask scheduler address (attach to an existing cluster)
    item_timeout: float | None = None  # seconds per work item; None = no limit
    baseline: Path | None = None  # a previous run folder to compare against (regression gate)
    pdf: bool = False  # also write report.pdf through headless Chromium
    held_out: bool = False  # evaluate only cases the model's training record did not train/validate on
    command_line: str = ""

    def __post_init__(self) -> None:  # the Python API may give paths as text and cohorts as "a,b"
        for name in ("seed", "limit", "workers"):  # numpy integers (a sweep over np.arange) are whole numbers
            if isinstance(getattr(self, name), np.integer):
                setattr(self, name, int(getattr(self, name)))
        self.out = Path(self.out) if self.out is not None else None
        self.baseline = Path(self.baseline) if self.baseline is not None else None
        if isinstance(self.cohorts, str):
            given = self.cohorts
            self.cohorts = [c.strip() for c in given.split(",") if c.strip()]
            if not self.cohorts:  # "," would silently fall back to the suite's cohorts
                raise ConfigError(f"--cohorts {given!r} names no attribute; give e.g. 'sex,site' or 'auto'")
        # the CLI's typer ranges, for the Python API too (limit=0 once gave an IndexError, limit=-1
        # silently dropped the last case, seed=-1 failed after the whole evaluation)
        for name, value, least in (("seed", self.seed, 0), ("limit", self.limit, 1), ("workers", self.workers, 1)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < least):
                raise ConfigError(f"--{name} {value!r}: give a whole number >= {least}")
        if self.item_timeout is not None and not (isinstance(self.item_timeout, (int, float))
                                                  and math.isfinite(self.item_timeout) and self.item_timeout > 0):
            raise ConfigError(f"--item-timeout {self.item_timeout}: give a positive, finite number of seconds")
        for name in ("suite", "model", "data"):  # objects from load_suite/load_model/open_dataset are not specs
            value = getattr(self, name)
            if isinstance(value, os.PathLike):
                setattr(self, name, Path(value))
            elif value is not None and not isinstance(value, str):
                raise ConfigError(f"RunOptions({name}=...) takes a name or path (a {name} card, a bundled name), "
                                  f"got a {type(value).__name__} object; pass the path it was loaded from")


@dataclass
class RunResult:
    out: Path
    exit_code: int
    outcome: str
    gates: list[GateResult]
    records: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)
    interrupted: bool = False


def prepare(options: RunOptions) -> tuple[Suite, Dataset, Any, Plan, list[str]]:
    """Everything before the first model call. Raises ConfigError listing problems."""
    if options.executor not in ("local", "dask"):
        raise ConfigError(f"--executor {options.executor!r}: choose 'local' or 'dask'")
    if options.scheduler and options.executor != "dask":
        raise ConfigError("--scheduler needs --executor dask")
    suite = load_suite(options.suite, build_families=True)
    if options.seed is not None:
        suite = dataclasses.replace(suite, seed=options.seed)
    if options.cohorts:
        suite = dataclasses.replace(suite, cohorts=tuple(options.cohorts))
    if options.baseline is not None or any(g["check"] == "baseline" for g in suite.gates):
        from harness.baseline import apply_baseline

        # --baseline attached to the suite's `baseline` gates, or their own baseline = "..." checked (exit 3)
        suite = apply_baseline(suite, options.baseline)
    if options.pdf:  # fail before the model call when --pdf cannot be honoured
        from harness.report.pdf import require_chromium

        require_chromium()
    from harness.models import load_model

    model_spec = options.model or (None if suite.model == "reference" else suite.model)
    dataset, model, held_note = _open_data(options, suite), None, []
    if options.held_out:  # the model decides which cases are left, so it loads first
        from harness.training_overlap import held_out

        model = load_model(model_spec, ndim=dataset.ndim)
        dataset, held_note = held_out(dataset, model, limit=options.limit)
    dataset = dataset.subset(options.limit)
    problems = dataset.validate()
    if problems:
        raise ConfigError(f"data {options.data or suite.data}: {len(problems)} problem(s) found before "
                          "running; fix or remove these cases:", problems=problems[:50])
    families, notes = resolve_families(suite, dataset.modality)
    # Families skipped as inapplicable to this modality are not planned at all.
    suite = dataclasses.replace(suite, perturbations=tuple(p for p in suite.perturbations if p.label in families))
    _check_cohorts(suite, dataset)
    _check_cluster(suite, dataset)
    from harness.analysis.shift import check_config as check_shift_config

    check_shift_config(suite, dataset.metadata)  # site_drop gates / reference_site vs the metadata (exit 3)
    if model is None:
        model = load_model(model_spec, ndim=dataset.ndim)
    first = dataset.load(dataset.case_ids[0])
    _check_metric_options(suite, first.ndim, options.data or suite.data)
    mismatch = model.check_input(channels=first.image.shape[0], ndim=first.ndim) if hasattr(model, "check_input") else []
    if mismatch:
        raise ConfigError(f"model {model_spec or 'reference'} cannot take data {options.data or suite.data}:",
                          problems=mismatch)
    labels = _labels(suite, dataset, model)
    _check_gate_labels(suite, labels)
    _check_label_values(first, dataset, model)
    from harness.perturbations import get as get_family

    planned = {label: get_family(family, **options) for label, (family, options) in families.items()}
    notes = held_note + notes + _fallback_note(planned, model) + _hounsfield_note(planned, first) \
        + _class_names_note(dataset, model) + _missing_classes_note(labels, model) + _assumed_spacing_note(dataset) \
        + _generic_intensity_on_ct_note(planned, dataset.modality)
    if not suite.gates:  # allowed (a report-only suite), but it cannot fail: say so where CI reads the result
        notes = notes + [f"suite {suite.name!r} declares no gates: the run passes unless the model errs; add "
                         "[[gates]] to make it a release criterion"]
    mask_classes, named_by = _named_classes(dataset, model)
    plan = Plan(suite=suite, dataset=dataset, model_spec=model_spec, labels=labels, families=families,
                mask_classes=mask_classes, mask_named_by=named_by)
    return suite, dataset, model, plan, notes


def _class_names_note(dataset: Dataset, model: Any) -> list[str]:
    """A run note when the model card and the data give one class number different names (the
    data's class k is scored against the model's output k: the bundled phantom model's "organ"
    scored as BUS-BRA's "lesion")."""
    conflicts = class_name_conflicts(dataset.label_names or {}, getattr(model, "labels", {}) or {})
    if not conflicts:
        return []
    return [f"{'; '.join(conflicts)}: the data's classes are scored against the model's outputs of the same "
            "number, so check that this model segments what the data's masks hold ([output] labels)"]


def _missing_classes_note(labels: dict[int, str], model: Any) -> list[str]:
    """A run note for each scored class the model card does not declare among its outputs."""
    lacking = classes_the_model_lacks(labels, getattr(model, "labels", {}) or {})
    if not lacking:
        return []
    return [f"{', '.join(lacking)} of the data {'is' if len(lacking) == 1 else 'are'} not among the model's "
            f"declared classes ({', '.join(f'{k} = {v!r}' for k, v in sorted(model.labels.items()))}): scored as never "
            "predicted (Dice 0 where the reference has it); set [suite].labels to the classes the model segments, "
            "or fix the card's [output] labels"]


def _open_data(options: RunOptions, suite: Suite) -> Dataset:
    """The run's dataset; an error names where its spec came from (--data, or the suite's ``data``
    key, whose relative paths follow the current folder, not the suite file's)."""
    if options.data is not None:
        return open_dataset(options.data)
    try:
        return open_dataset(suite.data, where=f"suite {suite.path}: data")
    except ConfigError as exc:
        if Path(str(suite.data)).is_absolute() or str(suite.data).startswith("phantom"):
            raise
        raise ConfigError(f"{exc} (a suite's data path is relative to the current folder, {Path.cwd()}: run "
                          "from the folder it expects, or give --data)") from exc


def _assumed_spacing_note(dataset: Dataset) -> list[str]:
    """A run note when cases have no physical spacing (raster files without one in the card): 1 mm
    per pixel is assumed, so every distance and volume the report calls mm is in pixels."""
    assumed = dataset.assumed_spacing()
    if not assumed:
        return []
    return [f"{len(assumed)} of {len(dataset.case_ids)} cases have no physical spacing (raster image files, and "
            "the data card gives no [dataset] spacing): 1 pixel was taken as 1 mm, so their distances (hd, hd95, "
            "assd, masd, the NSD tolerance) and volumes are in pixels (the report labels them px); give the "
            "spacing in the card"]


HU_MIN_SPREAD = 100.0  # p0.5–p99.5 of any CT in HU spans more than this (fat to soft tissue alone: 140)
GENERIC_INTENSITY = ("contrast", "gamma", "brightness", "histogram_shift", "vendor_style")


def _hounsfield_note(planned: dict[str, Any], first: Any) -> list[str]:
    """A run note when CT families (``planned``: record label -> family) will run on an image that
    does not look like Hounsfield units (no negative value at all: raw detector values without the
    rescale intercept, or a normalised image): they model dose, beam hardening, metal and windows in HU."""
    ct = [label for label, family in planned.items() if family.modalities == frozenset({"ct"})]
    if not ct:
        return []
    low, high = (float(v) for v in np.percentile(first.image, [0.5, 99.5]))
    if low < 0 and high - low >= HU_MIN_SPREAD:
        return []
    what = "with no negative value" if low >= 0 else f"over less than {HU_MIN_SPREAD:g} units (normalised?)"
    return [f"CT families {', '.join(ct)} expect Hounsfield units, but case {first.case_id}'s intensities run "
            f"{low:g} to {high:g} (p0.5–p99.5) {what} (air is −1000, fat about −100, soft tissue 40): check the "
            "data's rescale slope/intercept or normalisation, or drop these families"]


def _generic_intensity_on_ct_note(planned: dict[str, Any], modality: str) -> list[str]:
    """A run note when intensity families calibrated on normalised images (nnU-Net's augmentation
    ranges) run on CT data in HU, where air sets the mean and range they scale by: on the CT phantom a
    severity-1 contrast change moves soft tissue by 80–110 HU."""
    if modality != "ct":
        return []
    generic = [label for label, family in planned.items() if getattr(family, "name", "") in GENERIC_INTENSITY]
    if not generic:
        return []
    return [f"{', '.join(generic)} scale intensities about the whole image's mean or range, which air sets in CT: "
            "on HU data their severities are far stronger than on the normalised images they are calibrated for "
            "(contrast at severity 1 moves soft tissue by about 100 HU); read them as stress tests, and use "
            "hu_offset and window_shift for calibrated HU shifts"]


def _fallback_note(planned: dict[str, Any], model: Any) -> list[str]:
    """A run note when white-box attacks (``planned``: record label -> family) will run as the
    black-box Square attack (the model has no gradients): their gates keep the white-box names, and
    the fallback is otherwise in params only."""
    from harness.perturbations.adversarial._torch import is_differentiable

    if is_differentiable(model):
        return []
    fallen = [label for label, family in planned.items() if getattr(family, "threat", "") == "whitebox"
              and family.options.get("nondifferentiable", "blackbox") == "blackbox"]
    return [f"white-box attack(s) {', '.join(fallen)} run as the black-box square_attack at the same ε: the "
            "model has no gradients (params: fallback; set nondifferentiable = \"error\" to refuse)"] if fallen else []


def _check_metric_options(suite: Suite, ndim: int, data: object) -> None:
    """Before any model call: [suite].metric_options hold for the data's dimensionality (a lesion
    ``connectivity = 3`` suits 3D only; the suite check at load cannot know the data)."""
    from harness.metrics import validate_config

    try:
        validate_config(suite.metrics, suite.metric_options, ndim=ndim)
    except ConfigError as exc:
        raise ConfigError(f"suite {suite.path}: [suite].metric_options do not fit the {ndim}D data {data}: "
                          f"{exc}") from None


def _check_cohorts(suite: Suite, dataset: Dataset) -> None:
    """Before any model call: fairness gates have cohorts, which the metadata holds, and name
    only attributes among them."""
    fairness = [g for g in suite.gates if g["check"] == "fairness"]
    if not fairness and not suite.cohorts:
        return
    if not suite.cohorts:
        raise ConfigError(f"suite {suite.path}: fairness gate(s) {', '.join(repr(g['name']) for g in fairness)} "
                          "need cohorts: set [suite].cohorts (e.g. [\"sex\", \"site\"] or \"auto\") or pass --cohorts")
    from harness.analysis.fairness import resolve_cohorts

    try:
        groups = resolve_cohorts(dataset.metadata.reset_index(), suite.cohorts if isinstance(suite.cohorts, str)
                                 else list(suite.cohorts), bins=suite.bins or None)
    except ConfigError as exc:  # name where the cohorts came from
        raise ConfigError(f"suite {suite.path}: [suite].cohorts (or --cohorts): {exc}") from None
    for gate in fairness:
        missing = [a for a in gate.get("attributes") or [] if a not in groups]
        if missing:
            raise ConfigError(f"suite {suite.path}: fairness gate {gate['name']!r}: attribute(s) {missing} are not "
                              f"among the cohorts analysed ({', '.join(groups) or 'none'}); fix attributes or cohorts")


def _check_cluster(suite: Suite, dataset: Dataset) -> None:
    """Before any model call: ``[suite].cluster`` names a metadata column of the data."""
    if not suite.cluster:
        return
    from harness.analysis.clusters import cluster_ids

    try:
        cluster_ids(dataset.metadata.reset_index(), suite.cluster)
    except ConfigError as exc:
        raise ConfigError(f"suite {suite.path}: {exc}; fix [suite].cluster or the data's metadata") from None


def _check_gate_labels(suite: Suite, labels: dict[int, str]) -> None:
    """Before any model call: a gate's ``label`` (other than "mean"/"each") names a scored class, by
    number or name (it would otherwise gate nothing, INCONCLUSIVE after the whole run)."""
    known = {str(k) for k in labels} | {str(v) for v in labels.values()}
    for gate in suite.gates:
        label = gate.get("label")
        if label is None or label in ("mean", "each") or str(label) in known:
            continue
        scored = ", ".join(f"{k} ({v})" for k, v in sorted(labels.items()))
        raise ConfigError(f"suite {suite.path}: gate {gate['name']!r}: label {label!r} is not a scored class; "
                          f"scored: {scored}")


def _named_classes(dataset: Dataset, model: Any) -> tuple[frozenset[int] | None, str]:
    """The classes named for the masks and who names them: the data's (its label names) when it
    names any, else the model's; None when nobody does (the classes are whatever the masks hold)."""
    if dataset.label_names:
        return frozenset(int(k) for k in dataset.label_names), "the data (its label names)"
    return frozenset(int(k) for k in model.labels) or None, "the model (its card's labels)"


def _check_label_values(first: Any, dataset: Dataset, model: Any) -> None:
    """Refuse a first case whose mask holds values that the data (else the model) does not name as
    classes (a 0/255 PNG mask read without ``label_values`` would score Dice 0 everywhere); later
    cases are checked as they are read (``Plan.load``: their items become ERROR)."""
    known, named_by = _named_classes(dataset, model)
    if known:
        check_named_classes(first.case_id, np.unique(first.label).tolist(), known, named_by=named_by)


def _labels(suite: Suite, dataset: Dataset, model: Any) -> dict[int, str]:
    """The classes scored: the data's (the reference defines what is measured), or the model's when
    the data names none (background 0 is never scored), restricted to the suite's ``labels``. A
    class only the model has is not scored: against a reference that never holds it, its Dice is 1
    while the model keeps off it and 0 otherwise, which would only move the mean."""
    names = {int(k): str(v) for k, v in (dataset.label_names or model.labels).items()}
    names.pop(0, None)
    if not names:
        names = {1: "foreground"}
    if suite.labels == "all":
        return dict(sorted(names.items()))
    unknown = [k for k in suite.labels if k not in names]
    if unknown:
        raise ConfigError(f"suite {suite.path}: [suite].labels {unknown} are not classes of the data (or of the "
                          f"model when the data names none): {names}")
    return {k: names[k] for k in suite.labels}


def _default_out(suite: Suite) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("reports") / f"{suite.name}-{stamp}"


def run(options: RunOptions, *, progress_factory: Callable[[int], Any] | None = None) -> RunResult:
    """Run a suite; returns the result with the exit code (outputs written to ``out``).

    From a script, call it under ``if __name__ == "__main__":``: worker processes import the script
    that started them (as multiprocessing always does), and an unguarded call would start a run in
    each of them (refused with a ConfigError saying so).
    """
    started = time.time()
    import multiprocessing

    if getattr(multiprocessing.current_process(), "_inheriting", False):  # as CPython's own check: this
        # process is a worker still importing the script that started it (a call made by a task later is fine)
        raise ConfigError("harness.run() was called while a worker process imported your script: put the call "
                          "under `if __name__ == \"__main__\":` (worker processes import the main script)")
    if options.retry_errors and not options.resume:
        raise ConfigError("--retry-errors reruns the ERROR items of an earlier run: use it with --resume "
                          "and that run's --out")
    suite, dataset, model, plan, notes = prepare(options)
    out = ensure_out_dir(options.out or _default_out(suite), resume=options.resume)
    cases = dataset.manifest()
    from harness.training_overlap import overlap_note

    notes = notes + overlap_note(model, cases)  # scoring the model on its own training cases
    items = plan_items(suite, dataset.case_ids)
    journal = Journal(out / "journal.jsonl")  # a cut tail is repaired under the journal's lock (execute)
    with journal.lock():  # one run writes this folder at a time, from the evaluation to the last report
        return _evaluate_and_write(options, suite, dataset, model, plan, notes, out, cases, items, journal,
                                   started=started, progress_factory=progress_factory)


def _evaluate_and_write(options: RunOptions, suite: Suite, dataset: Dataset, model: Any, plan: Plan,
                        notes: list[str], out: Path, cases: pd.DataFrame, items: list[Any], journal: Journal, *,
                        started: float, progress_factory: Callable[[int], Any] | None) -> RunResult:
    """The body of :func:`run` under the journal's lock: evaluate (or finish) the items, then write
    records, tables, figures and reports."""
    workers = options.workers or default_workers()
    interrupted = False
    stopped: str | None = None  # why the evaluation ended early (an executor failure), else None
    progress = progress_factory(len(items)) if progress_factory else None
    try:
        rows = execute(plan, items, journal, workers=workers, progress=progress, model=model,
                       executor=options.executor, scheduler=options.scheduler, timeout=options.item_timeout,
                       retry_errors=options.retry_errors, case_hashes=case_data_hashes(cases.reset_index()))
    except KeyboardInterrupt:
        interrupted = True
        rows = _journaled_rows(journal, items)
    except ConfigError:
        raise  # refused before anything ran (e.g. --resume of another run): nothing to write
    except Exception as exc:  # the executor broke: keep and report what the journal holds
        stopped = f"{type(exc).__name__}: {exc}".splitlines()[0]
        rows = _journaled_rows(journal, items)
    finally:
        if progress is not None and hasattr(progress, "close"):
            progress.close()
    if options.resume:
        notes = notes + _left_out_note(journal, dataset.case_ids)
    records = records_frame(rows, suite.metrics)
    # Written only now, so a refused --resume (another run's journal) leaves that folder untouched.
    _write_run_files(out, dataset, suite, cases, records)
    context = GateContext(records=records, cases=cases.reset_index(), suite=suite)
    gates = evaluate_gates(context)
    _write_analysis_tables(out, context)
    if not interrupted and stopped is None:  # worst-case overlays, maps, gallery (never change the outcome)
        try:
            _draw_artifacts(out, options, workers, plan.model_spec, suite=suite, dataset=dataset, model=model,
                            records=records)
        except KeyboardInterrupt:  # Ctrl-C while drawing: finish the small outputs, say so
            interrupted = True
        notes = notes + _determinism_note(out)
    n_cases = float(len(set(r["case_id"] for r in rows)))
    if interrupted or stopped is not None:
        why = "interrupted" if stopped is None else f"the run stopped early ({stopped})"
        gates.insert(0, GateResult("run-complete", "ERROR", n_cases, None,
                                   f"{why}: {len(records)} of {len(items) * len(plan.labels)} records written; "
                                   "rerun with --resume to finish"))

    def summarise() -> dict[str, Any]:
        outcome = overall_outcome(gates)
        return _summary(options, suite, dataset, model, records, cases, gates, outcome,
                        exit_code_for(gates, strict=options.strict), seconds=time.time() - started, notes=notes,
                        workers=workers, n_items=len(items))

    summary = summarise()
    try:
        _write_outputs(out, summary, baseline=options.baseline, pdf=options.pdf)
    except KeyboardInterrupt:  # Ctrl-C while the reports were written: the summary and JUnit must not say PASS
        interrupted = True
        if not gates or gates[0].name != "run-complete":
            gates.insert(0, GateResult("run-complete", "ERROR", n_cases, None,
                                       f"interrupted while the reports were written: all {len(records)} records "
                                       f"are in records.csv; `harness report {out} --format all` writes the reports"))
        summary = summarise()
        _write_summary(out, summary)
    except Exception as exc:  # noqa: BLE001 - a report that cannot be written: say so, never PASS beside it
        why = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        print(f"error: the reports could not be written ({why}); `harness --debug report {out} --format all` "
              "retries with the traceback", file=sys.stderr)
        failed = (f"the reports could not be written ({why}); `harness report {out} --format all` retries once "
                  "fixed")
        if gates and gates[0].name == "run-complete":  # already incomplete: one gate says both
            gates[0] = dataclasses.replace(gates[0], detail=f"{gates[0].detail}; {failed}")
        else:
            gates.insert(0, GateResult("run-complete", "ERROR", n_cases, None,
                                       f"all {len(records)} records are in records.csv and the gates are complete, "
                                       f"but {failed}"))
        summary = summarise()
        _write_summary(out, summary)
    return RunResult(out=out, exit_code=summary["exit_code"], outcome=summary["outcome"], gates=gates,
                     records=records, summary=summary, interrupted=interrupted)


ARTIFACT_CALLS_PER_CASE = 10  # model passes per worst case: prediction, flip uncertainty, 8 SmoothGrad samples


def _draw_artifacts(out: Path, options: RunOptions, workers: int, model_spec: Any, **inputs: Any) -> None:
    """The artifacts step, which calls the model again: in this process when the run evaluated here
    (``--workers 1``, no ``--item-timeout``), else in a worker process — under a deadline of
    ``START_TIMEOUT_MIN_S`` plus ``--item-timeout`` per model call when one is set — so a model that
    hangs or dies there cannot hang or end the run (the report then notes the failure)."""
    from harness.report.artifacts import write_artifacts, write_failure_manifest

    from harness.executors import runs_in_process

    if runs_in_process(options.executor, workers=workers, timeout=options.item_timeout, scheduler=options.scheduler):
        write_artifacts(out, **inputs)  # as the evaluation ran
        return
    from harness.executors.isolated import IsolatedFailure, run_isolated
    from harness.executors.local import START_TIMEOUT_MIN_S

    calls = ARTIFACT_CALLS_PER_CASE * max(1, int(inputs["suite"].worst_cases))
    timeout = None if options.item_timeout is None else START_TIMEOUT_MIN_S + calls * options.item_timeout
    inputs.pop("model")
    try:  # the worker builds the model from its card, as the pool's workers do (no model object is pickled)
        run_isolated(_artifacts_in_worker, out, model_spec=model_spec, timeout=timeout,
                     call_timeout=options.item_timeout, what="the worst-case figures", **inputs)
    except IsolatedFailure as exc:
        write_failure_manifest(out, str(exc))


def _artifacts_in_worker(out: Path, *, model_spec: Any, suite: Suite, dataset: Dataset, records: pd.DataFrame,
                         call_timeout: float | None = None) -> None:
    """The artifacts step in an isolated worker: load the model as the run's workers do, then draw;
    with ``call_timeout`` (``--item-timeout``) a model call that runs past it skips its worst case
    (a note) instead of holding the whole step until the step's deadline."""
    from harness.executors.deadline import CallDeadline
    from harness.models import load_model
    from harness.report.artifacts import write_artifacts

    model = load_model(model_spec, ndim=dataset.ndim)
    write_artifacts(out, suite=suite, dataset=dataset, records=records,
                    model=CallDeadline(model, call_timeout) if call_timeout else model)


def _write_summary(out: Path, summary: dict[str, Any]) -> None:
    """``summary.json`` (strict JSON: an undefined number is null) and the ``junit.xml`` made from it."""
    from harness.report.junit import write_junit_from_summary

    atomic.write_text(out / "summary.json", json.dumps(json_safe(summary), indent=2, allow_nan=False, default=str))
    write_junit_from_summary(out, summary)


def _write_outputs(out: Path, summary: dict[str, Any], *, baseline: str | Path | None, pdf: bool) -> None:
    """The summary, JUnit, the baseline copy and the reports. Reports of an earlier attempt (a resumed
    run) are removed first, so a run stopped here never leaves reports that disagree with its summary."""
    from harness.baseline import copy_baseline
    from harness.report.html import FILES, write_report
    from harness.report.pdf import PdfError

    for name in FILES.values():
        for stale in (out / name, (out / name).with_suffix(".pdf")):
            stale.unlink(missing_ok=True)
    _write_summary(out, summary)
    copy_baseline(out, baseline)
    try:
        write_report(out, pdf=pdf)  # report.html + dossier.html (+ PDFs)
    except PdfError as exc:
        print(f"warning: {exc}", file=sys.stderr)


def _determinism_note(out: Path) -> list[str]:
    """A run note when re-running the worst cases for the report gave other scores than the run
    recorded (artifacts/manifest.json): the model or a perturbation is not deterministic."""
    from harness.json_files import read_json_object

    try:
        manifest = read_json_object(out / "artifacts" / "manifest.json", fix="")
    except (ConfigError, OSError):
        return []  # no artifacts (drawing failed or was skipped): nothing re-ran
    differ = [e for e in manifest.get("worst_cases", []) if isinstance(e, dict) and e.get("note")]
    if not differ:
        return []
    return [f"{len(differ)} of the {len(manifest['worst_cases'])} worst cases re-run for the report scored "
            f"otherwise than the run recorded (e.g. case {differ[0].get('case_id')}, {differ[0].get('perturbation')}: "
            f"{differ[0]['note']}); a rerun may not reproduce these results: seed every random choice from the "
            "given rng / make the model deterministic"]


def _write_run_files(out: Path, dataset: Dataset, suite: Suite, cases: pd.DataFrame, records: pd.DataFrame) -> None:
    """quality.csv, cases.csv, suite.toml and records.csv, each whole or not at all (a full disk
    leaves the previous file, never a cut one); a failure is one error naming the file, and the
    journal still holds every finished item for --resume."""
    from harness.analysis.shift import write_quality

    path = out / "quality.csv"
    try:
        write_quality(out, dataset, suite)  # per-case image statistics when the data has sites
        for name, text in (("cases.csv", Dataset.manifest_csv(cases)), ("suite.toml", suite.text),
                           ("records.csv", records.to_csv(index=False))):
            path = out / name
            atomic.write_text(path, text)
    except OSError as exc:
        raise ConfigError(f"cannot write {path} ({exc.strerror or exc}); the journal holds every finished item: "
                          f"free space or make the folder writable, then rerun with --resume --out {out}") from exc


def _left_out_note(journal: Journal, case_ids: list[str]) -> list[str]:
    """A run note when a resumed run selects fewer cases than its journal holds (a smaller --limit,
    --held-out, other data): those results stay in journal.jsonl but are not in these outputs."""
    selected = set(case_ids)
    others = sorted({str(rows[0].get("case_id")) for rows in journal.read().values() if rows} - selected)
    if not others:
        return []
    return [f"this resumed run evaluates {len(selected)} case(s); journal.jsonl also holds results of "
            f"{len(others)} other case(s) of the earlier run (e.g. {others[0]}), left out of these outputs "
            "(another --limit, --held-out or data selection)"]


def _journaled_rows(journal: Journal, items: list[Any]) -> list[dict[str, Any]]:
    """The rows the journal holds for this run's planned items (a resumed run with a smaller
    --limit leaves others in the journal)."""
    planned = {item.key for item in items}
    return [r for key, rows in journal.read().items() if key in planned for r in rows]


def _write_analysis_tables(out: Path, context: GateContext) -> None:
    """Analyses the gates computed (shared, never recomputed by the report) as CSV in the run folder."""
    for key, result in context.cache.items():
        if key.startswith("fairness:"):
            suffix = "" if key == "fairness:mean" else "_" + key.split(":", 1)[1]
            result.groups.to_csv(out / f"fairness_groups{suffix}.csv", index=False)
            result.gaps.to_csv(out / f"fairness_gaps{suffix}.csv", index=False)
            # exclusions and caveats (cases without a value, aliased attributes), one per line
            (out / f"fairness_notes{suffix}.txt").write_text("".join(f"{n}\n" for n in result.notes), encoding="utf-8")


def exit_code_for(gates: list[GateResult], *, strict: bool = False) -> int:
    outcomes = {g.outcome for g in gates}
    if "ERROR" in outcomes:
        return EXIT_ERROR
    if "FAIL" in outcomes or (strict and outcomes & {"WARN", "INCONCLUSIVE"}):
        return EXIT_GATE_FAILED
    return EXIT_OK


def _clean_means(records: pd.DataFrame, metrics: tuple[str, ...]) -> dict[str, dict[str, float]]:
    ok = records[(records["status"] == "OK") & (records["perturbation"] == "clean")]
    out: dict[str, dict[str, float]] = {}
    for metric in metrics:
        per_label = ok.groupby("label_name")[metric].mean()  # classes sharing a name: averaged
        order = ok.groupby("label_name")["label"].min().sort_values(kind="stable").index  # class-number order
        per_case = ok.groupby("case_id")[metric].mean()
        out[metric] = {**{str(name): float(per_label[name]) for name in order},
                       "mean": float(per_case.mean()) if len(per_case) else float("nan")}
    return out


def _summary(options: RunOptions, suite: Suite, dataset: Dataset, model: Any, records: pd.DataFrame,
             cases: pd.DataFrame, gates: list[GateResult], outcome: str, exit_code: int, *, seconds: float,
             notes: list[str], workers: int, n_items: int) -> dict[str, Any]:
    from harness.provenance import code_revision, file_revision, plugin_code, versions
    from harness.training_overlap import independence

    return {
        "outcome": outcome,
        "exit_code": exit_code,
        "gates": [g.to_dict() for g in gates],
        "clean": _clean_means(records, suite.metrics),
        "seed": suite.seed,
        "cohorts": suite.cohorts if isinstance(suite.cohorts, str) else list(suite.cohorts),  # --cohorts included
        "harness_version": __version__,
        "harness_revision": code_revision(),  # {"commit", "dirty"} in a git checkout, else null
        "suite": {"name": suite.name, "path": str(suite.path), "sha256": suite.sha256,
                  "revision": file_revision(suite.path)},  # its last commit: criteria fixed before the run
        "model": {"name": getattr(model, "name", "model"), "sha256": getattr(model, "sha256", ""),
                  # how the card makes the network predict (normalisation, spacing, TTA, postprocess...):
                  # one weights file run two ways has one sha256 but two card_sha256
                  "card_sha256": card_sha256(model) or "",
                  "prediction": {section: dict((getattr(model, "card", None) or {}).get(section) or {})
                                 for section in ("input", "output")},
                  "spec": options.model or suite.model,
                  "intended_use": (getattr(model, "card", {}) or {}).get("model", {}).get("intended_use", "")},
        "data": {"name": dataset.name, "spec": options.data or suite.data, "modality": dataset.modality,
                 "n_cases": len(cases), "manifest_sha256": text_sha256(Dataset.manifest_csv(cases)),
                 "ndim": dataset.ndim},
        "labels": {str(k): v for k, v in sorted(set(zip(records["label"], records["label_name"])))},
        "metrics": list(suite.metrics),
        "n_items": n_items,
        "n_records": len(records),
        "n_errors": int((records["status"] == "ERROR").sum()),
        "notes": notes,
        "seconds": round(seconds, 3),
        "workers": workers,
        "command_line": options.command_line,
        "limit": options.limit,  # --limit: only the first N cases of the data were evaluated (null: all)
        "held_out": options.held_out,  # --held-out: cases the model trained or validated on were left out
        "strict": options.strict,  # WARN / INCONCLUSIVE also fail the run (exit 1)
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "platform": {**versions(), "machine": platform.machine(), "system": platform.platform()},
        "plugins": plugin_code(suite, model),  # third-party code that ran: its distribution and version, or file hash
        "training_data": independence(model, cases),  # how many evaluated images the model trained/validated on
        "spacing_assumed": len(dataset.assumed_spacing()),  # cases scored in pixels (raster files without a spacing)
    }
