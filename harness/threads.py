"""One compute thread for a block of work, the caller's setting restored afterwards.

Every worker of the runner computes on one thread (``executors.base.limit_threads``); code that runs
in the calling process — the in-process executor, TorchIO perturbations, the artifacts step — uses
:func:`single_thread` so its numbers do not depend on the machine's core count (a sum over 16
threads rounds differently from one over one) and it does not oversubscribe parallel workers.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def single_thread(*, native_pools: bool = False) -> Iterator[None]:
    """torch on one thread inside the block; with ``native_pools`` also the BLAS/OpenMP pools of
    numpy and scipy (threadpoolctl, when installed). The previous settings are restored on exit."""
    import torch

    threads = torch.get_num_threads()  # before threadpoolctl, which limits torch's OpenMP pool too
    limits: Any = contextlib.nullcontext()
    if native_pools:
        try:
            from threadpoolctl import threadpool_limits
            limits = threadpool_limits(1)  # applied here, undone on leaving the with block
        except ImportError:  # pragma: no cover - optional, as in executors.base.limit_threads
            pass
    torch.set_num_threads(1)
    try:
        with limits:
            yield
    finally:
        torch.set_num_threads(threads)
