"""What a QA reviewer reads: units, traceable hashes, colour keys, heading levels, contrast, and
what the command line changed (--limit, --held-out)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from harness.report.dossier import suite_overrides
from harness.report.rundir import load_run


def test_the_report_gives_units_and_every_identifying_hash(smoke_run: Path) -> None:
    html = (smoke_run / "report.html").read_text(encoding="utf-8")
    summary = json.loads((smoke_run / "summary.json").read_text())
    assert "<td>hd95 [mm]</td>" in html and "<td>dice</td>" in html  # the clean table: mm, fractions bare
    for digest in (summary["model"]["sha256"], summary["model"]["card_sha256"], summary["suite"]["sha256"],
                   summary["data"]["manifest_sha256"]):
        assert len(digest) == 64 and f'<td class="hash">{digest}</td>' in html  # full digests, not a prefix


def test_worst_cases_say_which_outline_colour_is_which_class_and_describe_their_image(smoke_run: Path) -> None:
    html = (smoke_run / "report.html").read_text(encoding="utf-8")
    names = json.loads((smoke_run / "summary.json").read_text())["labels"]
    assert "Outline colours: " + ", ".join(f"{names[k]} {c}" for k, c in (("1", "green"), ("2", "amber"))) in html
    alts = re.findall(r'<img alt="(worst case [^"]*)"', html)
    assert alts and all(re.match(r"worst case \d+: case \S+ under \S+.*dice \S+; panels: clean image", a) for a in alts)


def test_dossier_result_subsections_sit_below_their_section_and_cohort_tables_have_headers(smoke_run: Path) -> None:
    html = (smoke_run / "dossier.html").read_text(encoding="utf-8")
    numbered = re.findall(r"<h(\d)>(\d+(?:\.\d+)?)[. ]", html)
    assert numbered and all((level == "2") == ("." not in number) for level, number in numbered), numbered
    assert any(number == "8.1" for _, number in numbered)
    report = (smoke_run / "report.html").read_text(encoding="utf-8")
    assert '<h2>Robustness</h2>' in report and '<h3>Relative dice degradation' in report


def test_status_colours_meet_the_contrast_of_small_white_text(smoke_run: Path) -> None:
    """WCAG AA: 4.5:1 for the badges' and verdict's white text on each outcome colour."""
    html = (smoke_run / "report.html").read_text(encoding="utf-8")
    colours = dict(re.findall(r"--(pass|warn|fail|error|inconclusive):#([0-9a-f]{6})", html))
    assert len(colours) == 5

    def luminance(hex_colour: str) -> float:
        channels = [int(hex_colour[i:i + 2], 16) / 255 for i in (0, 2, 4)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    for name, colour in colours.items():
        assert 1.05 / (luminance(colour) + 0.05) >= 4.5, name
    shades = [float(a) for a in re.findall(r"background:rgba\(198,40,40,([0-9.]+)\)", html)]
    assert shades and max(shades) <= 0.5  # the ink text in a shaded cell keeps its contrast


def test_limit_and_held_out_are_recorded_and_stated_in_the_dossier(smoke_run: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(smoke_run, copy)
    summary = json.loads((copy / "summary.json").read_text())
    assert summary["limit"] is None and summary["held_out"] is False  # the smoke run ran everything
    assert not any("--limit" in o or "--held-out" in o for o in suite_overrides(load_run(copy)))
    summary.update(limit=12, held_out=True)
    (copy / "summary.json").write_text(json.dumps(summary))
    said = " ".join(suite_overrides(load_run(copy)))
    n = len(pd.read_csv(copy / "cases.csv"))
    assert f"Only the first 12 cases of the data were evaluated (harness run --limit); {n} cases" in said
    assert "(harness run --held-out)" in said


def _patched(run: Path, **summary_changes) -> None:
    summary = json.loads((run / "summary.json").read_text())
    summary.update(summary_changes)
    (run / "summary.json").write_text(json.dumps(summary))


def test_the_dossier_says_whether_the_test_data_are_independent_of_training(smoke_run: Path, tmp_path: Path) -> None:
    """A run on the model's own training images said so only in one Limitations bullet; a clean
    check was not stated at all, so it could not be cited."""
    import shutil

    from harness.report.html import render_report

    summary = json.loads((smoke_run / "summary.json").read_text())
    td = summary["training_data"]
    assert td["record"] == "reference2d.training.json" and td["seen_train"] == td["seen_val"] == 0
    html = (smoke_run / "dossier.html").read_text(encoding="utf-8")
    said = (f"independent: none of the 12 evaluated images is among the {td['training_images']} training / "
            f"{td['validation_images']} validation images of its training record reference2d.training.json")
    assert f"<th>test data vs training</th><td>{said}</td>" in html and f"Independence from the model's training data: {said}." in html
    copy = tmp_path / "run"
    shutil.copytree(smoke_run, copy)
    _patched(copy, training_data={**td, "seen_train": 7, "seen_val": 1})
    html = render_report(copy, "dossier")
    assert ('<p class="note"><b>Test data:</b> NOT independent: 8 of the 12 evaluated images were seen by the model '
            "(7 in training, 1 in validation, per reference2d.training.json)") in html
    _patched(copy, training_data={"record": None, "readable": True})
    assert "not checkable: the model card names no training record" in render_report(copy, "dossier")


def test_the_clean_table_gives_n_and_the_ci_of_the_mean(smoke_run: Path) -> None:
    import re

    html = (smoke_run / "report.html").read_text(encoding="utf-8")
    row = re.search(r"<tr><td>dice</td><td>higher</td>(.*?)</tr>", html).group(1)
    cells = re.findall(r'<td class="num">([^<]*)</td>', row)
    assert cells[-2] == "12" and re.fullmatch(r"0\.9\d* – [01](\.\d+)?", cells[-1]), cells


def test_lengths_of_cases_without_a_spacing_are_labelled_pixels(smoke_run: Path, tmp_path: Path) -> None:
    import shutil

    from harness.report.html import render_report

    copy = tmp_path / "run"
    shutil.copytree(smoke_run, copy)
    _patched(copy, spacing_assumed=12)
    report, dossier = render_report(copy), render_report(copy, "dossier")
    assert "<td>hd95 [px]</td>" in report and "hd95 [mm]" not in report and "<td>dice</td>" in report
    assert re.search(r"<td>hd95</td><td>[^<]*</td><td>px</td>", dossier)
    _patched(copy, spacing_assumed=3)
    assert "<td>hd95 [mm; px for 3 cases]</td>" in render_report(copy)


def test_the_dossier_flags_class_names_that_differ_counts_patients_and_orders_cohorts(tmp_path: Path) -> None:
    from harness.report.html import render_report
    from tests.report.conftest import make_run

    ids = [f"c{i:02d}" for i in range(12)]
    run = make_run(tmp_path / "r", case_ids=ids, metadata={"Case": ["p1", "p1", "p2", "p3", "p3", "p4"] * 2,
                                                           "Device": ["A", "B", "A", "B", "A", ""] * 2,
                                                           "ID": [f"img{i}" for i in range(12)]})
    _patched(run, cohorts=["Device"])
    (run / "artifacts").mkdir()
    (run / "artifacts" / "model_card.json").write_text(json.dumps({"output": {"labels": {"1": "liver", "2": "lesion"}}}))
    html = render_report(run, "dossier")
    assert "1 = organ, 2 = lesion — MISMATCH: class 1 is &#39;liver&#39; in the model card but &#39;organ&#39; in the data" in html
    assert "The 12 cases with a patient id come from 4 patients (column Case); confidence intervals and tests treat" in html
    assert html.index("<th>Device <small>(analysed)</small></th>") < html.index("<th>Case</th>")
    assert "<td>missing</td>" in html and "Identifiers, one value per case (in the case table below, not counted): ID." in html
    assert "<th>ID</th><th class=\"num\">cases</th>" not in html
    assert "no rationale given" in html  # the synthetic suite's gate has no description


def test_metric_names_holding_mm_keep_their_name_when_lengths_are_pixels() -> None:
    from harness.metrics import Metric, MetricInfo, register, unregister
    from harness.report.units import run_unit_label

    register(Metric(MetricInfo("commission_error", False, "mm", "a plugin length"), lambda ctx: 0.0))
    try:
        every = {"spacing_assumed": 3, "data": {"n_cases": 3}}
        assert run_unit_label(every, "commission_error") == "commission_error [px]"
        assert run_unit_label(every, "abs_volume_error") == "abs_volume_error [px^3 (px^2 in 2D)]"
        assert run_unit_label({"spacing_assumed": 1, "data": {"n_cases": 3}}, "hd95") == "hd95 [mm; px for 1 cases]"
        assert run_unit_label(every, "dice") == "dice" and run_unit_label({}, "hd95") == "hd95 [mm]"
        # a unit given for 3D and 2D: the one the run's data has (summary.json data.ndim)
        assert run_unit_label({"data": {"n_cases": 3, "ndim": 3}}, "abs_volume_error") == "abs_volume_error [mm^3]"
        assert run_unit_label({**every, "data": {"n_cases": 3, "ndim": 2}}, "abs_volume_error") == "abs_volume_error [px^2]"
    finally:
        unregister("commission_error")


def test_patients_without_an_id_and_intersections_of_cohorts(tmp_path: Path) -> None:
    from harness.report.dossier import _patients, manifest
    from tests.report.conftest import make_run

    ids = [f"c{i:02d}" for i in range(12)]
    run = make_run(tmp_path / "r", case_ids=ids, metadata={"Case": [f"p{i}" for i in range(10)] + ["", ""],
                                                           "site": ["A", "B"] * 6, "sex": ["F", "M", "M"] * 4})
    _patched(run, cohorts=["site×sex"])
    said = _patients(load_run(run))
    assert said == "Each of the 10 cases with a patient id comes from a different patient (column Case; 2 case(s) name no patient)."
    found = manifest(load_run(run))
    assert [(c["attribute"], c["analysed"]) for c in found["cohorts"]][:2] == [("site", True), ("sex", True)]
    small = make_run(tmp_path / "s", case_ids=["a", "b"], metadata={"sex": ["F", "M"]})
    assert manifest(load_run(small))["identifiers"] == []  # two cases: an attribute, not an identifier


def test_cohorts_found_automatically_are_marked_as_analysed(tmp_path: Path) -> None:
    """With cohorts = "auto" the summary names no attribute: the fairness analysis's groups do."""
    from harness.report.dossier import manifest
    from tests.report.conftest import make_run

    run = make_run(tmp_path / "r", case_ids=["a", "b", "c", "d"], metadata={"Device": ["X", "Y", "X", "Y"],
                                                                           "sex": ["F", "M", "F", "M"]})
    _patched(run, cohorts="auto")
    assert not any(c["analysed"] for c in manifest(load_run(run))["cohorts"])
    marked = manifest(load_run(run), fairness_attributes=["sex", "sex"])["cohorts"]
    assert [(c["attribute"], c["analysed"]) for c in marked] == [("sex", True), ("Device", False)]
