"""In-process executor: the fast path for ``--workers 1`` without ``--item-timeout``.

No isolation: a model that hangs hangs the run, one that kills its process kills the run (the
journal keeps everything finished before). Use ``--item-timeout`` or ``--workers 2+`` for isolation.
Compute runs on one thread, as in every pool or Dask worker, so the records do not depend on the
executor, the worker count or the machine's core count (a convolution summed over 16 threads rounds
differently from one summed over one).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.executors.base import Batch, Executor, Sink
from harness.threads import single_thread

if TYPE_CHECKING:
    from harness.runner import Plan


class InProcessExecutor(Executor):
    name = "inprocess"

    def __init__(self, *, model: Any | None = None) -> None:
        self.model = model

    def run(self, plan: Plan, batches: list[Batch], sink: Sink) -> None:
        from harness.runner import Evaluator

        with single_thread(native_pools=True):
            evaluator = Evaluator(plan, model=self.model)
            for batch in batches:
                for item, rows in evaluator.run_case(batch.case_id, list(batch.items)):
                    sink([(item, rows)])
