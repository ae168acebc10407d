"""Every user-provided string is HTML-escaped: case ids, metadata values, suite text, gate details."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd

from harness.report.html import render_report
from harness.report.junit import junit_xml
from tests.report.conftest import SUITE, make_run

EVIL_ID = "<script>alert('id')</script>"
EVIL_META = '"><img src=x onerror=alert(1)>'


def _evil_run(tmp_path: Path) -> Path:
    ids = [EVIL_ID, "case&2", "c3", "c4", "c5", "c6"]
    text = SUITE.format(extra='cohorts = ["scanner"]\n').replace(
        'description = "synthetic run for report tests"',
        'description = "</pre></p><script>alert(\'suite\')</script>"') + "# </pre><script>alert('comment')</script>\n"
    gates = [{"name": "clean-dice[<b>x</b>]", "outcome": "FAIL", "value": 0.1, "threshold": 0.5,
              "detail": f"case {EVIL_ID} failed"}]
    return make_run(tmp_path / "run", case_ids=ids, metadata={"scanner": [EVIL_META, "B", EVIL_META, "B", "B", EVIL_META]},
                    suite_text=text, gates=gates)


def test_script_through_case_ids_metadata_and_suite_text_is_escaped(tmp_path: Path) -> None:
    run = _evil_run(tmp_path)
    for fmt in ("html", "dossier"):
        html = render_report(run, fmt)
        assert "<script" not in html.lower(), fmt
        assert "<img src=x" not in html and "<b>x</b>" not in html
        assert "&lt;script&gt;alert(" in html
    dossier = render_report(run, "dossier")
    assert "&lt;script&gt;alert(&#39;id&#39;)&lt;/script&gt;" in dossier  # the case id, in the manifest
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in dossier  # the metadata value, in the cohort table
    assert "&lt;/pre&gt;&lt;script&gt;alert(&#39;comment&#39;)" in dossier  # the suite's full text
    assert "case&amp;2" in dossier


def test_junit_escapes_and_parses(tmp_path: Path) -> None:
    gates = [{"name": EVIL_ID, "outcome": "FAIL", "value": 1.0, "threshold": 0.5, "detail": f"{EVIL_META}\x01"}]
    root = ET.fromstring(junit_xml("s<&>", gates).encode())
    case = root.find(".//testcase")
    assert case is not None and case.get("name") == EVIL_ID
    assert case.find("failure").get("message") == EVIL_META + "?"


def test_errors_table_says_when_it_shows_only_the_first_items(tmp_path: Path) -> None:
    from harness.report.sections import ERRORS_SHOWN

    run_dir = make_run(tmp_path / "run", case_ids=[f"c{i:03d}" for i in range(120)])
    records = pd.read_csv(run_dir / "records.csv")
    records["status"], records["error"] = "ERROR", "RuntimeError: bad\x01byte"
    records.to_csv(run_dir / "records.csv", index=False)
    n_items = len(records.drop_duplicates(["case_id", "perturbation", "severity", "repeat"]))
    html = render_report(run_dir)
    assert n_items > ERRORS_SHOWN and f"The first {ERRORS_SHOWN} of {n_items} failed items" in html
    assert "\x01" not in html and "bad?byte" in html  # control characters are not valid HTML
