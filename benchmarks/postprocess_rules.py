"""Connected-component postprocessing rules compared on a trained benchmark run's test set.

Usage (from the repository root, after ``benchmarks/train_reference.py``)::

    python benchmarks/postprocess_rules.py /tmp/bench-busbra
    python benchmarks/postprocess_rules.py /tmp/bench-hippo

Predicts each test case once through the run's model card with its postprocessing switched off
(the ``harness run`` adapter: grid, sliding window, TTA as the card says), then applies every
``[output] postprocess`` rule to the same labels and probabilities: ``none``,
``largest_component`` (the peer) and ``most_confident_component``. Prints the mean Dice of each
rule with its 95 % bootstrap CI over the test cases, the paired difference against
``largest_component`` with its CI, how many cases each rule leaves below Dice 0.1, and, for
BUS-BRA, the means per device. ``--csv`` writes the per-case table.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.train_reference import card_labels, per_case_cli, run_dataset  # noqa: E402
from harness.analysis.robustness import bootstrap_mean_ci  # noqa: E402
from harness.models import load_model  # noqa: E402
from harness.models.card import POSTPROCESS  # noqa: E402
from harness.models.postprocess import apply_postprocess  # noqa: E402
from harness.train.record import dice_per_class  # noqa: E402
from harness.train.trainer import deterministic  # noqa: E402

PEER = "largest_component"


def per_case_table(run: Path, data_root: Path) -> pd.DataFrame:
    """One row per test case: case_id, device (BUS-BRA; empty otherwise), and the case's mean Dice
    over the classes under every rule (one column per rule)."""
    record = json.loads((run / "training.json").read_text())
    card_text = (run / "model.toml").read_text()
    for rule in POSTPROCESS:
        card_text = card_text.replace(f'postprocess = "{rule}"\n', "")
    raw_card = run / "model-no-postprocess.toml"
    raw_card.write_text(card_text)
    dataset, ndim = run_dataset(record, data_root)
    labels = card_labels(run / "model.toml")  # the dataset may name none (MSD hippocampus)
    rows = []
    with deterministic(0, 2):
        model = load_model(raw_card, ndim=ndim)
        for cid in record["split"]["test"]:
            case = dataset.load(cid)
            pred = model.predict(case.image, case.spacing, case_id=cid)
            row = {"case_id": cid, "device": case.metadata.get("Device", "")}
            for rule in POSTPROCESS:
                cleaned = apply_postprocess(rule, pred.labels, pred.probabilities, labels)
                row[rule] = float(np.mean(list(dice_per_class(cleaned, case.label, labels).values())))
            rows.append(row)
    return pd.DataFrame(rows)


def main() -> None:
    args, table = per_case_cli(__doc__, "a benchmarks/train_reference.py --out folder", per_case_table)
    print(f"{args.run}: {len(table)} test cases; mean Dice (95 % CI), paired difference against {PEER}")
    for rule in POSTPROCESS:
        lo, hi = bootstrap_mean_ci(table[rule].to_numpy(), n_boot=2000, seed=0)
        diff = (table[rule] - table[PEER]).to_numpy()
        dlo, dhi = bootstrap_mean_ci(diff, n_boot=2000, seed=0)
        print(f"  {rule:26s} {table[rule].mean():.4f} ({lo:.4f}-{hi:.4f})  {diff.mean():+.4f} "
              f"({dlo:+.4f} to {dhi:+.4f})  cases below 0.1: {int((table[rule] < 0.1).sum())}")
    if table["device"].astype(bool).any():
        by_device = table.groupby("device")[list(POSTPROCESS)].mean().round(3)
        with pd.option_context("display.width", 200, "display.max_columns", 10):
            print(by_device.assign(n=table.groupby("device").size()))


if __name__ == "__main__":
    main()
