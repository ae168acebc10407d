"""Killed and interrupted runs (real subprocesses): nothing lost, nothing counted twice.

A run is started with ``python -m harness run``; once a random number of items is journaled it is
sent SIGKILL (or SIGINT, as Ctrl-C does), then finished with ``--resume``. The records must equal
those of an uninterrupted run (sorted, without the timing column).
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pandas as pd
import psutil
import pytest

from harness.cli import main
from harness.records import read_records
from tests.runner.conftest import IDENTITY, comparable, write_card, write_suite

REPO = Path(__file__).resolve().parents[2]
N_CASES, SEVERITIES = 6, "[1, 3, 5]"
N_ITEMS = N_CASES * 4
# Seconds each model call sleeps in the signalled runs: with at most N_ITEMS // 2 items done when
# the signal is sent, the other >= 12 take >= 12 x ITEM_DELAY_S / 2 workers = 3 s, a window wide
# enough for the signal to land mid-run even on a loaded CI machine.
ITEM_DELAY_S = 0.5


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], pd.DataFrame]:
    """The suite/model arguments and the records of an uninterrupted run."""
    folder = tmp_path_factory.mktemp("interrupts")
    args = ["--suite", str(write_suite(folder, data=f"phantom2d:n={N_CASES}", severities=SEVERITIES)),
            "--model", str(write_card(folder, "slow_threshold", "slow"))]
    assert main(["run", *args, "--out", str(folder / "whole"), "--workers", "1"]) == 0
    return folder, args, read_records(folder / "whole" / "records.csv")


def _journaled(out: Path) -> int:
    path = out / "journal.jsonl"
    return path.read_text().count('"key"') if path.exists() else 0


def _default_sigint() -> None:
    """Give the child the default SIGINT disposition (Python then raises KeyboardInterrupt): a test
    runner started in the background by a non-interactive shell has SIGINT ignored, and ignored
    signals are inherited, so without this the Ctrl-C would never reach the run."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start_and_signal(out: Path, args: list[str], sig: int, after: int) -> tuple[subprocess.Popen[bytes], list[psutil.Process]]:
    """Start a 2-worker run; send ``sig`` once ``after`` items are journaled. Returns the process and
    its descendants (workers, fork server) as they were just before the signal."""
    proc = subprocess.Popen([sys.executable, "-m", "harness", "run", *args, "--out", str(out), "--workers", "2"],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "HARNESS_TEST_MODEL_DELAY": str(ITEM_DELAY_S)},
                            preexec_fn=_default_sigint)
    try:
        deadline = time.monotonic() + 120
        while _journaled(out) < after:
            assert proc.poll() is None, f"the run ended before it could be interrupted: {proc.stderr.read()!r}"
            assert time.monotonic() < deadline, "no progress"
            time.sleep(0.01)
        children = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(sig)
    except BaseException:
        proc.kill()
        _finish(proc)
        raise
    return proc, children


def _finish(proc: subprocess.Popen[bytes], timeout: float = 120) -> tuple[int, str]:
    """Wait for ``proc``; its exit code and stderr, with the pipe closed (no ResourceWarning later)."""
    try:
        code = proc.wait(timeout)
        return code, proc.stderr.read().decode(errors="replace")
    finally:
        proc.stderr.close()


def _resume(out: Path, args: list[str]) -> int:
    with warnings.catch_warnings():
        # a kill at a random point may cut the last journal line; the resume drops it with a warning
        warnings.filterwarnings("ignore", message=".*corrupt journal line", category=RuntimeWarning)
        return main(["run", *args, "--out", str(out), "--resume", "--workers", "2"])


def test_resume_after_sigkill_gives_the_records_of_an_uninterrupted_run(
        setup: tuple[Path, list[str], pd.DataFrame]) -> None:
    folder, args, whole = setup
    out = folder / "killed"
    after = random.randint(1, N_ITEMS // 2)
    proc, children = _start_and_signal(out, args, signal.SIGKILL, after)
    code, err = _finish(proc, 30)
    assert code == -signal.SIGKILL, err
    _, alive = psutil.wait_procs(children, timeout=15)
    assert not alive, f"workers outlived the killed run: {alive}"
    done_before = _journaled(out)
    assert after <= done_before < N_ITEMS, f"killed after {after} items, journal holds {done_before}"
    assert main(["run", *args, "--out", str(out), "--workers", "1"]) == 3  # no --resume: refused
    assert _resume(out, args) == 0
    records = read_records(out / "records.csv")
    assert not records.duplicated(IDENTITY).any()
    pd.testing.assert_frame_equal(comparable(records), comparable(whole))
    assert _journaled(out) == N_ITEMS  # the resume ran only what was missing


def test_ctrl_c_writes_a_partial_report_exits_2_and_resumes(setup: tuple[Path, list[str], pd.DataFrame]) -> None:
    folder, args, whole = setup
    out = folder / "interrupted"
    proc, _ = _start_and_signal(out, args, signal.SIGINT, random.randint(1, N_ITEMS // 2))
    code, err = _finish(proc)
    assert code == 2, err
    assert (out / "report.html").is_file() and (out / "junit.xml").is_file()
    summary = json.loads((out / "summary.json").read_text())
    gate = summary["gates"][0]
    assert gate["name"] == "run-complete" and gate["outcome"] == "ERROR" and "--resume" in gate["detail"]
    partial = read_records(out / "records.csv")
    assert 0 < len(partial) < len(whole) and not partial.duplicated(IDENTITY).any()
    assert _resume(out, args) == 0
    pd.testing.assert_frame_equal(comparable(read_records(out / "records.csv")), comparable(whole))
