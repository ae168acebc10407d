"""Robustness table and gates on records where the answer is known."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harness.analysis.gate_checks import degradation_gate
from harness.analysis.robustness import corruption_error, robustness_table
from harness.errors import ConfigError
from harness.gates import GateContext, compare


def _records(clean: list[float], noisy: list[float | None]) -> pd.DataFrame:
    rows = []
    for i, (c, n) in enumerate(zip(clean, noisy)):
        base = {"case_id": f"c{i}", "repeat": 0, "seed": 0, "label": 1, "label_name": "organ", "error": "",
                "empty": "none", "params": "{}"}
        rows.append({**base, "perturbation": "clean", "severity": 0, "status": "OK", "dice": c})
        rows.append({**base, "perturbation": "noise", "severity": 1, "status": "ERROR" if n is None else "OK",
                     "dice": np.nan if n is None else n})
    return pd.DataFrame(rows)


def test_a_drop_equal_to_the_limit_passes() -> None:
    """0.9 - 0.85 = 0.05000000000000004 FAILed 'allowed <= 0.05'."""
    records = _records([0.9] * 5, [0.85] * 5)
    (result,) = degradation_gate({"name": "d", "metric": "dice", "max_drop": 0.05},
                                 GateContext(records, pd.DataFrame(), None))
    assert result.outcome == "PASS"
    assert compare(0.9 - 0.85, higher_is_better=False, fail=0.05, warn=0.05) == "PASS"
    assert compare(0.0501, higher_is_better=False, fail=0.05, warn=None) == "FAIL"


def test_the_table_s_relative_drop_is_the_gate_s() -> None:
    """The table divided the paired drop by the clean mean of every case, including one whose
    perturbed item failed: 11.25 % in the report, 10 % in the gate, and relative_ce showed a gain."""
    records = _records([0.9] * 5 + [0.3], [0.81] * 5 + [None])
    row = robustness_table(records, ["dice"]).set_index("perturbation").loc["noise"]
    assert row["relative_degradation"] == pytest.approx(0.1)
    (gate,) = degradation_gate({"name": "d", "metric": "dice", "max_drop": 0.2, "mode": "relative"},
                               GateContext(records, pd.DataFrame(), None))
    assert gate.value == pytest.approx(row["relative_degradation"])
    ce = corruption_error(robustness_table(records, ["dice"])).set_index("perturbation")
    assert ce.loc["noise", "relative_ce"] == pytest.approx(0.09)


def test_a_missing_value_leaves_that_case_out_of_the_row() -> None:
    records = _records([0.9] * 6, [0.8] * 6)
    records.loc[(records["case_id"] == "c0") & (records["perturbation"] == "noise"), "dice"] = np.nan
    row = robustness_table(records, ["dice"]).set_index("perturbation").loc["noise"]
    assert row["n"] == 5 and row["mean"] == pytest.approx(0.8) and np.isfinite(row["ci_low"])
    assert np.isfinite(row["degradation_ci_low"])


def test_a_metric_of_unknown_direction_is_refused_not_read_as_lower_is_better() -> None:
    """A run folder scored with a plugin metric read where the plugin is missing: its direction was
    taken as lower-is-better, so a drop in a higher-is-better score passed as a gain."""
    records = _records([0.9] * 5, [0.5] * 5).rename(columns={"dice": "sensitivity_x"})
    with pytest.raises(ConfigError, match=r"sensitivity_x: direction unknown .*install the plugin"):
        degradation_gate({"name": "d", "metric": "sensitivity_x", "max_drop": 0.05},
                         GateContext(records, pd.DataFrame(), None))
