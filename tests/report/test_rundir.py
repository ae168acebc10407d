"""Reading a run folder back: what the report and the dossier are built from."""
from __future__ import annotations

import pandas as pd

from harness.report.rundir import load_run
from tests.report.conftest import make_run


def test_a_numeric_metadata_column_with_an_empty_cell_reads_back_as_numbers(tmp_path):
    """The run writes a missing value as an empty cell; the whole column stayed text, so the report's
    recomputed fairness section refused `bins.age` ('not numeric') or made one group per age."""
    ids = [f"c{i}" for i in range(6)]
    run = make_run(tmp_path / "run", case_ids=ids, metadata={"age": [30, 41, None, 55, 62, 70],
                                                             "sex": ["F", "M", "F", "", "M", "F"]})
    cases = load_run(run).cases
    assert pd.api.types.is_float_dtype(cases["age"]) and cases["age"].isna().sum() == 1
    assert cases["sex"].tolist() == ["F", "M", "F", "", "M", "F"]  # text stays text
