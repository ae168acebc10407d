"""Training outputs besides weights: curves (CSV + PNG) and per-class Dice (versions: harness.provenance)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd


def dice_per_class(pred: np.ndarray, ref: np.ndarray, labels: Sequence[int]) -> dict[int, float]:
    """Dice per class; 1.0 when both are empty (the harness's empty policy)."""
    out = {}
    for k in labels:
        p, r = pred == k, ref == k
        denom = int(p.sum()) + int(r.sum())
        out[int(k)] = 1.0 if denom == 0 else 2.0 * int((p & r).sum()) / denom
    return out


def write_curves(history: Sequence[Mapping[str, float]], out: Path,
                 class_names: Mapping[int, str] | None = None) -> None:
    """``curves.csv`` and ``curves.png`` (loss, learning rate and validation Dice per epoch, Dice
    curves named by ``class_names``; ensembles: a ``member`` column first, one line per member and
    curve)."""
    table = pd.DataFrame(list(history))
    table.to_csv(out / "curves.csv", index=False)
    if table.empty:
        return
    from matplotlib.figure import Figure  # no pyplot: the caller's backend (a notebook's) stays as it is

    fig = Figure(figsize=(9, 3.5))
    ax1, ax2 = fig.subplots(1, 2)
    groups = list(table.groupby("member")) if "member" in table.columns else [(None, table)]
    dice_cols = [c for c in table.columns if c.startswith("val_dice")]
    if len(groups) > 1:  # ensembles: the mean validation Dice of each member
        dice_cols = [c for c in dice_cols if c == "val_dice_mean"]
    names = {f"val_dice_{k}": f"{v} ({k})" for k, v in (class_names or {}).items()}
    names["val_dice_mean"] = "mean"
    lr_axis = ax1.twinx() if "lr" in table.columns else None
    for member, rows in groups:
        suffix = "" if member is None else f" (member {member})"
        ax1.plot(rows["epoch"], rows["train_loss"], label="train loss" + suffix)
        if lr_axis is not None:
            lr_axis.plot(rows["epoch"], rows["lr"], color="0.5", linestyle="--", linewidth=1,
                         label="learning rate" + suffix)
        for col in dice_cols:
            ax2.plot(rows["epoch"], rows[col], label=names.get(col, col) + suffix)
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss")
    handles, labels = ax1.get_legend_handles_labels()
    if lr_axis is not None:
        lr_axis.set_ylabel("learning rate")
        more = lr_axis.get_legend_handles_labels()
        handles, labels = handles + more[0], labels + more[1]
    ax1.legend(handles, labels, fontsize=7)
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("validation Dice")
    ax2.set_ylim(0, 1)
    if dice_cols:  # no validation set (e.g. one patient): an empty panel, no legend
        ax2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=100)
