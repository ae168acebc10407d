from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness.datasets import open_dataset
from harness.datasets.phantom import phantom_dataset
from harness.errors import ConfigError


def test_phantoms_are_deterministic_and_well_formed() -> None:
    for ndim in (2, 3):
        a, b = phantom_dataset(ndim, n=3), phantom_dataset(ndim, n=3)
        for cid in a.case_ids:
            ca, cb = a.load(cid), b.load(cid)
            assert ca.image.dtype == np.float32 and ca.image.ndim == ndim + 1
            assert np.array_equal(ca.image, cb.image) and np.array_equal(ca.label, cb.label)
            assert set(np.unique(ca.label)) <= {0, 1, 2} and (ca.label == 1).any()
            assert ca.metadata["site"] in {"A", "B", "C"} and ca.metadata["sex"] in {"F", "M"}
        assert list(a.metadata.columns) == ["sex", "age", "site", "device"]
    other = phantom_dataset(2, n=3, seed=5).load("phantom2d_000")
    assert not np.array_equal(other.image, phantom_dataset(2, n=3).load("phantom2d_000").image)


def test_phantom_spec_options() -> None:
    ds = open_dataset("phantom2d:n=5,seed=2")
    assert len(ds) == 5 and ds.ndim == 2
    with pytest.raises(ConfigError, match="phantom options"):
        open_dataset("phantom2d:bogus=1")


def _write_png_pair(root: Path, key: str, shape=(20, 24), label_shape=None) -> None:
    (root / "img").mkdir(exist_ok=True)
    (root / "msk").mkdir(exist_ok=True)
    Image.fromarray((np.arange(np.prod(shape)) % 255).reshape(shape).astype(np.uint8)).save(root / "img" / f"im_{key}.png")
    mask = np.zeros(label_shape or shape, np.uint8)
    mask[5:10, 5:10] = 255
    Image.fromarray(mask).save(root / "msk" / f"m_{key}.png")


CARD = """
[dataset]
images = "img/im_*.png"
labels = "msk/m_{key}.png"
key_regex = "im_(?P<key>.+)\\\\.png"
metadata = "meta.csv"
metadata_key = "id"
label_values = { "255" = 1 }
modality = "us"
"""


def test_dataset_card_reads_png_folder(tmp_path: Path) -> None:
    for key in ("a", "b"):
        _write_png_pair(tmp_path, key)
    (tmp_path / "meta.csv").write_text("id,device\na,X\nb,Y\n")
    (tmp_path / "card.toml").write_text(CARD)
    ds = open_dataset(str(tmp_path / "card.toml"))
    assert ds.case_ids == ["a", "b"] and ds.modality == "us"
    assert ds.validate() == []
    case = ds.load("a")
    assert case.image.shape == (1, 20, 24) and set(np.unique(case.label)) == {0, 1}
    assert case.metadata["device"] == "X"


@pytest.mark.parametrize("mutate, fragment", [
    (lambda t: t.replace("img/im_*.png", "nothing/*.png"), "no file matches"),
    (lambda t: t.replace("msk/m_{key}.png", "msk/m.png"), "must contain {key}"),
    (lambda t: t.replace('"id"', '"missing_col"'), "column 'missing_col'"),
    (lambda t: t.replace('"us"', '"xray"'), "must be one of"),
    (lambda t: t.replace("key_regex", "key_regexx"), "unknown key"),
    (lambda t: t.replace('{ "255" = 1 }', '{ "254" = 1 }'), None),  # caught at load: value 255 unlisted
])
def test_dataset_card_errors(tmp_path: Path, mutate, fragment) -> None:
    _write_png_pair(tmp_path, "a")
    (tmp_path / "meta.csv").write_text("id,device\na,X\n")
    (tmp_path / "card.toml").write_text(mutate(CARD))
    with pytest.raises(ConfigError) as info:
        ds = open_dataset(str(tmp_path / "card.toml"))
        ds.load("a")
    assert fragment is None or fragment in str(info.value)
    assert "255" in str(info.value) or fragment is not None


