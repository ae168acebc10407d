"""The report lists only real synthetic-family matches, with the share of the drop they reproduce."""
from __future__ import annotations

import math

import pandas as pd

from harness.report.sections import _found_matches


def test_unmatched_sites_are_left_out_and_shares_are_reported():
    frame = pd.DataFrame([
        {"site": "B", "metric": "dice", "drop": 0.02, "family": "blur", "severity": 3.0, "degradation": 0.015},
        {"site": "C", "metric": "dice", "drop": -0.01, "family": math.nan, "severity": math.nan,
         "degradation": math.nan},
        {"site": "D", "metric": "hd95", "drop": 60.0, "family": None, "severity": None, "degradation": math.nan},
    ])
    found = _found_matches(frame)
    assert [m["site"] for m in found] == ["B"]
    assert found[0]["severity"] == 3 and abs(found[0]["share"] - 0.75) < 1e-12


def test_no_matches_table():
    assert _found_matches(pd.DataFrame()) == [] and _found_matches(None) == []
