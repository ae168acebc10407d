"""Fairness notes (exclusions, aliased attributes) survive the run folder: written beside the
fairness tables and shown by the report regenerated from them."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from harness.pipeline import _write_analysis_tables
from harness.report.html import render_report
from harness.report.rundir import load_run
from harness.report.sections import _fairness_result, fairness_section
from tests.report.conftest import make_run

ALIAS_NOTE = "site defines the same groups as scanner"


def test_notes_are_written_and_read_back(tmp_path: Path) -> None:
    ids = [f"c{i}" for i in range(12)]
    scanner = ["A", "B"] * 6
    run_dir = make_run(tmp_path / "run", case_ids=ids, suite_extra='cohorts = ["scanner", "site"]\n',
                       metadata={"scanner": scanner, "site": [f"site-{s}" for s in scanner]})
    result = _fairness_result(load_run(run_dir))
    assert any(ALIAS_NOTE in n for n in result.notes)
    _write_analysis_tables(run_dir, SimpleNamespace(cache={"fairness:mean": result}))  # as `harness run` does
    assert ALIAS_NOTE in (run_dir / "fairness_notes.txt").read_text()
    section = fairness_section(load_run(run_dir))  # now from the saved tables, not recomputed
    assert section is not None and any(ALIAS_NOTE in n for n in section["notes"])
    assert ALIAS_NOTE in render_report(run_dir, "html")
    (run_dir / "fairness_notes.txt").unlink()  # a run folder written before the notes file: no notes, no error
    assert fairness_section(load_run(run_dir))["notes"] == []
