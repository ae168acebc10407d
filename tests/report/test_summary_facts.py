"""The report's summary facts say what the numbers mean."""
from __future__ import annotations

from pathlib import Path

from harness.report.html import render
from harness.report.rundir import load_run
from tests.report.conftest import make_run

IDS = [f"c{i:02d}" for i in range(12)]


def test_summary_fact_does_not_call_a_gain_the_largest_drop(tmp_path: Path) -> None:
    """Every perturbation raised Dice: the summary read "-5.0 % largest dice drop"."""
    gained = make_run(tmp_path / "gain", case_ids=IDS, drop=-0.05)
    html = " ".join(render(load_run(gained), "html").split())
    assert "largest dice drop" not in html and "dice drop under any perturbation (smallest gain" in html
    dropped = " ".join(render(load_run(make_run(tmp_path / "drop", case_ids=IDS, drop=0.05)), "html").split())
    assert "largest dice drop: gaussian_noise @ 3" in dropped
