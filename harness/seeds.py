"""Seed derivation: one suite seed, one deterministic seed per work item."""
from __future__ import annotations

import zlib

import numpy as np


def item_seed(suite_seed: int, case_id: str, family: str, severity: int, repeat: int = 0) -> int:
    """``crc32(f"{suite_seed}/{case_id}/{family}/{severity}")`` (``/{repeat}`` appended when > 0).

    The result is a 32-bit unsigned int, stable across platforms and Python versions.
    """
    key = f"{suite_seed}/{case_id}/{family}/{severity}"
    if repeat:
        key += f"/{repeat}"
    return zlib.crc32(key.encode("utf-8")) & 0xFFFFFFFF


def as_rng(rng: int | np.random.Generator | None) -> np.random.Generator:
    """A ``numpy.random.Generator`` from a seed, a generator (returned as is) or None (fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)
