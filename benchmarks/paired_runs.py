"""Two training runs compared on the same test cases: the per-case paired difference of their Dice.

Usage (from the repository root, after two ``benchmarks/train_reference.py`` runs on one split)::

    python benchmarks/paired_runs.py /tmp/bench-hippo-a /tmp/bench-hippo-b

Reads each run's ``test_dice.csv`` (one row per test case, written by ``harness train``), checks
that both hold the same cases, and prints each run's mean test Dice (``dice_mean``: the case's mean
over the classes; ``--column dice_1`` for one class), the mean of ``B − A`` per case with its 95 %
bootstrap CI over the test patients (whole patients resampled when the split has a patient column,
as BUS-BRA's ``Case``), and how many cases gain. Differences between training seeds are not in that
interval: it says how sure the difference is on these test cases, for these two trained networks.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.train_reference import run_dataset  # noqa: E402
from harness.analysis.robustness import bootstrap_mean_ci  # noqa: E402
from harness.train.trainer import patients_of  # noqa: E402

TABLE = "test_dice.csv"


def read_table(run: Path, column: str) -> pd.Series:
    """``case_id -> column`` of ``run/test_dice.csv``; SystemExit naming the file when it is missing."""
    path = run / TABLE
    if not path.is_file():
        raise SystemExit(f"{path}: no such file; give the output folder of a finished training run with a test set")
    table = pd.read_csv(path, dtype={"case_id": str})
    if column not in table.columns:
        raise SystemExit(f"{path}: no column {column!r} (columns: {', '.join(table.columns)})")
    return table.set_index("case_id")[column].astype(float)


def patients(run: Path, data_root: Path) -> dict[str, str] | None:
    """``case_id -> patient`` from the split's patient column (BUS-BRA: ``Case``), as the run's own
    test CIs; None when the split has none (each case its own patient: MSD hippocampus)."""
    record = json.loads((run / "training.json").read_text())
    if not record["split"].get("group_column"):
        return None
    found = patients_of(run_dataset(record, data_root)[0], record["split"]["group_column"])
    return None if found is None else {str(k): str(v) for k, v in found.items()}


def paired(a: pd.Series, b: pd.Series, clusters: dict[str, str] | None, *, seed: int = 0) -> dict:
    """Means of ``a`` and ``b``, the mean paired difference ``b − a`` with its 95 % CI, and counts."""
    if set(a.index) != set(b.index):
        only = sorted(set(a.index) ^ set(b.index))
        raise SystemExit(f"the runs hold different test cases ({len(only)} in one only, e.g. {only[0]!r}); "
                         "compare runs trained on the same split")
    diff = (b - a.reindex(b.index)).to_numpy()
    ids = np.asarray([clusters.get(c, c) for c in b.index]) if clusters else None
    low, high = bootstrap_mean_ci(diff, n_boot=2000, seed=seed, clusters=ids)
    return {"n": len(diff), "mean_a": float(a.mean()), "mean_b": float(b.mean()), "difference": float(diff.mean()),
            "ci95": [low, high], "gain": int((diff > 0).sum()), "loss": int((diff < 0).sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_a", type=Path)
    parser.add_argument("run_b", type=Path)
    parser.add_argument("--column", default="dice_mean", help="column of test_dice.csv (default dice_mean)")
    parser.add_argument("--data-root", type=Path, default=ROOT.parent / "shared" / "data",
                        help="where busbra/ lies (read for its patient ids)")
    args = parser.parse_args()
    a, b = (read_table(run, args.column) for run in (args.run_a, args.run_b))
    result = paired(a, b, patients(args.run_b, args.data_root))
    print(f"A {args.run_a}: {result['mean_a']:.4f}\nB {args.run_b}: {result['mean_b']:.4f}\n"
          f"B − A per case: {result['difference']:+.4f} "
          f"(95 % CI {result['ci95'][0]:+.4f} … {result['ci95'][1]:+.4f}; "
          f"n = {result['n']}; {result['gain']} gain, {result['loss']} lose)")


if __name__ == "__main__":
    main()
