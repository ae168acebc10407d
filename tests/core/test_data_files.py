"""Files that once read wrong without a word: palette and colour PNGs, multi-page TIFFs, 5D NIfTI,
labels off the image grid, cases with other channel counts, MSD names, metadata cells, card values."""
from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from harness.analysis.cohorts import resolve_cohorts
from harness.datasets import open_dataset
from harness.datasets.io import probe_shape, read_image, read_label
from harness.datasets.metadata import coerce_cell
from harness.errors import ConfigError

GREY = (np.arange(16 * 16) % 256).reshape(16, 16).astype(np.uint8)
MASK = np.zeros((16, 16), np.uint8)
MASK[4:8, 4:8] = 255


def test_palette_image_reads_as_intensities_and_palette_mask_as_indices(tmp_path: Path) -> None:
    Image.fromarray(GREY).convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(tmp_path / "p.png")
    image, _ = read_image(tmp_path / "p.png")
    assert image.shape == (1, 16, 16) and abs(image.mean() - GREY.mean()) < 5  # not indices 0..15
    assert probe_shape(tmp_path / "p.png") == ((16, 16), 1)
    mask = Image.fromarray((MASK > 0).astype(np.uint8) * 2).convert("P")
    mask.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * 759)  # class 2 drawn green
    mask.save(tmp_path / "pm.png")
    assert set(np.unique(read_label(tmp_path / "pm.png"))) == {0, 2}


def test_colour_mask_is_refused_and_grey_ones_read(tmp_path: Path) -> None:
    green = np.zeros((16, 16, 3), np.uint8)
    green[..., 1] = MASK
    Image.fromarray(green).save(tmp_path / "green.png")
    with pytest.raises(ConfigError, match=r"green\.png: colour mask \(its colour channels differ\)"):
        read_label(tmp_path / "green.png", label_values={255: 1})
    for mode in ("RGB", "RGBA", "LA"):
        Image.fromarray(MASK).convert(mode).save(tmp_path / f"{mode}.png")
        assert read_label(tmp_path / f"{mode}.png", label_values={255: 1}).sum() == 16


def test_multi_page_tiff_and_5d_nifti_are_refused(tmp_path: Path) -> None:
    pages = [Image.fromarray(GREY) for _ in range(3)]
    pages[0].save(tmp_path / "stack.tif", save_all=True, append_images=pages[1:])
    for read in (probe_shape, read_image):
        with pytest.raises(ConfigError, match=r"stack\.tif: multi-page image \(3 pages\)"):
            read(tmp_path / "stack.tif")
    nib.save(nib.Nifti1Image(np.zeros((4, 5, 6, 1, 2), np.float32), np.eye(4)), tmp_path / "five.nii.gz")
    with pytest.raises(ConfigError, match=r"five\.nii\.gz: 5D NIfTI"):
        probe_shape(tmp_path / "five.nii.gz")


def _msd(root: Path, images: dict[str, tuple[np.ndarray, np.ndarray]], labels: dict[str, np.ndarray]) -> Path:
    """An MSD folder: image file name -> (data, affine); label file name -> affine."""
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    for name, (data, affine) in images.items():
        nib.save(nib.Nifti1Image(data, affine), root / "imagesTr" / name)
    for name, affine in labels.items():
        nib.save(nib.Nifti1Image(np.zeros((6, 7, 8), np.uint8), affine), root / "labelsTr" / name)
    return root


def _volume(channels: int = 1) -> np.ndarray:
    shape = (6, 7, 8) if channels == 1 else (6, 7, 8, channels)
    return np.random.default_rng(0).normal(size=shape).astype(np.float32)


def test_label_off_the_image_grid_is_a_validate_problem(tmp_path: Path) -> None:
    flipped = np.diag([-2.0, 1.0, 1.0, 1.0])
    root = _msd(tmp_path, {"a.nii.gz": (_volume(), np.eye(4)), "b.nii.gz": (_volume(), np.eye(4))},
                {"a.nii.gz": np.eye(4), "b.nii.gz": flipped})
    problems = open_dataset(str(root)).validate()
    assert len(problems) == 1 and problems[0].startswith("case b: label ") and "affines differ" in problems[0]


