"""Perturbations evaluated concurrently in one process (a threaded Dask worker) give the same
images as one at a time: sections that seed torch's process-wide RNG are serialised."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from harness import perturbations
from tests.perturbations import cases

# families run through TorchIO under a seeded torch RNG (noise draws from it)
TORCH_RNG_FAMILIES = ["gaussian_noise", "blur", "motion"]


@pytest.mark.parametrize("family", TORCH_RNG_FAMILIES)
def test_concurrent_items_match_sequential(family: str) -> None:
    case = cases.phantom(3)  # a volume: each call is long enough for threads to interleave
    fam = perturbations.get(family)
    seeds = list(range(100, 132))
    expected = [fam(case, 3, s)[0].image for s in seeds]
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda s: fam(case, 3, s)[0].image, seeds))
    differing = [s for s, e, g in zip(seeds, expected, got) if not np.array_equal(e, g)]
    assert not differing, f"seeds {differing} gave other images when run concurrently"
