"""Which classes a run scores: the data's and the model's names, never background (0)."""
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


def test_a_model_only_class_named_like_a_data_class_is_marked() -> None:
    """Data naming {1: lesion} with a model naming {1: organ, 2: lesion} once scored "lesion" twice."""
    from types import SimpleNamespace

    from harness.pipeline import _labels

    suite = SimpleNamespace(labels="all", path="s.toml")
    dataset = SimpleNamespace(label_names={1: "lesion"})
    model = SimpleNamespace(labels={1: "organ", 2: "lesion", 3: "vessel"})
    assert _labels(suite, dataset, model) == {1: "lesion", 2: "lesion (model class 2)", 3: "vessel"}