def test_zero_voxel_size_is_a_validate_problem(tmp_path: Path) -> None:
    root = _msd(tmp_path, {"a.nii": (_volume(), np.eye(4))}, {"a.nii.gz": np.eye(4)})
    raw = bytearray((root / "imagesTr" / "a.nii").read_bytes())
    raw[84:88] = np.float32(0).tobytes()  # pixdim[2] (nibabel fixes it to 1 on load, with a log line)
    (root / "imagesTr" / "a.nii").write_bytes(bytes(raw))
    (problem,) = open_dataset(str(root)).validate()
    assert "has voxel size [1.0, 0.0, 1.0] in its header (must be > 0)" in problem


def test_a_case_with_other_channels_is_a_validate_problem(tmp_path: Path) -> None:
    images = {f"{k}.nii.gz": (_volume(), np.eye(4)) for k in "abc"} | {"d.nii.gz": (_volume(2), np.eye(4))}
    root = _msd(tmp_path, images, {f"{k}.nii.gz": np.eye(4) for k in "abcd"})
    assert open_dataset(str(root)).validate() == [
        "case d: 2 image channel(s), while 3 case(s) have 1; give every case the same channels"]


def test_msd_single_file_cases_ending_in_four_digits_stay_cases(tmp_path: Path) -> None:
    names = [f"patient_{k:04d}.nii.gz" for k in (1, 2, 3)]
    root = _msd(tmp_path, {n: (_volume(), np.eye(4)) for n in names}, {n: np.eye(4) for n in names})
    dataset = open_dataset(str(root))
    assert dataset.case_ids == ["patient_0001", "patient_0002", "patient_0003"] and not dataset.validate()


def test_msd_names_suffixes_and_stray_files(tmp_path: Path) -> None:
    root = _msd(tmp_path, {"A.NII.GZ": (_volume(2), np.eye(4)), "b_0000.nii.gz": (_volume(), np.eye(4)),
                           "b_0001.nii.gz": (_volume(), np.eye(4)), "c.nii": (_volume(2), np.eye(4))},
                {"A.nii.gz": np.eye(4), "b.nii.gz": np.eye(4), "c.nii.gz": np.eye(4)})
    (root / "imagesTr" / "notes.txt").write_text("acquired 2019")
    (root / "imagesTr" / "Thumbs.db").write_bytes(b"\0")
    dataset = open_dataset(str(root))
    assert dataset.case_ids == ["A", "b", "c"] and not dataset.validate()
    assert dataset.load("b").image.shape[0] == 2 and dataset.files("c").label.name == "c.nii.gz"
    shutil.copy(root / "imagesTr" / "c.nii", root / "imagesTr" / "c.nii.gz")
    with pytest.raises(ConfigError, match=r"imagesTr: c\.nii and c\.nii\.gz are the same case; keep one"):
        open_dataset(str(root))


def test_msd_channel_files_must_be_numbered_from_zero(tmp_path: Path) -> None:
    root = _msd(tmp_path, {"b_0000.nii.gz": (_volume(), np.eye(4)), "b_0002.nii.gz": (_volume(), np.eye(4))},
                {"b.nii.gz": np.eye(4)})
    with pytest.raises(ConfigError, match=r"case b: channel files .* are not numbered _0000 to _0001"):
        open_dataset(str(root))


def _png_card(root: Path, names: list[str], extra: str = "") -> Path:
    (root / "img").mkdir()
    (root / "msk").mkdir()
    for name in names:
        Image.fromarray(GREY).save(root / "img" / name)
        Image.fromarray(MASK).save(root / "msk" / f"{name.rsplit('.', 1)[0]}.png")
    card = root / "card.toml"
    card.write_text(f'[dataset]\nimages = "img/*"\nlabels = "msk/{{key}}.png"\nlabel_values = {{ "255" = 1 }}\n{extra}')
    return card


