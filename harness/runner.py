"""Runner: plan work items, execute them through an executor, journal every result as it finishes.

For each case: one clean item, then one item per (perturbation, severity, repeat). Items are grouped
into batches of one case (its pixels are read once per batch, so a worker holds one case at a time).
Executors (``harness.executors``): in-process, a supervised local process pool (per-item timeouts,
dead workers replaced) and Dask. Whatever fails on an item becomes ERROR rows; the run goes on.
``execute`` journals each finished item durably and skips what the journal already holds (resume).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.case import Case
from harness.datasets.base import Dataset
from harness.datasets.label_values import check_named_classes
from harness.errors import FOREIGN_FAILURES, ConfigError, ModelError, describe_failure
from harness.perturbations import Perturbation
from harness.perturbations import build as build_perturbation
from harness.perturbations import get as get_perturbation
from harness.perturbations.base import plain_params
from harness.records import CLEAN, Journal, WorkItem
from harness.seeds import item_seed
from harness.suite import Suite


@dataclass(frozen=True)
class Plan:
    """Everything a worker needs, picklable: the suite, the data, the model spec and the labels."""

    suite: Suite
    dataset: Dataset
    model_spec: str | None
    labels: dict[int, str]
    families: dict[str, tuple[str, dict[str, Any]]]  # record label -> (family, options)
    mask_classes: frozenset[int] | None = None  # classes the data (else the model) names; None: any mask value
    mask_named_by: str = "the data or the model"  # who named them, for the error

    def load(self, case_id: str) -> Case:
        """Read a case; a mask holding values outside ``mask_classes`` is refused (ConfigError naming
        the case): a 0/255 mask among 0/1 ones would otherwise score Dice 0 without a word."""
        case = self.dataset.load(case_id)
        if self.mask_classes:
            check_named_classes(case_id, np.unique(case.label).tolist(), self.mask_classes,
                                named_by=self.mask_named_by)
        return case


def build_families(suite: Suite) -> list[tuple[Any, Perturbation]]:
    """Instantiate every family of ``suite`` once, checking its options: (spec, family) pairs.

    One ConfigError lists every unknown family and bad option (exit 3, before any model call).
    """
    built, problems = [], []
    for spec in suite.perturbations:
        family = build_perturbation(spec.family, spec.options, label=spec.label)
        if isinstance(family, str):
            problems.append(family)
        else:
            built.append((spec, family))
    if problems:
        raise ConfigError(f"suite {suite.path}: perturbations cannot run:", problems=problems)
    return built


def resolve_families(suite: Suite, modality: str) -> tuple[dict[str, tuple[str, dict[str, Any]]], list[str]]:
    """Instantiate every family once (ConfigError on unknown ones or bad options) and apply the
    modality filter.

    Returns (label -> (family, options), notes about skipped families).
    """
    families, problems = {}, []
    skipped: dict[str, list[str]] = {}  # modality tags -> labels of the skipped families
    for spec, family in build_families(suite):
        if not family.applies_to(modality):
            tags = ", ".join(sorted(family.modalities))
            message = (f"perturbation {spec.label!r} applies to {tags} images, but the data's modality "
                       f"is {modality!r}")
            if suite.on_inapplicable == "skip":
                skipped.setdefault(tags, []).append(spec.label)
                continue
            problems.append(message + "; remove it from the suite, set the card's modality, or set "
                            "[suite] on_inapplicable = \"skip\"")
            continue
        families[spec.label] = (spec.family, dict(spec.options))
    if problems:
        raise ConfigError(f"suite {suite.path}: perturbations cannot run on this data:", problems=problems)
    notes = [f"{len(labels)} perturbation(s) for {tags} images skipped on {modality!r} data: {', '.join(labels)}"
             for tags, labels in skipped.items()]
    return families, notes


def plan_items(suite: Suite, case_ids: list[str]) -> list[WorkItem]:
    """All work items of a run, grouped by case, in a deterministic order."""
    items = []
    for cid in case_ids:
        items.append(WorkItem(cid, CLEAN, CLEAN, 0, 0, item_seed(suite.seed, cid, CLEAN)))
        for spec in suite.perturbations:
            for severity in spec.severities:
                for repeat in range(suite.repeats):
                    seed = item_seed(suite.seed, cid, spec.label, repeat)
                    items.append(WorkItem(cid, spec.label, spec.family, severity, repeat, seed))
    return items


def item_rows(plan: Plan, item: WorkItem, *, status: str, error: str = "",
              scores: list[dict[str, Any]] | None = None, params: dict[str, Any] | None = None,
              seconds: float = math.nan) -> list[dict[str, Any]]:
    """The record rows of one item: one per scored label (ERROR items: one per planned label)."""
    base = {**item.to_dict(), "status": status, "error": error,
            "params": json.dumps(params or {}, sort_keys=True, default=float), "inference_s": seconds}
    base.pop("family")
    if scores is None:
        return [{**base, "label": k, "label_name": name, "empty": ""} for k, name in plan.labels.items()]
    return [{**base, **s, "label_name": plan.labels.get(s["label"], str(s["label"]))} for s in scores]


def error_rows(plan: Plan, item: WorkItem, reason: str) -> list[dict[str, Any]]:
    """ERROR rows for an item that produced no result (timeout, dead worker, ...)."""
    return item_rows(plan, item, status="ERROR", error=" ".join(reason.split())[:500])


class Evaluator:
    """Per-process state: loaded model and perturbation instances; evaluates one case's items."""

    def __init__(self, plan: Plan, model: Any | None = None) -> None:
        from harness.models import load_model

        self.plan = plan
        self.model = model if model is not None else load_model(plan.model_spec, ndim=plan.dataset.ndim)
        self.families: dict[str, Perturbation] = {
            label: get_perturbation(family, **options) for label, (family, options) in plan.families.items()}
        for family in self.families.values():
            if family.requires_model:
                family.bind_model(self.model)

    def _rows(self, item: WorkItem, **kwargs: Any) -> list[dict[str, Any]]:
        return item_rows(self.plan, item, **kwargs)

    def evaluate(self, item: WorkItem, clean: Case) -> list[dict[str, Any]]:
        """Perturb, predict and score one item; every failure becomes ERROR rows with its reason."""
        try:
            return self._evaluate(item, clean)
        except FOREIGN_FAILURES as exc:  # last resort: nothing raised for one item may end the run
            return self._rows(item, status="ERROR", error=f"harness failed: {type(exc).__name__}: {exc}")

    def _evaluate(self, item: WorkItem, clean: Case) -> list[dict[str, Any]]:
        from harness.metrics import evaluate as score

        suite = self.plan.suite
        case = clean
        params: dict[str, Any] = {}
        try:
            if item.perturbation != CLEAN:
                case, params = self.families[item.perturbation](clean, item.severity, np.random.default_rng(item.seed))
                params = plain_params(params, family=item.perturbation)  # as the record stores and replays them
        except FOREIGN_FAILURES as exc:  # a perturbation (or a model it attacks) must not end the run
            return self._rows(item, status="ERROR", error=f"perturbation failed: {describe_failure(exc)}")
        start = time.perf_counter()
        try:
            prediction = self.model.predict(case.image, case.spacing)
        except ModelError as exc:
            return self._rows(item, status="ERROR", error=f"ModelError: {exc}", params=params)
        except FOREIGN_FAILURES as exc:  # the model may fail in any way (MemoryError included); go on
            return self._rows(item, status="ERROR", error=f"{type(exc).__name__}: {exc}", params=params)
        seconds = time.perf_counter() - start
        try:
            scores = score(prediction.labels, case.label, spacing=case.spacing, labels=list(self.plan.labels),
                           metrics=list(suite.metrics), options=dict(suite.metric_options))
        except Exception as exc:
            return self._rows(item, status="ERROR", error=f"metrics failed: {type(exc).__name__}: {exc}",
                              params=params, seconds=seconds)
        return self._rows(item, status="OK", scores=scores, params=params, seconds=seconds)

    def load_failure(self, items: list[WorkItem], exc: BaseException) -> list[tuple[WorkItem, list[dict[str, Any]]]]:
        """ERROR rows for every item of a case whose pixels could not be read."""
        reason = f"cannot load case: {type(exc).__name__}: {exc}"
        return [(item, self._rows(item, status="ERROR", error=reason)) for item in items]

    def run_case(self, case_id: str, items: list[WorkItem]) -> Iterator[tuple[WorkItem, list[dict[str, Any]]]]:
        """Load the case once (lazily, here), then evaluate its items one by one."""
        try:
            clean = self.plan.load(case_id)
        except Exception as exc:  # unreadable pixels surface here (headers were checked up front)
            yield from self.load_failure(items, exc)
            return
        for item in items:
            yield item, self.evaluate(item, clean)


