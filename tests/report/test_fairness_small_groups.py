"""The suite's ``small_groups`` policy reaches the fairness tables, the report and the dossier, and
the report reads empty text cells of the saved tables back as empty (not "nan")."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.pipeline import _write_analysis_tables
from harness.report.dossier import analysis_plan
from harness.report.html import render_report
from harness.report.rundir import load_run
from harness.report.sections import _fairness_result, fairness_section
from tests.report.conftest import make_run

IDS = [f"c{i:02d}" for i in range(26)]
SITES = ["A"] * 12 + ["B"] * 11 + ["C"] * 3  # C is below min_group_size = 5


def _saved_run(tmp_path: Path, extra: str) -> Path:
    run_dir = make_run(tmp_path / "run", case_ids=IDS, metadata={"site": SITES},
                       suite_extra=f'cohorts = ["site"]\nmin_group_size = 5\n{extra}')
    result = _fairness_result(load_run(run_dir))
    _write_analysis_tables(run_dir, SimpleNamespace(cache={"fairness:mean": result}))  # as `harness run` does
    return run_dir


@pytest.mark.parametrize("policy, small, excluded, n_groups", [
    ("", "C (n=3)", "", 3), ('small_groups = "exclude"', "", "C (n=3)", 2),
])
def test_policy_in_saved_tables_and_report(tmp_path: Path, policy: str, small: str, excluded: str,
                                           n_groups: int) -> None:
    run_dir = _saved_run(tmp_path, policy)
    section = fairness_section(load_run(run_dir))  # from the saved CSVs
    assert section is not None and section["gaps"]
    for row in section["gaps"]:
        assert (row["small_groups"], row["excluded_groups"], row["n_groups"]) == (small, excluded, n_groups)
    html = render_report(run_dir, "html")
    assert "<td>nan</td>" not in html
    assert ("left out: C (n=3)" in html) == bool(excluded)
    assert any("left out of the gaps and tests" in line for line in analysis_plan(load_run(run_dir))) == bool(excluded)


def test_tables_without_small_groups_read_back_empty(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path / "run", case_ids=IDS, metadata={"site": ["A", "B"] * 13},
                       suite_extra='cohorts = ["site"]\n')
    _write_analysis_tables(run_dir, SimpleNamespace(cache={"fairness:mean": _fairness_result(load_run(run_dir))}))
    rows = fairness_section(load_run(run_dir))["gaps"]
    assert rows and all(r["small_groups"] == "" and r["excluded_groups"] == "" for r in rows)
    assert "<td>nan</td>" not in render_report(run_dir, "html")


def test_test_name_comes_from_a_tested_attribute(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path / "run", case_ids=IDS, metadata={"site": SITES, "sex": ["F", "M"] * 13},
                       suite_extra='cohorts = ["site", "sex"]\nmin_group_size = 12\nsmall_groups = "exclude"\n')
    _write_analysis_tables(run_dir, SimpleNamespace(cache={"fairness:mean": _fairness_result(load_run(run_dir))}))
    section = fairness_section(load_run(run_dir))
    assert section["gaps"][-1]["attribute"] == "site" and section["gaps"][-1]["test"] == "none"  # only A has 12
    assert section["test"] == "permutation"


@pytest.mark.parametrize("setting, words", [
    ("", "studentized (Welch) permutation test of equal group means (2000 permutations"),
    ('fairness_test = "kruskal"', "Kruskal–Wallis rank test"),
])
def test_the_dossier_plan_names_the_fairness_test_the_suite_ran(tmp_path: Path, setting: str, words: str) -> None:
    run_dir = make_run(tmp_path / "run", case_ids=IDS, metadata={"site": SITES},
                       suite_extra=f'cohorts = ["site"]\n{setting}\n')
    (line,) = [ln for ln in analysis_plan(load_run(run_dir)) if ln.startswith("Fairness")]
    assert words in line and ("permutation" in line) == (setting == "")


@pytest.mark.parametrize("gate_test, words", [
    ("", "one-sided sign-flip permutation test (exact up to 16 cases, else 2000 random sign flips)"),
    ('test = "wilcoxon"', "one-sided Wilcoxon signed-rank test"),
])
def test_the_dossier_plan_names_the_baseline_test_of_the_suite_gate(tmp_path: Path, gate_test: str, words: str) -> None:
    from tests.report.conftest import SUITE

    text = SUITE.format(extra="") + f'\n[[gates]]\nname = "no-regression"\ncheck = "baseline"\nmetric = "dice"\n{gate_test}\n'
    run_dir = make_run(tmp_path / "run", case_ids=IDS, suite_text=text)
    (line,) = [ln for ln in analysis_plan(load_run(run_dir)) if ln.startswith("Baseline")]
    assert words in line and ("permutation" in line) == (gate_test == "")
