"""run_isolated: a function in a worker process with a deadline (the run's artifacts step)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from harness.executors.isolated import IsolatedFailure, run_isolated


def _add(a: int, b: int = 0) -> int:
    return a + b


def _raise() -> None:
    raise ValueError("bad input\nsecond line")


def _sleep() -> None:
    time.sleep(600)


def _exit() -> None:
    import os

    os._exit(9)


def test_result_exception_deadline_and_death() -> None:
    assert run_isolated(_add, 2, b=3, timeout=60, what="adding") == 5
    with pytest.raises(IsolatedFailure, match=r"^adding: ValueError: bad input$"):
        run_isolated(_raise, timeout=60, what="adding")
    start = time.monotonic()
    with pytest.raises(IsolatedFailure, match="sleeping ran past its 2 s limit"):
        run_isolated(_sleep, timeout=2, what="sleeping")
    assert time.monotonic() - start < 30
    with pytest.raises(IsolatedFailure, match="exiting: its worker process exited with status 9"):
        run_isolated(_exit, timeout=60, what="exiting")
    import threading

    with pytest.raises(IsolatedFailure, match=r"adding: cannot be sent to a worker process \(TypeError"):
        run_isolated(_add, threading.Lock(), timeout=60, what="adding")  # cannot be pickled


SUITE = ('[suite]\nname = "tiny"\nmetrics = ["dice"]\nworst_cases = 1\n[[perturbations]]\nfamily = "gaussian_noise"\n'
         'severities = [1]\n[[gates]]\nname = "clean"\ncheck = "clean"\nmetric = "dice"\nmin = 0.0\n')


@pytest.mark.parametrize("entry, why", [
    ("hangs_outside_scoring", "TimeoutError: model.predict ran past 5 s (--item-timeout); the call was abandoned"),
    ("dies_outside_scoring", "artifacts failed: the worst-case figures: its worker process exited with status 7")])
def test_a_model_failing_in_the_artifacts_step_does_not_stop_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    entry: str, why: str) -> None:
    """With worker processes, the report's extra model calls run isolated under a deadline: a hang
    there once hung the run after records.csv (no summary, JUnit or report); a crash ended it. A
    hung call now skips its worst case after --item-timeout: it held the whole step until the step's
    deadline (120 s + 10 x worst_cases x --item-timeout, hours with nnU-Net-sized timeouts)."""
    import harness.executors.local
    from harness.cli import main

    monkeypatch.setattr(harness.executors.local, "START_TIMEOUT_MIN_S", 5.0)
    (tmp_path / "suite.toml").write_text(SUITE)
    (tmp_path / "model.toml").write_text(f'[model]\nformat = "callable"\nentry = "tests.e2e.fixtures.models:{entry}"\n'
                                         '[output]\nkind = "labels"\nlabels = {1 = "organ", 2 = "lesion"}\n')
    code = main(["run", "--suite", str(tmp_path / "suite.toml"), "--model", str(tmp_path / "model.toml"),
                 "--limit", "3", "--item-timeout", "5", "--workers", "1", "--out", str(tmp_path / "o")])
    assert code == 0
    manifest = json.loads((tmp_path / "o" / "artifacts" / "manifest.json").read_text())
    assert manifest["worst_cases"] == [] and why in manifest["notes"][0]
    for name in ("summary.json", "junit.xml", "report.html", "dossier.html"):
        assert (tmp_path / "o" / name).is_file(), name
    html = (tmp_path / "o" / "report.html").read_text()
    assert "No worst-case figures: see the note below" in html and why in html
