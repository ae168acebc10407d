"""benchmarks/paired_runs.py: the paired difference of two runs' test Dice, case by case."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.paired_runs import paired, patients, read_table  # noqa: E402


def _run(folder: Path, dice: dict[str, float]) -> Path:
    folder.mkdir()
    pd.DataFrame({"case_id": list(dice), "dice_1": list(dice.values()), "dice_mean": list(dice.values())}
                 ).to_csv(folder / "test_dice.csv", index=False)
    (folder / "training.json").write_text(json.dumps({"dataset": "hippocampus", "split": {"group_column": None}}))
    return folder


def test_the_difference_is_taken_case_by_case(tmp_path: Path) -> None:
    a = _run(tmp_path / "a", {"c1": 0.80, "c2": 0.90, "c3": 0.70, "c4": 0.85})
    b = _run(tmp_path / "b", {"c4": 0.86, "c3": 0.72, "c2": 0.89, "c1": 0.83})  # another order
    result = paired(read_table(a, "dice_mean"), read_table(b, "dice_mean"), patients(b, tmp_path))
    assert result["difference"] == pytest.approx((0.03 - 0.01 + 0.02 + 0.01) / 4)
    assert (result["gain"], result["loss"], result["n"]) == (3, 1, 4)
    assert result["ci95"][0] < result["difference"] < result["ci95"][1]
    assert result["mean_b"] - result["mean_a"] == pytest.approx(result["difference"])


def test_runs_on_different_test_cases_are_refused(tmp_path: Path) -> None:
    a = _run(tmp_path / "a", {"c1": 0.8, "c2": 0.9})
    b = _run(tmp_path / "b", {"c1": 0.8, "c9": 0.9})
    with pytest.raises(SystemExit, match="different test cases"):
        paired(read_table(a, "dice_mean"), read_table(b, "dice_mean"), None)
    with pytest.raises(SystemExit, match="no column 'dice_7'"):
        read_table(a, "dice_7")
    with pytest.raises(SystemExit, match="no such file"):
        read_table(tmp_path, "dice_mean")