def test_shape_mismatch_and_unreadable_reported_by_validate(tmp_path: Path) -> None:
    _write_png_pair(tmp_path, "a", label_shape=(21, 24))
    _write_png_pair(tmp_path, "b")
    (tmp_path / "img" / "im_b.png").write_bytes(b"not a png")
    (tmp_path / "meta.csv").write_text("id,device\na,X\nb,Y\n")
    (tmp_path / "card.toml").write_text(CARD)
    problems = open_dataset(str(tmp_path / "card.toml")).validate()
    assert any("case a" in p and "shape" in p for p in problems)
    assert any("case b" in p and "unreadable" in p for p in problems)


def test_metadata_row_missing_is_an_error(tmp_path: Path) -> None:
    _write_png_pair(tmp_path, "a")
    (tmp_path / "meta.csv").write_text("id,device\nzzz,X\n")
    (tmp_path / "card.toml").write_text(CARD)
    with pytest.raises(ConfigError, match="no row for case 'a'"):
        open_dataset(str(tmp_path / "card.toml"))


def test_a_dotted_key_is_not_joined_to_the_row_of_its_first_dot_part(tmp_path: Path) -> None:
    """Image im_p1.2.png is case 'p1.2': the file-stem fallback cut the name at its first dot and gave
    it case p1's row (and marked that row used)."""
    for key in ("p1", "p1.2"):
        _write_png_pair(tmp_path, key)
    (tmp_path / "meta.csv").write_text("id,device\np1,X\n")
    (tmp_path / "card.toml").write_text(CARD)
    with pytest.raises(ConfigError, match=r"no row for case 'p1.2' \(nor 'im_p1.2'\)"):
        open_dataset(str(tmp_path / "card.toml"))
    (tmp_path / "meta.csv").write_text("id,device\np1,X\nim_p1.2,Y\n")  # by the file stem, as before
    ds = open_dataset(str(tmp_path / "card.toml"))
    assert ds.load("p1.2").metadata["device"] == "Y" and ds.load("p1").metadata["device"] == "X"


def test_several_metadata_csvs_are_joined_per_case(tmp_path: Path) -> None:
    for key in ("a", "b"):
        _write_png_pair(tmp_path, key)
    (tmp_path / "meta.csv").write_text("id,device,sex\na,X,F\nb,Y,M\n")
    (tmp_path / "folds.csv").write_text("id,sex,kFold\nim_b,M,2\na,F,1\n")  # b by image stem, a by key
    (tmp_path / "card.toml").write_text(CARD.replace('"meta.csv"', '["meta.csv", "folds.csv"]'))
    ds = open_dataset(str(tmp_path / "card.toml"))
    assert ds.load("a").metadata == {"id": "a", "device": "X", "sex": "F", "kFold": 1}
    assert ds.load("b").metadata["kFold"] == 2 and ds.load("b").metadata["id"] == "b"
    (tmp_path / "folds.csv").write_text("id,sex,kFold\nb,F,2\na,F,1\n")
    with pytest.raises(ConfigError, match="column 'sex' disagrees for case 'b'.*folds.csv"):
        open_dataset(str(tmp_path / "card.toml"))
    (tmp_path / "folds.csv").write_text("id,sex,kFold\na,F,1\n")
    with pytest.raises(ConfigError, match="no row for case 'b'.*folds.csv"):
        open_dataset(str(tmp_path / "card.toml"))
    (tmp_path / "card.toml").write_text(CARD.replace('"meta.csv"', '[]'))
    with pytest.raises(ConfigError, match="metadata: expected a CSV path or a list"):
        open_dataset(str(tmp_path / "card.toml"))


