"""Seed derivation: one suite seed, one deterministic seed per work item."""
from __future__ import annotations

import zlib

import numpy as np


def item_seed(suite_seed: int, case_id: str, family: str, repeat: int = 0) -> int:
    """``crc32(f"{suite_seed}/{case_id}/{family}")`` (``/{repeat}`` appended when > 0).

    The seed deliberately leaves out the severity: every severity of a family on a case draws the
    same random structure (noise pattern, field shape, directions) and only the magnitude follows the
    ladder (common random numbers). A case's ladder is then monotone draw by draw, not just on
    average, and the paired severity curve has less variance. The result is a 32-bit unsigned int,
    stable across platforms and Python versions.
    """
    key = f"{suite_seed}/{case_id}/{family}"
    if repeat:
        key += f"/{repeat}"
    return zlib.crc32(key.encode("utf-8")) & 0xFFFFFFFF


def as_rng(rng: int | np.random.Generator | None) -> np.random.Generator:
    """A ``numpy.random.Generator`` from a seed, a generator (returned as is) or None (fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)
