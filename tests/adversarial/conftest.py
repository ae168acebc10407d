"""Fixtures of the adversarial tests: the bundled reference model (loaded once)."""
from __future__ import annotations

import pytest

from harness.models import load_model


@pytest.fixture(scope="session")
def reference():
    return load_model(None, ndim=2)