def test_msd_folder(tmp_path: Path) -> None:
    import nibabel as nib

    (tmp_path / "imagesTr").mkdir()
    (tmp_path / "labelsTr").mkdir()
    for key in ("c1", "c2"):
        img = np.random.default_rng(0).random((8, 9, 7)).astype(np.float32)
        lab = np.zeros((8, 9, 7), np.uint8)
        lab[2:5, 2:5, 2:5] = 1
        nib.save(nib.Nifti1Image(img, np.diag([1.5, 1.0, 2.0, 1.0])), tmp_path / "imagesTr" / f"{key}_0000.nii.gz")
        nib.save(nib.Nifti1Image(lab, np.diag([1.5, 1.0, 2.0, 1.0])), tmp_path / "labelsTr" / f"{key}.nii.gz")
    (tmp_path / "dataset.json").write_text('{"labels": {"0": "background", "1": "tumour"}, "modality": {"0": "CT"}}')
    ds = open_dataset(str(tmp_path))
    assert ds.case_ids == ["c1", "c2"] and ds.modality == "ct" and ds.label_names == {1: "tumour"}
    case = ds.load("c1")
    assert case.image.shape == (1, 8, 9, 7) and case.spacing == (1.5, 1.0, 2.0)


def test_missing_data_folder() -> None:
    with pytest.raises(ConfigError, match="no such folder or card"):
        open_dataset("/nonexistent/folder")


def test_busbra_card_reads_real_data(busbra_dir: Path) -> None:
    card = Path(__file__).resolve().parents[2] / "examples" / "busbra.toml"
    ds = open_dataset(str(card))
    assert len(ds) == 1875
    case = ds.load(ds.case_ids[0])
    assert case.image.shape[0] == 1 and set(np.unique(case.label)) == {0, 1}
    assert case.metadata["Device"].startswith("GE")
    assert ds.metadata["Device"].nunique() == 4
    assert sorted(ds.metadata["kFold"].unique()) == [1, 2, 3, 4, 5]  # 5-fold-cv.csv, the card's second CSV


@pytest.mark.parametrize(("names", "expected"), [
    ('{ 1 = "lesion" }', {1: "lesion"}),
    ('{ 0 = "background", 1 = "lesion" }', {1: "lesion"}),  # background is never a class
])
def test_dataset_card_label_names(tmp_path: Path, names: str, expected: dict) -> None:
    _write_png_pair(tmp_path, "a")
    (tmp_path / "meta.csv").write_text("id,device\na,X\n")
    (tmp_path / "card.toml").write_text(CARD + f"label_names = {names}\n")
    assert open_dataset(str(tmp_path / "card.toml")).label_names == expected


@pytest.mark.parametrize("names", ['{ one = "lesion" }', '{ -1 = "lesion" }', '{ 1 = 2 }', '"lesion"',
                                   '{ 1 = "lesion", 01 = "mass" }'])
def test_dataset_card_bad_label_names(tmp_path: Path, names: str) -> None:
    _write_png_pair(tmp_path, "a")
    (tmp_path / "meta.csv").write_text("id,device\na,X\n")
    (tmp_path / "card.toml").write_text(CARD + f"label_names = {names}\n")
    with pytest.raises(ConfigError, match=r"\[dataset\]\.label_names: .*e\.g\. label_names = \{ 1 = \"lesion\" \}"):
        open_dataset(str(tmp_path / "card.toml"))


@pytest.mark.parametrize(("line", "field"), [
    ('images = 3', "[dataset].images"), ('labels = 7', "[dataset].labels"), ('key_regex = 5', "[dataset].key_regex"),
    ('spacing = [-0.5, 0.5]', "[dataset].spacing"), ('spacing = [0, 0]', "[dataset].spacing"),
    ('spacing = 0.5', "[dataset].spacing"), ('spacing = ["a", "b"]', "[dataset].spacing"),
    ('channel = -1', "[dataset].channel"), ('channel = "red"', "[dataset].channel"),
    ('metadata = 5', "[dataset].metadata"), ('labels = "msk/m_{key}_{x}.png"', "[dataset].labels"),
    ('labels = "msk/m_{key}{.png"', "[dataset].labels"),
])
def test_dataset_card_field_types(tmp_path: Path, line: str, field: str) -> None:
    _write_png_pair(tmp_path, "a")
    (tmp_path / "meta.csv").write_text("id,device\na,X\n")
    key = line.split(" = ")[0]
    text = "\n".join(ln for ln in CARD.splitlines() if not ln.startswith(f"{key} =")) + f"\n{line}\n"
    (tmp_path / "card.toml").write_text(text)
    with pytest.raises(ConfigError) as info:
        open_dataset(str(tmp_path / "card.toml"))
    assert field in str(info.value) and "\n" not in str(info.value)


