"""An ``--ensemble`` run's test score against each of its members' own.

Usage (from the repository root, after ``benchmarks/train_reference.py ... --ensemble N``)::

    python benchmarks/ensemble_members.py /tmp/bench-hippo-ens2

Splits the run's ensemble into its members (member K → ``OUT/memberK/model.pt``, with a
single-network card ``OUT/memberK/model.toml`` that keeps the run card's input and output options:
grid, sliding window, TTA, postprocessing) and predicts every test case through each member's card
and through the ensemble's. Prints each model's mean test Dice (mean over the classes per case)
with its 95 % bootstrap CI over the test cases, and the ensemble's paired gain over the members'
mean with its CI. ``--csv`` writes the per-case table.
"""
from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.train_reference import card_labels, load_card_model, per_case_cli, run_dataset  # noqa: E402
from harness.analysis.robustness import bootstrap_mean_ci  # noqa: E402
from harness.models import load_model  # noqa: E402
from harness.train.card import write_card  # noqa: E402
from harness.train.ensemble import UNetEnsemble  # noqa: E402
from harness.train.record import dice_per_class  # noqa: E402
from harness.train.trainer import deterministic  # noqa: E402

SINGLE_ENTRY = "harness.train.unet:build_unet"


def member_cards(run: Path) -> list[Path]:
    """Write ``run/memberK/model.pt`` and ``model.toml`` for every member of the run's ensemble."""
    ensemble, card = load_card_model(run / "model.toml")
    if not isinstance(ensemble, UNetEnsemble):
        raise SystemExit(f"{run / 'model.toml'}: not an ensemble (no [model.kwargs] members); "
                         "give a run trained with --ensemble N")
    cards = []
    for k, member in enumerate(ensemble.members):
        folder = run / f"member{k}"
        folder.mkdir(exist_ok=True)
        torch.save(member.state_dict(), folder / "model.pt")
        single = copy.deepcopy(card)
        single["model"].update(entry=SINGLE_ENTRY, weights="model.pt", name=f"{card['model']['name']}-member{k}")
        del single["model"]["kwargs"]["members"]
        write_card(folder / "model.toml", single)
        cards.append(folder / "model.toml")
    return cards


def per_case_table(run: Path, data_root: Path) -> pd.DataFrame:
    """One row per test case: case_id, and the case's mean Dice over the classes for the ensemble
    (column ``ensemble``) and every member (``member0`` …)."""
    record = json.loads((run / "training.json").read_text())
    dataset, ndim = run_dataset(record, data_root)
    labels = card_labels(run / "model.toml")  # the dataset may name none (MSD hippocampus)
    cards = {"ensemble": run / "model.toml", **{c.parent.name: c for c in member_cards(run)}}
    rows = []
    with deterministic(0, 2):
        models = {name: load_model(card, ndim=ndim) for name, card in cards.items()}
        for cid in record["split"]["test"]:  # each case loaded once, predicted by every model
            case = dataset.load(cid)
            row: dict[str, object] = {"case_id": cid}
            for name, model in models.items():
                pred = model.predict(case.image, case.spacing, case_id=cid)
                row[name] = float(np.mean(list(dice_per_class(pred.labels, case.label, labels).values())))
            rows.append(row)
    return pd.DataFrame(rows)


def main() -> None:
    args, table = per_case_cli(__doc__, "a benchmarks/train_reference.py --ensemble N --out folder", per_case_table)
    members = [c for c in table.columns if c.startswith("member")]
    print(f"{args.run}: {len(table)} test cases; mean Dice (95 % CI over the cases)")
    for name in ["ensemble", *members]:
        lo, hi = bootstrap_mean_ci(table[name].to_numpy(), n_boot=2000, seed=0)
        print(f"  {name:10s} {table[name].mean():.4f} ({lo:.4f}-{hi:.4f})")
    gain = (table["ensemble"] - table[members].mean(axis=1)).to_numpy()
    lo, hi = bootstrap_mean_ci(gain, n_boot=2000, seed=0)
    print(f"  ensemble - members' mean: {gain.mean():+.4f} ({lo:+.4f} to {hi:+.4f})")


if __name__ == "__main__":
    main()
