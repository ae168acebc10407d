"""End-to-end: the CLI on phantoms, its outputs and every exit code."""
from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.cli import main

FIXTURES = Path(__file__).parent / "fixtures"


def run_cli(*args: str) -> int:
    return main(list(args))


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path]:
    out = tmp_path_factory.mktemp("smoke") / "run"
    code = run_cli("run", "--suite", "smoke", "--out", str(out), "--workers", "1")
    return code, out


def test_smoke_run_passes_and_writes_outputs(smoke_run: tuple[int, Path]) -> None:
    code, out = smoke_run
    assert code == 0
    for name in ("report.html", "records.csv", "summary.json", "junit.xml", "cases.csv", "suite.toml"):
        assert (out / name).is_file(), name
    records = pd.read_csv(out / "records.csv")
    for col in ("case_id", "perturbation", "severity", "label", "dice", "hd95", "status", "seed", "params"):
        assert col in records.columns
    assert set(records["status"]) == {"OK"}
    assert set(records["perturbation"]) == {"clean", "gaussian_noise", "blur"}
    # 12 cases x (1 clean + 2 families x 3 severities) x 2 labels
    assert len(records) == 12 * 7 * 2
    summary = json.loads((out / "summary.json").read_text())
    for key in ("outcome", "gates", "clean", "seed", "harness_version", "model", "suite", "data"):
        assert key in summary
    assert summary["outcome"] in ("PASS", "WARN")
    assert len(summary["model"]["sha256"]) == 64 and len(summary["suite"]["sha256"]) == 64
    assert len(summary["data"]["manifest_sha256"]) == 64
    for gate in summary["gates"]:
        assert set(gate) == {"name", "outcome", "value", "threshold", "detail"}
    # the bundled reference model segments the phantoms well (organ and lesion)
    assert summary["clean"]["dice"]["organ"] > 0.95
    assert summary["clean"]["dice"]["lesion"] > 0.75
    tree = ET.parse(out / "junit.xml")
    assert len(tree.findall(".//testcase")) == len(summary["gates"])
    html = (out / "report.html").read_text()
    assert "Gates" in html and "data:image/png;base64," in html and "clean-dice" in html


def test_records_are_deterministic(smoke_run: tuple[int, Path], tmp_path: Path) -> None:
    _, out = smoke_run
    code = run_cli("run", "--suite", "smoke", "--out", str(tmp_path / "again"), "--workers", "2", "--limit", "4")
    assert code == 0
    first = pd.read_csv(out / "records.csv")
    again = pd.read_csv(tmp_path / "again" / "records.csv")
    first = first[first["case_id"].isin(again["case_id"])].reset_index(drop=True)
    cols = ["case_id", "perturbation", "severity", "label", "seed", "dice", "hd95", "params"]
    pd.testing.assert_frame_equal(first[cols], again[cols])


def test_report_regenerates_identically(smoke_run: tuple[int, Path]) -> None:
    _, out = smoke_run
    before = (out / "report.html").read_text()
    assert run_cli("report", str(out)) == 0
    assert (out / "report.html").read_text() == before


def _run_fixture_model(tmp_path: Path, entry: str, limit: int) -> int:
    """``harness run --suite smoke`` on a callable from tests/e2e/fixtures/models.py; the exit code."""
    card = tmp_path / f"{entry}.toml"
    card.write_text(f'[model]\nformat = "callable"\nentry = "tests.e2e.fixtures.models:{entry}"\n'
                    '[output]\nkind = "labels"\nlabels = {1 = "organ", 2 = "lesion"}\n')
    return run_cli("run", "--suite", "smoke", "--model", str(card), "--out", str(tmp_path / "o"), "--workers", "1",
                   "--limit", str(limit))


def test_broken_model_fails_gates(tmp_path: Path) -> None:
    code = _run_fixture_model(tmp_path, "all_background", 4)
    assert code == 1
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["outcome"] == "FAIL"
    assert any(g["outcome"] == "FAIL" and g["name"].startswith("clean-dice") for g in summary["gates"])