def test_dataset_card_absolute_images_glob(tmp_path: Path) -> None:
    for key in ("a", "b"):
        _write_png_pair(tmp_path, key)
    (tmp_path / "meta.csv").write_text("id,device\na,X\nb,Y\n")
    (tmp_path / "card.toml").write_text(CARD.replace('"img/im_*.png"', f'"{tmp_path.as_posix()}/img/im_*.png"'))
    assert open_dataset(str(tmp_path / "card.toml")).case_ids == ["a", "b"]


@pytest.mark.parametrize(("csv", "fragment"), [
    ("", r"\.metadata: cannot read CSV"), ("id,device\na,X\na,Y\n", r"\.metadata: key 'a' appears more than once"),
    ("key,device\na,X\n", r"\.metadata_key: column 'id' is not in .*meta\.csv .*set metadata_key"),
])
def test_dataset_card_metadata_csv_problems(tmp_path: Path, csv: str, fragment: str) -> None:
    _write_png_pair(tmp_path, "a")
    (tmp_path / "meta.csv").write_text(csv)
    (tmp_path / "card.toml").write_text(CARD)
    with pytest.raises(ConfigError, match=fragment):
        open_dataset(str(tmp_path / "card.toml"))


@pytest.mark.parametrize("regex", [r"im_(?P<key>x)?a\\.png", r"im_(?P<key>.*)a\\.png"])
def test_key_regex_whose_key_captures_nothing_is_refused(tmp_path: Path, regex: str) -> None:
    _write_png_pair(tmp_path, "a")
    (tmp_path / "meta.csv").write_text("id,device\na,X\n")
    (tmp_path / "card.toml").write_text(CARD.replace('im_(?P<key>.+)\\\\.png', regex))
    with pytest.raises(ConfigError, match=r"\[dataset\]\.key_regex: .* matches 'im_a\.png' but its group 'key' "
                                          r"captures nothing"):
        open_dataset(str(tmp_path / "card.toml"))


def test_metadata_case_id_column_does_not_replace_the_case_id(tmp_path: Path) -> None:
    _write_png_pair(tmp_path, "a")
    (tmp_path / "meta.csv").write_text("id,case_id,device\na,17,X\n")
    (tmp_path / "card.toml").write_text(CARD)
    meta = open_dataset(str(tmp_path / "card.toml")).metadata
    assert meta.index.tolist() == ["a"] and meta.loc["a", "device"] == "X"


def _nifti_case(root: Path, shapes: list[tuple[int, ...]], label_shape: tuple[int, ...], *, nan: bool = False) -> None:
    import nibabel as nib

    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    for c, shape in enumerate(shapes):
        data = np.random.default_rng(c).normal(size=shape).astype(np.float32)
        if nan:
            data[0, 0, 0] = np.nan
        nib.save(nib.Nifti1Image(data, np.eye(4)), root / "imagesTr" / f"c0_{c:04d}.nii.gz")
    nib.save(nib.Nifti1Image(np.zeros(label_shape, np.uint8), np.eye(4)), root / "labelsTr" / "c0.nii.gz")


def test_channel_file_of_another_shape_is_named(tmp_path: Path) -> None:
    _nifti_case(tmp_path, [(8, 10, 12), (8, 10, 11)], (8, 10, 12))
    ds = open_dataset(str(tmp_path))
    problems = ds.validate()
    assert len(problems) == 1 and "c0_0001.nii.gz has shape (8, 10, 11)" in problems[0]
    with pytest.raises(ConfigError, match=r"c0_0001\.nii\.gz has spatial shape \(8, 10, 11\)"):
        ds.load("c0")


