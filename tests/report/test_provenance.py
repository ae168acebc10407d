"""What a reader needs to rerun a result: card hash and settings, code revision, versions, overrides."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from harness.provenance import code_revision, versions
from harness.report.dossier import identity, suite_overrides
from harness.report.junit import revision_text
from harness.report.rundir import load_run
from tests.report.conftest import make_run


def test_a_run_records_the_card_that_made_its_predictions(smoke_run: Path) -> None:
    """One weights file run with and without TTA/postprocessing had one identity (the weights' sha256)."""
    from harness.models import load_model
    from harness.runner import card_sha256

    summary = json.loads((smoke_run / "summary.json").read_text())
    model = summary["model"]
    assert model["card_sha256"] == card_sha256(load_model("reference", ndim=2)) and len(model["card_sha256"]) == 64
    assert model["prediction"]["input"]["normalize"] == "zscore" and model["prediction"]["output"]["kind"] == "logits"
    assert f'name="model_card_sha256" value="{model["card_sha256"]}"' in (smoke_run / "junit.xml").read_text()
    rows = dict(identity(load_run(smoke_run)))
    assert rows["model card sha256"] == model["card_sha256"] and "normalize zscore" in rows["prediction settings"]
    assert "overlap" not in rows["prediction settings"] and "tta_flip_axes" not in rows["prediction settings"]
    assert {"python", "torch", "numpy", "scipy", "pandas", "torchio", "monai", "SimpleITK", "nibabel"} <= set(
        summary["platform"]) and summary["platform"]["torch"] != "unknown"
    assert "harness_revision" in summary


def test_the_harness_revision_reaches_summary_junit_and_dossier(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.provenance
    from harness.pipeline import RunOptions, run

    monkeypatch.setattr(harness.provenance, "code_revision", lambda path=None: {"commit": "abc123", "dirty": True})
    out = tmp_path / "r"
    run(RunOptions(suite="smoke", limit=1, workers=1, seed=5, out=out))
    assert json.loads((out / "summary.json").read_text())["harness_revision"] == {"commit": "abc123", "dirty": True}
    assert 'name="harness_revision" value="abc123 + uncommitted changes"' in (out / "junit.xml").read_text()
    dossier = " ".join((out / "dossier.html").read_text().split())
    assert "abc123 + uncommitted changes" in dossier
    assert "Run with seed 5 (harness run --seed), not the seed 0 of the text below." in dossier


def test_code_revision_names_the_commit_and_uncommitted_changes(tmp_path: Path) -> None:
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run(git + ["init", "-q", str(tmp_path)], check=True)
    (tmp_path / "code.py").write_text("x = 1\n")
    subprocess.run(git + ["-C", str(tmp_path), "add", "."], check=True)
    subprocess.run(git + ["-C", str(tmp_path), "commit", "-qm", "c"], check=True)
    commit = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert code_revision(tmp_path) == {"commit": commit, "dirty": False}
    (tmp_path / "code.py").write_text("x = 2\n")
    assert code_revision(tmp_path) == {"commit": commit, "dirty": True}
    assert revision_text(code_revision(tmp_path)) == f"{commit} + uncommitted changes"
    assert revision_text(None) == "" and versions()["python"]
    installed = tmp_path / ".venv" / "site-packages" / "harness"  # harness installed in a project's .venv
    installed.mkdir(parents=True)
    (installed / "__init__.py").write_text("")
    (tmp_path / ".gitignore").write_text(".venv/\n")
    assert code_revision(installed) is None  # the project's commit is not the harness's revision


@pytest.mark.parametrize(("changes", "expected"), [
    ({"seed": 5}, ["Run with seed 5 (harness run --seed), not the seed 0 of the text below."]),
    ({"cohorts": ["sex"]}, ["Cohorts analysed: sex (harness run --cohorts), not those of the text below."]),
    ({}, []),
])
def test_the_dossier_says_what_the_command_line_changed_in_the_suite(tmp_path: Path, changes, expected) -> None:
    """--seed 1 once left section 4 ("the suite as run") saying seed = 0 without a word."""
    run = make_run(tmp_path / "r", case_ids=["a", "b"])
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, "seed": 0, "cohorts": [], **changes}))
    assert suite_overrides(load_run(run)) == expected


def test_the_dossier_says_when_the_suite_was_committed(tmp_path: Path) -> None:
    """"Pre-specified" criteria were asserted, not shown: the suite file's last commit shows they
    predate the run (or the dossier says nothing shows it)."""
    import json

    from harness.provenance import file_revision
    from harness.report.dossier import suite_history
    from harness.report.rundir import load_run
    from tests.report.conftest import make_run

    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    repo = tmp_path / "repo"
    subprocess.run(git + ["init", "-q", str(repo)], check=True)
    suite = repo / "release.toml"
    suite.write_text('[suite]\nname = "release"\n')
    assert file_revision(suite) is None  # not tracked yet
    subprocess.run(git + ["-C", str(repo), "add", "release.toml"], check=True)
    subprocess.run(git + ["-C", str(repo), "commit", "-qm", "criteria"], check=True)
    commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    rev = file_revision(suite)
    assert rev is not None and rev["commit"] == commit and rev["modified"] is False and rev["date"].startswith("20")
    suite.write_text('[suite]\nname = "release"\nseed = 1\n')
    assert file_revision(suite)["modified"] is True
    run = make_run(tmp_path / "run", case_ids=["a", "b", "c"])
    summary = json.loads((run / "summary.json").read_text())
    for revision, said in ((rev, f"last committed in {commit[:12]} on {rev['date']}."),
                           ({**rev, "modified": True}, "differed from that commit when the run read it"),
                           (None, "not under version control: nothing here shows that its criteria were fixed")):
        summary["suite"]["revision"] = revision
        (run / "summary.json").write_text(json.dumps(summary))
        assert said in suite_history(load_run(run))


def test_a_suite_name_is_a_path_not_a_pattern_and_a_missing_git_is_said(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.provenance import file_revision

    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run(git + ["init", "-q", str(tmp_path)], check=True)
    (tmp_path / "release1.toml").write_text("[suite]\n")
    subprocess.run(git + ["-C", str(tmp_path), "add", "release1.toml"], check=True)
    subprocess.run(git + ["-C", str(tmp_path), "commit", "-qm", "c"], check=True)
    (tmp_path / "release[1].toml").write_text("[suite]\n")  # never committed: "[1]" is no glob here
    assert file_revision(tmp_path / "release[1].toml") is None
    assert file_revision(tmp_path / "release1.toml")["commit"]
    monkeypatch.setenv("PATH", str(tmp_path / "no-git-here"))
    assert file_revision(tmp_path / "release1.toml") == {"unavailable": True}
