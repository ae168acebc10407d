"""Multi-source cards beyond tests/core/test_multisource.py: per-source keys really are per source."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness.datasets import open_dataset
from harness.errors import ConfigError


def _write(root: Path, names: list[str], value: int) -> None:
    root.mkdir(parents=True)
    for name in names:
        Image.fromarray(np.full((10, 12), 50, np.uint8)).save(root / name)
        mask = np.zeros((10, 12), np.uint8)
        mask[2:6, 3:8] = value
        Image.fromarray(mask).save(root / f"mask_{name}")


CARD = """
[[sources]]
site = "north"
scanner = "GE"
images = "n/img_*.png"
labels = "n/mask_img_{key}.png"
key_regex = "img_(?P<key>\\\\d+)\\\\.png"
label_values = { "255" = 1 }
spacing = [0.5, 0.5]
metadata = "n.csv"
metadata_key = "id"
modality = "us"

[[sources]]
site = "south"
images = "s/scan-*.png"
labels = "s/mask_scan-{key}.png"
key_regex = "scan-(?P<key>[a-z]+)\\\\.png"
label_values = { "1" = 1 }
spacing = [0.2, 0.3]
metadata = "s.csv"
modality = "us"
"""


def test_each_source_keeps_its_own_keys(tmp_path: Path) -> None:
    _write(tmp_path / "n", ["img_1.png", "img_2.png"], 255)
    _write(tmp_path / "s", ["scan-ab.png"], 1)
    (tmp_path / "n.csv").write_text("id,age\n1,40\n2,61\n")
    (tmp_path / "s.csv").write_text("case,age,scanner\nab,33,Toshiba\n")
    (tmp_path / "card.toml").write_text(CARD)
    ds = open_dataset(str(tmp_path / "card.toml"))
    assert ds.case_ids == ["north/1", "north/2", "south/ab"]
    north, south = ds.load("north/2"), ds.load("south/ab")
    assert north.spacing == (0.5, 0.5) and south.spacing == (0.2, 0.3)
    assert north.label.max() == 1 and south.label.max() == 1  # each source's own label_values
    meta = ds.metadata
    assert meta.loc["north/2", "age"] == 61 and meta.loc["south/ab", "age"] == 33
    assert meta.loc["north/1", "scanner"] == "GE" and meta.loc["south/ab", "scanner"] == "Toshiba"
    assert set(meta["site"]) == {"north", "south"}


def test_sources_must_agree_on_modality(tmp_path: Path) -> None:
    _write(tmp_path / "n", ["img_1.png"], 255)
    _write(tmp_path / "s", ["scan-ab.png"], 1)
    (tmp_path / "n.csv").write_text("id,age\n1,40\n")
    (tmp_path / "s.csv").write_text("case,age\nab,33\n")
    (tmp_path / "card.toml").write_text(CARD.replace('modality = "us"', 'modality = "mri"', 1))
    with pytest.raises(ConfigError, match="sources disagree on modality"):
        open_dataset(str(tmp_path / "card.toml"))


def _two_sources(tmp_path: Path, card: str) -> Path:
    _write(tmp_path / "n", ["img_1.png"], 255)
    _write(tmp_path / "s", ["scan-ab.png"], 1)
    (tmp_path / "n.csv").write_text("id,age\n1,40\n")
    (tmp_path / "s.csv").write_text("case,age\nab,33\n")
    (tmp_path / "card.toml").write_text(card)
    return tmp_path / "card.toml"


@pytest.mark.parametrize(("change", "fragment"), [
    (('site = "south"', 'site = ""'), r"\[\[sources\]\] #2.site: expected a non-empty string"),
    (('site = "south"', 'site = "south "'), "has leading or trailing spaces"),
    (('label_values = { "1" = 1 }\n', ""), r"\[\[sources\]\] #2 has no label_values while other sources map"),
    (('scanner = "GE"', 'scanner = "Siemens"'), None),  # agrees with nothing in n.csv: fine
])
def test_source_keys_that_would_mislead_the_site_analysis_are_refused(tmp_path: Path, change, fragment) -> None:
    path = _two_sources(tmp_path, CARD.replace(*change))
    if fragment is None:
        assert open_dataset(str(path)).metadata.loc["north/1", "scanner"] == "Siemens"
        return
    with pytest.raises(ConfigError, match=fragment):
        open_dataset(str(path))


def test_a_source_site_that_disagrees_with_the_metadata_column_is_refused(tmp_path: Path) -> None:
    path = _two_sources(tmp_path, CARD)
    (tmp_path / "s.csv").write_text("case,age,site\nab,33,X\n")
    with pytest.raises(ConfigError, match=r"#2.site: 'south' disagrees with the metadata column 'site' \('X'"):
        open_dataset(str(path))


@pytest.mark.realdata
def test_busbra_devices_example(busbra_dir: Path) -> None:
    """examples/busbra_sites.toml: BUS-BRA's Device column as the site attribute, checked up front."""
    import harness.analysis.shift  # noqa: F401  (registers site_drop)
    from harness.analysis.shift import check_config, shift_attributes
    from harness.suite import load_suite

    repo = Path(__file__).resolve().parents[2]
    suite = load_suite(repo / "examples" / "busbra_sites.toml")
    dataset = open_dataset(str(repo / suite.data))
    check_config(suite, dataset.metadata)
    counts = dataset.metadata[suite.site_attribute].value_counts()
    assert counts.to_dict() == {"GE Logiq 7 @10-14MHz": 902, "GE Logiq 5 @10-12MHz": 809,
                                "Toshiba Aplio 300 @12-14 MHz": 139, "U-Systems @10-14MHz": 25}
    assert counts.idxmax() == suite.reference_site
    assert shift_attributes(dataset.metadata, suite.site_attribute) == ["Device"]
