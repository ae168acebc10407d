"""Run one function in a worker process with a deadline: a model that hangs or kills its process
there cannot hang or end the run.

The run's artifacts step (worst-case overlays, uncertainty and saliency maps) calls the model again
after scoring. When the run evaluated in worker processes (``--workers N`` or ``--item-timeout``),
that step runs here too, under a deadline derived from ``--item-timeout``; external programs of a
command-format model are killed with the worker, as in the pool.
"""
from __future__ import annotations

import pickle
import shutil
import signal
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from harness.executors.base import limit_threads, mp_context
from harness.models.command import kill_group


class IsolatedFailure(RuntimeError):
    """The function raised, overran its deadline, or its process died; the message says which."""


def _child(conn: Connection, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    from harness.executors.worker import _exit_with_parent, _report_programs

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _exit_with_parent()
    _report_programs(conn)
    limit_threads()
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        conn.send(("failed", f"{type(exc).__name__}: {exc}".splitlines()[0]))
        return
    conn.send(("done", result))


def run_isolated(fn: Callable[..., Any], *args: Any, timeout: float | None, what: str, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` in a worker process (arguments and result are pickled); raises
    :class:`IsolatedFailure` naming ``what`` when it raises, runs past ``timeout`` seconds (None: no
    limit) or its process dies. KeyboardInterrupt in the parent kills the worker and propagates."""
    from harness.executors.local import describe_exit

    ctx = mp_context()
    conn, child = ctx.Pipe(duplex=True)
    proc = ctx.Process(target=_child, args=(child, fn, args, kwargs), name="harness-isolated")
    try:
        proc.start()  # pickles fn and its arguments (fork server / spawn)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        conn.close()
        raise IsolatedFailure(f"{what}: cannot be sent to a worker process ({type(exc).__name__}: {exc})") from exc
    finally:
        child.close()
    deadline = time.monotonic() + timeout if timeout else None
    programs: dict[int, str] = {}
    try:
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise IsolatedFailure(f"{what} ran past its {timeout:g} s limit")
            if not conn.poll(None if left is None else min(left, 1.0)):
                if not proc.is_alive() and not conn.poll():
                    raise IsolatedFailure(f"{what}: its worker process {describe_exit(proc.exitcode)}")
                continue
            try:
                message = conn.recv()
            except (EOFError, OSError):
                proc.join(5)
                raise IsolatedFailure(f"{what}: its worker process {describe_exit(proc.exitcode)}") from None
            if message[0] == "program":
                _, event, group, folder = message
                if event == "started":
                    programs[group] = folder
                else:
                    programs.pop(group, None)
            elif message[0] == "failed":
                raise IsolatedFailure(f"{what}: {message[1]}")
            else:
                return message[1]
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join(5)
        conn.close()
        for group, folder in programs.items():  # left running by the killed worker
            kill_group(group)
            shutil.rmtree(folder, ignore_errors=True)


__all__ = ["IsolatedFailure", "run_isolated"]
