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
