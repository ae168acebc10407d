"""Report writers: HTML report and validation dossier (jinja2 + matplotlib), PDF (headless
Chromium), JUnit XML; and the run-time artifacts stage they render from."""
from harness.report.html import render_report, write_report
from harness.report.junit import junit_xml, write_junit

__all__ = ["junit_xml", "render_report", "write_junit", "write_report"]