ProgressFn = Callable[[int], None]


# card keys that do not change what a model predicts (where it runs, names, limits, file locations:
# the files' contents are in the model's sha256)
_CARD_KEYS_NOT_RESULTS = frozenset({"name", "intended_use", "path", "weights", "device", "providers", "timeout",
                                    "batch_size", "source"})


def card_sha256(model: Any) -> str | None:
    """sha256 of what a model card says about how the model predicts ([input], [output], the model's
    entry, kwargs, options, command): a resume must not mix records of one network run two ways
    (another normalisation, spacing, TTA or postprocessing keeps the weights' sha256)."""
    card = getattr(model, "card", None)
    if not isinstance(card, dict):
        return None
    sections = {name: {k: v for k, v in (card.get(name) or {}).items() if k not in _CARD_KEYS_NOT_RESULTS}
                for name in ("model", "input", "output")}
    return hashlib.sha256(json.dumps(sections, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def run_fingerprint(plan: Plan, model: Any | None = None) -> dict[str, Any]:
    """What a journal must agree on to be resumed: suite, seed, data, model (weights and card),
    labels, families, and the plugin code they use (distribution version or file sha256)."""
    from harness.provenance import plugin_code

    suite = plan.suite
    return {"suite_sha256": suite.sha256, "seed": suite.seed, "data": plan.dataset.name,
            "model": getattr(model, "sha256", None) or plan.model_spec or "reference",
            "model_card": card_sha256(model),
            "labels": {str(k): v for k, v in sorted(plan.labels.items())},
            "families": {k: [f, o] for k, (f, o) in sorted(plan.families.items())},
            "metrics": list(suite.metrics), "repeats": suite.repeats, "plugins": plugin_code(suite, model)}


LATER_KEYS = ("model_card", "plugins")  # journals written before these were recorded lack them: not compared


def _resume_state(plan: Plan, items: list[WorkItem], journal: Journal, model: Any | None,
                  case_hashes: dict[str, str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Repair a cut journal tail (warning), check it belongs to this run (and, with
    ``case_hashes``, that the journaled cases' data is unchanged), return finished items."""
    done, corrupt = journal.scan()
    if done and journal.meta() is None:  # checked before any repair rewrites the file
        raise ConfigError(f"{journal.path}: its first line, the header naming the run it belongs to (suite, seed, "
                          "model, data), is unreadable, so its records cannot be checked to come from this run; "
                          "--resume refuses it: choose another --out")
    if corrupt or not journal.ends_cleanly():
        journal.truncate_corrupt_tail()
        done = journal.scan()[0]
    if journal.dropped:
        lines = ", ".join(str(n) for n in journal.dropped)
        warnings.warn(f"{journal.path}: corrupt journal line(s) {lines} dropped (a write cut by a kill); "
                      "those items run again", RuntimeWarning, stacklevel=3)
        journal.dropped.clear()
    fingerprint = json.loads(json.dumps(run_fingerprint(plan, model), default=str))
    meta = journal.meta()
    if meta is None and not done:
        journal.write_meta({**fingerprint, "case_sha256": dict(case_hashes or {})})
    elif meta is not None:
        differ = sorted(k for k in fingerprint if meta.get(k) != fingerprint[k]
                        and not (k in LATER_KEYS and k not in meta))
        if differ:
            raise ConfigError(f"{journal.path.parent} holds a run whose {', '.join(differ)} differ(s) from this "
                              "one; --resume only finishes the same run: choose another --out")
    _check_case_data(journal, meta or {}, done, case_hashes)
    seeds = {item.key: item.seed for item in items}
    stale = [key for key, rows in done.items() if key in seeds and rows and rows[0].get("seed") != seeds[key]]
    if stale:
        raise ConfigError(f"{journal.path}: {len(stale)} journaled item(s) have other seeds than this run "
                          f"(e.g. {stale[0]}); --resume only finishes the same run: choose another --out")
    return done


def case_data_hashes(cases: pd.DataFrame) -> dict[str, str]:
    """case id -> ``"<image sha256>/<label sha256>"`` from a manifest / cases.csv table (with a
    ``case_id`` column); {} when it lacks the hash columns."""
    if not {"case_id", "image_sha256", "label_sha256"} <= set(cases.columns):
        return {}
    return {str(c): f"{i}/{lab}" for c, i, lab in zip(cases["case_id"], cases["image_sha256"], cases["label_sha256"])}


def _check_case_data(journal: Journal, meta: dict[str, Any], done: dict[str, list[dict[str, Any]]],
                     case_hashes: dict[str, str] | None) -> None:
    """Refuse to resume when a journaled case's image or label changed (same id, other data): its
    results would be kept for data they were not computed on. Known hashes: the journal header's,
    then the earlier run's cases.csv (cases added by a resumed run with a larger --limit)."""
    if not case_hashes:
        return
    known: dict[str, str] = {}
    previous = journal.path.parent / "cases.csv"
    if previous.is_file():
        try:
            known.update(case_data_hashes(pd.read_csv(previous, dtype=str, keep_default_na=False)))
        except (OSError, ValueError, pd.errors.ParserError):
            pass  # an unreadable cases.csv only weakens this check
    known.update(meta.get("case_sha256") or {})
    journaled = {rows[0].get("case_id") for rows in done.values() if rows}
    changed = sorted(c for c in journaled if c in known and c in case_hashes and known[c] != case_hashes[c])
    if changed:
        raise ConfigError(f"{journal.path.parent}: the data of {len(changed)} journaled case(s) changed since they "
                          f"were evaluated (e.g. {changed[0]}: other image or label hashes); --resume only "
                          "finishes the same run: choose another --out")


def execute(plan: Plan, items: list[WorkItem], journal: Journal, *, workers: int = 1,
            progress: ProgressFn | None = None, model: Any | None = None, executor: str = "local",
            scheduler: str | None = None, timeout: float | None = None,
            retry_errors: bool = False, case_hashes: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Run ``items`` not yet in the journal; append each result durably as it finishes; return the
    rows of all ``items`` (journaled earlier or now), each item exactly once.

    ``retry_errors``: also run again the journaled items whose rows are ERROR (a timeout, a dead
    worker, a model that failed once); their new rows are appended and supersede the old ones.

    ``executor``: ``local`` (in process when ``workers`` is 1 and there is no ``timeout``, else a
    supervised process pool) or ``dask`` (a LocalCluster of ``workers``, or the cluster at
    ``scheduler``). ``timeout``: seconds per item, then ERROR "timeout". KeyboardInterrupt propagates
    after the workers are stopped; everything finished before it is in the journal.
    """
    from harness.executors import make_batches, make_executor

    runner = make_executor(executor, workers=workers, scheduler=scheduler, timeout=timeout, model=model)
    with journal.lock():
        done = _resume_state(plan, items, journal, model, case_hashes)
        planned = {item.key for item in items}
        finished = planned & set(done)
        if retry_errors:
            finished -= {key for key in finished if any(r.get("status") == "ERROR" for r in done[key])}
        rows: list[dict[str, Any]] = [r for item in items if item.key in finished for r in done[item.key]]
        todo = [item for item in items if item.key not in finished]
        if progress and finished:
            skip = getattr(progress, "skip", None)
            (skip or progress)(len(finished))

        def sink(results: list[tuple[WorkItem, list[dict[str, Any]]]]) -> None:
            fresh = [(item, item_rows) for item, item_rows in results if item.key not in finished]
            fresh = list({item.key: (item, r) for item, r in fresh}.values())  # never count an item twice
            if not fresh:
                return
            stored = journal.append_many([(item.key, r) for item, r in fresh])
            for (item, _), item_rows in zip(fresh, stored):
                finished.add(item.key)
                rows.extend(item_rows)
            if progress:
                progress(len(fresh))

        if todo:
            with journal.group_commit():
                runner.run(plan, make_batches(todo, workers, max_items=runner.max_batch), sink)
        lost = [item for item in todo if item.key not in finished]
        if lost:  # an executor bug must not lose items silently
            sink([(item, error_rows(plan, item, "LostItem: the executor returned no result for this item"))
                  for item in lost])
    return rows


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


RUN_OUTPUTS = ("records.csv", "summary.json", "report.html", "artifacts")  # what a run (re)writes


def ensure_out_dir(out: Path, *, resume: bool) -> Path:
    """``out``, created; ConfigError when it holds a run (without ``resume``) or files a run would
    overwrite without being a run (no journal)."""
    if out.is_file():
        raise ConfigError(f"--out {out} is a file; give a folder")
    if out.exists() and not resume and (out / "journal.jsonl").exists():
        raise ConfigError(f"--out {out} already holds a run; pass --resume to finish it or choose "
                          "another folder")
    clobbered = [name for name in RUN_OUTPUTS if (out / name).exists()]
    if clobbered and not (out / "journal.jsonl").exists():
        raise ConfigError(f"--out {out} holds {', '.join(clobbered)} but no harness run (journal.jsonl) to "
                          "resume; a run would overwrite them: choose an empty or new folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a parent that is a file, no permission, ...
        raise ConfigError(f"--out {out}: cannot create the folder ({exc.strerror or exc})") from exc
    try:  # an existing folder on a read-only disk, or without write permission
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot write in the folder ({exc.strerror or exc}); choose a "
                          "writable --out") from exc
    return out
