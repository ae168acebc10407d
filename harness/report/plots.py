"""Matplotlib figures rendered to base64 PNG for embedding in the self-contained report."""
from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from harness.records import CLEAN  # noqa: E402


def figure_to_data_uri(fig: "plt.Figure") -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def severity_curves(table: pd.DataFrame, metric: str) -> str | None:
    """Metric mean (with bootstrap CI band) against severity, one line per family; clean at 0."""
    rows = table[table["metric"] == metric]
    if rows.empty:
        return None
    clean = rows[rows["perturbation"] == CLEAN]
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for family, group in rows[rows["perturbation"] != CLEAN].groupby("perturbation", sort=True):
        group = pd.concat([clean.assign(perturbation=family), group]).sort_values("severity")
        line, = ax.plot(group["severity"], group["mean"], marker="o", label=family)
        ax.fill_between(group["severity"], group["ci_low"], group["ci_high"], alpha=0.15, color=line.get_color())
    ax.set_xlabel("severity (0 = clean)")
    ax.set_ylabel(f"mean {metric}")
    ax.set_xticks(range(0, 6))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="best")
    ax.set_title(f"{metric} vs severity (95% bootstrap CI over cases)")
    return figure_to_data_uri(fig)
