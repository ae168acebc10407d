"""A run whose cases are two images per patient: `[suite].cluster` makes the patient the unit of the
fairness and site comparisons, end to end (gate details, notes, report, dossier), and a cluster column
the data lacks stops the run before the model is loaded."""
from __future__ import annotations

import html
import json
from pathlib import Path

import pandas as pd
import pytest

from harness.cli import main
from tests.png_cards import png_card

MODEL = ('[model]\nformat = "callable"\nentry = "tests.shift.models:threshold_8bit"\n'
         '[output]\nkind = "labels"\nlabels = { 1 = "lesion" }\n')
SUITE = """
[suite]
name = "clustered"
metrics = ["dice"]
cohorts = ["sex"]
site_attribute = "site"
min_group_size = 2
n_bootstrap = 200
n_permutations = 200
{extra}

[[gates]]
name = "fair"
check = "fairness"
metric = "dice"
max_gap = 0.1

[[gates]]
name = "sites"
check = "site_drop"
metric = "dice"
max_drop = 0.1
"""


def _files(tmp: Path, extra: str) -> tuple[Path, Path, Path]:
    (tmp / "data").mkdir()
    pd.DataFrame({"ID": [f"c{i}" for i in range(12)], "Case": [f"p{i // 2}" for i in range(12)],
                  "sex": ["F", "F", "M", "M"] * 3, "site": ["A"] * 8 + ["B"] * 4}).to_csv(
        tmp / "data" / "meta.csv", index=False)
    card = png_card(tmp / "data" / "set", 'label_values = { "255" = 1 }\nmetadata = "../meta.csv"\n', n=12)
    (tmp / "model.toml").write_text(MODEL)
    (tmp / "suite.toml").write_text(SUITE.format(extra=extra))
    return card, tmp / "model.toml", tmp / "suite.toml"


@pytest.mark.parametrize("cluster", [" Case ", ""])  # spaces around the name are no part of it
def test_patients_are_the_unit_of_group_comparisons(tmp_path: Path, cluster: str) -> None:
    card, model, suite = _files(tmp_path, f'cluster = "{cluster}"' if cluster else "")
    out = tmp_path / "run"
    code = main(["run", "--suite", str(suite), "--data", str(card), "--model", str(model), "--out", str(out),
                 "--workers", "1"])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    details = {g["name"]: g["detail"] for g in summary["gates"]}
    groups = pd.read_csv(out / "fairness_groups.csv")
    notes = (out / "fairness_notes.txt").read_text()
    dossier = html.unescape((out / "dossier.html").read_text())
    if cluster:
        assert details["sites[B]"].startswith("site B: n=2 Case values,") and "(n=4, mean" in details["sites[B]"]
        assert sorted(groups["n"]) == [3, 3]  # 6 patients, 3 per sex
        assert details["fair[sex]"].startswith("sex (by Case: n counts Case values): worst group")
        assert "sex: analysed by Case (12 cases of 6 Case values" in notes
        report = html.unescape((out / "report.html").read_text())
        assert "sex: analysed by Case" in report and "sites compared by Case" in report
        assert "comparisons take the Case value as their unit" in dossier and "groups below 2 Case values" in dossier
        assert "subgroup, site and baseline comparisons are made by Case value" in dossier
        assert main(["report", str(out)]) == 0  # re-rendered from the run folder's suite.toml
    else:
        assert details["sites[B]"].startswith("site B: n=4,")
        assert sorted(groups["n"]) == [6, 6] and details["fair[sex]"].startswith("sex: worst group")
        assert '12 of 12 cases share a Case value with another case (6 Case values)' in notes
        assert "as their unit" not in dossier and "groups below 2 cases" in dossier
        assert 'set [suite].cluster = "Case" to compare subgroups, sites and baselines by patient' in dossier


def test_unknown_cluster_column_exits_3_before_the_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    card, _, suite = _files(tmp_path, 'cluster = "patient"')
    code = main(["run", "--suite", str(suite), "--data", str(card), "--model", str(tmp_path / "missing.toml"),
                 "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 3 and "[suite].cluster 'patient' is not a metadata column (a patient column here: 'Case')" in err
    assert "suite.toml" in err and not (tmp_path / "o" / "records.csv").exists()
