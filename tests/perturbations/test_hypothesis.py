"""Property tests (Hypothesis): seed determinism, severity-0 identity, and robustness to
degenerate images (constant, all-zero, noise, negative) for every bundled family."""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import perturbations
from harness.case import Case
from tests.perturbations import cases

NAMES = sorted(cases.FAMILIES)
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(family=st.sampled_from(NAMES), seed=st.integers(0, 2**32 - 1), severity=st.integers(1, 5),
       ndim=st.sampled_from([2, 3]))
def test_same_seed_same_output(family: str, seed: int, severity: int, ndim: int) -> None:
    case = cases.small(cases.FAMILIES[family], ndim)
    fam = perturbations.get(family)
    a, pa = fam(case, severity, seed)
    b, pb = fam(case, severity, seed)
    assert pa == pb
    assert a.image.tobytes() == b.image.tobytes() and a.label.tobytes() == b.label.tobytes()


@SETTINGS
@given(family=st.sampled_from(NAMES), seed=st.one_of(st.none(), st.integers(0, 2**32 - 1)),
       ndim=st.sampled_from([2, 3]))
def test_severity_zero_is_identity(family: str, seed: int | None, ndim: int) -> None:
    case = cases.small(cases.FAMILIES[family], ndim)
    out, params = perturbations.get(family)(case, 0, seed)
    assert out is case and params == {}


@settings(max_examples=60, deadline=None)
@given(family=st.sampled_from(NAMES), kind=st.sampled_from(["constant", "zeros", "noise", "negative"]),
       shape=st.sampled_from([(24, 20), (9, 16, 12)]), seed=st.integers(0, 1000),
       severity=st.integers(1, 5), labelled=st.booleans())
def test_degenerate_images(family: str, kind: str, shape: tuple[int, ...], seed: int, severity: int,
                           labelled: bool) -> None:
    """Flat, empty or signed images and empty labels never crash, warn or produce NaN."""
    gen = np.random.default_rng(seed)
    image = {"constant": np.full(shape, 7.0), "zeros": np.zeros(shape), "noise": gen.random(shape) * 100,
             "negative": gen.standard_normal(shape) * 50 - 20}[kind]
    label = np.zeros(shape, dtype=np.int64)
    if labelled:
        label[tuple(slice(s // 3, 2 * s // 3) for s in shape)] = 1
    case = Case(image=image[None].astype(np.float32), label=label, spacing=(1.0,) * len(shape))
    out, _ = perturbations.get(family)(case, severity, seed)
    assert out.image.shape == case.image.shape and out.image.dtype == np.float32
    assert np.isfinite(out.image).all()
