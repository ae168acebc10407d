"""sha256 identities of files, file sets, arrays and text (model, data manifest, suite)."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import numpy as np


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_sha256(path: str | Path) -> str:
    """sha256 of one file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def files_sha256(paths: Sequence[Path]) -> str:
    """sha256 of one file, or of the sorted ``name:sha256`` lines of several (folders expanded).

    Names are relative to the folder given (a file given: its name), so a model folder hashes the
    same wherever it lies; moving or renaming a file inside it changes the hash.
    """
    digests: list[tuple[str, str]] = []
    for path in paths:
        if path.is_dir():
            digests.extend((p.relative_to(path).as_posix(), file_sha256(p))
                           for p in sorted(path.rglob("*")) if p.is_file())
        else:
            digests.append((path.name, file_sha256(path)))
    if len(digests) == 1:
        return digests[0][1]
    return text_sha256("\n".join(f"{n}:{d}" for n, d in sorted(digests)))


def array_sha256(array: np.ndarray) -> str:
    """sha256 of an array's dtype, shape and C-ordered bytes."""
    a = np.ascontiguousarray(array)
    h = hashlib.sha256(str((a.dtype.str, a.shape)).encode())
    h.update(a.tobytes())
    return h.hexdigest()