def test_default_key_regex_takes_any_suffix_case_and_bmp(tmp_path: Path) -> None:
    assert open_dataset(str(_png_card(tmp_path, ["a.png", "B.PNG", "c.bmp"]))).case_ids == ["B", "a", "c"]


@pytest.mark.parametrize(("values", "fragment"), [
    ('{ "255" = [1] }', "classes must be integers"), ('{ "255" = 1.9 }', "classes must be integers"),
    ('{ "255" = true }', "classes must be integers"), ('{ "0" = 1, "255" = 1 }', "raw value 0 is always background"),
])
def test_card_label_values_must_be_integer_classes(tmp_path: Path, values: str, fragment: str) -> None:
    card = _png_card(tmp_path, ["a.png"])
    card.write_text(card.read_text().replace('{ "255" = 1 }', values))
    with pytest.raises(ConfigError, match=rf"label_values: {fragment}"):
        open_dataset(str(card))


def test_metadata_cells_are_trimmed_and_empty_ones_missing(tmp_path: Path) -> None:
    card = _png_card(tmp_path, ["a.png", "b.png", "c.png", "d.png"], 'metadata = "meta.csv"\n')
    (tmp_path / "meta.csv").write_text("case,sex,age,site\na,F,30,01\nb, F,,1\nc,M ,70,01\nd,M,50,02\n")
    meta = open_dataset(str(card)).metadata
    assert sorted(meta["sex"]) == ["F", "F", "M", "M"] and meta["age"].dtype.kind == "f"
    assert meta["age"].isna().tolist() == [False, True, False, False]
    assert meta["site"].tolist() == ["01", 1, "01", "02"]  # codes with a leading zero stay text
    groups = resolve_cohorts(meta.reset_index(), ["sex", "age"], bins={"age": [0, 40, 65, 120]})
    assert groups["sex"].value_counts().to_dict() == {"F": 2, "M": 2} and groups["age"].isna().sum() == 1


@pytest.mark.parametrize(("cell", "value"), [
    ("12", 12), (" 12 ", 12), ("-3", -3), ("2.5", 2.5), (".5", 0.5), ("1e3", 1000.0), ("0", 0),
    ("", None), ("NaN", None), ("NA", None), ("n/a", None), ("NULL", None), ("none", "none"), ("007", "007"), ("1_000", "1_000"), ("0x10", "0x10"), ("4a", "4a"),
])
def test_coerce_cell(cell: str, value: object) -> None:
    assert coerce_cell(cell) == value and type(coerce_cell(cell)) is type(value)


