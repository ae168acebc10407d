"""The worked examples of docs/examples.md run end to end on the real data in ../shared/data
(skipped where it is absent), with tiny training budgets and --limit: they check the pipeline
(cards written, model card trained, runs exit with a documented code and write report.html), not
the figures in the docs, which come from longer runs."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ._markdown import REPO

DATA = REPO.parent / "shared" / "data"
EXAMPLES = REPO / "examples"
QUICK = ["--time-budget", "0.05", "--iters", "2", "--workers", "1"]

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


def run_example(script: str, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, str(EXAMPLES / script), *args], cwd=REPO, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


def assert_run(folder: Path) -> dict:
    """A finished run folder whose documented exit code is a gate verdict (0 or 1)."""
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["exit_code"] in (0, 1), summary["exit_code"]
    assert (folder / "report.html").is_file() and (folder / "junit.xml").is_file()
    return summary


def test_missing_data_exits_3_with_a_message(tmp_path):
    for script in ("hippocampus_robustness.py", "busbra_fairness_shift.py", "ci_gate.py"):
        result = subprocess.run([sys.executable, str(EXAMPLES / script), "--data-root", str(tmp_path / "nowhere"),
                                 "--out", str(tmp_path / "out")], cwd=REPO, capture_output=True, text=True,
                                timeout=300)
        assert result.returncode == 3, (script, result.stderr)
        assert "--data-root" in result.stderr and "not found" in result.stderr


@pytest.mark.skipif(not (DATA / "hippocampus" / "imagesTr").is_dir(), reason="../shared/data/hippocampus absent")
def test_hippocampus_robustness_example(tmp_path):
    out = tmp_path / "hippocampus"
    run_example("hippocampus_robustness.py", "--out", str(out), *QUICK, "--train-limit", "8", "--limit", "2",
                "--severities", "1",
                "--families", "rician_noise,motion,fgsm")
    assert (out / "model" / "model.toml").is_file()
    for name in ("robustness", "adversarial"):
        summary = assert_run(out / name)
        assert summary["data"]["n_cases"] == 2 and summary["data"]["modality"] == "mri"
    assert "Worked example 1" in (out / "RESULTS.md").read_text()


@pytest.fixture(scope="module")
def busbra_out(tmp_path_factory) -> Path:
    if not (DATA / "busbra" / "bus_data.csv").is_file():
        pytest.skip("../shared/data/busbra absent")
    out = tmp_path_factory.mktemp("busbra")
    run_example("busbra_fairness_shift.py", "--out", str(out), *QUICK, "--train-limit", "40", "--limit", "4",
                "--severities", "3",
                "--families", "speckle,histogram_shift")
    return out


def test_busbra_fairness_and_shift_example(busbra_out):
    for model in ("model_all", "model_large"):
        assert (busbra_out / model / "model.toml").is_file()
    fairness = assert_run(busbra_out / "fairness")
    assert fairness["data"]["modality"] == "us"
    assert any(g["name"].startswith("fair-dice[") for g in fairness["gates"])
    assert_run(busbra_out / "shift")
    results = (busbra_out / "RESULTS.md").read_text()
    assert "clean Dice by Device" in results and "by scanner" in results


def test_ci_gate_example(busbra_out, tmp_path):
    out = tmp_path / "ci"
    run_example("ci_gate.py", "--out", str(out), "--busbra-out", str(busbra_out), *QUICK, "--train-limit", "40",
                "--limit", "4",
                "--severities", "3", "--families", "speckle")
    summary = assert_run(out / "candidate")
    assert any(g["name"].startswith("baseline[") for g in summary["gates"])
    assert (out / "candidate" / "baseline" / "records.csv").is_file()
    assert (out / "compare" / "compare.json").is_file()
