"""A callable model whose import takes 20 s in a worker process (a model load that hangs there, e.g.
waiting on a lock or a device; long against the test's start timeout, short enough that a run
without one finishes and fails the test instead of hanging the suite); in the test's own process
it imports at once."""
from __future__ import annotations

import multiprocessing
import time

import numpy as np

if multiprocessing.parent_process() is not None:
    time.sleep(20)


def threshold(image: np.ndarray) -> np.ndarray:
    return (image[0] > 0.5).astype(np.int64)
