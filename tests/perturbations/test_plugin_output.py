"""What a plugin family's draw()/apply() can get wrong is named as the perturbation's failure (it
was blamed on the model, or lost the item's scores), and its parameters are stored so that a record
replays them."""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from harness.case import Case
from harness.perturbations.base import Perturbation, PerturbationError, plain_params


def _case() -> Case:
    label = np.zeros((16, 16), dtype=np.int64)
    label[4:10, 4:10] = 1
    return Case(image=np.ones((1, 16, 16), dtype=np.float32), label=label, spacing=(1.0, 1.0))


def _family(apply: Any, *, draw: Any = None, geometric: bool = False) -> Perturbation:
    cls = type("Plugin", (Perturbation,), {
        "name": "plugin", "geometric": geometric,
        "draw": lambda self, case, severity, rng: draw(rng) if draw else {"k": severity},
        "apply": lambda self, case, params: apply(case)})
    return cls()


@pytest.mark.parametrize("apply, said", [
    (lambda case: case.image * 2, r"plugin: apply\(\) returned ndarray, not a harness.Case"),
    (lambda case: None, r"plugin: apply\(\) returned NoneType"),
    (lambda case: case.with_(image=np.full_like(case.image, np.nan)), r"plugin: apply\(\) made 256 image values NaN"),
    (lambda case: case.with_(label=np.zeros_like(case.label)), r"plugin: apply\(\) changed the label map, but the family "
                                                               "is not geometric"),
])
def test_an_unusable_result_is_the_perturbations_failure(apply: Any, said: str) -> None:
    with pytest.raises(PerturbationError, match=said):
        _family(apply)(_case(), 2, 0)


def test_a_non_finite_input_image_is_named_as_the_input_not_the_family() -> None:
    case = _case()
    image = case.image.copy()
    image[0, 0, :3] = np.nan
    with pytest.raises(PerturbationError, match=r"plugin: the input image already has 3 NaN or infinite value"):
        _family(lambda c: c.with_(image=c.image * 2))(case.with_(image=image), 2, 0)


def test_draw_must_return_a_dict_and_a_geometric_family_may_move_the_label() -> None:
    with pytest.raises(PerturbationError, match=r"draw\(\) returned list, not a dict"):
        _family(lambda case: case, draw=lambda rng: [1, 2])(_case(), 1, 0)
    moved = _family(lambda case: case.with_(label=np.roll(case.label, 2, axis=0)), geometric=True)
    out, _ = moved(_case(), 1, 0)
    assert not np.array_equal(out.label, _case().label)


def test_parameters_are_stored_as_json_values_that_replay() -> None:
    """np.int64 was stored as 2.0 (json default=float), so indexing with the replayed value failed;
    an array of draws raised after the model had run and lost the item's scores."""
    drawn = {"k": np.int64(2), "flip": np.bool_(True), "shift": np.array([1.5, -0.5]), "axes": (0, 1),
             "nested": {"sigma": np.float32(0.25)}, "name": "x", "none": None}
    stored = json.loads(json.dumps(plain_params(drawn)))
    assert stored == {"k": 2, "flip": True, "shift": [1.5, -0.5], "axes": [0, 1], "nested": {"sigma": 0.25},
                      "name": "x", "none": None}
    assert isinstance(stored["k"], int) and (10, 20, 30)[stored["k"]] == 30
    with pytest.raises(PerturbationError, match=r"plugin: parameter 'nested.when' is a object"):
        plain_params({"nested": {"when": object()}}, family="plugin")


def test_a_family_whose_constructor_refuses_the_options_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    from harness.perturbations import build

    class NeedsLevel(Perturbation):
        name = "needs_level"

        def __init__(self, level: float) -> None:
            super().__init__(level=level)

        def draw(self, case, severity, rng):
            return {}

        def apply(self, case, params):
            return case

    module = types.ModuleType("needs_level_plugin")
    module.NeedsLevel = NeedsLevel  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "needs_level_plugin", module)
    said = build("needs_level_plugin:NeedsLevel", {})
    assert isinstance(said, str) and said.startswith("perturbation 'needs_level_plugin:NeedsLevel': bad options {}")
    said = build("needs_level_plugin:NeedsLevel", {}, label="mine")
    assert said.startswith("perturbation 'mine': bad options {}")
