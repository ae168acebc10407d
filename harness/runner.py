"""Runner: plan work items, execute them (in process or in a process pool), journal every result.

For each case: one clean item, then one item per (perturbation, severity, repeat). Items of one case
run together so its pixels are read once per worker. A model failure on one item becomes ERROR rows;
the run goes on.
"""
from __future__ import annotations

import json
import math
import os
import time
import traceback
from collections import defaultdict
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from harness.case import Case
from harness.datasets.base import Dataset
from harness.errors import ConfigError, ModelError
from harness.perturbations import Perturbation, get as get_perturbation
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


def resolve_families(suite: Suite, modality: str) -> tuple[dict[str, tuple[str, dict[str, Any]]], list[str]]:
    """Instantiate every family once (ConfigError on unknown ones) and apply the modality filter.

    Returns (label -> (family, options), notes about skipped families).
    """
    families, notes, problems = {}, [], []
    for spec in suite.perturbations:
        try:
            family = get_perturbation(spec.family, **spec.options)
        except ConfigError as exc:
            problems.append(str(exc))
            continue
        except TypeError as exc:
            problems.append(f"perturbation {spec.label!r}: bad options {spec.options} ({exc})")
            continue
        if not family.applies_to(modality):
            tags = ", ".join(sorted(family.modalities))
            message = (f"perturbation {spec.label!r} applies to {tags} images, but the data's modality "
                       f"is {modality!r}")
            if suite.on_inapplicable == "skip":
                notes.append(message + "; skipped")
                continue
            problems.append(message + "; remove it from the suite, set the card's modality, or set "
                            "[suite] on_inapplicable = \"skip\"")
            continue
        families[spec.label] = (spec.family, dict(spec.options))
    if problems:
        raise ConfigError(f"suite {suite.path}: perturbations cannot run on this data:", problems=problems)
    return families, notes


def plan_items(suite: Suite, case_ids: list[str]) -> list[WorkItem]:
    """All work items of a run, grouped by case, in a deterministic order."""
    items = []
    for cid in case_ids:
        items.append(WorkItem(cid, CLEAN, CLEAN, 0, 0, item_seed(suite.seed, cid, CLEAN, 0)))
        for spec in suite.perturbations:
            for severity in spec.severities:
                for repeat in range(suite.repeats):
                    seed = item_seed(suite.seed, cid, spec.label, severity, repeat)
                    items.append(WorkItem(cid, spec.label, spec.family, severity, repeat, seed))
    return items


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

    def _rows(self, item: WorkItem, *, status: str, error: str = "", scores: list[dict[str, Any]] | None = None,
              params: dict[str, Any] | None = None, seconds: float = math.nan) -> list[dict[str, Any]]:
        base = {**item.to_dict(), "status": status, "error": error,
                "params": json.dumps(params or {}, sort_keys=True, default=float), "inference_s": seconds}
        base.pop("family")
        if scores is None:
            return [{**base, "label": k, "label_name": name, "empty": ""} for k, name in self.plan.labels.items()]
        return [{**base, **s, "label_name": self.plan.labels.get(s["label"], str(s["label"]))} for s in scores]

    def evaluate(self, item: WorkItem, clean: Case) -> list[dict[str, Any]]:
        from harness.metrics import evaluate as score

        suite = self.plan.suite
        case, params = clean, {}
        try:
            if item.perturbation != CLEAN:
                case, params = self.families[item.perturbation](clean, item.severity, np.random.default_rng(item.seed))
        except Exception as exc:  # a perturbation bug must not lose the rest of the run
            return self._rows(item, status="ERROR", error=f"perturbation failed: {type(exc).__name__}: {exc}")
        start = time.perf_counter()
        try:
            prediction = self.model.predict(case.image, case.spacing)
        except ModelError as exc:
            return self._rows(item, status="ERROR", error=f"ModelError: {exc}", params=params)
        except Exception as exc:  # the model may fail in any way; record it and go on
            return self._rows(item, status="ERROR", error=f"{type(exc).__name__}: {exc}", params=params)
        seconds = time.perf_counter() - start
        try:
            scores = score(prediction.labels, case.label, spacing=case.spacing, labels=list(self.plan.labels),
                           metrics=list(suite.metrics), options=dict(suite.metric_options))
        except Exception as exc:
            return self._rows(item, status="ERROR", error=f"metrics failed: {type(exc).__name__}: {exc}",
                              params=params, seconds=seconds)
        return self._rows(item, status="OK", scores=scores, params=params, seconds=seconds)

    def run_case(self, case_id: str, items: list[WorkItem]) -> Iterator[tuple[WorkItem, list[dict[str, Any]]]]:
        try:
            clean = self.plan.dataset.load(case_id)
        except Exception as exc:  # unreadable pixels surface here (headers were checked up front)
            for item in items:
                yield item, self._rows(item, status="ERROR",
                                       error=f"cannot load case: {type(exc).__name__}: {exc}")
            return
        for item in items:
            yield item, self.evaluate(item, clean)


