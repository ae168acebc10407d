"""Multi-source dataset cards: [[sources]] with a site each, ids prefixed by site."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness.datasets import open_dataset
from harness.errors import ConfigError


def _site(root: Path, name: str, keys: list[str], value: int = 255) -> None:
    (root / name / "img").mkdir(parents=True)
    (root / name / "msk").mkdir(parents=True)
    for key in keys:
        Image.fromarray(np.full((12, 14), 40, np.uint8)).save(root / name / "img" / f"{key}.png")
        mask = np.zeros((12, 14), np.uint8)
        mask[3:7, 3:7] = value
        Image.fromarray(mask).save(root / name / "msk" / f"{key}.png")


SOURCE = """
[[sources]]
site = "{site}"
scanner = "{scanner}"
images = "{site}/img/*.png"
labels = "{site}/msk/{{key}}.png"
label_values = {{ "{value}" = 1 }}
modality = "us"
"""


def _card(tmp_path: Path, *sources: tuple[str, str, int]) -> Path:
    text = "".join(SOURCE.format(site=s, scanner=sc, value=v) for s, sc, v in sources)
    card = tmp_path / "sites.toml"
    card.write_text(text)
    return card


def test_sources_become_sites_with_unique_ids(tmp_path: Path) -> None:
    _site(tmp_path, "h1", ["a", "b"])
    _site(tmp_path, "h2", ["a", "c"])
    ds = open_dataset(str(_card(tmp_path, ("h1", "GE", 255), ("h2", "Siemens", 255))))
    assert ds.case_ids == ["h1/a", "h1/b", "h2/a", "h2/c"]
    assert list(ds.metadata["site"]) == ["h1", "h1", "h2", "h2"]
    assert ds.metadata.loc["h2/c", "scanner"] == "Siemens"
    case = ds.load("h2/a")
    assert case.metadata["site"] == "h2" and case.label.max() == 1


def test_source_without_images_is_an_error(tmp_path: Path) -> None:
    _site(tmp_path, "h1", ["a"])
    (tmp_path / "h2" / "img").mkdir(parents=True)
    with pytest.raises(ConfigError, match=r"\[\[sources\]\] #2.images: no file matches"):
        open_dataset(str(_card(tmp_path, ("h1", "GE", 255), ("h2", "X", 255))))


def test_inconsistent_label_values_is_an_error(tmp_path: Path) -> None:
    _site(tmp_path, "h1", ["a"])
    _site(tmp_path, "h2", ["a"])
    text = _card(tmp_path, ("h1", "GE", 255), ("h2", "X", 255)).read_text().replace(
        '{ "255" = 1 }', '{ "255" = 2 }', 1)
    (tmp_path / "sites.toml").write_text(text)
    with pytest.raises(ConfigError, match="different class sets"):
        open_dataset(str(tmp_path / "sites.toml"))


def test_duplicate_site_names_give_duplicate_ids(tmp_path: Path) -> None:
    _site(tmp_path, "h1", ["a"])
    with pytest.raises(ConfigError, match="duplicate case ids"):
        open_dataset(str(_card(tmp_path, ("h1", "GE", 255), ("h1", "GE", 255))))


def test_source_needs_site(tmp_path: Path) -> None:
    _site(tmp_path, "h1", ["a"])
    card = _card(tmp_path, ("h1", "GE", 255))
    card.write_text(card.read_text().replace('site = "h1"\n', ""))
    with pytest.raises(ConfigError, match="missing 'site'"):
        open_dataset(str(card))


def test_sources_sharing_one_metadata_csv_do_not_report_each_other_s_rows(tmp_path) -> None:
    """Each source listed the other sources' rows of a shared CSV as 'not used'."""
    import numpy as np
    from PIL import Image

    from harness.datasets import open_dataset

    for site, keys in (("A", ("a1", "a2")), ("B", ("b1", "b2"))):
        (tmp_path / site).mkdir()
        for key in keys:
            Image.fromarray(np.full((8, 8), 100, np.uint8)).save(tmp_path / site / f"img_{key}.png")
            Image.fromarray(np.eye(8, dtype=np.uint8)).save(tmp_path / site / f"mask_{key}.png")
    (tmp_path / "meta.csv").write_text("key,sex\na1,F\na2,M\nb1,F\nb2,M\nzz,F\n")
    source = 'images = "{s}/img_*.png"\nlabels = "{s}/mask_{{key}}.png"\nkey_regex = "img_(?P<key>.+)\\\\.png"\n' \
             'metadata = "meta.csv"\nsite = "{s}"\n'
    (tmp_path / "card.toml").write_text("".join(f"[[sources]]\n{source.format(s=s)}" for s in ("A", "B")))
    assert open_dataset(str(tmp_path / "card.toml")).unmatched == ["1 row(s) of meta.csv name no case: 'zz'"]


def test_a_shared_csv_keyed_by_case_id_gives_each_site_its_own_row(tmp_path: Path) -> None:
    """Cases of [[sources]] are 'site/key': a CSV keyed so is read by case id (it was looked up by the
    bare key alone and refused, naming the key twice)."""
    _site(tmp_path, "A", ["p1", "p2"])
    _site(tmp_path, "B", ["p1", "p2"])
    (tmp_path / "meta.csv").write_text("case_id,age\nA/p1,30\nA/p2,40\nB/p1,50\nB/p2,60\n")
    card = _card(tmp_path, ("A", "GE", 255), ("B", "GE", 255))
    card.write_text(card.read_text().replace('modality = "us"', 'modality = "us"\nmetadata = "meta.csv"'))
    ds = open_dataset(str(card))
    assert {cid: ds.load(cid).metadata["age"] for cid in ds.case_ids} == {"A/p1": 30, "A/p2": 40, "B/p1": 50, "B/p2": 60}
    assert ds.unmatched == []
    (tmp_path / "meta.csv").write_text("case_id,age\nA/p1,30\nA/p2,40\nB/p1,50\n")
    with pytest.raises(ConfigError, match=r"no row for case 'B/p2' \(nor 'p2'\) in column 'case_id'"):
        open_dataset(str(card))
