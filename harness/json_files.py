"""Reading a JSON object from a file with a one-line error naming it."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.errors import ConfigError


def read_json_object(path: Path, *, fix: str) -> dict[str, Any]:
    """The JSON object in ``path``; ConfigError naming the file and ending with ``fix`` (what to do)
    when it cannot be read, is not JSON, or holds something other than an object."""
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({' '.join(str(exc).split())}); {fix}") from exc
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: expected a JSON object, got {type(value).__name__}; {fix}")
    return value
