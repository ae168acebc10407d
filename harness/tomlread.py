"""TOML reading on every supported Python: the standard ``tomllib`` (3.11+) or its backport ``tomli``
(a dependency on 3.10). Modules import ``tomllib`` from here, never directly."""
from __future__ import annotations

import sys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = ["tomllib"]