def test_crashing_model_is_error_exit_2_and_keeps_results(tmp_path: Path) -> None:
    code = _run_fixture_model(tmp_path, "crash_on_noise", 3)
    assert code == 2
    records = pd.read_csv(tmp_path / "o" / "records.csv")
    errors = records[records["status"] == "ERROR"]
    assert len(errors) and errors["error"].str.contains("RuntimeError").all()
    assert (records["status"] == "OK").sum() > 0  # clean and blur rows kept
    assert (tmp_path / "o" / "report.html").is_file()


def test_model_crashing_on_every_item_still_gets_a_report(tmp_path: Path) -> None:
    """No OK record at all: exit 2 with every output written (the report once crashed on it)."""
    code = _run_fixture_model(tmp_path, "always_crash", 2)
    assert code == 2
    records = pd.read_csv(tmp_path / "o" / "records.csv")
    assert len(records) and (records["status"] == "ERROR").all()
    html = (tmp_path / "o" / "report.html").read_text()
    assert "simulated model crash" in html
    # sections say why they are empty instead of showing empty tables or a misleading caption
    assert "No case × perturbation pair has a dice score, so no worst case is shown" in html
    assert "The 0 worst" not in html and "(reference: )" not in html
    assert "(the first case: no clean case was scored)" in html and "median clean score" not in html

    def refuse(token: str) -> None:
        raise ValueError(f"not strict JSON: {token}")

    summary = json.loads((tmp_path / "o" / "summary.json").read_text(), parse_constant=refuse)  # no NaN
    assert all(v is None for means in summary["clean"].values() for v in means.values())
    errors = next(g for g in summary["gates"] if g["name"] == "model-errors")
    n_items = len(records.drop_duplicates(["case_id", "perturbation", "severity", "repeat"]))
    assert errors["detail"].startswith(f"{n_items} work item(s) failed ({len(records)} record(s))")


def test_model_calling_sys_exit_does_not_end_the_run(tmp_path: Path) -> None:
    """sys.exit(0) inside the model once ended the run with exit 0 and no outputs (a silent CI pass)."""
    code = _run_fixture_model(tmp_path, "exit_on_noise", 2)
    assert code == 2
    records = pd.read_csv(tmp_path / "o" / "records.csv")
    errors = records[records["status"] == "ERROR"]
    assert (records["status"] == "OK").any() and len(errors)
    assert errors["error"].str.contains(r"SystemExit\(0\) \(it called sys\.exit\)").all()
    assert (tmp_path / "o" / "report.html").is_file()


def test_unmapped_mask_values_are_a_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """0/255 PNG masks without label_values would score Dice 0 everywhere: refused, naming the value."""
    from PIL import Image

    (tmp_path / "img").mkdir()
    (tmp_path / "msk").mkdir()
    for key in ("a", "b"):
        Image.fromarray((np.arange(64 * 64) % 255).reshape(64, 64).astype(np.uint8)).save(tmp_path / "img" / f"{key}.png")
        mask = np.zeros((64, 64), np.uint8)
        mask[20:40, 20:40] = 255
        Image.fromarray(mask).save(tmp_path / "msk" / f"{key}.png")
    card = tmp_path / "data.toml"
    card.write_text('[dataset]\nimages = "img/*.png"\nlabels = "msk/{key}.png"\n')
    code = run_cli("run", "--suite", "smoke", "--data", str(card), "--out", str(tmp_path / "o"), "--workers", "1")
    assert code == 3
    assert 'label values [255] are not classes' in capsys.readouterr().err
    assert not (tmp_path / "o" / "records.csv").exists()


