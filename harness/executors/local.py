"""The local process pool, supervised: per-item timeouts, dead workers replaced, nothing lost.

Each worker evaluates one batch (one case) at a time and reports every item as it finishes. The
parent times the case load and each item against ``--item-timeout``; a worker that runs over is
killed (ERROR "TimeoutError: ..." for its item) and replaced. A worker that dies — ``os._exit``, a
segfault, the kernel's OOM killer — gives ERROR "WorkerDied: ..." for its in-flight item (for every
remaining item of the case when it died reading the case). The rest of its batch is queued again.
Workers start through a fork server that has the harness (numpy, torch) imported already, so a
replacement is cheap; ``HARNESS_START_METHOD=spawn`` selects plain spawn.
"""
from __future__ import annotations

import shutil
import signal
import time
from collections import deque
from multiprocessing.connection import wait
from typing import TYPE_CHECKING, Any

from harness.executors.base import Batch, Executor, Rows, Sink, mp_context
from harness.models.command import kill_group
from harness.records import WorkItem

if TYPE_CHECKING:
    from harness.runner import Plan

MAX_START_FAILURES = 3
START_TIMEOUT_MIN_S = 120.0  # a worker's start (building the model) may take this long whatever --item-timeout


def describe_exit(code: int | None) -> str:
    """'was killed by SIGKILL (...)' / 'exited with status 3' for a worker's exit code."""
    if code is None:
        return "stopped responding"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = {"SIGKILL": " (out of memory? the kernel's OOM killer sends SIGKILL)",
                "SIGSEGV": " (segmentation fault)", "SIGBUS": " (bus error)"}.get(name, "")
        return f"was killed by {name}{hint}"
    return f"exited with status {code}"


class _Worker:
    """One worker process, its pipe and the batch it is working on."""

    def __init__(self, ctx: Any, plan: Plan) -> None:
        from harness.executors.worker import main

        self.conn, self._child = ctx.Pipe(duplex=True)
        self.proc = ctx.Process(target=main, args=(self._child, plan), name="harness-worker")
        self.ready = self.eof = False
        self.failure = ""
        self.batch: Batch | None = None
        self.done = 0  # items of the batch finished
        self.loading = False
        self.deadline: float | None = None
        self.programs: dict[int, str] = {}  # process group -> temporary folder of a running program

    def start(self, timeout: float | None) -> None:
        """Start the process; with a timeout it must report ready within it (building the model)."""
        self.proc.start()
        self._child.close()
        self.deadline = time.monotonic() + timeout if timeout else None

    def dispatch(self, batch: Batch, timeout: float | None) -> bool:
        """Send a batch; False when the worker is gone (the caller queues the batch again)."""
        try:
            self.conn.send((batch.case_id, list(batch.items)))
        except (OSError, ValueError):
            self.eof = True
            return False
        self.batch, self.done, self.loading = batch, 0, True
        self.deadline = time.monotonic() + timeout if timeout else None
        return True

    def receive(self, timeout: float | None) -> list[tuple[WorkItem, Rows]]:
        """Handle every message waiting on the pipe; returns the items finished."""
        results: list[tuple[WorkItem, Rows]] = []
        while not self.eof:
            try:
                if not self.conn.poll():
                    break
                message = self.conn.recv()
            except (EOFError, OSError):
                self.eof = True
                break
            kind = message[0]
            if kind == "ready":
                self.ready, self.deadline = True, None
            elif kind == "program":
                _, event, group, folder = message
                if event == "started":
                    self.programs[group] = folder
                else:
                    self.programs.pop(group, None)
            elif kind == "failed":
                self.failure = message[1]
            elif kind == "idle":
                self.batch, self.deadline = None, None
            elif kind in ("loaded", "result", "results") and self.batch is not None:
                self.loading = False
                pairs = [(message[1], message[2])] if kind == "result" else message[1] if kind == "results" else []
                for key, rows in pairs:
                    item = self.batch.items[self.done]
                    assert item.key == key, (item.key, key)
                    results.append((item, rows))
                    self.done += 1
                self.deadline = time.monotonic() + timeout if timeout else None
        return results

    @property
    def alive(self) -> bool:
        return not self.eof and self.proc.exitcode is None

    def stop(self, *, kill: bool) -> list[tuple[WorkItem, Rows]]:
        """Stop the process (politely unless ``kill``) and any program it left running; returns the
        items it finished before it stopped that were not received yet."""
        if self.proc.pid is None:  # never started
            self.conn.close()
            return []
        if not kill and self.ready and self.proc.exitcode is None:
            try:
                self.conn.send(None)
                self.proc.join(5)
            except (OSError, ValueError):
                pass
        if self.proc.exitcode is None:
            self.proc.kill()
        self.proc.join(5)
        late = self.receive(None)  # what it said just before it stopped
        self.conn.close()
        for group, folder in self.programs.items():  # left running by a killed or dead worker
            kill_group(group)
            shutil.rmtree(folder, ignore_errors=True)
        self.programs.clear()
        return late


