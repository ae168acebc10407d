"""``harness validate-data``: check a dataset as ``harness run`` would, before any model is involved.

Runs the up-front checks of the dataset (files, headers, shapes, metadata), then reads every case
(or the first ``--limit``): pixels readable, mask values among the named classes, image and mask
grids equal. Prints what it found (cases, modality, classes, shapes, spacings, metadata columns)
and exits 0, or 3 listing every problem.
"""
from __future__ import annotations

from typing import Annotated, Any, Optional

import numpy as np
import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.datasets import open_dataset
from harness.datasets.label_values import check_named_classes
from harness.errors import ConfigError
from harness.terminal import make_console

MAX_LISTED = 50  # problems shown (all are counted)


def _span(values: list[tuple[float, ...]], fmt: str) -> str:
    """'32x64x64' or '35x49x35 .. 43x59x47' (per-axis min and max)."""
    if not values:
        return "-"
    lo, hi = np.min(values, axis=0), np.max(values, axis=0)
    text = "x".join(format(v, fmt) for v in lo)
    return text if np.array_equal(lo, hi) else f"{text} .. {'x'.join(format(v, fmt) for v in hi)}"


def _patients_row(metadata: pd.DataFrame) -> str | None:
    """How the cases group by patient (a patient column of the metadata), with the suite key that
    makes patients the unit of the statistics when some have several cases; None without a column."""
    from harness.datasets.columns import PATIENT_COLUMNS, column, ids_of

    col = column(metadata, PATIENT_COLUMNS)
    if col is None:
        return None
    ids = ids_of(metadata[col]).dropna()
    counts = ids.value_counts()
    text = f"{len(ids)} cases of {len(counts)} patients (column {col})"
    if (counts > 1).any():
        text += escape(f"; {int((counts > 1).sum())} with several cases: set [suite].cluster = \"{col}\" so that "
                       "CIs and tests count patients")
    return text


def _orientations(dataset: Any, case_ids: list[str]) -> str | None:
    """NIfTI images' axis codes (nibabel ``aff2axcodes``) and how many cases have each; a warning when
    they differ, since voxels are read as stored: a model then sees some cases mirrored or turned."""
    codes: dict[str, int] = {}
    for axes in dataset.axis_codes(case_ids).values():
        codes[axes] = codes.get(axes, 0) + 1
    if not codes:
        return None
    text = ", ".join(f"{axes} ({n})" for axes, n in sorted(codes.items(), key=lambda kv: (-kv[1], kv[0])))
    if len(codes) == 1:
        return text
    return ("[yellow]" + escape(f"{text}: the cases are stored in different orientations and are read as stored, "
                                "so a model sees some mirrored or turned; reorient them to one (e.g. nibabel "
                                "as_closest_canonical) before evaluating") + "[/yellow]")


def validate_data(data: str, *, limit: int | None = None, console: Console | None = None) -> Table:
    """Check ``data`` (a data spec as for ``harness run --data``); print and return a summary table.
    Raises ConfigError (exit 3) listing every problem found."""
    console = console or make_console()
    full = open_dataset(data)
    dataset = full.subset(limit)
    problems = dataset.validate()
    if problems:
        raise ConfigError(f"data {data}: {len(problems)} problem(s) in the files:", problems=problems[:MAX_LISTED])
    known = {int(k) for k in dataset.label_names or {}} - {0}
    shapes, spacings, channels, values = [], [], set(), set()
    for cid in dataset.case_ids:
        try:
            case = dataset.load(cid)
            found = {int(v) for v in np.unique(case.label)}
            if known:
                check_named_classes(cid, found, known, named_by="the data (its label names)")
        except (ConfigError, OSError, ValueError) as exc:
            message = str(exc)  # the class check names the case itself
            problems.append(message if message.startswith(f"case {cid}: ") else f"{cid}: {message}")
            continue
        shapes.append(tuple(case.label.shape))
        spacings.append(tuple(case.spacing))
        channels.add(case.image.shape[0])
        values |= found
    if problems:
        raise ConfigError(f"data {data}: {len(problems)} of {len(dataset.case_ids)} case(s) cannot be used:",
                          problems=problems[:MAX_LISTED])
    classes = ", ".join(f"{k} {dataset.label_names[k]}" for k in sorted(known)) if known else \
        f"not named: mask values {sorted(values - {0})} (a model card's labels will name them)"
    metadata = dataset.metadata
    table = Table(title=f"validate-data: {getattr(dataset, 'name', data)}", show_header=True)
    table.add_column("check")
    table.add_column("found", overflow="fold")
    table.add_row("cases", f"{len(dataset.case_ids)} read" + (f" (the first {limit})" if limit else ""))
    table.add_row("modality", str(dataset.modality))
    table.add_row("dimensions", f"{len(shapes[0])}D, {', '.join(map(str, sorted(channels)))} channel(s)")
    table.add_row("classes", classes)
    table.add_row("shape (voxels)", _span(shapes, "d"))
    assumed = dataset.assumed_spacing()
    table.add_row("spacing (mm)", _span(spacings, ".4g") + (
        "[yellow]" + escape(f" (assumed for {len(assumed)} of {len(dataset.case_ids)} cases: their raster files "
                            "carry no spacing and the card gives none, so distances will be in pixels; set "
                            "[dataset] spacing in the card)") + "[/yellow]" if assumed else ""))
    table.add_row("metadata", ", ".join(f"{c} ({metadata[c].nunique()} values)" for c in metadata.columns) or "none")
    if (patients := _patients_row(metadata)) is not None:
        table.add_row("patients", patients)
    if unmatched := getattr(full, "unmatched", []):
        table.add_row("not used", "[yellow]" + escape("; ".join(unmatched) + " (check the layout or the card's "
                                                      "images / key_regex / metadata)") + "[/yellow]")
    if hasattr(full, "axis_codes") and (orientations := _orientations(full, dataset.case_ids)) is not None:
        table.add_row("orientation", orientations)
    table.add_row("result", "[green]OK[/green]")
    console.print(table)
    return table


def validate_data_command(
    data: Annotated[str, typer.Argument(help="Data spec as for `harness run --data`: a dataset card, an "
                                             "MSD/nnU-Net folder or phantom2d/phantom3d.")],
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="Check only the first N cases.")] = None,
) -> None:
    """Check a dataset before evaluating on it: files, pixels, classes, metadata (exit 0 valid, 3 problems)."""
    validate_data(data, limit=limit)


__all__ = ["validate_data", "validate_data_command"]
