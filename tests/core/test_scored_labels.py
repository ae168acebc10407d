"""Which classes a run scores: the data's names (the model's when the data names none), never
background (0)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from harness.errors import ConfigError
from harness.pipeline import _labels


def _scored(data_names: dict, model_names: dict, suite_labels: object = "all") -> dict:
    suite = SimpleNamespace(labels=suite_labels, path="suite.toml")
    return _labels(suite, SimpleNamespace(label_names=data_names), SimpleNamespace(labels=model_names))  # type: ignore[arg-type]


def test_background_is_never_scored() -> None:
    assert _scored({0: "background", 1: "lesion"}, {}) == {1: "lesion"}
    assert _scored({}, {0: "bg", 2: "tumour", 1: "organ"}) == {1: "organ", 2: "tumour"}
    assert _scored({}, {}) == {1: "foreground"}


def test_suite_labels_select_and_unknown_ones_fail() -> None:
    assert _scored({1: "organ", 2: "lesion"}, {}, [2]) == {2: "lesion"}
    with pytest.raises(ConfigError, match=r"\[suite\]\.labels \[0\]"):
        _scored({0: "background", 1: "organ"}, {}, [0])


def test_classes_only_the_model_has_are_not_scored_when_the_data_names_its_own() -> None:
    """A model-only class (never in the reference) scored Dice 1 while the model kept off it and
    entered the label mean (BUS-BRA with the 2-class reference U-Net: 0.9935 for a real 0.987)."""
    assert _scored({1: "lesion"}, {1: "organ", 2: "lesion", 3: "vessel"}) == {1: "lesion"}
    assert _scored({}, {1: "organ", 2: "lesion"}) == {1: "organ", 2: "lesion"}  # the data names none
    with pytest.raises(ConfigError, match=r"\[suite\]\.labels \[2\] are not classes of the data"):
        _scored({1: "lesion"}, {1: "organ", 2: "lesion"}, [2])

