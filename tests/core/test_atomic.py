"""Atomic writes: whole or not at all, never through a link, with a plain file's mode."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness import atomic


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "summary.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic.replacing(target) as handle:
        handle.write("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


def test_a_link_at_the_destination_is_replaced_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (tmp_path / "journal.jsonl").symlink_to(victim)
    with atomic.replacing(tmp_path / "journal.jsonl", "wb") as handle:
        handle.write(b"new")
    assert victim.read_text() == "keep me" and not (tmp_path / "journal.jsonl").is_symlink()
    assert (tmp_path / "journal.jsonl").read_bytes() == b"new"


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_the_mode_follows_the_umask_in_effect_when_writing(tmp_path: Path, mask: int) -> None:
    """The umask was once read at import: a program setting 077 later still got 0644 files."""
    before = os.umask(mask)
    try:
        path = atomic.write_text(tmp_path / f"r{mask}.html", "x")
    finally:
        os.umask(before)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask
