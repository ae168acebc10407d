"""The Python API as a notebook or script uses it: the CLI's checks apply, global state is left alone."""
from __future__ import annotations

from pathlib import Path, PurePosixPath

import numpy as np
import pytest
import torch

import harness
from harness.errors import ConfigError


@pytest.mark.parametrize(("changes", "fragment"), [
    ({"limit": 0}, "--limit 0: give a whole number >= 1"),  # once an IndexError
    ({"limit": -1}, "--limit -1"),  # once silently dropped the last case
    ({"seed": -1}, "--seed -1"),  # once failed after the whole evaluation
    ({"seed": "3"}, "--seed '3'"), ({"workers": 0}, "--workers 0"), ({"item_timeout": 0.0}, "--item-timeout"),
    ({"model": torch.nn.Identity()}, "RunOptions(model=...) takes a name or path"),
])
def test_run_options_are_checked_as_the_command_line_checks_them(changes: dict, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        harness.RunOptions(suite="smoke", **changes)
    assert fragment in str(info.value)
    assert harness.RunOptions(suite="smoke", limit=np.int64(2), seed=np.int32(1)).limit == 2
    assert harness.RunOptions(suite=PurePosixPath("smoke")).suite == Path("smoke")  # any os.PathLike


def test_run_refuses_to_start_in_a_worker_importing_the_script(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    """An unguarded script ran the whole body again in each worker: four runs instead of one."""
    import multiprocessing

    monkeypatch.setattr(multiprocessing.current_process(), "_inheriting", True, raising=False)
    with pytest.raises(ConfigError, match=r'under `if __name__ == "__main__":`'):
        harness.run(harness.RunOptions(suite="smoke", limit=1, workers=1, out=tmp_path / "o"))
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(("spacing", "fragment"), [
    ((-1.0, 1.0), "positive, finite"), ((float("nan"), 1.0), "positive, finite"), ((0.0, 1.0), "positive, finite"),
    (1.0, "spacing must be a sequence"),
])
def test_case_spacing_is_checked(spacing, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        harness.Case(np.zeros((1, 4, 4), np.float32), np.zeros((4, 4), np.int64), spacing)


def test_case_takes_tensors_and_lists() -> None:
    case = harness.Case(torch.zeros(1, 4, 4), [[0, 1, 0, 0]] * 4, (1, 1))
    assert isinstance(case.image, np.ndarray) and case.image.dtype == np.float32 and case.label.shape == (4, 4)


@pytest.mark.parametrize("case_id", ["phantom2d_099", "phantom3d_000", "x_1", "nope"])
def test_a_phantom_id_not_in_the_dataset_is_not_loaded(case_id: str) -> None:
    with pytest.raises(KeyError, match="phantom2d has no case"):
        harness.open_dataset("phantom2d:n=3").load(case_id)


def test_plugins_may_not_replace_bundled_perturbations_or_gates() -> None:
    from harness.gates import gate_check
    from harness.perturbations.base import Perturbation

    class MyBlur(Perturbation):
        name = "blur"

        def draw(self, case, severity, rng):  # type: ignore[no-untyped-def]
            return {}

        def apply(self, case, params):  # type: ignore[no-untyped-def]
            return case

    for _ in range(2):  # the second registration replaced the bundled family
        with pytest.raises(ConfigError, match="'blur' is taken by a bundled family"):
            harness.register_perturbation(MyBlur)
    assert type(harness.get_perturbation("blur")).__module__.startswith("harness.")
    with pytest.raises(ConfigError, match="expected a subclass"):
        harness.register_perturbation(type("Bad", (), {"name": "bad"}))
    with pytest.raises(ConfigError, match="gate kind 'clean' is bundled"):
        gate_check("clean")(lambda gate, context: [])


def test_training_leaves_the_callers_matplotlib_backend(tmp_path: Path) -> None:
    import matplotlib

    from harness.train.record import write_curves

    before = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        write_curves([{"epoch": 1, "train_loss": 1.0, "lr": 1e-3}], tmp_path)
        assert matplotlib.get_backend() == "svg" and (tmp_path / "curves.png").stat().st_size > 0
    finally:
        matplotlib.use(before)


def test_compare_options_take_a_metric_name_as_text() -> None:
    assert harness.CompareOptions(metrics="dice").metrics == ("dice",)
    assert harness.CompareOptions(metrics="dice, hd95").metrics == ("dice", "hd95")


def test_load_model_names_what_to_do_with_an_object_and_leaves_the_torch_rng() -> None:
    with pytest.raises(ConfigError, match=r"got a Identity object; write a card"):
        harness.load_model(torch.nn.Identity())
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    harness.load_model(None)  # builds the reference U-Net (random init) before loading its weights
    assert torch.equal(torch.rand(3), expected)