def test_nan_image_is_named_at_load(tmp_path: Path) -> None:
    _nifti_case(tmp_path, [(8, 10, 12)], (8, 10, 12), nan=True)
    with pytest.raises(ConfigError, match=r"c0_0000\.nii\.gz has 1 NaN/Inf voxels"):
        open_dataset(str(tmp_path)).load("c0")


def test_card_spacing_of_the_wrong_length_is_named(tmp_path: Path) -> None:
    _write_png_pair(tmp_path, "a")
    (tmp_path / "meta.csv").write_text("id,device\na,X\n")
    (tmp_path / "card.toml").write_text(CARD + "spacing = [0.5, 0.5, 0.5]\n")
    ds = open_dataset(str(tmp_path / "card.toml"))
    assert any("spacing [0.5, 0.5, 0.5] needs one value per spatial axis (2)" in p for p in ds.validate())
    with pytest.raises(ConfigError, match="needs one value per spatial axis"):
        ds.load("a")


def _msd_two_cases(root: Path) -> None:
    _nifti_case(root, [(8, 10, 12)], (8, 10, 12))
    import shutil

    shutil.copy(root / "imagesTr" / "c0_0000.nii.gz", root / "imagesTr" / "c1_0000.nii.gz")
    shutil.copy(root / "labelsTr" / "c0.nii.gz", root / "labelsTr" / "c1.nii.gz")


def test_msd_metadata_csv_is_read_and_numeric(tmp_path: Path) -> None:
    _msd_two_cases(tmp_path)
    (tmp_path / "metadata.csv").write_text("case_id,sex,age\nc0,F,61\nc1,M,\n")
    meta = open_dataset(str(tmp_path)).metadata
    assert meta.loc["c0", "age"] == 61 and meta.loc["c1", "sex"] == "M"


@pytest.mark.parametrize(("csv", "fragment"), [
    ("", "cannot read CSV"), ("id,sex\nc0,F\nc1,M\n", "column .case_id. is not in .*add a case_id column"),
    ("case_id,sex\nc0,F\nc0,M\nc1,M\n", "'c0' appears more than once"), ("case_id,sex\nc0,F\n", r"no row for case\(s\) \['c1'\]"),
    (b"case_id,sex\nc0,\xff\nc1,M\n", "cannot read CSV"),
])
def test_msd_metadata_csv_problems(tmp_path: Path, csv: str | bytes, fragment: str) -> None:
    _msd_two_cases(tmp_path)
    path = tmp_path / "metadata.csv"
    path.write_bytes(csv) if isinstance(csv, bytes) else path.write_text(csv)
    with pytest.raises(ConfigError, match=fragment):
        open_dataset(str(tmp_path))


@pytest.mark.parametrize("text", ["[1, 2, 3]", '{"labels": ["background", "organ"]}'])
def test_msd_dataset_json_of_the_wrong_shape(tmp_path: Path, text: str) -> None:
    _msd_two_cases(tmp_path)
    (tmp_path / "dataset.json").write_text(text)
    with pytest.raises(ConfigError, match=r"dataset\.json: .*fix or remove it"):
        open_dataset(str(tmp_path))


def test_card_suffix_is_case_insensitive(tmp_path: Path) -> None:
    _write_png_pair(tmp_path, "a")
    (tmp_path / "meta.csv").write_text("id,device\na,X\n")
    (tmp_path / "CARD.TOML").write_text(CARD)
    assert open_dataset(str(tmp_path / "CARD.TOML")).case_ids == ["a"]


