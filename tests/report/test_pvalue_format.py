"""p-values in the report: short, but never rounded across the significance level they are marked by."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.report.html import _pval


@pytest.mark.parametrize(("p", "alpha", "text"), [
    (0.0496, 0.05, "0.0496"),  # "0.050" once, in a cell marked significant
    (0.049999999, 0.05, "0.049999999"), (0.15 / 3, 0.05, "0.049999999999999996"),  # from adjustment arithmetic
    (0.123, 0.05, "0.12"), (0.05, 0.05, "0.05"), (0.0004, 0.05, "< 0.001"), (float("nan"), 0.05, "–"),
])
def test_examples(p: float, alpha: float, text: str) -> None:
    assert _pval(p, alpha) == text


@given(st.floats(0.001, 1.0), st.sampled_from([0.01, 0.05, 0.1]))
def test_the_text_is_on_the_same_side_of_alpha(p: float, alpha: float) -> None:
    assert (float(_pval(p, alpha)) < alpha) == (p < alpha)
