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


def _render_matches(significant: bool) -> str:
    from harness.report.html import environment

    match = {"site": "B", "metric": "dice", "drop": 0.02, "drop_ci_low": 0.01 if significant else -0.005,
             "drop_ci_high": 0.04, "drop_significant": significant, "family": "blur", "severity": 3.0,
             "degradation": 0.015}
    sh = {"error": "", "generic": None, "alpha": 0.05,
          "blocks": [{"attribute": "site", "reference": "A", "rows": [], "matches": _found_matches(pd.DataFrame([match])),
                      "extra": [], "notes": []}]}
    template = environment().from_string('{% from "_results.html.j2" import shift_block %}{{ shift_block(sh, "Shift") }}')
    return template.render(sh=sh)


def test_a_match_to_a_drop_whose_ci_reaches_zero_is_flagged_as_possibly_chance():
    html = _render_matches(significant=False)
    assert "none for a drop whose 95% CI lies above 0" in html
    assert html.index("may match by chance") < html.index("blur at severity 3")
    html = _render_matches(significant=True)
    assert "blur at severity 3" in html and "may match by chance" not in html and "none for a drop" not in html
