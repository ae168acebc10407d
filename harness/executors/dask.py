"""The Dask executor: ``--executor dask`` (a LocalCluster) or ``--scheduler ADDRESS`` (a running cluster).

Each batch (up to 16 items of one case) is one task returning the rows of its items; the (small)
plan travels with every task and each worker process builds its model once per run. Records are
identical to the other executors' (same seeds, one compute thread per worker; on a cluster
whose workers run several threads, the perturbation sections that seed torch's process-wide RNG
are serialised, see ``harness.perturbations._tio``). A batch whose worker dies (``KilledWorker`` after ``allowed-failures`` retries; 1 on the
LocalCluster this executor starts) is split into one task per item, so only the item that kills
its worker becomes ERROR "WorkerDied".

Timeouts are best-effort: a Dask worker runs tasks in threads, which cannot be killed. With
``--item-timeout`` each item runs in a helper thread; one that runs over is recorded as ERROR
"TimeoutError" and abandoned (it keeps its CPU/memory until the model returns), and the worker
builds a fresh model for the next item. A case load is not timed. Cluster workers need the
harness, the model's dependencies and read access to the data at the same paths.
"""
from __future__ import annotations

import logging
import multiprocessing
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from harness.errors import ConfigError
from harness.executors.base import (
    Batch,
    Executor,
    Rows,
    Sink,
    limit_threads,
    mp_context,
    start_method,
)
from harness.records import WorkItem

if TYPE_CHECKING:
    from harness.runner import Evaluator, Plan

_EVALUATORS: dict[str, Evaluator] = {}  # per worker process: run token -> evaluator


def _evaluator(token: str, plan: Plan) -> Evaluator:
    if token not in _EVALUATORS:
        from harness.runner import Evaluator

        _EVALUATORS.clear()  # one run at a time per worker: free an earlier run's model
        own_process = multiprocessing.parent_process() is not None  # not a threaded in-process cluster
        if own_process:
            limit_threads()
        _EVALUATORS[token] = Evaluator(plan)
        if own_process:
            limit_threads()
    return _EVALUATORS[token]


def _with_timeout(evaluator: Evaluator, item: WorkItem, clean: Any, timeout: float) -> Rows | None:
    box: dict[str, Rows] = {}
    thread = threading.Thread(target=lambda: box.setdefault("rows", evaluator.evaluate(item, clean)),
                              name=f"harness-item-{item.key}", daemon=True)
    thread.start()
    thread.join(timeout)
    return box.get("rows")


def run_batch(token: str, plan: Plan, case_id: str, items: list[WorkItem],
              timeout: float | None) -> list[tuple[str, Rows]]:
    """A Dask task: one case's items, evaluated in a worker process."""
    from harness.runner import error_rows

    evaluator = _evaluator(token, plan)
    try:
        clean = plan.load(case_id)
    except Exception as exc:
        return [(item.key, rows) for item, rows in evaluator.load_failure(items, exc)]
    out = []
    for index, item in enumerate(items):
        if timeout is None:
            out.append((item.key, evaluator.evaluate(item, clean)))
            continue
        rows = _with_timeout(evaluator, item, clean, timeout)
        if rows is None:
            out.append((item.key, error_rows(plan, item, f"TimeoutError: timeout after {timeout:g}s evaluating "
                                             "this item (--item-timeout; dask: the call was abandoned, not killed)")))
            _EVALUATORS.pop(token, None)
            try:
                evaluator = _evaluator(token, plan)
            except Exception as exc:  # the items finished so far are kept
                reason = f"model could not be built again after a timeout: {type(exc).__name__}: {exc}"
                return out + [(rest.key, error_rows(plan, rest, reason)) for rest in items[index + 1:]]
            continue
        out.append((item.key, rows))
    return out


NO_WORKERS_TIMEOUT_S = 120.0  # a LocalCluster without any worker this long will not recover
WORKER_CHECK_S = 2.0  # how often the scheduler is asked for its workers while nothing finishes


class _WorkerWatch:
    """How long the cluster has had no worker at all (asked at most every WORKER_CHECK_S)."""

    def __init__(self, client: Any) -> None:
        self.client, self.checked, self.lost_since = client, 0.0, None

    def gone_for(self) -> float:
        now = time.monotonic()
        if now - self.checked >= WORKER_CHECK_S:
            self.checked = now
            try:
                alive = bool(self.client.scheduler_info().get("workers"))
            except Exception:  # noqa: BLE001 - an unreachable scheduler counts as no worker
                alive = False
            self.lost_since = None if alive else (self.lost_since or now)
        return 0.0 if self.lost_since is None else now - self.lost_since


