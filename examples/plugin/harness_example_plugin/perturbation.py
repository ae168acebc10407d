"""``salt_pepper``: impulse noise, a fraction of pixels set to the image's low or high percentile.

The recipe every family follows: ``draw`` takes every random decision from the ``rng`` the
harness hands it (seeded per case, family and severity) and returns JSON-able parameters;
``apply`` is deterministic given those parameters, so a record can be replayed bit for bit.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from harness.case import Case
from harness.perturbations.base import Perturbation

FRACTION = (0.005, 0.01, 0.02, 0.05, 0.10)  # severity 1..5: fraction of pixels hit


class SaltPepper(Perturbation):
    """Salt-and-pepper noise. Params: ``fraction``, ``low``/``high`` (values written),
    ``noise_seed`` (which pixels). Option ``salt_ratio`` (default 0.5): share of "salt"."""

    name = "salt_pepper"
    modalities = frozenset({"any"})
    geometric = False
    parameter_doc = "fraction of pixels replaced = {0.5, 1, 2, 5, 10} % (half 1st, half 99th percentile)"
    options_doc = {"salt_ratio": "share of hit pixels set high (default 0.5)"}

    def draw(self, case: Case, severity: int, rng: np.random.Generator) -> dict[str, Any]:
        low, high = np.percentile(case.image, [1, 99])
        return {"fraction": FRACTION[severity - 1], "low": float(low), "high": float(high),
                "salt_ratio": float(self.options.get("salt_ratio", 0.5)),
                "noise_seed": int(rng.integers(2**31 - 1))}

    def apply(self, case: Case, params: dict[str, Any]) -> Case:
        # The same seed at every severity draws the same uniform field, so the pixels hit at a
        # lower severity are a subset of those hit at a higher one: distortion grows monotonically.
        field = np.random.default_rng(params["noise_seed"]).random(case.image.shape)
        image = case.image.copy()
        hit = field < params["fraction"]
        salt = field < params["fraction"] * params["salt_ratio"]
        image[hit & ~salt] = params["low"]
        image[salt] = params["high"]
        return case.with_(image=image.astype(np.float32))
