"""Synthetic records.csv / cases.csv tables for the fairness tests."""
from __future__ import annotations

import numpy as np
import pandas as pd

from harness.analysis.fairness_validation import simulate_dice


def make_tables(*, n: int = 60, seed: int = 0, drop: dict[str, float] | None = None,
                perturbations: dict[str, list[int]] | None = None, labels: tuple[int, ...] = (1, 2),
                repeats: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``n`` cases with sex/site/age metadata; Dice lowered by ``drop[site]`` for that site."""
    rng = np.random.default_rng(seed)
    ids = [f"case{i:03d}" for i in range(n)]
    cases = pd.DataFrame({"case_id": ids, "sex": np.where(np.arange(n) % 2 == 0, "F", "M"),
                          "site": np.array(["A", "B", "C"])[np.arange(n) % 3],
                          "age": rng.integers(20, 86, n), "image_sha256": [f"{i:064x}" for i in range(n)]})
    drop = drop or {}
    rows = []
    for pert, sevs in (perturbations or {"clean": [0]}).items():
        for sev in sevs:
            for cid, site in zip(ids, cases["site"]):
                for rep in range(repeats):
                    for lab in labels:
                        dice = float(np.clip(simulate_dice(1, rng=rng)[0] - drop.get(site, 0.0) - 0.02 * sev, 0, 1))
                        rows.append({"case_id": cid, "perturbation": pert, "severity": sev, "repeat": rep,
                                     "seed": 0, "label": lab, "label_name": {1: "organ", 2: "lesion"}.get(lab, str(lab)),
                                     "status": "OK", "error": "", "empty": "none", "dice": dice,
                                     "hd95": float(rng.gamma(2.0, 2.0) + 20 * drop.get(site, 0.0))})
    return pd.DataFrame(rows), cases
