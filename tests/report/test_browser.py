"""The report in a real browser (headless Chromium; skipped when absent — .ci/run installs it)."""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from harness.cli import main
from harness.report.pdf import PdfError, chromium_command, find_chromium, html_to_pdf

needs_chromium = pytest.mark.skipif(find_chromium() is None, reason="headless Chromium is not installed")
VERDICT_RGB = {"PASS": (0x1E, 0x7D, 0x32), "WARN": (0xA8, 0x50, 0x00)}


@needs_chromium
def test_screenshot_shows_the_verdict_without_console_errors(smoke_run: Path, tmp_path: Path) -> None:
    from PIL import Image

    shot = tmp_path / "report.png"
    with tempfile.TemporaryDirectory() as profile:
        cmd = chromium_command(find_chromium(), profile, "--enable-logging=stderr", "--v=0", "--hide-scrollbars",
                               f"--screenshot={shot}", "--window-size=1280,900",
                               (smoke_run / "report.html").resolve().as_uri())
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert shot.is_file(), proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    assert console == [], console  # no script errors, no blocked (network) loads, no CSP violations
    image = Image.open(shot).convert("RGB")
    outcome = re.search(r'class="verdict (\w+)"', (smoke_run / "report.html").read_text()).group(1)
    colours = {c for _, c in image.getcolors(maxcolors=1 << 20)}
    assert VERDICT_RGB[outcome] in colours, "the verdict banner is not visible in the first screen"


@needs_chromium
def test_pdf_has_pages(smoke_run: Path, tmp_path: Path) -> None:
    pdf = html_to_pdf(smoke_run / "dossier.html", tmp_path / "dossier.pdf")
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page[^s]", data)) >= 5  # one section per page, at least


@needs_chromium
def test_cli_report_pdf(smoke_run: Path, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(smoke_run, copy, ignore=shutil.ignore_patterns("*.pdf"))
    assert main(["report", str(copy), "--pdf"]) == 0
    assert (copy / "report.pdf").read_bytes().startswith(b"%PDF")
    assert '<details open>' not in (copy / "report.html").read_text()  # the screen copy stays collapsed
    if shutil.which("pdftotext"):  # print shows no closed <details>: the PDFs are printed with them open
        from harness.report.html import write_report

        write_report(copy, formats=("dossier",), pdf=True)
        dossier = subprocess.run(["pdftotext", str(copy / "dossier.pdf"), "-"], capture_output=True, text=True,
                                 check=True).stdout
        report = subprocess.run(["pdftotext", str(copy / "report.pdf"), "-"], capture_output=True, text=True,
                                check=True).stdout
        assert "Full table: every metric, family and severity" in dossier
        assert "Suite text (sha256" in report and "[[perturbations]]" in report


def test_missing_chromium_is_a_clear_configuration_error(smoke_run: Path, tmp_path: Path, monkeypatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HARNESS_CHROMIUM", str(tmp_path / "no-such-browser"))
    assert find_chromium() is None
    with pytest.raises(PdfError, match=r"HARNESS_CHROMIUM=.*no-such-browser is neither a file nor a command"):
        html_to_pdf(smoke_run / "report.html", tmp_path / "x.pdf")  # the bad setting is named
    monkeypatch.setenv("HARNESS_CHROMIUM", "")
    monkeypatch.setenv("PATH", str(tmp_path))  # no browser anywhere
    assert find_chromium() is None
    with pytest.raises(PdfError, match="needs headless Chromium"):
        html_to_pdf(smoke_run / "report.html", tmp_path / "x.pdf")
    assert main(["report", str(smoke_run), "--pdf"]) == 3
    assert "apt-get install chromium" in capsys.readouterr().err.replace("\n", " ")
    # `harness run --pdf` refuses before any model call
    assert main(["run", "--suite", "smoke", "--out", str(tmp_path / "r"), "--pdf"]) == 3
    assert not (tmp_path / "r" / "records.csv").exists()
