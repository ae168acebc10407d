"""The metric registry: built-in metrics, programmatic registrations and plugins.

A metric is a :class:`Metric`: its :class:`MetricInfo` and a ``compute(ctx) -> float`` function
of a :class:`harness.metrics.scoring.MetricContext` (one label of one case: boolean masks
``ctx.pred`` / ``ctx.ref``, ``ctx.spacing`` in mm, ``ctx.options``, and shared, cached work such
as ``ctx.surface`` distances). Plugins expose a ``Metric`` object under the entry-point group
``harness.metrics`` (entry-point name = metric name), or suites name one directly as
``"package.module:attr"``. ``compute`` must follow the never-NaN empty policy (``ctx.empty``).
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.errors import ConfigError

if TYPE_CHECKING:
    from harness.metrics.scoring import MetricContext


@dataclass(frozen=True)
class MetricInfo:
    """What a metric is: name, direction, unit and a one-line description."""

    name: str
    higher_is_better: bool
    unit: str
    description: str


@dataclass(frozen=True)
class Metric:
    """A metric: its info, ``compute(ctx) -> float`` and the option keys it reads."""

    info: MetricInfo
    compute: Callable[[MetricContext], float]
    options: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        opts = frozenset({self.options}) if isinstance(self.options, str) else self.options
        if not all(isinstance(k, str) for k in opts):
            raise ConfigError(f"metric {self.info.name!r}: options must be option names (str), got {self.options!r}")
        object.__setattr__(self, "options", frozenset(opts))


def _builtin(name: str, higher: bool, unit: str, description: str,
             compute: Callable[[Any], float], *options: str) -> Metric:
    return Metric(MetricInfo(name, higher, unit, description), compute, frozenset(options))


BUILTIN: dict[str, Metric] = {m.info.name: m for m in (
    _builtin("dice", True, "fraction", "Dice coefficient 2 |P and R| / (|P| + |R|)",
             lambda c: c.confusion.dice()),
    _builtin("iou", True, "fraction", "Intersection over union (Jaccard) |P and R| / |P or R|",
             lambda c: c.confusion.iou()),
    _builtin("precision", True, "fraction", "Precision |P and R| / |P|",
             lambda c: c.confusion.precision()),
    _builtin("recall", True, "fraction", "Recall (sensitivity) |P and R| / |R|",
             lambda c: c.confusion.recall()),
    _builtin("hd", False, "mm", "Hausdorff distance between the boundaries (max)",
             lambda c: c.surface.hausdorff(100.0)),
    _builtin("hd95", False, "mm",
             "Percentile Hausdorff distance (option 'percentile', default 95)",
             lambda c: c.surface.hausdorff(c.options.percentile), "percentile"),
    _builtin("assd", False, "mm", "Average symmetric surface distance (pooled directions)",
             lambda c: c.surface.assd()),
    _builtin("masd", False, "mm", "Mean average surface distance (mean of directed means)",
             lambda c: c.surface.masd()),
    _builtin("nsd", True, "fraction",
             "Normalised surface distance (surface Dice) at 'nsd_tolerance' mm",
             lambda c: c.nsd(), "nsd_tolerance", "nsd_method"),
    _builtin("abs_volume_error", False, "mm^3 (mm^2 in 2D)", "Absolute volume difference |V_P - V_R|",
             lambda c: c.abs_volume_error()),
    _builtin("rel_volume_error", False, "fraction", "Relative volume difference |V_P - V_R| / V_R",
             lambda c: c.rel_volume_error()),
    _builtin("fp_lesions", False, "count", "Predicted components touching no reference voxel",
             lambda c: float(c.lesions.fp), "connectivity"),
    _builtin("fn_lesions", False, "count", "Reference components touching no predicted voxel",
             lambda c: float(c.lesions.fn), "connectivity"),
)}

_REGISTERED: dict[str, Metric] = {}


def _check_metric(obj: object, where: str) -> Metric:
    if not isinstance(obj, Metric):
        raise ConfigError(f"{where} is not a harness.metrics.Metric (got {type(obj).__name__})")
    return obj


def register(metric: Metric) -> Metric:
    """Add ``metric`` to the registry of this process (for in-process plugins and tests)."""
    _check_metric(metric, f"metric {getattr(getattr(metric, 'info', None), 'name', metric)!r}")
    name = metric.info.name
    if name in BUILTIN:
        raise ConfigError(f"metric name {name!r} is taken by a built-in metric")
    _REGISTERED[name] = metric
    return metric


def unregister(name: str) -> None:
    """Remove a metric added with :func:`register` (no-op when absent)."""
    _REGISTERED.pop(name, None)


@functools.cache
def _plugins() -> dict[str, Metric]:
    """Metrics from the ``harness.metrics`` entry-point group, loaded once per process."""
    from harness import plugins

    found: dict[str, Metric] = {}
    for name, obj in plugins.entry_point_objects("harness.metrics").items():
        metric = _plugin_metric(name, obj)
        if name in BUILTIN:
            raise ConfigError(f"plugin metric {name!r} clashes with a built-in metric")
        found[name] = metric
    return found


def _plugin_metric(name: str, obj: object) -> Metric:
    """Entry point ``name``'s object as a Metric whose name is the entry point's (ConfigError else)."""
    metric = _check_metric(obj, f"plugin metric {name!r}")
    if metric.info.name != name:
        raise ConfigError(f"plugin metric {name!r} calls itself {metric.info.name!r}; "
                          "the entry-point name must equal MetricInfo.name")
    return metric


def metrics() -> dict[str, Metric]:
    """Every metric by name: built-in, then registered, then entry-point plugins (all imported)."""
    return {**BUILTIN, **_REGISTERED, **_plugins()}


GROUP = "harness.metrics"


@functools.cache
def _not_shadowed(name: str) -> bool:
    """ConfigError when a plugin takes the built-in ``name`` (checked once per name and process)."""
    from harness import plugins

    plugins.refuse_shadowing(GROUP, name, "metric")
    return True


@functools.cache
def _plugin(name: str) -> Metric | None:
    """The one entry-point metric ``name`` (others are not imported: a broken one stops no suite
    that does not use it)."""
    from harness import plugins

    obj = plugins.entry_point_object(GROUP, name)
    return None if obj is None else _plugin_metric(name, obj)


def _lookup(name: str) -> Metric | None:
    """Metric ``name``: built-in, registered or an entry point of that name; None when unknown."""
    if name in BUILTIN:
        _not_shadowed(name)
        return BUILTIN[name]
    return _REGISTERED.get(name) or _plugin(name)


def _known_names() -> list[str]:
    from harness import plugins

    return sorted({*BUILTIN, *_REGISTERED, *plugins.entry_point_names(GROUP)})


def metric_info(metric: str) -> MetricInfo | None:
    """What ``metric`` is: a registry name's :class:`MetricInfo`, or that of the object a
    ``"package.module:attr"`` reference names (its direction and unit are the object's, as for a
    registered metric); None for an unknown name or a reference that no longer imports."""
    if not isinstance(metric, str):
        return None
    found = _lookup(metric)
    if found is None and ":" in metric:
        try:
            found = resolve([metric])[0][1]  # imports the reference and checks it is a Metric
        except ConfigError:  # e.g. the plugin was uninstalled after the run: the caller's fallback
            return None
    return found.info if found is not None else None


def value_range(metric: str) -> tuple[float, float]:
    """The values ``metric`` can take: [0, 1] for higher-is-better fractions (Dice, IoU, NSD...);
    [0, inf) for the other built-in metrics (distances, volumes, counts, relative volume error) and
    lower-is-better plugin fractions; (-inf, inf) for other plugin metrics (the registry cannot know
    their range: a signed error, a correlation) and unknown names."""
    info = metric_info(metric)
    if info is None:
        return float("-inf"), float("inf")
    if info.higher_is_better and info.unit == "fraction":
        return 0.0, 1.0
    return (0.0, float("inf")) if metric in BUILTIN or info.unit == "fraction" else (float("-inf"), float("inf"))


def available() -> dict[str, MetricInfo]:
    """Every metric's :class:`MetricInfo` by name."""
    return {name: metric.info for name, metric in metrics().items()}


def unit_label(metric: str) -> str:
    """``metric`` with its unit, for tables and axes: "hd95 [mm]", "fp_lesions [count]"; the bare
    name for fractions (Dice, IoU, ...) and for names the registry does not know."""
    unit = getattr(metric_info(metric), "unit", "")
    return f"{metric} [{unit}]" if unit and unit != "fraction" else metric


def resolve(names: Iterable[str]) -> list[tuple[str, Metric]]:
    """The metrics for ``names`` (registry names or ``"package.module:attr"``), in order and
    without duplicates. ConfigError listing the available names for an unknown one."""
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, Iterable):
        raise ConfigError(f"metrics must be a list of metric names such as ['dice', 'hd95'], got {names!r}")
    out: list[tuple[str, Metric]] = []
    for name in dict.fromkeys(names):
        if not isinstance(name, str):
            raise ConfigError(f"metric names must be strings, got {name!r}")
        found = _lookup(name)
        if found is not None:
            out.append((name, found))
        elif ":" in name:
            from harness.plugins import import_object

            obj = import_object(name, what="metric")
            out.append((name, _check_metric(obj, f"metric {name!r}")))
        else:
            raise ConfigError(f"unknown metric {name!r}; available: {', '.join(_known_names())}")
    return out
