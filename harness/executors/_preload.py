"""Imported once by the fork server (``HARNESS_START_METHOD=forkserver``, the default on Linux).

Workers fork from that server, so what is imported and compiled here — numpy, scipy, torch,
torchio, the metric kernels (numba) — is ready in every worker without paying for it per worker
or per replacement. Best effort: a failure here only makes workers start slower.
"""
from __future__ import annotations

import contextlib
import importlib
import warnings

MODULES = ("harness.executors.worker", "harness.runner", "harness.perturbations._bundled",
           "harness.perturbations._tio", "harness.metrics", "harness.models", "harness.models.torch_adapter",
           "torchio")


def _warm() -> None:
    import numpy as np

    from harness.metrics import evaluate
    from harness.metrics.registry import BUILTIN  # plugins are not imported here: only a run that uses one does

    for shape in ((12, 12), (6, 8, 8)):
        ref = np.zeros(shape, np.int64)
        pred = np.zeros(shape, np.int64)
        ref[(slice(2, 6),) * len(shape)] = 1
        pred[(slice(3, 7),) * len(shape)] = 1
        evaluate(pred, ref, spacing=(1.0,) * len(shape), labels=[1], metrics=list(BUILTIN))


with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    for _name in MODULES:
        with contextlib.suppress(Exception):
            importlib.import_module(_name)
    with contextlib.suppress(Exception):
        _warm()
