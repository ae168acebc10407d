"""JUnit XML: one testcase per gate (failure for FAIL, error for ERROR, skipped for INCONCLUSIVE)."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any


def junit_xml(suite_name: str, gates: list[dict[str, Any]], *, seconds: float = 0.0) -> str:
    counts = {k: sum(g["outcome"] == k for g in gates) for k in ("FAIL", "ERROR", "INCONCLUSIVE")}
    root = ET.Element("testsuites", name="harness", tests=str(len(gates)),
                      failures=str(counts["FAIL"]), errors=str(counts["ERROR"]))
    suite = ET.SubElement(root, "testsuite", name=suite_name, tests=str(len(gates)),
                          failures=str(counts["FAIL"]), errors=str(counts["ERROR"]),
                          skipped=str(counts["INCONCLUSIVE"]), time=f"{seconds:.3f}")
    for gate in gates:
        case = ET.SubElement(suite, "testcase", classname=f"harness.{suite_name}", name=gate["name"], time="0")
        detail = f"{gate['detail']} (value={gate['value']}, threshold={gate['threshold']})"
        if gate["outcome"] == "FAIL":
            ET.SubElement(case, "failure", message=gate["detail"], type="GateFailed").text = detail
        elif gate["outcome"] == "ERROR":
            ET.SubElement(case, "error", message=gate["detail"], type="HarnessError").text = detail
        elif gate["outcome"] == "INCONCLUSIVE":
            ET.SubElement(case, "skipped", message=gate["detail"])
        else:
            ET.SubElement(case, "system-out").text = f"{gate['outcome']}: {detail}"
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(path: Path, suite_name: str, gates: list[dict[str, Any]], *, seconds: float = 0.0) -> Path:
    path.write_text(junit_xml(suite_name, gates, seconds=seconds), encoding="utf-8")
    return path
