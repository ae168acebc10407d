"""Metric labels with the unit a run's numbers are in: millimetres, or pixels for cases whose raster
files carried no spacing (1 mm per pixel was assumed, summary.json ``spacing_assumed``)."""
from __future__ import annotations

from typing import Any

from harness.metrics import metric_info


def run_unit(summary: dict[str, Any], unit: str) -> str:
    """A metric's registry ``unit`` as this run's numbers are in it: "mm", "px" when no case had a
    spacing, "mm; px for 3 cases" when some had none (units without mm stay as they are)."""
    pixels = int(summary.get("spacing_assumed") or 0)
    n_cases = int((summary.get("data") or {}).get("n_cases") or 0)
    if not pixels or "mm" not in unit:
        return unit
    return unit.replace("mm", "px") if pixels >= n_cases else f"{unit}; px for {pixels} cases"


def run_unit_label(summary: dict[str, Any], metric: str) -> str:
    """``metric`` with its unit for this run: "hd95 [mm]", "hd95 [px]", "hd95 [mm; px for 3 cases]";
    the bare name for fractions and unknown metrics (as :func:`harness.metrics.unit_label`)."""
    unit = getattr(metric_info(metric), "unit", "")
    return f"{metric} [{run_unit(summary, unit)}]" if unit and unit != "fraction" else metric
