"""The run folder: what --out accepts, what --resume refuses, and what a damaged or partial run
still writes and reads back."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from harness.cli import main

SUITE = ('[suite]\nname = "tiny"\nmetrics = ["dice"]\n[[perturbations]]\nfamily = "gaussian_noise"\n'
         'severities = [1]\n[[gates]]\nname = "clean"\ncheck = "clean"\nmetric = "dice"\nmin = 0.5\n')


def _run(tmp_path: Path, out: Path, *extra: str) -> int:
    suite = tmp_path / "tiny.toml"
    suite.write_text(SUITE)
    return main(["run", "--suite", str(suite), "--workers", "1", "--out", str(out), *extra])


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    assert _run(root, root / "run", "--data", "phantom2d:n=3,seed=1", "--cohorts", "sex") == 0
    return root / "run"


def test_resume_refuses_data_that_changed_under_the_same_case_ids(tiny_run: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    shutil.copytree(tiny_run, out)
    assert _run(tmp_path, out, "--data", "phantom2d:n=3,seed=2", "--cohorts", "sex", "--resume") == 3
    assert "the data of 3 journaled case(s) changed" in capsys.readouterr().err
    assert _run(tmp_path, out, "--data", "phantom2d:n=3,seed=1", "--cohorts", "sex", "--resume") == 0


def test_out_holding_files_a_run_would_overwrite_is_refused(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "ex" / "artifacts").mkdir(parents=True)
    (tmp_path / "ex" / "artifacts" / "important.txt").write_text("precious")
    assert _run(tmp_path, tmp_path / "ex", "--limit", "1") == 3
    assert "holds artifacts but no harness run" in capsys.readouterr().err
    assert (tmp_path / "ex" / "artifacts" / "important.txt").read_text() == "precious"
    (tmp_path / "afile").write_text("x")
    assert _run(tmp_path, tmp_path / "afile" / "sub", "--limit", "1") == 3
    assert "cannot create the folder" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["inf", "1e12", "nan"])
def test_item_timeouts_the_waits_cannot_take_are_refused(tmp_path: Path, value: str) -> None:
    assert _run(tmp_path, tmp_path / "o", "--limit", "1", "--item-timeout", value) == 3
    assert not (tmp_path / "o" / "journal.jsonl").exists()


def test_cohorts_given_on_the_command_line_are_what_the_run_records(tiny_run: Path) -> None:
    from harness.report.rundir import load_run

    summary = json.loads((tiny_run / "summary.json").read_text())
    assert summary["cohorts"] == ["sex"]
    run = load_run(tiny_run)
    assert run.settings["cohorts"] == ("sex",) and run.suite.cohorts == ("sex",)


def test_a_damaged_run_folder_is_a_configuration_error(tiny_run: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(tiny_run, broken)
    (broken / "summary.json").write_text('{"outcome": ')
    assert main(["report", str(broken)]) == 3
    assert "summary.json: cannot read" in capsys.readouterr().err
    shutil.copyfile(tiny_run / "summary.json", broken / "summary.json")
    (broken / "records.csv").write_text("x,y\n1,2\n")
    assert main(["report", str(broken)]) == 3
    assert "not a harness records file" in capsys.readouterr().err


def test_case_ids_that_look_like_missing_values_stay_text(tmp_path: Path) -> None:
    from harness.records import read_records

    frame = pd.DataFrame({"case_id": ["NA", "None", "c1"], "perturbation": "clean", "severity": 0, "label": 1,
                          "status": "OK", "dice": [0.9, None, 0.7]})
    frame.to_csv(tmp_path / "records.csv", index=False)
    back = read_records(tmp_path / "records.csv")
    assert back["case_id"].tolist() == ["NA", "None", "c1"] and back["dice"].isna().tolist() == [False, True, False]


def test_report_renders_when_an_artifact_file_is_missing(tiny_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    panels = sorted((run / "artifacts").rglob("*.npz"))
    assert panels
    panels[0].unlink()
    assert main(["report", str(run)]) == 0


def test_a_stale_baseline_copy_is_removed_when_the_run_has_none(tmp_path: Path) -> None:
    from harness.baseline import copy_baseline

    (tmp_path / "baseline").mkdir()
    (tmp_path / "baseline" / "summary.json").write_text("{}")
    copy_baseline(tmp_path, None)
    assert not (tmp_path / "baseline").exists()


def test_an_executor_failure_keeps_the_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.pipeline

    def broken(*args, **kwargs):
        raise RuntimeError("executor broke")

    monkeypatch.setattr(harness.pipeline, "execute", broken)
    assert _run(tmp_path, tmp_path / "o", "--limit", "1") == 2
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    first = summary["gates"][0]
    assert first["name"] == "run-complete" and "the run stopped early (RuntimeError: executor broke)" in first["detail"]
    assert (tmp_path / "o" / "report.html").is_file() and (tmp_path / "o" / "junit.xml").is_file()


def test_console_summary_prints_label_names_with_brackets(capsys: pytest.CaptureFixture[str]) -> None:
    from types import SimpleNamespace

    from harness.cli import _print_summary

    result = SimpleNamespace(gates=[], outcome="PASS", out=Path("o"), exit_code=0,
                             summary={"suite": {"name": "s"}, "notes": [], "clean": {"dice": {"edema [/]": 0.9, "x": None}}})
    _print_summary(result)
    assert "dice edema [/] 0.900, x n/a" in capsys.readouterr().out


def test_ctrl_c_outside_the_evaluation_exits_2_saying_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    import harness.pipeline

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(harness.pipeline, "run", interrupted)
    assert _run(tmp_path, tmp_path / "o", "--limit", "1") == 2
    assert "interrupted" in capsys.readouterr().err


def test_a_damaged_baseline_is_refused_before_the_model_runs(tiny_run: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(tiny_run, broken)
    (broken / "records.csv").write_text("x,y\n1,2\n")
    assert _run(tmp_path, tmp_path / "o", "--limit", "1", "--baseline", str(broken)) == 3
    assert not (tmp_path / "o" / "journal.jsonl").exists()


def test_bare_harness_prints_help_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    captured = capsys.readouterr()
    assert "run" in captured.out and "usage error" not in captured.err


def test_a_gate_label_that_is_not_a_scored_class_exits_3_before_the_run(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    suite = tmp_path / "tiny.toml"
    suite.write_text(SUITE.replace("min = 0.5\n", 'min = 0.5\nlabel = "lesoin"\n'))
    assert main(["run", "--suite", str(suite), "--workers", "1", "--limit", "1", "--out", str(tmp_path / "o")]) == 3
    assert "label 'lesoin' is not a scored class; scored: 1 (organ), 2 (lesion)" in capsys.readouterr().err
    assert not (tmp_path / "o" / "journal.jsonl").exists()


def test_ctrl_c_while_drawing_artifacts_still_writes_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.report.artifacts

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(harness.report.artifacts, "write_artifacts", interrupted)
    assert _run(tmp_path, tmp_path / "o", "--limit", "1") == 2
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["gates"][0]["name"] == "run-complete" and summary["gates"][0]["detail"].startswith("interrupted")
    assert (tmp_path / "o" / "junit.xml").is_file() and (tmp_path / "o" / "report.html").is_file()


def test_ctrl_c_while_writing_the_reports_leaves_no_passing_summary(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """summary.json and junit.xml are written before the reports (which render from them): a Ctrl-C
    there must turn them into a run-complete ERROR, not leave PASS beside an exit code of 2; a
    report of an earlier attempt must not stay beside the new summary."""
    import harness.report.html

    out = tmp_path / "o"
    assert _run(tmp_path, out, "--limit", "1") == 0 and (out / "dossier.html").is_file()
    render = harness.report.html.render
    calls: list[str] = []

    def interrupted(run, fmt, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(fmt)
        if fmt == "dossier":
            raise KeyboardInterrupt
        return render(run, fmt, **kwargs)

    monkeypatch.setattr(harness.report.html, "render", interrupted)
    assert _run(tmp_path, out, "--limit", "1", "--resume") == 2
    summary = json.loads((out / "summary.json").read_text())
    first = summary["gates"][0]
    assert (summary["outcome"], summary["exit_code"], first["name"], first["outcome"]) == ("ERROR", 2, "run-complete", "ERROR")
    assert first["detail"].startswith("interrupted while the reports were written") and "harness report" in first["detail"]
    junit = (out / "junit.xml").read_text()
    assert 'name="run-complete"' in junit and "<error" in junit
    assert calls == ["html", "dossier"] and (out / "report.html").is_file()
    assert not (out / "dossier.html").exists() and not list(out.glob(".*.tmp"))  # the first attempt's is gone
    monkeypatch.setattr(harness.report.html, "render", render)
    assert main(["report", str(out), "--format", "all"]) == 0 and (out / "dossier.html").is_file()


def test_a_report_that_fails_to_render_leaves_no_passing_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """A report failing with an error (a harness defect, a disk full) once left summary.json and
    junit.xml saying PASS beside an internal error (exit 2); now the gates stand, run-complete is an
    ERROR naming the failure, and the records are kept."""
    import harness.report.html

    def broken(run, fmt, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(harness.report.html, "render", broken)
    out = tmp_path / "o"
    assert _run(tmp_path, out, "--limit", "1") == 2
    summary = json.loads((out / "summary.json").read_text())
    first = summary["gates"][0]
    assert (summary["outcome"], summary["exit_code"], first["name"], first["outcome"]) == ("ERROR", 2, "run-complete", "ERROR")
    assert "the reports could not be written (OSError: [Errno 28] No space left on device)" in first["detail"]
    assert summary["gates"][1:] and "ERROR" not in {g["outcome"] for g in summary["gates"][1:]}  # they stand
    assert '<error' in (out / "junit.xml").read_text() and (out / "records.csv").is_file()
    printed = capsys.readouterr()
    assert "error: the reports could not be written" in printed.err and "Traceback" not in printed.err
    assert "no report (see run-complete)" in printed.out and not (out / "report.html").exists()


def test_a_cohort_attribute_the_data_lacks_exits_3_even_without_fairness_gates(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(tmp_path, tmp_path / "o", "--limit", "1", "--cohorts", "sexx") == 3
    assert "'sexx'" in capsys.readouterr().err and not (tmp_path / "o" / "journal.jsonl").exists()


def test_an_out_that_is_a_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "afile").write_text("x")
    assert _run(tmp_path, tmp_path / "afile", "--limit", "1") == 3
    assert "is a file; give a folder" in capsys.readouterr().err


def test_the_dossier_names_the_weights_file_the_model_hash_covers(tiny_run: Path) -> None:
    from harness.report.dossier import identity
    from harness.report.rundir import load_run

    assert ("weights file", "reference2d.pt") in identity(load_run(tiny_run))


def test_python_api_takes_text_paths(tmp_path: Path) -> None:
    """README's `harness.run(harness.RunOptions(..., out="runs/api"))`: a str out crashed
    (AttributeError: 'str' object has no attribute 'is_file')."""
    import harness

    options = harness.RunOptions(suite="smoke", limit=1, workers=1, out=str(tmp_path / "api"),
                                 baseline=str(tmp_path / "nowhere"))
    assert isinstance(options.out, Path) and isinstance(options.baseline, Path)
    result = harness.run(harness.RunOptions(suite="smoke", limit=1, workers=1, out=str(tmp_path / "api")))
    assert result.exit_code == 0 and (tmp_path / "api" / "summary.json").is_file()


def test_strict_run_names_the_blocking_gate_in_junit(tmp_path: Path) -> None:
    out = tmp_path / "o"
    assert _run(tmp_path, out, "--limit", "1", "--strict") == 1  # one case: the clean gates are INCONCLUSIVE
    summary = json.loads((out / "summary.json").read_text())
    undecided = [g["name"] for g in summary["gates"] if g["outcome"] == "INCONCLUSIVE"]
    junit = (out / "junit.xml").read_text()
    assert undecided and summary["strict"] is True
    assert junit.count('type="StrictGate"') == len(undecided) and "<skipped" not in junit


def test_resume_refuses_the_same_weights_run_through_another_card(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Another [input]/[output] keeps the weights' sha256; a resume must not mix records of both
    (it once accepted them and named only the second card). A journal from before the card hash
    was recorded still resumes."""
    from harness.models import reference_card_path

    source = reference_card_path(2)
    text = source.read_text().replace('weights = "', f'weights = "{source.parent}/')
    (tmp_path / "a.toml").write_text(text)
    (tmp_path / "b.toml").write_text(text.replace("pad_multiple = 16", "pad_multiple = 16\ntta_flip_axes = [1]"))
    out = tmp_path / "o"
    assert _run(tmp_path, out, "--limit", "1", "--model", str(tmp_path / "a.toml")) in (0, 1)
    assert _run(tmp_path, out, "--limit", "2", "--model", str(tmp_path / "b.toml"), "--resume") == 3
    assert "model_card differ(s)" in capsys.readouterr().err
    journal = out / "journal.jsonl"
    lines = journal.read_text().splitlines()
    meta = json.loads(lines[0])
    meta["meta"].pop("model_card")
    journal.write_text("\n".join([json.dumps(meta), *lines[1:]]) + "\n")
    assert _run(tmp_path, out, "--limit", "2", "--model", str(tmp_path / "a.toml"), "--resume") in (0, 1)