def test_unmapped_mask_values_on_a_later_case_are_error_records(tmp_path: Path) -> None:
    """Only the first case was checked before the run: a 0/255 mask on a later one scored Dice 0, PASS."""
    from PIL import Image

    (tmp_path / "img").mkdir()
    (tmp_path / "msk").mkdir()
    for key, foreground in (("a", 1), ("b", 255)):
        Image.fromarray((np.arange(64 * 64) % 255).reshape(64, 64).astype(np.uint8)).save(tmp_path / "img" / f"{key}.png")
        mask = np.zeros((64, 64), np.uint8)
        mask[20:40, 20:40] = foreground
        Image.fromarray(mask).save(tmp_path / "msk" / f"{key}.png")
    card = tmp_path / "data.toml"
    card.write_text('[dataset]\nimages = "img/*.png"\nlabels = "msk/{key}.png"\nlabel_names = { 1 = "organ" }\n')
    code = run_cli("run", "--suite", "smoke", "--data", str(card), "--out", str(tmp_path / "o"), "--workers", "1")
    assert code == 2
    records = pd.read_csv(tmp_path / "o" / "records.csv")
    assert set(records.loc[records["case_id"] == "a", "status"]) == {"OK"}
    later = records[records["case_id"] == "b"]
    assert set(later["status"]) == {"ERROR"} and later["error"].str.startswith(
        "cannot load case: ConfigError: case b: label values [255] are not classes of the data (its label names) [1]").all()


@pytest.mark.parametrize("args, fragment", [
    (["run", "--suite", "nope"], "unknown suite"),
    (["run", "--suite", "smoke", "--data", "/no/such/dir"], "no such folder"),
    (["run", "--suite", "smoke", "--model", "/no/such/model.ts"], None),
    (["run", "--suite", "smoke", "--limit", "0"], None),  # usage error -> 3, not click's 2
    (["run", "--suite", "smoke", "--seed", "-5"], "--seed"),  # once: every item evaluated, then an internal error
    (["run", "--suite", "smoke", "--cohorts", ","], "--cohorts ',' names no attribute"),
    (["compare", "a", "b", "--seed", "-1"], "--seed"),
    (["train", "--data", "phantom2d", "--out", "t", "--seed", "-1"], "--seed"),
    (["run", "--bogus-flag"], None),
    (["list", "things"], "choose one of"),
    (["validate-suite", str(FIXTURES / "bad_suite.toml")], "unknown perturbation"),
])
def test_bad_configuration_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                   fragment: str | None) -> None:
    code = run_cli(*args, *(["--out", str(tmp_path / "o")] if args[0] == "run" and "--bogus-flag" not in args else []))
    assert code == 3
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if fragment:
        assert fragment in err


def test_validate_suite_checks_perturbation_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """validate-suite builds every family as run does: misspelt options and bad values exit 3."""
    suite = tmp_path / "s.toml"
    suite.write_text('[suite]\nname = "s"\nmetrics = ["dice"]\n'
                     '[[perturbations]]\nfamily = "contrast"\noptions = { directon = "up" }\n'
                     '[[perturbations]]\nfamily = "spike"\nname = "spikes-x2"\noptions = { spikes = "two" }\n')
    assert run_cli("validate-suite", str(suite)) == 3
    err = capsys.readouterr().err
    assert "unknown option(s) directon" in err
    assert "perturbation 'spikes-x2': perturbation 'spike': option 'spikes'" in err


