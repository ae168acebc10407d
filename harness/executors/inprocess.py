"""In-process executor: the fast path for ``--workers 1`` without ``--item-timeout``.

No isolation: a model that hangs hangs the run, one that kills its process kills the run (the
journal keeps everything finished before). Use ``--item-timeout`` or ``--workers 2+`` for isolation.
Compute runs on one thread, as in every pool or Dask worker, so the records do not depend on the
executor, the worker count or the machine's core count (a convolution summed over 16 threads rounds
differently from one summed over one).
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from harness.executors.base import Batch, Executor, Sink

if TYPE_CHECKING:
    from harness.runner import Plan


class InProcessExecutor(Executor):
    name = "inprocess"

    def __init__(self, *, model: Any | None = None) -> None:
        self.model = model

    def run(self, plan: Plan, batches: list[Batch], sink: Sink) -> None:
        from harness.runner import Evaluator

        with one_compute_thread():
            evaluator = Evaluator(plan, model=self.model)
            for batch in batches:
                for item, rows in evaluator.run_case(batch.case_id, list(batch.items)):
                    sink([(item, rows)])


@contextlib.contextmanager
def one_compute_thread() -> Iterator[None]:
    """torch and the BLAS/OpenMP pools on one thread for the block, restored afterwards."""
    import torch

    threads = torch.get_num_threads()  # before threadpoolctl, which limits torch's OpenMP pool too
    try:
        from threadpoolctl import threadpool_limits
        limits: Any = threadpool_limits(1)  # applied here, undone on leaving the with block
    except ImportError:  # pragma: no cover - optional, as in limit_threads
        limits = contextlib.nullcontext()
    torch.set_num_threads(1)
    try:
        with limits:
            yield
    finally:
        torch.set_num_threads(threads)
