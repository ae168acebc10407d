"""A run folder from elsewhere (a CI artifact) cannot make the report read or write other files."""
from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.report.html import write_report
from harness.report.rundir import load_run
from harness.report.sections import gallery_section, worst_section

SECRET = b"\x89PNG\r\n\x1a\nCI_SECRET_TOKEN=ghp_not_a_real_token"  # PNG-signed: only the path check keeps it out


@pytest.fixture()
def run(smoke_run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(smoke_run, copy)
    (tmp_path / "secret.txt").write_bytes(SECRET)
    return copy


def _point_artifacts_at(run: Path, file: str) -> None:
    manifest = json.loads((run / "artifacts" / "manifest.json").read_text())
    manifest["gallery"][0]["file"] = file
    manifest["worst_cases"][0]["file"] = file
    (run / "artifacts" / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("how", ["absolute", "dotdot"])
def test_a_manifest_cannot_embed_files_outside_the_artifacts(run: Path, how: str) -> None:
    """The gallery once base64-embedded any file the manifest named (/proc/self/environ included)."""
    secret = run.parent / "secret.txt"
    _point_artifacts_at(run, str(secret) if how == "absolute" else "../../secret.txt")
    loaded = load_run(run)
    assert all(SECRET not in base64.b64decode(e["uri"].split(",", 1)[1]) for e in gallery_section(loaded))
    assert len(worst_section(loaded)["items"]) == len(loaded.artifacts["worst_cases"]) - 1
    with pytest.raises(ConfigError, match="is not a file in its artifacts/ folder"):
        loaded.artifact_bytes(str(secret))
    for path in write_report(run, formats=("html",)):
        assert base64.b64encode(SECRET)[:24] not in path.read_bytes()


def test_gallery_entries_must_be_pngs(run: Path) -> None:
    (run / "artifacts" / "gallery" / "00.png").write_text("<svg onload=alert(1)>")
    kept = gallery_section(load_run(run))
    assert len(kept) == len(load_run(run).artifacts["gallery"]) - 1 and all(e["file"] != "gallery/00.png" for e in kept)


@pytest.mark.parametrize("inside", ["artifacts/gallery/00.png", "suite.toml", "fairness_notes.txt",
                                    ".report.html.tmp", "junit.xml"])
def test_a_run_folder_with_links_is_refused(run: Path, inside: str) -> None:
    """Links put a secret into the report (gallery, suite text, fairness notes) or redirected a write."""
    secret = run.parent / "secret.txt"
    (run / inside).unlink(missing_ok=True)
    (run / inside).symlink_to(secret)
    with pytest.raises(ConfigError, match=rf"{inside.split('/')[-1]}: a symbolic link inside the run folder"):
        write_report(run, formats=("html",))
    assert secret.read_bytes() == SECRET  # nothing written through the link


def test_a_link_at_the_pdf_place_is_removed_not_its_target(run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.report.pdf import PdfError, html_to_pdf

    precious = run.parent / "precious.txt"
    precious.write_text("keep me")
    (run / "report.pdf").symlink_to(precious)
    monkeypatch.setenv("HARNESS_CHROMIUM", shutil.which("true") or "/bin/true")  # "prints" nothing
    with pytest.raises(PdfError):
        html_to_pdf(run / "report.html", run / "report.pdf")
    assert precious.read_text() == "keep me" and not (run / "report.pdf").exists()
