"""JUnit XML: one testcase per gate (failure for FAIL, error for ERROR, skipped for INCONCLUSIVE).

CI systems (GitHub Actions test reporters, GitLab, Jenkins, Azure) read this file: each gate is a
test named after the gate (``robust-dice[blur]``), so a failed gate shows as a failed test with
its detail as the message. PASS and WARN are passing tests (WARN says so in ``system-out``).
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from harness import atomic

_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _text(value: Any) -> str:
    return _INVALID_XML.sub("?", str(value))


def junit_xml(suite_name: str, gates: list[dict[str, Any]], *, seconds: float = 0.0,
              properties: dict[str, Any] | None = None, strict: bool = False) -> str:
    """JUnit XML of ``gates``: FAIL → failure, ERROR → error, INCONCLUSIVE → skipped, PASS and WARN
    pass. ``strict`` (a run with ``--strict``, where WARN and INCONCLUSIVE exit 1): those are failures
    of type StrictGate too, so the CI test view names what blocked the run."""
    blocking = {"FAIL", "WARN", "INCONCLUSIVE"} if strict else {"FAIL"}
    counts = {"FAIL": sum(g["outcome"] in blocking for g in gates), "ERROR": sum(g["outcome"] == "ERROR" for g in gates),
              "INCONCLUSIVE": 0 if strict else sum(g["outcome"] == "INCONCLUSIVE" for g in gates)}
    root = ET.Element("testsuites", name="harness", tests=str(len(gates)),
                      failures=str(counts["FAIL"]), errors=str(counts["ERROR"]),
                      skipped=str(counts["INCONCLUSIVE"]), time=f"{seconds:.3f}")
    suite = ET.SubElement(root, "testsuite", name=_text(suite_name), tests=str(len(gates)),
                          failures=str(counts["FAIL"]), errors=str(counts["ERROR"]),
                          skipped=str(counts["INCONCLUSIVE"]), time=f"{seconds:.3f}")
    if properties:
        props = ET.SubElement(suite, "properties")
        for key, value in properties.items():
            ET.SubElement(props, "property", name=_text(key), value=_text(value))
    for gate in gates:
        case = ET.SubElement(suite, "testcase", classname=_text(f"harness.{suite_name}"), name=_text(gate["name"]),
                             time="0")
        detail = _text(f"{gate['detail']} (value={gate['value']}, threshold={gate['threshold']})")
        message = _text(gate["detail"])
        if gate["outcome"] == "FAIL":
            ET.SubElement(case, "failure", message=message, type="GateFailed").text = detail
        elif gate["outcome"] == "ERROR":
            ET.SubElement(case, "error", message=message, type="HarnessError").text = detail
        elif gate["outcome"] in blocking:  # --strict: WARN / INCONCLUSIVE block the run
            ET.SubElement(case, "failure", message=_text(f"{gate['outcome']} (--strict): {gate['detail']}"),
                          type="StrictGate").text = f"{gate['outcome']}: {detail}"
        elif gate["outcome"] == "INCONCLUSIVE":
            ET.SubElement(case, "skipped", message=message).text = detail
        else:
            ET.SubElement(case, "system-out").text = f"{gate['outcome']}: {detail}"
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def summary_properties(summary: dict[str, Any]) -> dict[str, Any]:
    """Identity of the run, for the testsuite's ``<properties>``."""
    return {"outcome": summary.get("outcome", ""), "exit_code": summary.get("exit_code", ""),
            "model": summary.get("model", {}).get("name", ""), "model_sha256": summary.get("model", {}).get("sha256", ""),
            "model_card_sha256": summary.get("model", {}).get("card_sha256", ""),
            "suite_sha256": summary.get("suite", {}).get("sha256", ""), "seed": summary.get("seed", ""),
            "harness_version": summary.get("harness_version", ""),
            "harness_revision": revision_text(summary.get("harness_revision"))}


def revision_text(revision: Any) -> str:
    """``<commit>`` (``+ uncommitted changes`` when the checkout was dirty); "" outside a checkout."""
    if not isinstance(revision, dict) or not revision.get("commit"):
        return ""
    return str(revision["commit"]) + (" + uncommitted changes" if revision.get("dirty") else "")


def write_junit(path: Path, suite_name: str, gates: list[dict[str, Any]], *, seconds: float = 0.0,
                properties: dict[str, Any] | None = None, strict: bool = False) -> Path:
    atomic.write_text(path, junit_xml(suite_name, gates, seconds=seconds, properties=properties, strict=strict))
    return path


def write_junit_from_summary(run_dir: Path, summary: dict[str, Any]) -> Path:
    """(Re)write ``junit.xml`` of a run folder from its summary."""
    return write_junit(Path(run_dir) / "junit.xml", summary["suite"]["name"], summary["gates"],
                       seconds=float(summary.get("seconds", 0.0)), properties=summary_properties(summary),
                       strict=bool(summary.get("strict", False)))
