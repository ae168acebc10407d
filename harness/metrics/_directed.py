"""Directed boundary distances whose far entries are computed only when a metric needs them.

The row walk in :mod:`harness.metrics._geometry` settles almost every point; the rest (points
farther than the walk reaches, typically a distant false positive) cost a wider walk or a
KD-tree. A percentile below those points, or a tolerance count with tau under the walk's
reach, does not depend on their exact values, so they are settled lazily, on first need.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np


class Directed:
    """Distances (mm) from each point of one set to the nearest point of another.

    Until settled, the entries at ``far`` are +inf and each of those distances is known to be
    at least ``bound``; ``settle(far) -> distances`` computes them exactly.
    """

    def __init__(self, values: np.ndarray, far: np.ndarray, bound: float,
                 settle: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        self._values = values
        self._far = far
        self._bound = bound
        self._settle = settle
        if far.size:
            values[far] = np.inf

    @classmethod
    def exact(cls, values: np.ndarray) -> Directed:
        return cls(values, np.empty(0, np.int64), math.inf)

    @property
    def size(self) -> int:
        return int(self._values.size)

    @property
    def pending(self) -> int:
        """How many distances are still unsettled."""
        return int(self._far.size)

    def all(self) -> np.ndarray:
        """Every distance, settling the far ones first if needed."""
        if self._far.size:
            assert self._settle is not None
            self._values[self._far] = self._settle(self._far)
            self._far = np.empty(0, np.int64)
        return self._values

    def percentile(self, q: float) -> float:
        """Linear-interpolation percentile (``numpy.percentile``), ``q`` in [0, 100]."""
        n, m = self.size, self.pending
        # numpy interpolates between ranks floor(v) and floor(v) + 1, v = q/100 (n-1); the far
        # entries hold the top m ranks, so they matter only when those ranks reach them.
        if m and math.ceil(q / 100.0 * (n - 1)) + 1 >= n - m:
            self.all()
        if q == 100.0:
            return float(self._values.max())
        return float(np.percentile(self._values, q))

    def within(self, tolerance: float) -> np.ndarray:
        """Which distances are <= ``tolerance`` (mm)."""
        if self.pending and not tolerance < self._bound:
            self.all()
        return self._values <= tolerance
