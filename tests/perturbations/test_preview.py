"""The gallery writes one PNG per family; family/case selection and errors."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.datasets.phantom import phantom_dataset
from harness.errors import ConfigError
from harness.perturbations import preview as gallery

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("ndim", [2, 3])
def test_writes_one_png_per_family(tmp_path: Path, ndim: int) -> None:
    dataset = phantom_dataset(ndim, n=2)
    paths = gallery.preview(dataset, tmp_path, families=["blur", "affine"], case_id=dataset.case_ids[1])
    assert [p.name for p in paths] == ["blur.png", "affine.png"]
    for path in paths:
        assert path.read_bytes()[:8] == PNG and path.stat().st_size > 5_000


def test_default_families_follow_the_modality(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rendered: list[str] = []
    monkeypatch.setattr(gallery, "render", lambda case, name, **kw: rendered.append(name) or kw["out"])
    gallery.preview(phantom_dataset(2, n=1), tmp_path)  # modality "mri"
    assert "bias_field" in rendered and "gaussian_noise" in rendered
    assert not {"ct_dose", "speckle", "metal_streaks"} & set(rendered)


def test_errors(tmp_path: Path) -> None:
    dataset = phantom_dataset(2, n=1)
    with pytest.raises(ConfigError, match="unknown perturbation"):
        gallery.preview(dataset, tmp_path, families=["nope"])
    with pytest.raises(ConfigError, match="not in the dataset"):
        gallery.preview(dataset, tmp_path, families=["blur"], case_id="missing")


def test_summary_skips_seeds() -> None:
    summary = gallery._summary({"noise_seed": 3, "sigma": [0.5], "profile": "smooth"})
    assert summary == "sigma=0.5\nprofile=smooth"
