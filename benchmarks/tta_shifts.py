"""Shift test-time augmentation (``[input] tta_shifts``) on a trained benchmark run's test set.

Usage (from the repository root, after ``benchmarks/train_reference.py``)::

    python benchmarks/tta_shifts.py /tmp/bench-hippo

Predicts each test case through the run's model card as written (the peer) and through a copy with
``tta_shifts = true`` added (``model-tta-shifts.toml`` beside it: the image also placed at the start,
middle and end of its padding along each axis), with the ``harness run`` adapter. Prints each
card's mean Dice with its 95 % bootstrap CI over the test cases, the paired difference with its
CI and the number of cases that gain, and how long each card took to predict the test set.
``--csv`` writes the per-case table.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.train_reference import card_labels, per_case_cli, run_dataset  # noqa: E402
from harness.analysis.robustness import bootstrap_mean_ci  # noqa: E402
from harness.models import load_model  # noqa: E402
from harness.tomlread import tomllib  # noqa: E402
from harness.train.card import write_card  # noqa: E402
from harness.train.record import dice_per_class  # noqa: E402
from harness.train.trainer import deterministic  # noqa: E402

CARDS = {"card": "model.toml", "tta_shifts": "model-tta-shifts.toml"}


def shifted_card(run: Path) -> Path:
    """``run/model-tta-shifts.toml``: the run's card with ``[input] tta_shifts = true``."""
    card = tomllib.loads((run / "model.toml").read_text())
    card["input"]["tta_shifts"] = True
    path = run / CARDS["tta_shifts"]
    write_card(path, card)
    return path


def per_case_table(run: Path, data_root: Path) -> pd.DataFrame:
    """One row per test case: case_id and its mean Dice over the classes through each card."""
    record = json.loads((run / "training.json").read_text())
    shifted_card(run)
    dataset, ndim = run_dataset(record, data_root)
    labels = card_labels(run / "model.toml")
    rows: dict[str, dict[str, float]] = {cid: {} for cid in record["split"]["test"]}
    with deterministic(0, 2):
        for column, name in CARDS.items():
            model = load_model(run / name, ndim=ndim)
            start = time.perf_counter()
            for cid in rows:
                case = dataset.load(cid)
                pred = model.predict(case.image, case.spacing, case_id=cid).labels
                rows[cid][column] = float(np.mean(list(dice_per_class(pred, case.label, labels).values())))
            print(f"{column}: {len(rows)} cases predicted in {time.perf_counter() - start:.0f} s", flush=True)
    return pd.DataFrame([{"case_id": cid, **scores} for cid, scores in rows.items()])


def main() -> None:
    args, table = per_case_cli(__doc__, "a benchmarks/train_reference.py --out folder", per_case_table)
    print(f"{args.run}: {len(table)} test cases; mean Dice (95 % CI)")
    for column in CARDS:
        lo, hi = bootstrap_mean_ci(table[column].to_numpy(), n_boot=2000, seed=0)
        print(f"  {column:12s} {table[column].mean():.4f} ({lo:.4f}-{hi:.4f})")
    diff = (table["tta_shifts"] - table["card"]).to_numpy()
    dlo, dhi = bootstrap_mean_ci(diff, n_boot=2000, seed=0)
    print(f"  tta_shifts - card: {diff.mean():+.4f} ({dlo:+.4f} to {dhi:+.4f}); "
          f"{int((diff > 0).sum())} gain, {int((diff < 0).sum())} lose")


if __name__ == "__main__":
    main()
