"""Metric labels with the unit a run's numbers are in: millimetres, or pixels for cases whose raster
files carried no spacing (1 mm per pixel was assumed, summary.json ``spacing_assumed``)."""
from __future__ import annotations

from typing import Any

from harness.metrics import unit_label


def run_unit_label(summary: dict[str, Any], metric: str) -> str:
    """``metric`` with its unit for this run: "hd95 [mm]", "hd95 [px]" when no case had a spacing,
    "hd95 [mm; px for 3 cases]" when some had none."""
    label = unit_label(metric)
    pixels = int(summary.get("spacing_assumed") or 0)
    n_cases = int((summary.get("data") or {}).get("n_cases") or 0)
    name, bracket, unit = label.partition(" [")  # the unit only: a metric's name may hold "mm" (commission_error)
    if not pixels or not bracket or "mm" not in unit:
        return label
    if pixels >= n_cases:
        return f"{name} [{unit.replace('mm', 'px')}"
    return f"{name} [{unit[:-1]}; px for {pixels} cases]"
