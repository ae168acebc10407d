"""Deterministic matplotlib figures, embedded in the report as data URIs.

Charts are SVG (crisp when printed to PDF), images PNG. Rendering never touches pyplot's global
state (a bare :class:`~matplotlib.figure.Figure` on the Agg canvas) and runs under fixed rcParams
with the SVG hash salt set and file metadata stripped, so the same inputs give the same bytes:
regenerating a report from its run folder reproduces it exactly.
"""
from __future__ import annotations

import base64
import io
from collections.abc import Iterator, Sequence
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from harness.metrics import unit_label
from harness.records import CLEAN

RC: Any = {"svg.hashsalt": "harness-report", "svg.fonttype": "path", "font.family": "DejaVu Sans",
      "font.size": 8.5, "axes.titlesize": 9.5, "axes.labelsize": 8.5, "legend.fontsize": 7.5,
      "xtick.labelsize": 7.5, "ytick.labelsize": 7.5, "axes.spines.top": False, "axes.spines.right": False,
      "path.simplify": True, "image.interpolation": "nearest", "image.resample": False}
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf"]
LABEL_COLOURS = ["#00c853", "#ffab00", "#2979ff", "#d500f9", "#00e5ff", "#ff1744", "#76ff03", "#f50057"]
LABEL_COLOUR_NAMES = ["green", "amber", "blue", "purple", "cyan", "red", "lime", "pink"]


def label_colour_key(labels: dict[int, str]) -> str:
    """Which outline colour is which class, e.g. "organ green, lesion amber" (background left out)."""
    return ", ".join(f"{name} {LABEL_COLOUR_NAMES[(k - 1) % len(LABEL_COLOUR_NAMES)]}"
                     for k, name in sorted(labels.items()) if k > 0)


def new_figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def to_data_uri(fig: Figure, *, fmt: str = "svg", dpi: int = 100) -> str:
    """Serialise ``fig`` without timestamps or software tags (byte-stable output)."""
    buffer = io.BytesIO()
    with matplotlib.rc_context(RC):
        if fmt == "svg":
            fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
            mime = "image/svg+xml"
        else:
            fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
            mime = "image/png"
    return f"data:{mime};base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def png_file_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


MARKERS = ["o", "s", "^", "D", "v", "P", "X"]  # 7 markers x 10 colours: 70 distinct line styles


def _styles(names: Sequence[str]) -> dict[str, dict[str, str]]:
    """A colour and a marker per line, so that no two lines of a plot look alike (the palette has 10
    colours; the robustness suite has 16 families)."""
    return {name: {"color": PALETTE[i % len(PALETTE)], "marker": MARKERS[i % len(MARKERS)]}
            for i, name in enumerate(names)}


def severity_curves(table: pd.DataFrame, metric: str, *, better: str = "higher",
                    baseline: pd.DataFrame | None = None, label: str | None = None) -> str | None:
    """Mean ``metric`` (95% bootstrap CI band) against severity, one line per family, clean at 0.

    ``baseline`` (same columns, from the baseline run) is drawn dashed for comparison.
    """
    rows = table[table["metric"] == metric]
    if rows.empty or (rows["perturbation"] != CLEAN).sum() == 0:
        return None
    with matplotlib.rc_context(RC):
        fig = new_figure(5.0, 3.1)
        ax = fig.add_subplot()
        families = sorted(set(rows["perturbation"]) - {CLEAN})
        styles = _styles(families)
        for family, line in _family_lines(rows, families):
            ax.plot(line["severity"], line["mean"], ms=3.5, lw=1.6, label=family, **styles[family])
            ax.fill_between(line["severity"], line["ci_low"], line["ci_high"], alpha=0.15,
                            color=styles[family]["color"], lw=0)
        if baseline is not None and not baseline.empty:
            for family, line in _family_lines(baseline[baseline["metric"] == metric], families):
                ax.plot(line["severity"], line["mean"], ls="--", lw=1.0, color=styles[family]["color"], alpha=0.8)
        ax.set_xlabel("severity (0 = clean)")
        ax.set_ylabel(f"mean {label or unit_label(metric)} ({better} is better)")
        ax.set_xticks(range(6))
        ax.grid(alpha=0.3, lw=0.5)
        ax.legend(loc="best", ncol=2 if len(families) > 4 else 1, frameon=False)
        ax.set_title(metric + (" — dashed: baseline run" if baseline is not None and not baseline.empty else ""))
        return to_data_uri(fig)


def _family_lines(rows: pd.DataFrame, families: list[str]) -> Iterator[tuple[str, pd.DataFrame]]:
    clean = rows[rows["perturbation"] == CLEAN]
    for family in families:
        group = rows[rows["perturbation"] == family]
        if group.empty:
            continue
        yield family, pd.concat([clean.assign(perturbation=family), group]).sort_values("severity")


