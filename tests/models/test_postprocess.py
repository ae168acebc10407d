"""Connected-component rules of ``[output] postprocess``: properties over random label maps."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import ndimage as ndi

from harness.models.postprocess import apply_postprocess, keep_largest_components, keep_most_confident_components

maps = hnp.arrays(np.int64, st.tuples(st.integers(1, 9), st.integers(1, 9)), elements=st.integers(0, 2))


def _probabilities(labels: np.ndarray, seed: int) -> np.ndarray:
    p = np.random.default_rng(seed).random((3, *labels.shape)).astype(np.float32)
    return p / p.sum(0)


@settings(max_examples=150, deadline=None)
@given(labels=maps, seed=st.integers(0, 2**16))
def test_keeps_one_component_per_class_holding_the_class_peak(labels: np.ndarray, seed: int) -> None:
    probs = _probabilities(labels, seed)
    out = keep_most_confident_components(labels, probs)
    assert ((out == 0) | (out == labels)).all()  # only removes
    for k in (1, 2):
        mask = labels == k
        if not mask.any():
            assert not (out == k).any()
            continue
        kept = out == k
        assert ndi.label(kept)[1] == 1  # exactly one component left
        peak = np.unravel_index(np.argmax(np.where(mask, probs[k], -np.inf)), labels.shape)
        assert kept[peak]
        comp = ndi.label(mask)[0]
        assert (kept == (comp == comp[peak])).all()  # and all of it


@settings(max_examples=100, deadline=None)
@given(labels=maps, seed=st.integers(0, 2**16))
def test_rules_agree_where_each_class_is_one_component(labels: np.ndarray, seed: int) -> None:
    probs = _probabilities(labels, seed)
    single = all(ndi.label(labels == k)[1] <= 1 for k in (1, 2))
    confident = keep_most_confident_components(labels, probs)
    largest = keep_largest_components(labels)
    if single:
        assert (confident == labels).all() and (largest == labels).all()
    assert (largest > 0).sum() <= (labels > 0).sum() and (confident > 0).sum() <= (labels > 0).sum()


def test_apply_postprocess_dispatches_and_checks() -> None:
    labels = np.array([1, 1, 0, 1, 0])
    probs = np.array([[0.0] * 5, [0.6, 0.7, 0.0, 0.9, 0.0]])
    assert apply_postprocess("none", labels, None).tolist() == [1, 1, 0, 1, 0]
    assert apply_postprocess("largest_component", labels, None).tolist() == [1, 1, 0, 0, 0]
    assert apply_postprocess("most_confident_component", labels, probs).tolist() == [0, 0, 0, 1, 0]
    with pytest.raises(ValueError, match="needs the class probabilities"):
        apply_postprocess("most_confident_component", labels, None)
    with pytest.raises(ValueError, match="do not match"):
        keep_most_confident_components(labels, probs[:, :4])
