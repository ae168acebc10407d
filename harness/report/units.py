"""Metric labels with the unit a run's numbers are in: millimetres, or pixels for cases whose raster
files carried no spacing (1 mm per pixel was assumed, summary.json ``spacing_assumed``)."""
from __future__ import annotations

import re
from typing import Any

from harness.metrics import metric_info

_BY_NDIM = re.compile(r"(\S+) \((\S+) in 2D\)")  # "mm^3 (mm^2 in 2D)": 3D unit, 2D unit


def run_unit(summary: dict[str, Any], unit: str) -> str:
    """A metric's registry ``unit`` as this run's numbers are in it: "mm", "px" when no case had a
    spacing, "mm; px for 3 cases" when some had none (units without mm stay as they are); a unit
    given for 3D and 2D ("mm^3 (mm^2 in 2D)") as the run's data has it (summary.json ``data.ndim``)."""
    pixels = int(summary.get("spacing_assumed") or 0)
    n_cases = int((summary.get("data") or {}).get("n_cases") or 0)
    by_ndim = _BY_NDIM.fullmatch(unit)  # "mm^3 (mm^2 in 2D)": the one this run's data has
    if by_ndim and (summary.get("data") or {}).get("ndim") in (2, 3):
        unit = by_ndim.group(2) if summary["data"]["ndim"] == 2 else by_ndim.group(1)
    if not pixels or "mm" not in unit:
        return unit
    return unit.replace("mm", "px") if pixels >= n_cases else f"{unit}; px for {pixels} cases"


def run_unit_label(summary: dict[str, Any], metric: str) -> str:
    """``metric`` with its unit for this run: "hd95 [mm]", "hd95 [px]", "hd95 [mm; px for 3 cases]";
    the bare name for fractions and unknown metrics (as :func:`harness.metrics.unit_label`)."""
    unit = getattr(metric_info(metric), "unit", "")
    return f"{metric} [{run_unit(summary, unit)}]" if unit and unit != "fraction" else metric
