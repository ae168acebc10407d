"""Segmentation metrics: overlap, surface distance, volume and lesion counts (see docs/metrics.md).

``evaluate`` scores integer label maps per label and is what the runner calls; the single-metric
functions take binary masks. All distances are in mm (``spacing``), nothing returns NaN, and the
empty policy is the same everywhere: both masks empty -> best value, exactly one empty -> worst
(distances: the image's physical diagonal), with the case reported in the ``empty`` column.
"""
from __future__ import annotations

from harness.metrics._geometry import HAVE_NUMBA
from harness.metrics.scoring import MetricContext, Options, evaluate, validate_config
from harness.metrics.lesions import LesionCounts, fn_lesions, fp_lesions, lesion_counts
from harness.metrics.overlap import Confusion, confusion, dice, iou, jaccard, precision, recall
from harness.metrics.registry import (Metric, MetricInfo, available, metric_info, metrics, register, unit_label,
                                      unregister, value_range)
from harness.metrics.surface import (SurfaceDistances, assd, hausdorff, hd95, masd, nsd,
                                     surface_distances)
from harness.metrics.surfel import SurfelDistances, surfel_distances
from harness.metrics.volume import abs_volume_error, rel_volume_error

__all__ = [
    "HAVE_NUMBA", "Confusion", "LesionCounts", "Metric", "MetricContext", "MetricInfo", "Options",
    "SurfaceDistances", "SurfelDistances", "abs_volume_error", "assd", "available", "confusion",
    "dice", "evaluate", "fn_lesions", "fp_lesions", "hausdorff", "hd95", "iou", "jaccard",
    "lesion_counts", "masd", "metric_info", "metrics", "nsd", "precision", "recall", "register",
    "rel_volume_error", "surface_distances", "surfel_distances", "unit_label", "unregister",
    "validate_config", "value_range",
]
