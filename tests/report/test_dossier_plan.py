"""The dossier's analysis plan and definitions say what the code does for this run."""
from __future__ import annotations

import json
from pathlib import Path

from harness.report.dossier import analysis_plan, empty_policy
from harness.report.rundir import load_run
from tests.report.conftest import make_run

IDS = [f"c{i}" for i in range(8)]


def test_the_plan_says_what_its_cis_resample_and_which_tests_share_a_correction(tmp_path: Path) -> None:
    plain = " ".join(analysis_plan(load_run(make_run(tmp_path / "plain", case_ids=IDS))))
    assert "bootstrap over cases," in plain and "Site shift" not in plain
    assert "unless a gate or table selects a class" in plain
    clustered = make_run(tmp_path / "clustered", case_ids=IDS, suite_extra='cluster = "patient"\ncohorts = ["sex"]',
                         metadata={"patient": ["p1", "p1", "p2", "p2", "p3", "p3", "p4", "p4"], "sex": list("FMFMFMFM")})
    said = " ".join(analysis_plan(load_run(clustered)))
    assert "bootstrap over whole patient values," in said and "bootstrap over cases" not in said
    assert "correction across all fairness tests of the analysis" in said and "rank-biserial correlation" in said
    sites = make_run(tmp_path / "sites", case_ids=IDS, metadata={"site": list("AAAABBBB")})
    said = " ".join(analysis_plan(load_run(sites)))
    assert "Site shift (site): each site's clean mean against the reference site (the largest site)" in said
    assert "correction across the non-reference sites of each metric" in said


def test_the_empty_mask_policy_is_in_the_run_s_length_unit(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", case_ids=IDS)
    assert any("physical diagonal (mm)" in p for p in empty_policy(load_run(run)))
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, "spacing_assumed": len(IDS)}))
    said = " ".join(empty_policy(load_run(run)))
    assert "physical diagonal (px)" in said and "distances = 0 px" in said and " mm" not in said.replace("1 mm per", "")
