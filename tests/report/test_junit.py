"""junit.xml: one testcase per gate; FAIL → failure, ERROR → error, INCONCLUSIVE → skipped."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from harness.report.junit import junit_xml, summary_properties

GATES = [{"name": f"g-{k}", "outcome": k, "value": 0.5, "threshold": 0.8, "detail": f"{k} detail"}
         for k in ("PASS", "WARN", "FAIL", "ERROR", "INCONCLUSIVE")]


def test_outcomes_map_to_junit_elements() -> None:
    root = ET.fromstring(junit_xml("smoke", GATES, seconds=1.5, properties={"model_sha256": "ab"}))
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("5", "1", "1", "1")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert [child.tag for child in cases["g-FAIL"]] == ["failure"]
    assert cases["g-FAIL"].find("failure").get("message") == "FAIL detail"
    assert [child.tag for child in cases["g-ERROR"]] == ["error"]
    assert [child.tag for child in cases["g-INCONCLUSIVE"]] == ["skipped"]
    assert [child.tag for child in cases["g-PASS"]] == ["system-out"]
    assert cases["g-WARN"].find("system-out").text.startswith("WARN:")
    assert suite.find("properties/property").get("value") == "ab"


def test_strict_makes_warn_and_inconclusive_failures_that_name_themselves() -> None:
    suite = ET.fromstring(junit_xml("smoke", GATES, strict=True)).find("testsuite")
    assert (suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("3", "1", "0")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    for outcome in ("WARN", "INCONCLUSIVE"):
        failure = cases[f"g-{outcome}"].find("failure")
        assert failure.get("type") == "StrictGate" and failure.get("message") == f"{outcome} (--strict): {outcome} detail"
        assert "(value=0.5, threshold=0.8)" in failure.text
    assert [child.tag for child in cases["g-PASS"]] == ["system-out"]
    assert cases["g-FAIL"].find("failure").get("type") == "GateFailed"


def test_skipped_carries_value_and_threshold_like_every_element() -> None:
    suite = ET.fromstring(junit_xml("smoke", GATES)).find("testsuite")
    skipped = next(c for c in suite.findall("testcase") if c.get("name") == "g-INCONCLUSIVE").find("skipped")
    assert skipped.text == "INCONCLUSIVE detail (value=0.5, threshold=0.8)"


def test_smoke_run_junit_matches_its_gates(smoke_run: Path) -> None:
    summary = json.loads((smoke_run / "summary.json").read_text())
    suite = ET.parse(smoke_run / "junit.xml").getroot().find("testsuite")
    assert [c.get("name") for c in suite.findall("testcase")] == [g["name"] for g in summary["gates"]]
    props = {p.get("name"): p.get("value") for p in suite.findall("properties/property")}
    assert props == {k: str(v) for k, v in summary_properties(summary).items()}