def test_label_maps_that_are_4d_or_negative_are_refused(tmp_path: Path) -> None:
    import nibabel as nib

    from harness.datasets.io import read_label

    four = np.zeros((4, 5, 6, 2), np.uint8)
    nib.save(nib.Nifti1Image(four, np.eye(4)), tmp_path / "four.nii.gz")
    with pytest.raises(ConfigError, match=r"four\.nii\.gz: label map has 2 volumes"):
        read_label(tmp_path / "four.nii.gz")
    negative = np.zeros((4, 5, 6), np.int16)
    negative[1, 1, 1] = -1
    nib.save(nib.Nifti1Image(negative, np.eye(4)), tmp_path / "neg.nii.gz")
    with pytest.raises(ConfigError, match=r"negative values \(min -1\)"):
        read_label(tmp_path / "neg.nii.gz")
    assert read_label(tmp_path / "neg.nii.gz", label_values={-1: 2})[1, 1, 1] == 2  # mapped: fine


def test_card_label_values_to_negative_classes(tmp_path: Path) -> None:
    _write_png_pair(tmp_path, "a")
    (tmp_path / "meta.csv").write_text("id,device\na,X\n")
    (tmp_path / "card.toml").write_text(CARD.replace('{ "255" = 1 }', '{ "255" = -1 }'))
    with pytest.raises(ConfigError, match=r"\[dataset\]\.label_values: classes must be ≥ 0"):
        open_dataset(str(tmp_path / "card.toml"))


def test_card_label_values_giving_one_raw_value_twice_are_refused(tmp_path: Path) -> None:
    """"1" and "01" are one raw value: the last entry silently won (organ pixels became lesion)."""
    _write_png_pair(tmp_path, "a")
    (tmp_path / "meta.csv").write_text("id,device\na,X\n")
    (tmp_path / "card.toml").write_text(CARD.replace('{ "255" = 1 }', '{ "255" = 1, "0255" = 2 }'))
    with pytest.raises(ConfigError, match=r"label_values: raw value\(s\) \[255\] given more than once "
                                          r"\('255', '0255'\); keep one entry each"):
        open_dataset(str(tmp_path / "card.toml"))


def test_msd_case_behind_a_dangling_link_is_named(tmp_path: Path) -> None:
    """A split folder of links whose target moved: the case was silently dropped."""
    _msd_two_cases(tmp_path)
    (tmp_path / "imagesTr" / "c2_0000.nii.gz").symlink_to(tmp_path / "moved" / "c2_0000.nii.gz")
    with pytest.raises(ConfigError, match=r"c2_0000\.nii\.gz: a symbolic link to .*moved/c2_0000\.nii\.gz.*cannot be "
                                          r"read \(missing, or a loop\); fix the link or remove it"):
        open_dataset(str(tmp_path))


@pytest.mark.parametrize(("csv", "fragment"), [
    ("case_id,sex,sex\nc0,F,M\nc1,M,F\n", r"column\(s\) \['sex'\] appear more than once in the header of .*metadata\.csv"),
])
def test_msd_metadata_header_problems(tmp_path: Path, csv: str, fragment: str) -> None:
    _msd_two_cases(tmp_path)
    (tmp_path / "metadata.csv").write_text(csv)
    with pytest.raises(ConfigError, match=fragment):
        open_dataset(str(tmp_path))


def test_metadata_key_cells_are_trimmed_like_every_cell(tmp_path: Path) -> None:
    _msd_two_cases(tmp_path)
    (tmp_path / "metadata.csv").write_text("case_id,sex\nc0 ,F\n c1,M\n")
    meta = open_dataset(str(tmp_path)).metadata
    assert meta.loc["c0", "sex"] == "F" and meta.loc["c1", "sex"] == "M"


@pytest.mark.parametrize(("modality", "expected"), [('"MRI"', "mri"), ('["CT"]', "ct"), ('{"0": " T2 "}', "mri")])
def test_msd_modality_as_text_list_or_table(tmp_path: Path, modality: str, expected: str) -> None:
    _msd_two_cases(tmp_path)
    (tmp_path / "dataset.json").write_text(f'{{"labels": {{"0": "background", "1": "organ"}}, "modality": {modality}}}')
    assert open_dataset(str(tmp_path)).modality == expected


