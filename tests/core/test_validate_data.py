"""``harness validate-data``: a dataset checked as a run would, before any model; exit 0 or 3."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main
from tests.png_cards import png_card


def _png_card(folder: Path, extra: str) -> Path:
    return png_card(folder, f'modality = "us"\n{extra}')


def test_a_valid_dataset_is_summarised(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    card = _png_card(tmp_path, 'label_values = { "255" = 1 }\nlabel_names = { 1 = "lesion" }\n')
    assert main(["validate-data", str(card)]) == 0
    out = capsys.readouterr().out
    for fragment in ("3 read", "us", "2D, 1 channel(s)", "1 lesion", "32x40", "OK"):
        assert fragment in out, fragment
    assert main(["validate-data", "phantom3d", "--limit", "2"]) == 0
    assert "2 read (the first 2)" in capsys.readouterr().out


def test_masks_holding_unnamed_values_are_listed_and_exit_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A 0/255 mask with label names but no label_values would score Dice 0 everywhere in a run."""
    card = _png_card(tmp_path, 'label_names = { 1 = "lesion" }\n')
    assert main(["validate-data", str(card)]) == 3
    err = capsys.readouterr().err
    assert "3 of 3 case(s) cannot be used" in err and "label values [255] are not classes" in err
    assert main(["validate-data", str(tmp_path / "nowhere")]) == 3


def test_raster_data_without_a_spacing_is_said_to_be_in_pixels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """PNGs carry no spacing: 1 mm per pixel was assumed and every distance called mm, with no word."""
    from harness.datasets import open_dataset
    from harness.pipeline import _assumed_spacing_note

    from rich.console import Console

    from harness.datasets.command_line import validate_data

    card = _png_card(tmp_path / "a", 'label_values = { "255" = 1 }\n')
    console = Console(width=400, record=True)
    validate_data(str(card), console=console)
    out = console.export_text()
    capsys.readouterr()
    assert "assumed for 3 of 3 cases" in out and "distances will be in pixels" in out and "[dataset] spacing" in out
    dataset = open_dataset(str(card))
    assert dataset.assumed_spacing() == dataset.case_ids and dataset.subset(2).assumed_spacing() == dataset.case_ids[:2]
    [note] = _assumed_spacing_note(dataset.subset(2))
    assert note.startswith("2 of 2 cases have no physical spacing") and "in pixels (the report labels them px)" in note
    given = _png_card(tmp_path / "b", 'label_values = { "255" = 1 }\nspacing = [0.1, 0.1]\n')
    assert main(["validate-data", str(given)]) == 0 and "assumed" not in capsys.readouterr().out
    assert open_dataset(str(given)).assumed_spacing() == [] and _assumed_spacing_note(open_dataset(str(given))) == []
    assert open_dataset("phantom2d").assumed_spacing() == []


def test_patients_with_several_cases_point_at_the_cluster_key(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # one table row on one line
    (tmp_path / "meta.csv").write_text("ID,Case,site\nc0,p1,A\nc1,p1,A\nc2,p2,B\n")
    card = _png_card(tmp_path / "d", 'label_values = { "255" = 1 }\nmetadata = "../meta.csv"\n')
    assert main(["validate-data", str(card)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "3 cases of 2 patients (column Case)" in out
    assert '1 with several cases: set [suite].cluster = "Case"' in out
    phantom = _png_card(tmp_path / "p", 'label_values = { "255" = 1 }\n')
    assert main(["validate-data", str(phantom)]) == 0
    assert "patients" not in capsys.readouterr().out  # no patient column: no row