def epsilon_curves(table: pd.DataFrame, *, metric: str = "dice") -> str | None:
    """Attacked ``metric`` against ε (fraction of the foreground intensity std), one line per attack."""
    if table.empty:
        return None
    with matplotlib.rc_context(RC):
        fig = new_figure(5.0, 3.1)
        ax = fig.add_subplot()
        names = sorted(table["perturbation"].unique())
        styles = _styles(names)
        for name in names:
            rows = table[table["perturbation"] == name].sort_values("eps_fraction")
            x = np.concatenate([[0.0], rows["eps_fraction"].to_numpy(float)])
            y = np.concatenate([[float(rows["clean_mean"].iloc[0])], rows["mean"].to_numpy(float)])
            dashed = str(rows["threat"].iloc[0]) != "whitebox"
            ax.plot(x, y, ms=3.5, lw=1.6, ls="--" if dashed else "-", label=name, **styles[name])
        ax.set_xlabel("ε (fraction of foreground intensity std)")
        ax.set_ylabel(f"mean attacked {metric}")
        ax.grid(alpha=0.3, lw=0.5)
        ax.legend(loc="best", frameon=False)
        ax.set_title(f"{metric} vs attack budget ε (dashed: black-box / control)")
        return to_data_uri(fig)


def forest_plot(groups: pd.DataFrame, *, title: str, xlabel: str) -> str | None:
    """One row per group: mean with its 95% CI; groups below the minimum size drawn hollow."""
    if groups.empty:
        return None
    rows = groups.reset_index(drop=True)
    with matplotlib.rc_context(RC):
        fig = new_figure(5.0, 0.9 + 0.28 * len(rows))
        ax = fig.add_subplot()
        y = np.arange(len(rows))[::-1]
        mean = rows["mean"].to_numpy(float)
        lo, hi = rows["ci_low"].to_numpy(float), rows["ci_high"].to_numpy(float)
        ok = np.isfinite(lo) & np.isfinite(hi)
        ax.errorbar(mean[ok], y[ok], xerr=[mean[ok] - lo[ok], hi[ok] - mean[ok]], fmt="none", ecolor="#555",
                    elinewidth=1.2, capsize=2.5)
        small = rows["small"].to_numpy(bool)
        ax.plot(mean[~small], y[~small], "s", color="#1f77b4", ms=5)
        ax.plot(mean[small], y[small], "s", mfc="white", mec="#1f77b4", ms=5)
        overall = float(np.average(mean, weights=rows["n"].to_numpy(float))) if rows["n"].sum() else np.nan
        if np.isfinite(overall):
            ax.axvline(overall, color="#999", lw=0.8, ls=":")
        ax.set_yticks(y, [f"{g} (n={int(n)})" for g, n in zip(rows["group"], rows["n"])])
        ax.set_xlabel(xlabel)
        ax.grid(axis="x", alpha=0.3, lw=0.5)
        ax.set_title(title)
        return to_data_uri(fig)


def _window(image: np.ndarray) -> tuple[float, float]:
    lo, hi = (float(v) for v in np.percentile(image, [0.5, 99.5]))
    return lo, hi if hi > lo else lo + 1.0


def _outline(ax: Any, label: np.ndarray, *, style: str = "-") -> None:
    for k in sorted(int(v) for v in np.unique(label) if v > 0):
        mask = (label == k).astype(float)
        if 0 < mask.sum() < mask.size:
            ax.contour(mask, levels=[0.5], colors=[LABEL_COLOURS[(k - 1) % len(LABEL_COLOURS)]],
                       linewidths=0.9, linestyles=style)


def case_panels(arrays: dict[str, np.ndarray], *, aspect: float = 1.0) -> str:
    """The worst-case strip: clean | perturbed | reference | prediction | uncertainty | saliency.

    Both images share the clean image's grey window, so what the perturbation changed is visible.
    """
    panels = ["clean", "perturbed", "reference", "prediction", "uncertainty"]
    if "saliency" in arrays:
        panels.append("saliency")
    clean, perturbed = arrays["image_clean"], arrays["image_perturbed"]
    vmin, vmax = _window(clean)
    with matplotlib.rc_context(RC):
        fig = new_figure(1.9 * len(panels), 2.2)
        axes = fig.subplots(1, len(panels))
        for ax, name in zip(axes, panels):
            ax.set_xticks([])
            ax.set_yticks([])
            base = perturbed if name in ("perturbed", "reference", "prediction") else clean
            if name in ("uncertainty", "saliency"):
                ax.imshow(perturbed, cmap="gray", vmin=vmin, vmax=vmax, aspect=aspect)
                cmap = "magma" if name == "uncertainty" else "viridis"
                ax.imshow(arrays[name].astype(np.float32), cmap=cmap, vmin=0.0, vmax=1.0, alpha=0.8, aspect=aspect)
                _outline(ax, arrays["label_reference"], style=":")
            else:
                ax.imshow(base, cmap="gray", vmin=vmin, vmax=vmax, aspect=aspect)
            if name == "reference":
                _outline(ax, arrays["label_reference"])
            elif name == "prediction":
                _outline(ax, arrays["label_prediction"])
            titles = {"clean": "clean image", "perturbed": "perturbed image", "reference": "reference",
                      "prediction": "prediction", "uncertainty": "uncertainty",
                      "saliency": "saliency"}
            ax.set_title(titles[name], fontsize=8)
        fig.subplots_adjust(wspace=0.08)
        return to_data_uri(fig, fmt="png", dpi=90)