# --- process-pool plumbing -------------------------------------------------------------------
_WORKER: Evaluator | None = None


def _init_worker(plan: Plan) -> None:
    global _WORKER
    import torch

    torch.set_num_threads(1)
    _WORKER = Evaluator(plan)


def _run_case_in_worker(case_id: str, items: list[WorkItem]) -> list[tuple[WorkItem, list[dict[str, Any]]]]:
    assert _WORKER is not None
    try:
        return list(_WORKER.run_case(case_id, items))
    except Exception as exc:  # last resort: never lose the case's items silently
        reason = f"worker failed: {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"
        return [(item, _WORKER._rows(item, status="ERROR", error=reason)) for item in items]


ProgressFn = Callable[[int], None]


def execute(plan: Plan, items: list[WorkItem], journal: Journal, *, workers: int = 1,
            progress: ProgressFn | None = None, model: Any | None = None, executor: str = "local",
            scheduler: str | None = None, timeout: float | None = None) -> list[dict[str, Any]]:
    """Run ``items`` not yet in the journal; append each result durably; return all rows.

    KeyboardInterrupt propagates after everything finished so far is journaled.
    """
    if executor != "local" or scheduler is not None or timeout is not None:
        raise ConfigError("--executor dask, --scheduler and --item-timeout are not available in this build")
    done = journal.read()
    rows: list[dict[str, Any]] = [r for v in done.values() for r in v]
    todo: dict[str, list[WorkItem]] = defaultdict(list)
    for item in items:
        if item.key not in done:
            todo[item.case_id].append(item)
    if progress:
        progress(len(items) - sum(len(v) for v in todo.values()))

    def record(item: WorkItem, item_rows: list[dict[str, Any]]) -> None:
        journal.append(item.key, item_rows)
        rows.extend(item_rows)
        if progress:
            progress(1)

    if workers <= 1 or len(todo) <= 1:
        evaluator = Evaluator(plan, model=model)
        for case_id, case_items in todo.items():
            for item, item_rows in evaluator.run_case(case_id, case_items):
                record(item, item_rows)
        return rows

    context = get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context,
                             initializer=_init_worker, initargs=(plan,)) as pool:
        pending: set[Future[Any]] = {pool.submit(_run_case_in_worker, cid, its) for cid, its in todo.items()}
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    for item, item_rows in future.result():
                        record(item, item_rows)
        except BaseException:
            for future in pending:
                future.cancel()
            raise
    return rows


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def ensure_out_dir(out: Path, *, resume: bool) -> Path:
    if out.exists() and any(out.iterdir()) and not resume and (out / "journal.jsonl").exists():
        raise ConfigError(f"--out {out} already holds a run; pass --resume to finish it or choose "
                          "another folder")
    out.mkdir(parents=True, exist_ok=True)
    return out
