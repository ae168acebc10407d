"""The run folder under trouble: a refused --resume leaves it untouched, one run writes it at a time
until its last report, and a folder that cannot be written is one clear error, never a cut file."""
from __future__ import annotations

import errno
from pathlib import Path

import pytest

from harness import atomic, pipeline
from harness.cli import main
from harness.errors import ConfigError
from harness.records import Journal
from harness.runner import ensure_out_dir
from tests.runner.conftest import write_card, write_suite


def _run(tmp_path: Path, out: Path, *extra: str) -> int:
    suite, card = write_suite(tmp_path, severities="[1]"), write_card(tmp_path, "threshold")
    return main(["run", "--suite", str(suite), "--model", str(card), "--out", str(out), "--workers", "1", *extra])


def test_a_refused_resume_leaves_the_run_folder_untouched(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert _run(tmp_path, out) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert "quality.csv" in before  # the phantoms have sites: image statistics are written
    assert _run(tmp_path, out, "--resume", "--data", "phantom2d:n=6,seed=5") == 3  # other data: refused
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert after == before


def test_the_folder_stays_locked_until_the_last_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    write_outputs = pipeline._write_outputs

    def writing(out: Path, *args, **kwargs):
        try:
            with Journal(out / "journal.jsonl").lock():  # what a second run would try now
                seen.append("free")
        except ConfigError as exc:
            seen.append(str(exc))
        return write_outputs(out, *args, **kwargs)

    monkeypatch.setattr(pipeline, "_write_outputs", writing)
    assert _run(tmp_path, tmp_path / "run") == 0
    assert len(seen) == 1 and "another harness run is writing to this folder" in seen[0]


def test_the_lock_is_held_once_per_journal_object(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.jsonl")
    with journal.lock():
        with journal.lock():  # the evaluation's own lock inside the run's
            with journal.lock():
                pass
            with pytest.raises(ConfigError, match="another harness run"):  # still held after the inner exit
                with Journal(tmp_path / "journal.jsonl").lock():
                    pass
        with pytest.raises(ConfigError, match="another harness run"):
            with Journal(tmp_path / "journal.jsonl").lock():
                pass
    with Journal(tmp_path / "journal.jsonl").lock():  # released
        pass


def test_an_unwritable_folder_is_a_configuration_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    with pytest.raises(ConfigError, match=r"--out .*: cannot write in the folder \(Read-only file system\)"):
        ensure_out_dir(tmp_path / "out", resume=False)


def test_a_full_disk_names_the_file_and_leaves_no_cut_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    write_text = atomic.write_text

    def full(path, text, **kwargs):
        if Path(path).name == "records.csv":
            raise OSError(errno.ENOSPC, "No space left on device")
        return write_text(path, text, **kwargs)

    monkeypatch.setattr(atomic, "write_text", full)
    out = tmp_path / "run"
    assert _run(tmp_path, out) == 3
    err = capsys.readouterr().err
    assert f"cannot write {out / 'records.csv'} (No space left on device)" in err and "--resume" in err
    assert not (out / "records.csv").exists() and len(Journal(out / "journal.jsonl").read()) > 0
    monkeypatch.setattr(atomic, "write_text", write_text)
    assert _run(tmp_path, out, "--resume") == 0 and (out / "records.csv").is_file()
