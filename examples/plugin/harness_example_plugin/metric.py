"""``volume_similarity``: 1 - |V_pred - V_ref| / (V_pred + V_ref), in [0, 1], higher is better.

A metric gets a ``MetricContext`` for one label of one case (boolean masks, spacing, cached
confusion counts) and returns a float. It must follow the empty policy and never return NaN:
both masks empty -> 1 (perfect agreement), exactly one empty -> 0.
"""
from __future__ import annotations

from harness.metrics import Metric, MetricInfo


def volume_similarity(ctx) -> float:  # noqa: ANN001 - a harness.metrics.MetricContext
    n_pred = ctx.confusion.tp + ctx.confusion.fp
    n_ref = ctx.confusion.tp + ctx.confusion.fn
    if n_pred + n_ref == 0:
        return 1.0
    return 1.0 - abs(n_pred - n_ref) / (n_pred + n_ref)


# The entry-point name (pyproject.toml) must equal MetricInfo.name.
VOLUME_SIMILARITY = Metric(
    MetricInfo("volume_similarity", True, "fraction", "1 - |Vp - Vr| / (Vp + Vr); 1 when both are empty"),
    volume_similarity)
