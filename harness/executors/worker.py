"""The worker process of the local pool: build an Evaluator once, then evaluate the batches it is sent.

Protocol on one duplex pipe (parent -> worker: ``(case_id, items)`` or ``None`` to stop; worker ->
parent): ``("ready", pid)`` | ``("failed", reason)`` once at start; per batch ``("loaded",)`` after
the case's pixels are read, one ``("result", key, rows)`` per item as it finishes (or
``("results", [(key, rows), ...])`` when the case cannot be read), then ``("idle",)``; and
``("program", "started"|"ended", group, folder)`` around each external program a command-format
model runs. The parent times the start and every phase against ``--item-timeout`` and kills the
worker — and the programs it is running — when one runs over.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from harness.executors.base import limit_threads

if TYPE_CHECKING:
    from harness.runner import Plan


def _exit_with_parent() -> None:
    """Exit as soon as the parent (the run) is gone, even in the middle of a hung model call."""
    parent = multiprocessing.parent_process()
    if parent is None:  # pragma: no cover - always set for multiprocessing children
        return

    def watch() -> None:
        parent.join()
        os._exit(3)

    threading.Thread(target=watch, name="harness-parent-watch", daemon=True).start()


def _report_programs(conn: Connection) -> None:
    """Tell the parent about the external programs a command-format model runs (see
    ``harness.models.command.program_listener``): it kills them when it kills this worker."""
    from harness.models import command

    def tell(event: str, group: int, folder: str) -> None:
        try:
            conn.send(("program", event, group, folder))
        except (OSError, ValueError):  # the parent is gone; this process follows it
            pass

    command.program_listener = tell


def main(conn: Connection, plan: Plan) -> None:
    """Entry point of a worker process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _exit_with_parent()
    _report_programs(conn)
    try:
        limit_threads()
        from harness.runner import Evaluator

        evaluator = Evaluator(plan)
        limit_threads()  # the model may have imported torch just now
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which decides
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", os.getpid()))
    while True:
        try:
            task: Any = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        case_id, items = task
        try:
            clean = evaluator.plan.load(case_id)
        except Exception as exc:
            conn.send(("results", [(item.key, rows) for item, rows in evaluator.load_failure(items, exc)]))
            conn.send(("idle",))
            continue
        conn.send(("loaded",))
        for item in items:
            conn.send(("result", item.key, evaluator.evaluate(item, clean)))
        del clean
        conn.send(("idle",))
