"""Classes are listed in class-number order (liver 1, spleen 2, kidney 3), not alphabetically, in
summary.json's clean means and the report's clean table."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from harness.pipeline import _clean_means
from harness.report.rundir import load_run
from harness.report.sections import summary_section
from tests.report.conftest import make_run


def test_clean_means_and_report_columns_follow_class_numbers(tmp_path: Path) -> None:
    records = pd.DataFrame({"case_id": "a", "status": "OK", "perturbation": "clean", "label": [1, 2, 3],
                            "label_name": ["liver", "spleen", "kidney"], "dice": [0.9, 0.8, 0.7]})
    assert list(_clean_means(records, ("dice",))["dice"]) == ["liver", "spleen", "kidney", "mean"]
    shared = records.assign(label_name=["kidney", "kidney", "liver"])  # classes 1 and 2 share a name
    assert _clean_means(shared, ("dice",))["dice"] == pytest.approx({"kidney": 0.85, "liver": 0.7, "mean": 0.8})
    run = make_run(tmp_path / "run", case_ids=["a", "b"])
    summary = json.loads((run / "summary.json").read_text())
    summary["labels"] = {"1": "liver", "2": "spleen", "3": "kidney"}
    summary["clean"] = {"dice": {"kidney": 0.7, "liver": 0.9, "mean": 0.8, "spleen": 0.8}}  # a run written sorted
    (run / "summary.json").write_text(json.dumps(summary))
    assert summary_section(load_run(run, with_baseline=False))["clean_columns"] == ["liver", "spleen", "kidney", "mean"]
