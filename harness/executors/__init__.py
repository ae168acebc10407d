"""Executors: where a run's work items are evaluated.

Every executor implements :class:`~harness.executors.base.Executor`: ``run(plan, batches, sink)``
evaluates each item of each :class:`~harness.executors.base.Batch` (one case, some of its items)
and hands ``(item, rows)`` to ``sink`` as items finish — exactly once per item, ERROR rows
included. The sink journals them; the executor never writes files.

* ``inprocess`` — the calling process, one item after another (``--workers 1``, no timeout).
* ``process-pool`` — ``--executor local``: a supervised pool of worker processes. An item that
  exceeds ``--item-timeout`` has its worker killed and replaced (ERROR "timeout"); a worker that
  dies (``os._exit``, segfault, the OOM killer) is replaced and its in-flight item becomes ERROR.
* ``dask`` — ``--executor dask``: a ``distributed.LocalCluster`` of ``--workers`` processes, or the
  cluster at ``--scheduler``. Timeouts there are best-effort (see :mod:`harness.executors.dask`).
"""
from __future__ import annotations

from typing import Any

from harness.errors import ConfigError
from harness.executors.base import Batch, Executor, Sink, make_batches

EXECUTORS = ("local", "dask")


def runs_in_process(name: str, *, workers: int, timeout: float | None, scheduler: str | None = None) -> bool:
    """Whether ``make_executor`` with these settings evaluates in the calling process (``--workers 1``
    without ``--item-timeout``, not Dask)."""
    return name != "dask" and scheduler is None and workers <= 1 and timeout is None


def make_executor(name: str, *, workers: int = 1, scheduler: str | None = None, timeout: float | None = None,
                  model: Any | None = None) -> Executor:
    """The executor for ``--executor name`` (ConfigError for unknown names or bad settings)."""
    if name not in EXECUTORS:
        raise ConfigError(f"--executor {name!r}: choose one of {', '.join(EXECUTORS)}")
    if workers < 1:
        raise ConfigError(f"--workers {workers}: need at least 1")
    if timeout is not None and not 0 < timeout <= 1e6:  # NaN and inf fail too (inf overflows the waits)
        raise ConfigError(f"--item-timeout {timeout}: must be a positive number of seconds, at most 1e6")
    if runs_in_process(name, workers=workers, timeout=timeout, scheduler=scheduler):
        from harness.executors.inprocess import InProcessExecutor

        return InProcessExecutor(model=model)
    if name == "dask" or scheduler is not None:
        from harness.executors.dask import DaskExecutor

        return DaskExecutor(workers=workers, scheduler=scheduler, timeout=timeout)
    from harness.executors.local import ProcessPoolExecutor

    return ProcessPoolExecutor(workers=workers, timeout=timeout)


__all__ = ["EXECUTORS", "Batch", "Executor", "Sink", "make_batches", "make_executor", "runs_in_process"]
