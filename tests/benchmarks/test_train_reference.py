"""benchmarks/train_reference.py: the target is claimed only for the benchmark it is set for, and
a bad option is one line with exit code 3, not a traceback."""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.train_reference import TARGETS, benchmark_target  # noqa: E402

BENCH = {"hippocampus": {"seed": 0, "split_seed": None}, "busbra": {"test_fold": 1, "seed": 0, "split_seed": None}}


def _args(dataset: str, **changes: object) -> argparse.Namespace:
    return argparse.Namespace(**{"dataset": dataset, "time_budget": 30.0, "threads": 2, **BENCH[dataset], **changes})


@pytest.mark.parametrize("dataset", ["hippocampus", "busbra"])
def test_target_on_the_benchmark_itself(dataset: str) -> None:
    assert benchmark_target(_args(dataset)) == TARGETS[dataset]
    assert benchmark_target(_args(dataset, time_budget=12.0)) == TARGETS[dataset]  # less time: still the target


@pytest.mark.parametrize(("dataset", "changes"), [
    ("hippocampus", {"seed": 3}),  # another split: another test set
    ("hippocampus", {"split_seed": 1}), ("busbra", {"test_fold": 2}),
    ("hippocampus", {"time_budget": 60.0}), ("busbra", {"threads": 4}), ("hippocampus", {"time_budget": None}),
])
def test_no_target_for_another_setup(dataset: str, changes: dict) -> None:
    assert benchmark_target(_args(dataset, **changes)) is None


def test_seed_varied_over_the_fixed_split_keeps_the_target() -> None:
    assert benchmark_target(_args("hippocampus", seed=3, split_seed=0)) == TARGETS["hippocampus"]


def test_bad_option_is_one_line_exit_3(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "train_reference.py"), "hippocampus",
                           "--data-root", str(tmp_path), "--ema", "1.0", "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.startswith("error: --ema 1.0") and "Traceback" not in proc.stderr
