"""Shared fixtures: paths to the optional real data beside the repository."""
from __future__ import annotations

from pathlib import Path

import pytest

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
