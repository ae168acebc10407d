"""HTML → PDF through headless Chromium (print CSS: A4, page numbers, a page break per section).

Chromium is found via ``$HARNESS_CHROMIUM`` or on ``PATH`` (chromium, chromium-browser,
google-chrome, google-chrome-stable, chrome, msedge). The browser runs with networking and
extensions off, in a throwaway profile.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from harness.errors import ConfigError

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome", "msedge")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-dev-shm-usage", "--mute-audio")
TIMEOUT_S = 120


class PdfError(ConfigError):
    """report.pdf could not be written (Chromium missing or failing)."""


def find_chromium() -> str | None:
    """Path of a Chromium-family browser, or None."""
    explicit = os.environ.get("HARNESS_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).is_file() else shutil.which(explicit)
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


MISSING = ("--pdf needs headless Chromium, which was not found. Install it (Debian/Ubuntu: "
           "`apt-get install chromium`; macOS: `brew install --cask chromium`) or point HARNESS_CHROMIUM "
           "at a Chrome/Chromium/Edge executable. The HTML report does not need it.")


def require_chromium() -> str:
    """The Chromium path, or PdfError (exit 3) with how to install it."""
    found = find_chromium()
    if not found:
        explicit = os.environ.get("HARNESS_CHROMIUM")
        if explicit:
            raise PdfError(f"--pdf: HARNESS_CHROMIUM={explicit} is neither a file nor a command on PATH; point "
                           "it at a Chrome/Chromium/Edge executable, or unset it to search PATH")
        raise PdfError(MISSING)
    return found


def chromium_command(browser: str, profile: str, *extra: str) -> list[str]:
    return [browser, *FLAGS, f"--user-data-dir={profile}", *extra]


def html_to_pdf(html: Path, pdf: Path) -> Path:
    """Print ``html`` to ``pdf`` with its print CSS; PdfError naming the cause on failure."""
    browser = require_chromium()
    pdf = Path(pdf).absolute()  # not resolve(): a link at the PDF's place is removed, its target left alone
    pdf.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="harness-chromium-") as profile:
        cmd = chromium_command(browser, profile, "--no-pdf-header-footer", "--run-all-compositor-stages-before-draw",
                               f"--print-to-pdf={pdf}", Path(html).resolve().as_uri())
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired as exc:
            raise PdfError(f"Chromium did not finish printing {html.name} within {TIMEOUT_S} s") from exc
        except OSError as exc:
            raise PdfError(f"cannot start Chromium ({browser}): {exc}") from exc
    if not pdf.is_file() or pdf.stat().st_size == 0:
        tail = " ".join(proc.stderr.strip().splitlines()[-3:])
        raise PdfError(f"Chromium ({browser}) wrote no PDF for {html.name} (exit {proc.returncode}): {tail}")
    return pdf