def test_validate_suite_lists_every_problem_in_one_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Schema problems, then an unknown family, then each bad option came one run at a time (three
    rounds of fixing in CI)."""
    suite = tmp_path / "s.toml"
    suite.write_text('[suite]\nname = "s"\nalpah = 0.05\n'
                     '[[perturbations]]\nfamily = "gausian_noise"\n'
                     '[[perturbations]]\nfamily = "gamma"\noptions = { direction = "sideways", foo = 1 }\n'
                     '[[gates]]\nname = "g"\ncheck = "clean"\nmetric = "dice"\nmax = 0.5\n')
    assert run_cli("validate-suite", str(suite)) == 3
    err = " ".join(capsys.readouterr().err.split())
    for fragment in ("unknown key 'alpah' (did you mean 'alpha'?)",
                     "unknown perturbation 'gausian_noise' (did you mean 'gaussian_noise'?)",
                     "perturbation 'gamma': unknown option(s) foo; accepted: direction; and option 'direction' must be "
                     "one of both, up, down", "its threshold is 'min', not 'max'"):
        assert fragment in err, fragment


@pytest.mark.parametrize(("cohorts", "attributes", "fragment"), [
    ("", "", "need cohorts: set [suite].cohorts"),
    ('cohorts = ["sex"]\n', 'attributes = ["sexx"]\n', "attribute(s) ['sexx'] are not among the cohorts analysed (sex)"),
])
def test_fairness_gates_without_their_cohorts_exit_3_before_any_model_call(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], cohorts: str, attributes: str, fragment: str) -> None:
    suite = tmp_path / "fair.toml"
    suite.write_text(f'[suite]\nname = "fair"\nmetrics = ["dice"]\n{cohorts}'
                     f'[[gates]]\nname = "fair"\ncheck = "fairness"\nmetric = "dice"\nmax_gap = 0.05\n{attributes}')
    assert run_cli("run", "--suite", str(suite), "--limit", "4", "--out", str(tmp_path / "o")) == 3
    assert fragment in capsys.readouterr().err
    assert not (tmp_path / "o" / "records.csv").exists()


def test_inapplicable_family_is_a_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    suite = tmp_path / "us.toml"
    suite.write_text('[suite]\nname = "us"\nmetrics = ["dice"]\n[[perturbations]]\nfamily = "speckle"\n')
    assert run_cli("run", "--suite", str(suite), "--limit", "2", "--out", str(tmp_path / "o")) == 3
    assert "modality" in capsys.readouterr().err


def test_list_and_validate(capsys: pytest.CaptureFixture[str]) -> None:
    for what in ("suites", "perturbations", "metrics", "gates"):
        assert run_cli("list", what) == 0
    assert run_cli("validate-suite", "robustness") == 0
    assert "valid" in capsys.readouterr().out


def test_console_script_runs() -> None:
    proc = subprocess.run([sys.executable, "-m", "harness", "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "run" in proc.stdout


def test_model_data_dimension_mismatch_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.models import reference_card_path

    code = run_cli("run", "--suite", "smoke", "--data", "phantom3d:n=2", "--model", str(reference_card_path(2)),
                   "--out", str(tmp_path / "o"))
    assert code == 3
    assert "2D, data is 3D" in capsys.readouterr().err


def test_list_suites_prints_whole_paths_in_a_narrow_terminal(capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """At 80 columns (pipes, CI logs) the path the docs tell users to copy was cut to '…/ad…'."""
    from harness.suite import bundled_suites

    monkeypatch.setenv("COLUMNS", "80")
    assert run_cli("list", "suites") == 0
    out = capsys.readouterr().out
    assert all(str(path) in out for path in bundled_suites().values())


def test_list_suites_keeps_names_and_paths_whole_on_a_narrow_terminal(monkeypatch, tmp_path, capsys) -> None:
    """From an installed wheel the site-packages path filled an 80-column terminal: suite names and
    descriptions were squeezed to nothing and the path itself was cut."""
    import re

    import harness.suite

    deep = tmp_path / ("venv/lib/python3.11/site-packages/" * 2) / "harness/suites"
    deep.mkdir(parents=True)
    for name in ("adversarial", "robustness"):
        (deep / f"{name}.toml").write_text(f'[suite]\nname = "{name}"\ndescription = "about {name}"\n')
    monkeypatch.setattr(harness.suite, "bundled_suites", lambda: {p.stem: p for p in sorted(deep.glob("*.toml"))})
    monkeypatch.setenv("COLUMNS", "80")
    main(["list", "suites"])
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "adversarial" in out and "robustness" in out and "about robustness" in out
    path_cells = "".join(re.findall(r"│ ([^│]*?) *│\s*$", out, flags=re.MULTILINE))
    assert str(deep / "robustness.toml") in path_cells  # folded onto lines, never cut
