"""Atomic file writes: a reader (or a run stopped mid-write) sees the old file or the new one,
never half of one."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_text(path: str | Path, text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` through a new temporary file beside it and ``os.replace``.

    The temporary file is created exclusively (``mkstemp``), so a link planted in the folder under
    a predictable name cannot redirect the write; ``os.replace`` replaces a link at ``path`` itself,
    never its target.
    """
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w", encoding=encoding) as handle:
            handle.write(text)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; the file gets a normal file's mode
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _read_umask() -> int:
    mask = os.umask(0)  # the only way to read it; done once, at import, not while other threads create files
    os.umask(mask)
    return mask


_UMASK = _read_umask()


__all__ = ["write_text"]
