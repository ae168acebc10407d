"""Synthetic records/cases tables with planted per-site effects (no model, no images)."""
from __future__ import annotations

import numpy as np
import pandas as pd

LABELS = {1: "organ", 2: "lesion"}


def make_tables(sizes: dict[str, int], *, dice: dict[str, float], sd: float = 0.03, seed: int = 0,
                ladder: dict[str, dict[int, float]] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Records (2 labels per case, clean rows, plus perturbed rows with a given mean Dice drop per
    (family, severity)) and a case table with ``site``. HD95 moves opposite to Dice."""
    rng = np.random.default_rng(seed)
    rows, cases = [], []
    k = 0
    for site, n in sizes.items():
        for _ in range(n):
            cid = f"case{k:03d}"
            k += 1
            cases.append({"case_id": cid, "image_sha256": f"h{k}", "label_sha256": f"l{k}", "site": site,
                          "scanner": "S1" if site in ("A", "B") else "S2"})
            base = float(np.clip(dice[site] + sd * rng.standard_normal(), 0, 1))
            cells = [("clean", 0, 0.0)] + [(fam, sev, d) for fam, sevs in (ladder or {}).items()
                                            for sev, d in sevs.items()]
            for pert, sev, drop in cells:
                for label, name in LABELS.items():
                    value = float(np.clip(base - drop + 0.005 * (label - 1.5), 0, 1))
                    rows.append({"case_id": cid, "perturbation": pert, "severity": sev, "repeat": 0, "seed": 0,
                                 "label": label, "label_name": name, "status": "OK", "error": "", "empty": "none",
                                 "dice": value, "hd95": 10.0 * (1.0 - value), "params": "{}", "inference_s": 0.0})
    return pd.DataFrame(rows), pd.DataFrame(cases)
