"""The report and dossier of a real smoke run: structure, self-containment, regeneration, artifacts."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from harness.cli import main
from harness.report.html import render_report, write_report

DOSSIER_SECTIONS = ["intended-use", "identity", "data", "suite", "metrics", "criteria", "sap", "results",
                    "failures", "limitations", "run-record"]


def _self_contained(html: str) -> None:
    assert "<script" not in html.lower()
    assert "Content-Security-Policy" in html
    for attr in re.findall(r'(?:src|href)="([^"]*)"', html):
        assert attr.startswith(("data:", "#")), attr
    assert "@import" not in html and "url(http" not in html


def test_report_structure(smoke_run: Path) -> None:
    html = (smoke_run / "report.html").read_text(encoding="utf-8")
    summary = json.loads((smoke_run / "summary.json").read_text())
    _self_contained(html)
    for anchor in ("summary", "verdict", "gates", "robustness", "worst-cases", "gallery", "run-record"):
        assert f'id="{anchor}"' in html, anchor
    # the verdict comes first and names the outcome
    assert html.index('id="verdict"') < html.index('id="gates"') < html.index('id="robustness"')
    assert f'class="verdict {summary["outcome"]}"' in html
    for gate in summary["gates"]:
        assert gate["name"] in html
    # the model card's intended use, which the docs say every report prints (it was dossier-only)
    assert summary["model"]["intended_use"] and f"Intended use (model card): {summary['model']['intended_use']}" in html
    assert html.count("data:image/svg+xml;base64,") >= 3  # severity curves
    assert "Corruption error" in html and "Relative dice degradation" in html
    # k worst cases with overlays, uncertainty and (differentiable reference model) saliency
    assert html.count('class="case"') == 6
    assert "Uncertainty:" in html and "SmoothGrad" in html
    assert html.count("at severities 0 to 5") == 2  # one gallery grid per family


def test_dossier_structure(smoke_run: Path) -> None:
    html = (smoke_run / "dossier.html").read_text(encoding="utf-8")
    summary = json.loads((smoke_run / "summary.json").read_text())
    _self_contained(html)
    positions = [html.index(f'id="{a}"') for a in DOSSIER_SECTIONS]
    assert positions == sorted(positions)
    assert summary["model"]["intended_use"] and summary["model"]["intended_use"] in html
    assert summary["model"]["sha256"] in html and summary["suite"]["sha256"] in html
    cases = pd.read_csv(smoke_run / "cases.csv", dtype=str)
    for cid, digest in zip(cases["case_id"], cases["image_sha256"]):
        assert cid in html and digest in html
    assert 'max_drop = 0.2' in html  # the suite's full text and the acceptance criteria
    assert "Both reference and prediction empty" in html  # empty policy
    assert "Normalised surface distance" in html  # metric definitions
    assert summary["command_line"] in html and "torch" in html  # run record


def test_regeneration_is_byte_identical(smoke_run: Path, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(smoke_run, copy)
    for name in ("report.html", "dossier.html"):
        (copy / name).unlink()
    assert main(["report", str(copy), "--format", "all"]) == 0
    for name in ("report.html", "dossier.html"):
        assert (copy / name).read_bytes() == (smoke_run / name).read_bytes(), name
    assert render_report(copy) == render_report(copy)


def test_cli_report_writes_only_the_asked_format(smoke_run: Path, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(smoke_run, copy)
    (copy / "report.html").unlink()
    (copy / "dossier.html").unlink()
    assert main(["report", str(copy), "--format", "dossier"]) == 0
    assert (copy / "dossier.html").is_file() and not (copy / "report.html").exists()
    assert main(["report", str(copy), "--format", "word"]) == 3
    assert main(["report", str(tmp_path / "nothing")]) == 3


def test_artifacts_replay_the_recorded_items(smoke_run: Path) -> None:
    manifest = json.loads((smoke_run / "artifacts" / "manifest.json").read_text())
    assert manifest["metric"] == "dice" and len(manifest["worst_cases"]) == 6
    values = [w["value"] for w in manifest["worst_cases"]]
    assert values == sorted(values)
    assert len({(w["case_id"], w["perturbation"]) for w in manifest["worst_cases"]}) == 6
    for entry in manifest["worst_cases"]:
        assert abs(entry["recomputed"] - entry["value"]) < 1e-6  # the perturbation was replayed exactly
        with np.load(smoke_run / "artifacts" / entry["file"]) as arrays:
            assert {"image_clean", "image_perturbed", "label_reference", "label_prediction", "uncertainty",
                    "saliency"} <= set(arrays.files)
            for key in ("uncertainty", "saliency"):
                assert 0.0 <= float(arrays[key].min()) and float(arrays[key].max()) <= 1.0
    assert [g["perturbation"] for g in manifest["gallery"]] == ["gaussian_noise", "blur"]
    for g in manifest["gallery"]:
        assert (smoke_run / "artifacts" / g["file"]).read_bytes()[:4] == b"\x89PNG"
    assert json.loads((smoke_run / "artifacts" / "model_card.json").read_text())["model"]["intended_use"]


def test_report_renders_without_artifacts(smoke_run: Path, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(smoke_run, copy, ignore=shutil.ignore_patterns("artifacts"))
    paths = write_report(copy)
    html = paths[0].read_text(encoding="utf-8")
    assert 'id="worst-cases"' not in html and 'id="gallery"' not in html and 'id="robustness"' in html
