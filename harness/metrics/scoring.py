"""Score label maps: one row of metrics per foreground label (the runner's entry point).

>>> import numpy as np
>>> ref = np.zeros((8, 8), int); ref[2:6, 2:6] = 1
>>> pred = np.zeros((8, 8), int); pred[2:6, 3:7] = 1
>>> for row in evaluate(pred, ref, spacing=(1.0, 1.0), labels=[1, 2], metrics=["dice", "hd"]):
...     print(row)
{'label': 1, 'dice': 0.75, 'hd': 1.0, 'empty': 'none'}
{'label': 2, 'dice': 1.0, 'hd': 0.0, 'empty': 'both'}
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from functools import cached_property
from typing import Any, Literal

import numpy as np

from harness.errors import FOREIGN_FAILURES, ConfigError, describe_failure
from harness.metrics import _geometry as geo
from harness.metrics import lesions, surface, surfel, volume
from harness.metrics._checks import (Empty, as_label_map, as_spacing, check_connectivity,
                                     check_pair, check_percentile, check_tolerance, diagonal,
                                     empty_case)
from harness.metrics.overlap import Confusion
from harness.metrics.registry import Metric, resolve


@dataclass(frozen=True)
class Options:
    """Metric options a suite may set (``[metrics.options]``)."""

    percentile: float = 95.0  # for "hd95", in [0, 100]
    nsd_tolerance: float = 1.0  # mm, for "nsd"
    nsd_method: Literal["voxel", "surfel"] = "voxel"
    connectivity: int | None = None  # lesions: 1 (faces) .. ndim (full, the default)

    @classmethod
    def parse(cls, options: Mapping[str, Any] | None, *, ndim: int,
              extra: Iterable[str] = ()) -> Options:
        """Validated options; ConfigError for an unknown key or a bad value."""
        if options is not None and not isinstance(options, Mapping):
            raise ConfigError(f"metric options must be a mapping of option name to value such as "
                              f"{{'percentile': 95}}, got {options!r}")
        raw = dict(options or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known - set(extra))
        if unknown:
            raise ConfigError(f"unknown metric option(s) {', '.join(map(repr, unknown))}; "
                              f"known: {', '.join(sorted(known | set(extra)))}")
        values = {k: v for k, v in raw.items() if k in known}
        try:
            parsed = cls(**values)
            parsed = replace(parsed, percentile=check_percentile(parsed.percentile),
                              nsd_tolerance=check_tolerance(parsed.nsd_tolerance))
            check_connectivity(parsed.connectivity, ndim)
            if parsed.nsd_method not in ("voxel", "surfel"):
                raise ValueError("nsd_method must be 'voxel' or 'surfel', "
                                 f"got {parsed.nsd_method!r}")
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"bad metric option: {exc}") from exc
        return parsed


class MetricContext:
    """One label of one case, handed to every metric's ``compute``; shared work is cached."""

    def __init__(self, pred: np.ndarray, ref: np.ndarray, *, spacing: tuple[float, ...],
                 options: Options, raw_options: Mapping[str, Any] | None = None) -> None:
        self.pred = pred  # boolean masks of equal shape
        self.ref = ref
        self.spacing = spacing
        self.options = options
        self.raw_options: Mapping[str, Any] = dict(raw_options or {})  # incl. plugin keys
        self._pred3, self._ref3 = geo.as3d(pred), geo.as3d(ref)

    @cached_property
    def scan(self) -> geo.Scan:
        return geo.scan(self._pred3, self._ref3)

    @property
    def empty(self) -> Empty:
        """"none", "both", "reference" or "prediction": which mask is empty."""
        return empty_case(self.scan.n_pred, self.scan.n_ref)

    @property
    def diagonal(self) -> float:
        """The image's physical diagonal (mm), the distance used when exactly one mask is empty."""
        return diagonal(self.pred.shape, self.spacing)

    @cached_property
    def confusion(self) -> Confusion:
        s = self.scan
        return Confusion(tp=s.n_both, fp=s.n_pred - s.n_both, fn=s.n_ref - s.n_both)

    @cached_property
    def surface(self) -> surface.SurfaceDistances:
        return surface.from_scan(self._pred3, self._ref3, self.scan, self.pred.shape, self.spacing)

    @cached_property
    def surfels(self) -> surfel.SurfelDistances:
        return surfel.from_scan(self._pred3, self._ref3, self.scan, self.pred.shape, self.spacing)

    def nsd(self) -> float:
        tau = self.options.nsd_tolerance
        source = self.surfels if self.options.nsd_method == "surfel" else self.surface
        return source.nsd(tau)

    def abs_volume_error(self) -> float:
        return volume.abs_from_counts(self.scan.n_pred, self.scan.n_ref,
                                      volume.voxel_volume(self.spacing))

    def rel_volume_error(self) -> float:
        return volume.rel_from_counts(self.scan.n_pred, self.scan.n_ref)

    @cached_property
    def lesions(self) -> lesions.LesionCounts:
        conn = check_connectivity(self.options.connectivity, self.pred.ndim)
        if self.empty == "both":
            return lesions.LesionCounts(0, 0, 0, 0)
        lo, hi = self.scan.union_box  # in as3d's axis order (a single slice's thin axis first)
        if self.pred.ndim == 2:
            return lesions.from_masks(self.pred, self.ref, connectivity=conn, box=(lo[1:], hi[1:]))
        # 3D: the as3d views, whose axis order the box follows (component counts do not depend on it)
        return lesions.from_masks(self._pred3.view(bool), self._ref3.view(bool), connectivity=conn, box=(lo, hi))