class ProcessPoolExecutor(Executor):
    """``--executor local`` with ``--workers N`` and/or ``--item-timeout``."""

    name = "process-pool"

    def __init__(self, *, workers: int, timeout: float | None = None) -> None:
        self.workers, self.timeout = max(1, workers), timeout

    def run(self, plan: Plan, batches: list[Batch], sink: Sink) -> None:
        from harness.runner import error_rows

        ctx = mp_context()
        queue = deque(batches)
        pool: list[_Worker] = []
        start_failures, failure = 0, ""
        ok = False

        def fail(items: tuple[WorkItem, ...] | list[WorkItem], reason: str) -> None:
            sink([(item, error_rows(plan, item, reason)) for item in items])

        try:
            while queue or any(w.batch is not None for w in pool):
                while len(pool) < min(self.workers, len(queue) + sum(w.batch is not None for w in pool)):
                    pool.append(_Worker(ctx, plan))  # in the pool before it starts: never leaked
                    pool[-1].start(self._start_timeout)
                for w in pool:
                    if w.ready and w.batch is None and queue:
                        batch = queue.popleft()
                        if not w.dispatch(batch, self.timeout):
                            queue.appendleft(batch)  # it died while idle: replaced below
                deadlines = [w.deadline for w in pool if w.deadline is not None]
                pause = max(0.0, min(deadlines) - time.monotonic()) + 0.01 if deadlines else None
                wait([w.conn for w in pool] + [w.proc.sentinel for w in pool], pause)
                for w in list(pool):
                    results = w.receive(self.timeout)
                    if results:
                        sink(results)
                    if not w.alive:
                        late = w.stop(kill=True)
                        if late:
                            sink(late)
                        pool.remove(w)
                        if not w.ready:
                            start_failures += 1
                            failure = w.failure or f"worker process {describe_exit(w.proc.exitcode)} while starting"
                        elif w.batch is not None:
                            self._lost(w, describe_exit(w.proc.exitcode), queue, fail, timeout=False)
                    elif w.deadline is not None and time.monotonic() > w.deadline:
                        late = w.stop(kill=True)
                        if late:
                            sink(late)
                        pool.remove(w)
                        if w.batch is not None:
                            self._lost(w, "", queue, fail, timeout=True)
                        elif not w.ready:  # still building its model
                            start_failures += 1
                            failure = (f"TimeoutError: the worker did not start within {self._start_timeout:g}s "
                                       f"(building the model; --item-timeout, at least {START_TIMEOUT_MIN_S:g}s)")
                    elif w.ready:
                        start_failures = 0
                if start_failures >= MAX_START_FAILURES and not any(w.ready for w in pool):
                    while queue:
                        fail(queue.popleft().items, f"WorkerStartFailed: {failure}")
            ok = True
        finally:
            # A second Ctrl-C (or a process-group SIGINT from `timeout -s INT`) must not cut this loop
            # short: an unstopped worker would keep the interpreter waiting for it at exit.
            pending, interrupted = list(pool), False
            while pending:
                try:
                    pending[0].stop(kill=not ok or interrupted)
                    pending.pop(0)
                except KeyboardInterrupt:
                    interrupted = True
            if interrupted:
                raise KeyboardInterrupt

    @property
    def _start_timeout(self) -> float | None:
        """Seconds a worker may take to start: --item-timeout, but at least START_TIMEOUT_MIN_S (a model
        load may take longer than one item); None without --item-timeout."""
        return max(self.timeout, START_TIMEOUT_MIN_S) if self.timeout else None

    def _lost(self, w: _Worker, death: str, queue: deque[Batch], fail: Any, *, timeout: bool) -> None:
        """ERROR rows for what a killed/dead worker had in flight; queue the rest of its batch again."""
        assert w.batch is not None
        batch, done = w.batch, w.done
        failed: tuple[WorkItem, ...]
        rest: tuple[WorkItem, ...]
        if w.loading:
            what = f"loading case {batch.case_id}"
            failed, rest = batch.items[done:], ()
        else:
            what = "evaluating this item"
            failed, rest = batch.items[done:done + 1], batch.items[done + 1:]
        if timeout:
            reason = (f"TimeoutError: timeout after {self.timeout:g}s {what} (--item-timeout); "
                      "the worker was stopped")
        else:
            reason = f"WorkerDied: the worker process {death} while {what}"
        if failed:
            fail(failed, reason)
        if rest:
            queue.appendleft(Batch(batch.case_id, tuple(rest)))
