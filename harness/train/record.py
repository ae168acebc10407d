"""Training outputs besides weights: curves (CSV + PNG), the training record, versions, Dice."""
from __future__ import annotations

import platform
import subprocess
from collections.abc import Mapping, Sequence
from importlib import metadata as importlib_metadata
from pathlib import Path

import numpy as np
import pandas as pd


def versions() -> dict[str, str]:
    """Versions of Python and the packages that influence training results."""
    out = {"python": platform.python_version()}
    for pkg in ("harness", "torch", "numpy", "scipy", "torchio", "SimpleITK"):
        try:
            out[pkg] = importlib_metadata.version(pkg)
        except importlib_metadata.PackageNotFoundError:
            out[pkg] = "unknown"
    return out


def git_hash(path: Path | None = None) -> str | None:
    """The repository's HEAD commit (None when not a git checkout or git is missing)."""
    here = Path(path or Path(__file__).resolve().parent)
    try:
        res = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                             text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() or None if res.returncode == 0 else None


def dice_per_class(pred: np.ndarray, ref: np.ndarray, labels: Sequence[int]) -> dict[int, float]:
    """Dice per class; 1.0 when both are empty (the harness's empty policy)."""
    out = {}
    for k in labels:
        p, r = pred == k, ref == k
        denom = int(p.sum()) + int(r.sum())
        out[int(k)] = 1.0 if denom == 0 else 2.0 * int((p & r).sum()) / denom
    return out


def write_curves(history: Sequence[Mapping[str, float]], out: Path) -> None:
    """``curves.csv`` and ``curves.png`` (loss and validation Dice per epoch; ensembles: a ``member``
    column first, one line per member and curve)."""
    table = pd.DataFrame(list(history))
    table.to_csv(out / "curves.csv", index=False)
    if table.empty:
        return
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
    groups = list(table.groupby("member")) if "member" in table.columns else [(None, table)]
    dice_cols = [c for c in table.columns if c.startswith("val_dice")]
    if len(groups) > 1:  # ensembles: the mean validation Dice of each member
        dice_cols = [c for c in dice_cols if c == "val_dice_mean"]
    for member, rows in groups:
        suffix = "" if member is None else f" (member {member})"
        ax1.plot(rows["epoch"], rows["train_loss"], label="train loss" + suffix)
        for col in dice_cols:
            ax2.plot(rows["epoch"], rows[col], label=col + suffix)
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss")
    ax1.legend(fontsize=7)
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("validation Dice")
    ax2.set_ylim(0, 1)
    if dice_cols:  # no validation set (e.g. one patient): an empty panel, no legend
        ax2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=100)
    plt.close(fig)
