"""The shared check that masks hold only named classes."""
from __future__ import annotations

import pytest

from harness.datasets.label_values import check_named_classes
from harness.errors import ConfigError


def test_background_and_named_classes_pass() -> None:
    check_named_classes("c0", [0, 1, 2], [1, 2], named_by="the data")
    check_named_classes("c0", [], [1], named_by="the data")


def test_unnamed_values_name_the_case_and_the_fix() -> None:
    with pytest.raises(ConfigError) as info:
        check_named_classes("c7", [0, 255], [1], named_by="the data or the model")
    message = str(info.value)
    assert message.startswith("case c7: label values [255] are not classes of the data or the model [1];")
    assert 'label_values = {"255" = 1}' in message and "\n" not in message


def test_many_unnamed_values_are_cut_to_five() -> None:
    with pytest.raises(ConfigError, match=r"label values \[3, 4, 5, 6, 7\] \.\.\. are not classes"):
        check_named_classes("c0", range(9), [1, 2], named_by="the data")
