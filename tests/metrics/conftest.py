"""Fixtures for the metric tests: run a test on the compiled kernels and on the numpy fallback."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.metrics import _geometry as geo


@pytest.fixture(params=["numba", "numpy"])
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Parametrise a test over both distance backends (numba skipped when not installed)."""
    if request.param == "numba" and not geo.HAVE_NUMBA:
        pytest.skip("numba is not installed")
    with geo.use_numba(request.param == "numba"):
        yield request.param