def validate_config(metrics: Iterable[str], options: Mapping[str, Any] | None = None, *,
                    ndim: int | None = None) -> Options:
    """Check metric names and options before any model call (for suite validation).

    Raises ConfigError naming an unknown metric (listing the available ones), an unknown option
    key or a bad option value; ``ndim=None`` accepts any connectivity valid in 2D or 3D.
    """
    chosen = resolve(metrics)
    extra = set().union(*(m.options for _, m in chosen)) if chosen else set()
    return Options.parse(options, ndim=ndim or 3, extra=extra)


def evaluate(pred: object, ref: object, *, spacing: float | Sequence[float],
             labels: Iterable[int], metrics: Iterable[str],
             options: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Score integer label maps ``pred`` against ``ref`` for each of ``labels``.

    Returns one dict per label, ``{"label": k, <metric>: float, ..., "empty": case}`` with the
    metrics in the order asked and ``empty`` one of "none", "both", "reference", "prediction".
    Surface distances are computed once per label and shared by hd, hd95, assd, masd and nsd.
    Raises ValueError for bad arrays or spacing, ConfigError for unknown metrics or options.
    """
    p, r = as_label_map(pred, "pred"), as_label_map(ref, "ref")
    check_pair(p, r)
    sp = as_spacing(spacing, p.ndim)
    chosen = resolve(metrics)
    opts = validate_config([name for name, _ in chosen], options, ndim=p.ndim)
    if isinstance(labels, (str, bytes)) or not isinstance(labels, Iterable):
        raise ValueError(f"labels must be an iterable of integers such as [1, 2], got {labels!r}")
    rows: list[dict[str, Any]] = []
    for label in labels:
        if isinstance(label, bool) or not isinstance(label, (int, np.integer)):
            raise ValueError(f"labels must be integers, got {label!r}")
        if label < 0:  # label maps hold no negative classes (refused above): it would score as perfect
            raise ValueError(f"labels are class numbers >= 0 of the label maps, got {label!r}")
        ctx = MetricContext(p == label, r == label, spacing=sp, options=opts, raw_options=options)
        row: dict[str, Any] = {"label": int(label)}
        for name, metric in chosen:
            row[name] = _value(name, metric, ctx, label)
        row["empty"] = ctx.empty
        rows.append(row)
    return rows


def _value(name: str, metric: Metric, ctx: MetricContext, label: int) -> float:
    """``metric`` on one label as a float; ValueError naming the metric when it raises (a plugin
    may fail in any way) or returns NaN or something that is not a real number."""
    try:
        value = metric.compute(ctx)
    except FOREIGN_FAILURES as exc:
        raise ValueError(f"metric {name!r} raised {describe_failure(exc)} for label {label} (empty case "
                         f"{ctx.empty!r}); fix the metric") from exc
    try:  # a float, a NumPy or torch scalar, a one-element array; not None, text, a bool or a list
        if value is None or isinstance(value, (bool, np.bool_, str, bytes, list, tuple, dict)):
            raise TypeError
        value = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"metric {name!r} returned {type(value).__name__} {_short(value)} for label {label}, "
                         "not a number; a metric returns one float") from None
    if math.isnan(value):
        raise ValueError(f"metric {name!r} returned NaN for label {label} "
                         f"(empty case {ctx.empty!r}); metrics must never return NaN")
    return value


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
