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


def _nifti_folder(root: Path, affines: dict[str, "object"], *, extra_labels: tuple[str, ...] = (),
                  metadata: str | None = None) -> Path:
    import nibabel as nib
    import numpy as np

    for sub in ("imagesTr", "labelsTr"):
        (root / sub).mkdir(parents=True)
    volume = np.zeros((6, 7, 8), np.float32)
    volume[2:4, 2:4, 2:4] = 1
    for name, affine in affines.items():
        nib.save(nib.Nifti1Image(volume, affine), root / "imagesTr" / f"{name}_0000.nii.gz")
        nib.save(nib.Nifti1Image(volume.astype(np.uint8), affine), root / "labelsTr" / f"{name}.nii.gz")
    for name in extra_labels:
        nib.save(nib.Nifti1Image(volume.astype(np.uint8), np.eye(4)), root / "labelsTr" / f"{name}.nii.gz")
    if metadata is not None:
        (root / "metadata.csv").write_text(metadata)
    return root


def test_cases_stored_in_different_orientations_are_flagged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One case RAS, one LAS (x flipped, affine consistent) passed unnoticed: read as stored, a model
    sees one mirrored."""
    import numpy as np

    flipped = np.diag([-1.0, 1.0, 1.0, 1.0])
    folder = _nifti_folder(tmp_path / "d", {"a": np.eye(4), "b": flipped})
    assert main(["validate-data", str(folder)]) == 0
    out = " ".join(capsys.readouterr().out.replace("│", " ").split())
    assert "LAS (1), RAS (1): the cases are stored in different orientations" in out
    same = _nifti_folder(tmp_path / "e", {"a": np.eye(4), "b": np.eye(4)})
    assert main(["validate-data", str(same)]) == 0
    assert "different orientations" not in capsys.readouterr().out


def test_files_and_metadata_rows_that_make_no_case_are_listed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An orphan label and metadata rows of no case were dropped silently."""
    import numpy as np

    folder = _nifti_folder(tmp_path / "d", {"a": np.eye(4), "b": np.eye(4)}, extra_labels=("c",),
                           metadata="case_id,sex\na,F\nb,M\nz,F\n")
    assert main(["validate-data", str(folder)]) == 0
    out = " ".join(capsys.readouterr().out.replace("│", " ").split())
    assert "1 label file(s) in labelsTr with no image: c.nii.gz" in out
    assert "1 row(s) of metadata.csv name no case: 'z'" in out
