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


@pytest.mark.parametrize(("families", "fragment"), [
    (["ct_dose"], "ct_dose applies to ct images, but the data's modality is 'mri'"),
    (["fgsm"], "fgsm attacks a model, so it has no preview of its own"),
])
def test_families_a_run_would_refuse_are_refused(tmp_path: Path, families: list[str], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        gallery.preview(phantom_dataset(2, n=1), tmp_path, families=families)
    assert fragment in info.value.problems[0]


def test_unwritable_out_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match=r"--out .*file/sub: cannot create the folder \(Not a directory\)"):
        gallery.preview(phantom_dataset(2, n=1), tmp_path / "file" / "sub", families=["blur"])


def test_cli_ignores_empty_family_entries(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    assert main(["perturbations", "preview", "--families", "blur, ", "--out", str(tmp_path)]) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["blur.png"]
    assert main(["perturbations", "preview", "--families", ",", "--out", str(tmp_path)]) == 3
    assert "no family named" in capsys.readouterr().err


def test_a_failing_family_is_named_and_the_others_are_drawn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A plugin family that raised ended the preview with "internal error", naming no family and
    drawing none of those after it."""
    import sys
    import types

    from harness.errors import ConfigError
    from harness.perturbations.base import Perturbation

    class Boom(Perturbation):
        name = "boom"

        def draw(self, case, severity, rng):
            return {}

        def apply(self, case, params):
            raise RuntimeError("boom in apply")

    monkeypatch.setitem(sys.modules, "boom_plugin", types.ModuleType("boom_plugin"))
    sys.modules["boom_plugin"].Boom = Boom  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match=r"preview: 1 of 2 families failed on case .* \(1 written") as err:
        gallery.preview(phantom_dataset(2, n=1), tmp_path, families=["boom_plugin:Boom", "blur"])
    assert err.value.problems == ["boom_plugin:Boom: RuntimeError: boom in apply"]
    assert (tmp_path / "blur.png").is_file()
