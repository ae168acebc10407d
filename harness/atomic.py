"""Atomic file writes: a reader (or a run stopped mid-write) sees the old file or the new one,
never half of one.

The new content goes to a temporary file beside the destination, created exclusively under a random
name (a link planted in the folder cannot redirect the write) with the mode a plain ``open`` would
give (0666 less the current umask), then ``os.replace`` puts it in place — replacing a link at the
destination itself, never its target.
"""
from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


def _create_exclusive(folder: Path, name: str) -> tuple[int, Path]:
    while True:
        tmp = folder / f".{name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666), tmp
        except FileExistsError:  # pragma: no cover - 48 random bits
            continue


@contextlib.contextmanager
def replacing(path: str | Path, mode: str = "w", *, encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """A file object to write the new content of ``path`` to (``mode`` "w" or "wb"); on leaving the
    block without an exception it replaces ``path``; otherwise ``path`` is left as it was."""
    path = Path(path)
    fd, tmp = _create_exclusive(path.parent, path.name)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as handle:
            yield handle
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | Path, text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (see the module docstring)."""
    with replacing(path, encoding=encoding) as handle:
        handle.write(text)
    return Path(path)


__all__ = ["replacing", "write_text"]
