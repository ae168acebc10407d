from __future__ import annotations

from pathlib import Path

import pytest

from harness.records import Journal, records_frame


def test_journal_roundtrip_and_corrupt_tail(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.jsonl")
    journal.append("a|clean|0|0", [{"case_id": "a", "dice": 1.0}])
    journal.append("b|clean|0|0", [{"case_id": "b", "dice": float("nan")}])
    with journal.path.open("a") as fh:
        fh.write('{"key": "c|clean|0|0", "rows": [')  # a write cut by a kill
    with pytest.warns(RuntimeWarning, match="corrupt journal line"):
        done = journal.read()
    assert set(done) == {"a|clean|0|0", "b|clean|0|0"}
    assert done["b|clean|0|0"][0]["dice"] is None  # NaN stored as null, never invalid JSON
    journal.truncate_corrupt_tail()
    assert set(journal.read()) == set(done)


def test_records_frame_orders_columns_and_rows() -> None:
    rows = [{"case_id": "b", "perturbation": "clean", "severity": 0, "repeat": 0, "seed": 1, "label": 1,
             "label_name": "x", "status": "OK", "error": "", "empty": "none", "dice": 0.5, "params": "{}",
             "inference_s": 0.1},
            {"case_id": "a", "perturbation": "clean", "severity": 0, "repeat": 0, "seed": 1, "label": 1,
             "label_name": "x", "status": "OK", "error": "", "empty": "none", "dice": 0.7, "params": "{}",
             "inference_s": 0.1}]
    frame = records_frame(rows, ["dice", "hd95"])
    assert list(frame["case_id"]) == ["a", "b"]
    assert list(frame.columns[:5]) == ["case_id", "perturbation", "severity", "repeat", "seed"]
    assert "hd95" in frame.columns
