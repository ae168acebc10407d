"""Shared fixtures: paths to the optional real data beside the repository; Hypothesis profiles."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# CI (the `CI` environment variable, set by .ci/run) draws the same examples on every run, so a gate
# cannot fail by chance; elsewhere each run explores new examples (and keeps failures in
# .hypothesis/ for replay). Failures found that way become @example cases.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def shared_data(name: str) -> Path:
    """Path to ../shared/data/<name>, or skip the test when it is absent."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"real data {path} is absent")
    return path


@pytest.fixture
def busbra_dir() -> Path:
    return shared_data("busbra")


@pytest.fixture
def hippocampus_dir() -> Path:
    return shared_data("hippocampus")
