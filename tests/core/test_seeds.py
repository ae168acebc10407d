from __future__ import annotations

import numpy as np
from hypothesis import given, strategies as st

from harness.datasets.phantom import phantom_dataset
from harness.perturbations import get
from harness.seeds import item_seed


@given(st.integers(0, 2**31), st.text(min_size=1, max_size=20), st.sampled_from(["blur", "gaussian_noise"]),
       st.integers(0, 3))
def test_item_seed_is_stable_and_32_bit(seed: int, case_id: str, family: str, repeat: int) -> None:
    a = item_seed(seed, case_id, family, repeat)
    assert a == item_seed(seed, case_id, family, repeat) and 0 <= a < 2**32


def test_known_value_and_repeat_changes_seed() -> None:
    import zlib

    assert item_seed(0, "c1", "blur") == zlib.crc32(b"0/c1/blur")
    assert item_seed(0, "c1", "blur", 1) != item_seed(0, "c1", "blur")
    assert item_seed(0, "c1", "blur") != item_seed(0, "c2", "blur")


def test_common_random_numbers_make_each_case_ladder_monotone() -> None:
    """Same seed across severities: distortion grows with severity for every case, not just on average."""
    case = phantom_dataset(2, n=1).load("phantom2d_000")
    for name in ("gaussian_noise", "bias_field", "contrast", "affine"):
        family = get(name)
        seed = item_seed(0, case.case_id, name)
        errors = [float(np.mean((family(case, s, np.random.default_rng(seed))[0].image - case.image) ** 2))
                  for s in range(1, 6)]
        assert all(b > a for a, b in zip(errors, errors[1:])), (name, errors)


def test_the_runner_gives_every_severity_of_a_case_and_family_the_same_seed() -> None:
    """Common random numbers are the runner's doing (plan_items): each (case, family, repeat) keeps
    one seed over its severities; repeats and cases differ."""
    import pandas as pd

    from harness.runner import plan_items
    from harness.suite import load_suite

    suite = load_suite("robustness")
    items = pd.DataFrame([i.to_dict() for i in plan_items(suite, ["c1", "c2"])])
    perturbed = items[items["perturbation"] != "clean"]
    assert perturbed["severity"].nunique() > 1
    assert perturbed.groupby(["case_id", "perturbation", "repeat"])["seed"].nunique().eq(1).all()
    for (cid, label), group in perturbed.groupby(["case_id", "perturbation"]):
        assert set(group["seed"]) == {item_seed(suite.seed, cid, label, r) for r in group["repeat"]}
    assert perturbed.groupby(["perturbation", "repeat"])["seed"].nunique().eq(2).all()  # c1 and c2 differ