def test_an_empty_nifti_is_named_at_the_header_check(tmp_path: Path) -> None:
    import nibabel as nib

    from harness.datasets.io import probe

    nib.save(nib.Nifti1Image(np.zeros((0, 32, 1), np.float32), np.eye(4)), tmp_path / "empty.nii.gz")
    with pytest.raises(ConfigError, match=r"empty\.nii\.gz: empty NIfTI \(shape \(0, 32, 1\)\); replace or remove"):
        probe(tmp_path / "empty.nii.gz")


def test_blank_header_cells_are_not_repeated_columns(tmp_path: Path) -> None:
    """Spreadsheet exports end rows with empty columns; pandas names them "Unnamed: N"."""
    _msd_two_cases(tmp_path)
    (tmp_path / "metadata.csv").write_text("case_id,sex,,\nc0,F,,\nc1,M,,\n")
    assert open_dataset(str(tmp_path)).metadata.loc["c1", "sex"] == "M"


@pytest.mark.parametrize("value", ["5", "[[1]]", '"255"'])
def test_card_label_values_that_are_not_a_table(tmp_path: Path, value: str) -> None:
    _write_png_pair(tmp_path, "a")
    (tmp_path / "meta.csv").write_text("id,device\na,X\n")
    (tmp_path / "card.toml").write_text(CARD.replace('{ "255" = 1 }', value))
    with pytest.raises(ConfigError, match=r"label_values"):
        open_dataset(str(tmp_path / "card.toml"))


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_a_header_promising_more_voxels_than_the_file_holds_is_refused_before_reading(tmp_path: Path,
                                                                                      suffix: str) -> None:
    """A 65-byte .nii.gz claiming 1200x1000x1000 voxels made nibabel allocate 1.2 GB first."""
    import gzip

    import nibabel as nib

    from harness.datasets.io import probe, read_image

    header = nib.Nifti1Header()
    header.set_data_shape((1200, 1000, 1000))
    header.set_data_dtype(np.uint8)
    raw = header.binaryblock + b"\0" * 4 + b"\0" * 16  # header, extension flag, 16 voxels
    path = tmp_path / f"huge{suffix}"
    path.write_bytes(gzip.compress(raw) if suffix.endswith(".gz") else raw)
    for read in (probe, read_image):
        with pytest.raises(ConfigError, match=r"header promises 1,200,000,000 bytes of voxel data .* more than the "
                                              r"\d+-byte file can hold"):
            read(path)


def test_label_values_above_float32_precision_stay_exact(tmp_path: Path) -> None:
    """Labels passed through float32: 16777217 read as 16777216 and matched the wrong label_values."""
    import nibabel as nib

    from harness.datasets.io import read_label

    raw = np.zeros((4, 5, 6), np.int32)
    raw[1, 1, 1], raw[2, 2, 2] = 16_777_217, 16_777_216
    nib.save(nib.Nifti1Image(raw, np.eye(4)), tmp_path / "big.nii.gz")
    label = read_label(tmp_path / "big.nii.gz", label_values={16_777_217: 1, 16_777_216: 2})
    assert label[1, 1, 1] == 1 and label[2, 2, 2] == 2


def test_a_missing_suite_data_path_is_blamed_on_the_suite_not_on_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """The error said "--data examples/busbra.toml: ..." to a user who gave no --data."""
    from harness.cli import main

    suite = tmp_path / "s.toml"
    suite.write_text('[suite]\nname = "s"\ndata = "cards/mine.toml"\nmetrics = ["dice"]\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--suite", str(suite), "--out", str(tmp_path / "r")]) == 3
    err = " ".join(capsys.readouterr().err.split())
    assert f"suite {suite}: data cards/mine.toml: dataset card not found" in err and "--data cards" not in err
    assert f"relative to the current folder, {tmp_path}" in err
    assert main(["run", "--suite", str(suite), "--data", "nope.toml", "--out", str(tmp_path / "r")]) == 3
    assert "--data nope.toml: dataset card not found" in " ".join(capsys.readouterr().err.split())