class DaskExecutor(Executor):
    name = "dask"
    max_batch = 16  # a task reports when it ends: bounds what a kill loses and keeps progress moving

    def __init__(self, *, workers: int, scheduler: str | None = None, timeout: float | None = None) -> None:
        self.workers, self.scheduler, self.timeout = workers, scheduler, timeout
        try:
            import distributed  # noqa: F401
        except ImportError:
            raise ConfigError("--executor dask needs dask.distributed: pip install 'dask[distributed]' (or "
                              "pip install '.[dask]' in the harness checkout)") from None

    def _client(self) -> tuple[Any, Any]:
        import dask
        from distributed import Client, LocalCluster

        if self.scheduler:
            try:
                return Client(self.scheduler, timeout="20s"), None
            except (OSError, TimeoutError, ValueError, TypeError) as exc:  # ValueError: a malformed address
                raise ConfigError(f"--scheduler {self.scheduler}: cannot connect ({exc}); give the "
                                  "scheduler's address as tcp://HOST:PORT") from None
        # one task per one-thread worker at a time (saturation 1.0, default 1.1 = 2 queued): a task
        # waiting on a worker that an item kills counts as a suspect too, and an innocent single-item
        # task could end as WorkerDied beside it
        settings = {"distributed.scheduler.allowed-failures": 1, "distributed.scheduler.worker-saturation": 1.0,
                    "distributed.worker.multiprocessing-method": start_method()}
        with dask.config.set(settings):
            try:  # distributed sets its own fork-server preload list once; ours (a superset) replaces it
                from distributed.utils import get_mp_context

                get_mp_context()
            except Exception:  # pragma: no cover - only start-up speed depends on it
                pass
            mp_context(("distributed",))  # workers fork from the preloaded server, as in the local pool
            cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=logging.CRITICAL)
        return Client(cluster), cluster

    def run(self, plan: Plan, batches: list[Batch], sink: Sink) -> None:
        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        from harness.runner import error_rows

        client, cluster = self._client()
        token = uuid.uuid4().hex
        futures: dict[Any, Batch] = {}
        try:
            def submit(batch: Batch) -> Any:  # the plan travels with each task: it must survive dead workers
                future = client.submit(run_batch, token, plan, batch.case_id, list(batch.items),
                                       self.timeout, pure=False, key=f"harness-{token}-{len(futures)}")
                futures[future] = batch
                return future

            pending = as_completed([submit(b) for b in batches])
            finished: set[Any] = set()
            watch = _WorkerWatch(client) if cluster is not None else None  # a cluster we started: it must keep workers
            while not pending.is_empty():
                ready = pending.next_batch(block=False)
                if not ready:
                    if watch is not None and watch.gone_for() > NO_WORKERS_TIMEOUT_S:
                        why = (f"WorkerDied: no Dask worker was left for {NO_WORKERS_TIMEOUT_S:g} s (the cluster "
                               "lost every worker); rerun with --resume --retry-errors")
                        for future, batch in futures.items():
                            if future not in finished:
                                sink([(item, error_rows(plan, item, why)) for item in batch.items])
                        return
                    time.sleep(0.05)
                    continue
                for future in ready:
                    finished.add(future)
                    batch = futures[future]
                    try:
                        by_key = dict(future.result())
                    except KilledWorker as exc:
                        if len(batch.items) > 1:
                            for item in batch.items:
                                pending.add(submit(Batch(batch.case_id, (item,))))
                            continue
                        detail = str(exc).split(". ")[0]
                        by_key = {batch.items[0].key: error_rows(
                            plan, batch.items[0], f"WorkerDied: the Dask worker died evaluating this item ({detail})")}
                    except Exception as exc:  # a task failed outside the evaluator's own handling
                        by_key = {item.key: error_rows(plan, item, f"worker failed: {type(exc).__name__}: {exc}")
                                  for item in batch.items}
                    sink([(item, by_key[item.key]) for item in batch.items])
        finally:
            for future in futures:
                future.cancel()
            client.close()
            if cluster is not None:
                cluster.close()