@pytest.mark.parametrize(("spec", "fragment"), [
    ("phantom2d:n=0", "n must be at least 1"), ("phantom2d:n=²", "phantom options are n=INT"),
    ("phantom2d:n=1,n=3", "n is given twice"),
])
def test_phantom_spec_problems(spec: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        open_dataset(spec)


def test_limit_validates_only_the_cases_it_takes(tmp_path: Path) -> None:
    """`--limit N` could not get past a broken case beyond the first N: the whole set was validated."""
    root = _msd(tmp_path, {f"{k}.nii.gz": (_volume(), np.eye(4)) for k in "abc"},
                {"a.nii.gz": np.eye(4), "b.nii.gz": np.eye(4)})  # c has no label
    dataset = open_dataset(str(root))
    assert len(dataset.validate()) == 1 and dataset.validate()[0].startswith("case c: ")
    assert dataset.subset(2).validate() == []


def test_sixteen_bit_images_are_one_channel(tmp_path: Path) -> None:
    """The channel count was the length of the mode name: "I;16" counted as 4 channels, so 8- and
    16-bit images in one set were refused as having different channels."""
    (tmp_path / "img").mkdir()
    (tmp_path / "msk").mkdir()
    for name, data in (("a", GREY), ("b", GREY.astype(np.uint16) * 200)):
        Image.fromarray(data).save(tmp_path / "img" / f"{name}.png")
        Image.fromarray(MASK).save(tmp_path / "msk" / f"{name}.png")
    with Image.open(tmp_path / "img" / "b.png") as sixteen:
        assert sixteen.mode.startswith("I")
    assert probe_shape(tmp_path / "img" / "b.png") == ((16, 16), 1)
    card = tmp_path / "card.toml"
    card.write_text('[dataset]\nimages = "img/*"\nlabels = "msk/{key}.png"\nlabel_values = { "255" = 1 }\n')
    assert open_dataset(str(card)).validate() == []


def test_a_blank_metadata_cell_takes_the_source_scanner(tmp_path: Path) -> None:
    card = _png_card(tmp_path, ["a.png", "b.png"], 'metadata = "meta.csv"\nscanner = "GE"\n')
    (tmp_path / "meta.csv").write_text("case,scanner,sex\na,,F\nb,GE, M\n")
    meta = open_dataset(str(card)).metadata
    assert meta["scanner"].tolist() == ["GE", "GE"]


def test_metadata_csvs_agree_after_trimming(tmp_path: Path) -> None:
    card = _png_card(tmp_path, ["a.png"], 'metadata = ["m1.csv", "m2.csv"]\n')
    (tmp_path / "m1.csv").write_text("case,sex\na,F\n")
    (tmp_path / "m2.csv").write_text("case,sex\na, F\n")
    assert open_dataset(str(card)).metadata["sex"].tolist() == ["F"]


def test_an_unoriented_label_on_the_same_voxels_is_accepted(tmp_path: Path) -> None:
    """Some tools write masks with sform and qform codes 0: nibabel then gives a centred fallback
    affine, which differs from the image's although the voxels are the same."""
    root = _msd(tmp_path, {"a.nii.gz": (_volume(), np.diag([0.8, 0.8, 3.0, 1.0]))}, {})
    label = nib.Nifti1Image(np.zeros((6, 7, 8), np.uint8), np.diag([0.8, 0.8, 3.0, 1.0]))
    label.set_sform(None, code=0)
    label.set_qform(None, code=0)
    nib.save(label, root / "labelsTr" / "a.nii.gz")
    assert open_dataset(str(root)).validate() == []
    coarse = nib.Nifti1Image(np.zeros((6, 7, 8), np.uint8), np.diag([1.0, 1.0, 1.0, 1.0]))
    coarse.set_sform(None, code=0)
    coarse.set_qform(None, code=0)
    nib.save(coarse, root / "labelsTr" / "a.nii.gz")
    (problem,) = open_dataset(str(root)).validate()  # other voxel sizes: still refused
    assert "is not on the grid" in problem


def test_a_card_spacing_states_the_grid(tmp_path: Path) -> None:
    root = _msd(tmp_path, {"a.nii.gz": (_volume(), np.eye(4))}, {"a.nii.gz": np.diag([-2.0, 1.0, 1.0, 1.0])})
    (root / "card.toml").write_text('[dataset]\nimages = "imagesTr/*.nii.gz"\nlabels = "labelsTr/{key}.nii.gz"\n'
                                    "spacing = [1.0, 1.0, 1.0]\n")
    assert open_dataset(str(root)).validate()  # the folder: the headers disagree
    assert open_dataset(str(root / "card.toml")).validate() == []  # the card vouches for the grid


def test_a_label_with_several_volumes_is_a_validate_problem(tmp_path: Path) -> None:
    root = _msd(tmp_path, {"a.nii.gz": (_volume(), np.eye(4))}, {})
    nib.save(nib.Nifti1Image(np.zeros((6, 7, 8, 2), np.uint8), np.eye(4)), root / "labelsTr" / "a.nii.gz")
    (problem,) = open_dataset(str(root)).validate()
    assert problem.endswith("a.nii.gz: label map has 2 volumes (4D); give one 3D label map per case")


@pytest.mark.parametrize("unit, pixdim", [("micron", 500.0), ("meter", 0.0005), ("mm", 0.5), ("unknown", 0.5)])
def test_nifti_voxel_sizes_are_converted_to_mm(tmp_path: Path, unit: str, pixdim: float) -> None:
    """A header in microns (pixdim 500 for 0.5 mm) was read as 500 mm: HD95 1000 times too large."""
    image = nib.Nifti1Image(_volume(), np.diag([pixdim, pixdim, pixdim, 1.0]))
    image.header.set_xyzt_units(unit)
    nib.save(image, tmp_path / "a.nii.gz")
    _, zooms = read_image(tmp_path / "a.nii.gz")
    assert zooms == pytest.approx((0.5,) * 3)


def test_a_header_whose_pixdim_and_sform_disagree_is_a_validate_problem(tmp_path: Path) -> None:
    """Spacing came from pixdim (1 mm) while the grid check trusted the sform (2 mm)."""
    root = _msd(tmp_path, {"a.nii.gz": (_volume(), np.eye(4))}, {"a.nii.gz": np.eye(4)})
    image = nib.load(root / "imagesTr" / "a.nii.gz")
    odd = nib.Nifti1Image(np.asarray(image.dataobj), None)
    odd.set_sform(np.diag([2.0, 2.0, 2.0, 1.0]), code=1)
    odd.set_qform(None, code=0)
    odd.header.set_zooms((1.0, 1.0, 1.0))
    nib.save(odd, root / "imagesTr" / "a.nii.gz")
    (problem,) = open_dataset(str(root)).validate()
    assert "its header's voxel size (pixdim 1 x 1 x 1) differs from its sform affine's (2 x 2 x 2)" in problem


def test_exif_rotated_images_are_read_as_displayed(tmp_path: Path) -> None:
    """A JPEG stored rotated with EXIF orientation 3 was read as stored: its mask (drawn on the
    displayed image) covered the object for only two thirds of its pixels."""
    shown = np.zeros((20, 30), np.uint8)
    shown[2:8, 3:12] = 200  # the object, top left as displayed
    exif = Image.Exif()
    exif[0x0112] = 3  # rotated 180 degrees
    Image.fromarray(shown[::-1, ::-1].copy()).save(tmp_path / "img.png", exif=exif)
    image, _ = read_image(tmp_path / "img.png")
    assert np.array_equal(image[0], shown.astype(np.float32))
    exif[0x0112] = 6  # a quarter turn: height and width swap
    Image.fromarray(np.rot90(shown).copy()).save(tmp_path / "turned.png", exif=exif)
    assert probe_shape(tmp_path / "turned.png")[0] == read_image(tmp_path / "turned.png")[0].shape[1:]


def test_masks_in_the_alpha_channel_and_jpeg_masks_are_refused(tmp_path: Path) -> None:
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[2:5, 2:5, 3] = 255  # black everywhere; the lesion only in the alpha channel
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    with pytest.raises(ConfigError, match=r"alpha\.png: the mask's classes are in its alpha"):
        read_label(tmp_path / "alpha.png")
    grey = np.zeros((10, 10), np.uint8)
    grey[2:5, 2:5] = 1
    Image.fromarray(grey).save(tmp_path / "mask.jpg")
    with pytest.raises(ConfigError, match=r"mask\.jpg: a JPEG mask; .*save them as PNG"):
        read_label(tmp_path / "mask.jpg")


@pytest.mark.parametrize("text, encoding, said", [
    ("case_id;sex;age\nc0;F;34\n", "utf-8", r"single column 'case_id;sex;age': it looks separated by ';'"),
    ("case_id\tsex\nc0\tF\n", "utf-8", r"separated by '\\t'.*must be comma-separated"),
    ("case_id,site\nc0,Hôpital\n", "latin-1", r"it is not UTF-8 text .*save it as UTF-8"),
])
def test_metadata_csv_separator_and_encoding_are_named(tmp_path: Path, text: str, encoding: str, said: str) -> None:
    """A semicolon CSV was reported as a missing case in column 'case_id;sex;age' (with advice to set
    metadata_key); a Latin-1 file as a bare codec error."""
    from harness.datasets.metadata import read_metadata_csv

    (tmp_path / "meta.csv").write_bytes(text.encode(encoding))
    with pytest.raises(ConfigError, match=said):
        read_metadata_csv(tmp_path / "meta.csv")


def test_a_card_over_nnunet_channel_files_points_at_the_folder_form(tmp_path: Path) -> None:
    """Its second channel's file became a case of its own whose label was 'file not found', no more."""
    for sub in ("imagesTr", "labelsTr"):
        (tmp_path / sub).mkdir()
    for channel in (0, 1):
        nib.save(nib.Nifti1Image(_volume(), np.eye(4)), tmp_path / "imagesTr" / f"a_{channel:04d}.nii.gz")
    nib.save(nib.Nifti1Image(np.zeros((6, 7, 8), np.uint8), np.eye(4)), tmp_path / "labelsTr" / "a.nii.gz")
    (tmp_path / "card.toml").write_text('[dataset]\nimages = "imagesTr/*.nii.gz"\nlabels = "labelsTr/{key}.nii.gz"\n')
    (problem,) = open_dataset(str(tmp_path / "card.toml")).validate()
    assert "a_0001.nii.gz looks like an nnU-Net channel file: give the folder itself as --data" in problem
    assert open_dataset(str(tmp_path)).validate() == []  # the folder form groups the channels


def test_a_channel_the_images_lack_is_a_validate_problem(tmp_path: Path) -> None:
    """channel = 2 on grey PNGs, 5 on RGB ones and any channel on NIfTI were ignored (or failed first
    when the case loaded during the run, as ERROR items); the header check names them before."""
    (tmp_path / "img").mkdir()
    (tmp_path / "msk").mkdir()
    Image.fromarray(GREY).save(tmp_path / "img" / "grey.png")
    Image.fromarray(np.stack([GREY] * 3, axis=-1)).save(tmp_path / "img" / "rgb.png")
    nib.save(nib.Nifti1Image(GREY[..., None].astype(np.float32), np.eye(4)), tmp_path / "img" / "vol.nii.gz")
    for name in ("grey", "rgb"):
        Image.fromarray(MASK).save(tmp_path / "msk" / f"{name}.png")
    nib.save(nib.Nifti1Image((MASK[..., None] > 0).astype(np.uint8), np.eye(4)), tmp_path / "msk" / "vol.nii.gz")
    card = tmp_path / "card.toml"

    def problems(images: str, channel: int, suffix: str = ".png") -> list[str]:
        card.write_text(f'[dataset]\nimages = "img/{images}"\nlabels = "msk/{{key}}{suffix}"\n'
                        f'label_values = {{ "255" = 1 }}\nchannel = {channel}\n')
        return open_dataset(str(card)).validate()

    assert problems("rgb.png", 1) == []
    assert read_image(tmp_path / "img" / "rgb.png", channel=1)[0].shape == (1, 16, 16)
    [rgb] = problems("rgb.png", 5)
    assert "channel 5 requested but the image has 3 channels; use 0..2" in rgb
    [grey] = problems("grey.png", 2)
    assert "channel = 2 is set but the image has one band (grey); remove channel from the card" in grey
    card.write_text('[dataset]\nimages = "img/vol.nii.gz"\nlabels = "msk/{key}.nii.gz"\nchannel = 0\n')
    [vol] = open_dataset(str(card)).validate()
    assert "channel = 0 picks a band of an RGB/RGBA raster image, not of a NIfTI volume" in vol
