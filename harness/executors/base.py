"""The executor interface, work batches and helpers shared by the executors."""
from __future__ import annotations

import math
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.records import WorkItem

if TYPE_CHECKING:
    from harness.runner import Plan

Rows = list[dict[str, Any]]
Sink = Callable[[list[tuple[WorkItem, Rows]]], None]


@dataclass(frozen=True)
class Batch:
    """Items of one case that run together in one worker (the case's pixels are read once)."""

    case_id: str
    items: tuple[WorkItem, ...]

    def rest(self, after: int) -> Batch:
        return Batch(self.case_id, self.items[after:])


class Executor(ABC):
    """Evaluates batches of work items and reports every item's rows to a sink."""

    name: str = "?"
    max_batch: int | None = None  # items per batch at most (executors that report per batch)

    @abstractmethod
    def run(self, plan: Plan, batches: list[Batch], sink: Sink) -> None:
        """Evaluate every item of ``batches``; call ``sink([(item, rows), ...])`` as items finish.

        Must report each item exactly once (ERROR rows for items that failed in any way) and stop
        its workers before returning or raising; KeyboardInterrupt propagates after cleanup.
        """


def make_batches(items: list[WorkItem], workers: int, *, max_items: int | None = None) -> list[Batch]:
    """Group items by case, keeping their order; with fewer cases than ``2 * workers`` the cases
    are split into contiguous chunks, so every worker has work, and no batch holds more than
    ``max_items`` (each chunk reads its case again)."""
    groups: dict[str, list[WorkItem]] = {}
    for item in items:
        groups.setdefault(item.case_id, []).append(item)
    target = 2 * workers
    per_case = 1 if workers <= 1 or len(groups) >= target else math.ceil(target / max(len(groups), 1))
    batches: list[Batch] = []
    for cid, its in groups.items():
        size = max(1, math.ceil(len(its) / per_case))
        if max_items:
            size = min(size, max_items)
        batches.extend(Batch(cid, tuple(its[i:i + size])) for i in range(0, len(its), size))
    return batches


def limit_threads() -> None:
    """One compute thread per worker process (workers, not threads, give the parallelism)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except Exception:  # pragma: no cover - threadpoolctl is optional
        pass
    import sys

    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


PRELOAD = ["harness.executors._preload"]


def start_method() -> str:
    """``forkserver`` where available (workers fork from a server that has the harness, numpy and
    torch imported, so starting or replacing one is cheap), else ``spawn``;
    ``HARNESS_START_METHOD`` overrides."""
    import multiprocessing

    return os.environ.get("HARNESS_START_METHOD") or (
        "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn")


def mp_context(extra_preload: tuple[str, ...] = ()) -> Any:
    """The multiprocessing context for worker processes (see :func:`start_method`)."""
    import multiprocessing

    method = start_method()
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":  # takes effect when the fork server starts (once per process)
        ctx.set_forkserver_preload(PRELOAD + list(extra_preload))
    return ctx