def test_a_resumed_run_that_selects_fewer_cases_says_what_it_left_out(tmp_path: Path) -> None:
    """--resume with a smaller --limit (or without --held-out) shrank the outputs to the new selection
    with no word; the earlier results stay in journal.jsonl and the run notes them."""
    out = tmp_path / "o"
    assert _run(tmp_path, out, "--limit", "2") == 0
    assert not any("journal.jsonl also holds" in n for n in json.loads((out / "summary.json").read_text())["notes"])
    assert _run(tmp_path, out, "--limit", "1", "--resume") == 0
    notes = json.loads((out / "summary.json").read_text())["notes"]
    assert any(n.startswith("this resumed run evaluates 1 case(s); journal.jsonl also holds results of 1 other case(s)")
               for n in notes), notes
    assert _run(tmp_path, out, "--limit", "2", "--resume") == 0  # growing back: nothing left out
    assert not any("journal.jsonl also holds" in n for n in json.loads((out / "summary.json").read_text())["notes"])


def test_worst_cases_that_rescore_otherwise_make_a_run_note(tmp_path: Path) -> None:
    """The only word of a non-deterministic model or perturbation was a note under one report figure."""
    from harness.pipeline import _determinism_note

    assert _determinism_note(tmp_path) == []  # no artifacts: nothing re-ran
    (tmp_path / "artifacts").mkdir()
    manifest = {"worst_cases": [{"case_id": "c1", "perturbation": "blur"},
                                {"case_id": "c2", "perturbation": "noise", "note": "re-running the model gave dice "
                                 "0.41, the run recorded 0.43: the model or perturbation is not deterministic"}]}
    (tmp_path / "artifacts" / "manifest.json").write_text(json.dumps(manifest))
    [note] = _determinism_note(tmp_path)
    assert note.startswith("1 of the 2 worst cases re-run for the report scored otherwise than the run recorded "
                           "(e.g. case c2, noise: re-running the model gave dice 0.41")
    manifest["worst_cases"].pop()
    (tmp_path / "artifacts" / "manifest.json").write_text(json.dumps(manifest))
    assert _determinism_note(tmp_path) == []
