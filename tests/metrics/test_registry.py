"""Registry, plugins, options and input errors."""
from __future__ import annotations

import dataclasses
import math
import sys
import types
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from harness import plugins
from harness.errors import ConfigError
from harness.metrics import (Metric, MetricInfo, available, dice, evaluate, hausdorff,
                             lesion_counts, nsd, register, surface_distances, unregister,
                             validate_config)
from harness.metrics import registry

NAMES = ["dice", "iou", "precision", "recall", "hd", "hd95", "assd", "masd", "nsd",
         "abs_volume_error", "rel_volume_error", "fp_lesions", "fn_lesions"]
SQUARE = np.zeros((6, 6), int)
SQUARE[1:4, 1:4] = 1

HD99 = Metric(MetricInfo("hd99", False, "mm", "99th-percentile Hausdorff distance"),
              lambda ctx: ctx.surface.hausdorff(99.0))


@pytest.fixture
def no_plugins() -> Iterator[None]:
    registry._plugins.cache_clear()
    yield
    registry._plugins.cache_clear()


def test_available_lists_every_builtin_with_info() -> None:
    infos = available()
    assert list(infos)[: len(NAMES)] == NAMES
    assert infos["dice"] == MetricInfo("dice", True, "fraction", infos["dice"].description)
    assert infos["hd95"].unit == "mm" and not infos["hd95"].higher_is_better
    assert infos["abs_volume_error"].unit == "mm^3 (mm^2 in 2D)"  # an area for 2D images
    with pytest.raises(dataclasses.FrozenInstanceError):
        infos["dice"].name = "x"  # type: ignore[misc]


def test_unknown_metric_lists_available_names() -> None:
    with pytest.raises(ConfigError, match=r"unknown metric 'hd96'; available: .*assd.*hd95"):
        evaluate(SQUARE, SQUARE, spacing=1.0, labels=[1], metrics=["dice", "hd96"])


def test_registered_metric_reuses_the_shared_surface() -> None:
    register(HD99)
    try:
        assert "hd99" in available()
        (row,) = evaluate(SQUARE, np.roll(SQUARE, 1, 0), spacing=(2.0, 1.0), labels=[1],
                          metrics=["hd99", "dice"])
        assert row["hd99"] == 2.0 and list(row) == ["label", "hd99", "dice", "empty"]
    finally:
        unregister("hd99")
    assert "hd99" not in available()
    with pytest.raises(ConfigError, match="built-in"):
        register(Metric(MetricInfo("dice", True, "", ""), lambda ctx: 1.0))


def test_entry_point_plugins(monkeypatch: pytest.MonkeyPatch, no_plugins: None) -> None:
    def fake(group: str) -> dict[str, object]:
        assert group == "harness.metrics"
        return {"hd99": HD99}

    monkeypatch.setattr(plugins, "entry_point_objects", fake)
    assert available()["hd99"].description.startswith("99th")
    registry._plugins.cache_clear()
    monkeypatch.setattr(plugins, "entry_point_objects", lambda group: {"oops": len})
    with pytest.raises(ConfigError, match=r"'oops' is not a harness\.metrics\.Metric"):
        available()
    registry._plugins.cache_clear()
    monkeypatch.setattr(plugins, "entry_point_objects", lambda group: {"other": HD99})
    with pytest.raises(ConfigError, match="entry-point name must equal"):
        available()


def test_module_attr_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("fake_metric_plugin")
    module.HD99 = HD99  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_metric_plugin", module)
    (row,) = evaluate(SQUARE, SQUARE, spacing=1.0, labels=[1],
                      metrics=["fake_metric_plugin:HD99"])
    assert row["fake_metric_plugin:HD99"] == 0.0


def test_nan_from_a_plugin_is_refused() -> None:
    bad = Metric(MetricInfo("bad", True, "", ""), lambda ctx: float("nan"))
    register(bad)
    try:
        with pytest.raises(ValueError, match="'bad' returned NaN"):
            evaluate(SQUARE, SQUARE, spacing=1.0, labels=[1], metrics=["bad"])
    finally:
        unregister("bad")


@pytest.mark.parametrize("options,match", [
    ({"percentile": 101}, "percentile"),
    ({"nsd_tolerance": -1}, "tolerance"),
    ({"nsd_method": "mesh"}, "nsd_method"),
    ({"connectivity": 3}, "connectivity"),
    ({"nsd_tolerence": 1.0}, "unknown metric option.*nsd_tolerence"),
    ({"percentile": True}, "percentile must be a number, got True"),  # would be the 1st percentile
    ({"percentile": "95"}, "percentile must be a number, got '95'"),
    ({"nsd_tolerance": True}, "tolerance must be a number"),
])
def test_bad_options_are_config_errors(options: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        evaluate(SQUARE, SQUARE, spacing=1.0, labels=[1], metrics=["dice"], options=options)


def test_validate_config_up_front() -> None:
    assert validate_config(["dice", "hd95"], {"percentile": 99}).percentile == 99
    with pytest.raises(ConfigError, match="unknown metric 'dsc'"):
        validate_config(["dsc"])
    with pytest.raises(ConfigError, match="connectivity"):
        validate_config(["fp_lesions"], {"connectivity": 3}, ndim=2)


def test_numeric_options_are_stored_as_floats() -> None:
    opts = validate_config(["hd95", "nsd"], {"percentile": np.int64(90), "nsd_tolerance": 2})
    assert type(opts.percentile) is float and opts.percentile == 90.0
    assert type(opts.nsd_tolerance) is float and opts.nsd_tolerance == 2.0


def test_plugin_option_names_given_as_one_string() -> None:
    metric = Metric(MetricInfo("tau_echo", True, "fraction", "echoes its option"),
                    lambda ctx: float(ctx.raw_options["tau"]), options="tau")  # type: ignore[arg-type]
    assert metric.options == frozenset({"tau"})
    register(metric)
    try:
        (row,) = evaluate(SQUARE, SQUARE, spacing=1.0, labels=[1], metrics=["tau_echo"], options={"tau": 0.5})
        assert row["tau_echo"] == 0.5
    finally:
        unregister("tau_echo")
    with pytest.raises(ConfigError, match="options must be option names"):
        Metric(MetricInfo("bad", True, "fraction", "d"), lambda ctx: 0.0, options=frozenset({1}))  # type: ignore[arg-type]


def test_value_range_of_builtin_and_plugin_metrics() -> None:
    from harness.metrics import value_range

    assert value_range("dice") == (0.0, 1.0) and value_range("hd95") == (0.0, float("inf"))
    assert value_range("rel_volume_error") == (0.0, float("inf"))
    signed = Metric(MetricInfo("signed_volume_error", False, "mm^3", "V_P - V_R"), lambda ctx: 0.0)
    share = Metric(MetricInfo("share_ok", True, "fraction", "a plugin fraction"), lambda ctx: 1.0)
    register(signed), register(share)
    try:
        assert value_range("signed_volume_error") == (float("-inf"), float("inf"))  # may be negative
        assert value_range("share_ok") == (0.0, 1.0)
    finally:
        unregister("signed_volume_error"), unregister("share_ok")
    assert value_range("not_a_metric") == (float("-inf"), float("inf"))


def test_options_change_results() -> None:
    shifted = np.roll(SQUARE, 2, 1)
    (a,) = evaluate(SQUARE, shifted, spacing=1.0, labels=[1], metrics=["hd95", "nsd"],
                    options={"percentile": 50, "nsd_tolerance": 2.0, "nsd_method": "surfel"})
    assert a["hd95"] == pytest.approx(surface_distances(SQUARE, shifted).hausdorff(50))
    assert a["nsd"] == pytest.approx(nsd(SQUARE, shifted, tolerance=2.0, method="surfel"))


@pytest.mark.parametrize("call,match", [
    (lambda: dice(np.zeros((3, 3)), np.zeros((3, 4))), r"shapes differ: \(3, 3\) vs \(3, 4\)"),
    (lambda: dice(np.full((3, 3), 2), np.zeros((3, 3))), "pred is not a binary mask"),
    (lambda: hausdorff(np.zeros((3, 3)), np.full((3, 3), 0.5)), "ref is not a binary mask"),
    (lambda: hausdorff(np.zeros((3, 3)), np.zeros((3, 3)), spacing=(1, 1, 1)),
     "spacing has 3 values but the masks have 2 spatial axes"),
    (lambda: hausdorff(np.zeros((3, 3)), np.zeros((3, 3)), spacing=(1, 0)), "positive"),
    (lambda: hausdorff(np.zeros(3), np.zeros(3)), "2D or 3D"),
    (lambda: hausdorff(np.zeros((3, 3)), np.zeros((3, 3)), percentile=-5), "percentile"),
    (lambda: nsd(np.zeros((3, 3)), np.zeros((3, 3)), method="mesh"), "method"),
    (lambda: lesion_counts(np.zeros((3, 3)), np.zeros((3, 3)), connectivity=0), "connectivity"),
    (lambda: evaluate(np.zeros((3, 3)), np.zeros((3, 3)), spacing=1.0, labels=[1],
                      metrics=["dice"]), "integer label map"),
    (lambda: evaluate(SQUARE, SQUARE[:5], spacing=1.0, labels=[1], metrics=["dice"]),
     "shapes differ"),
    (lambda: evaluate(SQUARE, SQUARE, spacing=1.0, labels=[1.5], metrics=["dice"]),
     "labels must be integers"),
    (lambda: evaluate(SQUARE, SQUARE, spacing=1.0, labels=1, metrics=["dice"]),  # type: ignore[arg-type]
     r"labels must be an iterable of integers such as \[1, 2\], got 1"),
    (lambda: dice(np.full((3, 3), 2), np.zeros((3, 3))), r"it holds 2, expected"),  # not np.int64(2)
    (lambda: evaluate(SQUARE, SQUARE, spacing=(1.0,), labels=[1], metrics=["hd95"]),  # one axis, not isotropic
     "spacing has 1 values but the masks have 2 spatial axes"),
    (lambda: evaluate(SQUARE, SQUARE, spacing=("a", 1), labels=[1], metrics=["hd95"]),
     r"spacing must be a number or a sequence of numbers \(mm\), got \('a', 1\)"),
    (lambda: evaluate(-SQUARE.astype(np.int64), SQUARE, spacing=1.0, labels=[1], metrics=["dice"]),
     r"pred has negative values \(lowest -1\)"),
    # True was read as 1 mm and "2" as 2 mm
    (lambda: evaluate(SQUARE, SQUARE, spacing=True, labels=[1], metrics=["hd"]),
     r"spacing must be a number or a sequence of numbers \(mm\), got True"),
    (lambda: evaluate(SQUARE, SQUARE, spacing="2", labels=[1], metrics=["hd"]),
     r"spacing must be a number or a sequence of numbers \(mm\), got '2'"),
    (lambda: evaluate(SQUARE, SQUARE, spacing=(1, False), labels=[1], metrics=["hd"]), "got \\(1, False\\)"),
    # a class that cannot occur scored as perfect ("both empty")
    (lambda: evaluate(SQUARE, SQUARE, spacing=1.0, labels=[-1], metrics=["dice"]),
     "labels are class numbers >= 0 of the label maps, got -1"),
])
def test_clear_value_errors(call: object, match: str) -> None:
    with pytest.raises(ValueError, match=match) as info:
        call()  # type: ignore[operator]
    assert "\n" not in str(info.value)


def test_integer_and_float_binary_masks_are_accepted() -> None:
    a = SQUARE.astype(np.uint8)
    assert dice(a, a.astype(float)) == 1.0
    assert hausdorff(a, np.roll(a, 1, 0).astype(np.int64)) == 1.0


def test_a_module_attr_metric_keeps_its_own_direction_and_range(monkeypatch: pytest.MonkeyPatch) -> None:
    """A higher-is-better fraction named as "module:attr" was taken for lower-is-better (the registry
    did not know the name), so a degradation gate read a real drop as a gain and passed it."""
    import pandas as pd

    from harness.analysis.gate_checks import degradation_gate
    from harness.analysis.robustness import higher_is_better
    from harness.gates import GateContext
    from harness.metrics import metric_info, unit_label, value_range

    similarity = Metric(MetricInfo("similarity", True, "fraction", "a plugin overlap"), lambda ctx: 1.0)
    module = types.ModuleType("fake_similarity_plugin")
    module.SIMILARITY = similarity  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_similarity_plugin", module)
    name = "fake_similarity_plugin:SIMILARITY"
    assert metric_info(name) is similarity.info and higher_is_better(name)
    assert value_range(name) == (0.0, 1.0) and unit_label(name) == name
    assert metric_info("fake_similarity_plugin:MISSING") is None and metric_info("no_such_module_xyz:M") is None
    from harness.analysis.case_values import metric_directions

    assert metric_directions([name, "hd95"]) == {name: True, "hd95": False}  # fairness and site shift too
    rows = [{"case_id": f"c{i}", "perturbation": p, "severity": sev, "label": 1, "label_name": "organ",
             "status": "OK", "error": "", name: v} for i in range(4) for p, sev, v in (("clean", 0, 0.99), ("blur", 3, 0.77))]
    records = pd.DataFrame(rows)
    context = GateContext(records=records, cases=pd.DataFrame({"case_id": [f"c{i}" for i in range(4)]}),
                          suite=types.SimpleNamespace(gates=[]))
    [result] = degradation_gate({"name": "d", "check": "degradation", "metric": name, "max_drop": 0.1}, context)
    assert result.outcome == "FAIL" and math.isclose(result.value, 0.22)


@pytest.mark.parametrize("compute, said", [
    (lambda ctx: 1 / 0, r"metric 'flaky' raised ZeroDivisionError: division by zero for label 1"),
    (lambda ctx: None, r"metric 'flaky' returned NoneType None for label 1, not a number"),
    (lambda ctx: [0.5], r"metric 'flaky' returned list \[0.5\] for label 1, not a number"),
    (lambda ctx: np.array([0.5, 0.5]), r"metric 'flaky' returned ndarray array\(\[0.5, 0.5\]\) for label 1, not a number"),
    (lambda ctx: True, r"metric 'flaky' returned bool True"),
    (lambda ctx: (_ for _ in ()).throw(SystemExit(3)), r"metric 'flaky' raised SystemExit\(3\)"),
])
def test_a_failing_plugin_metric_is_named(compute: Any, said: str) -> None:
    """It once surfaced as "ZeroDivisionError: division by zero" beside the built-in metrics, with
    no word of which metric failed."""
    register(Metric(MetricInfo("flaky", True, "fraction", ""), compute))
    try:
        with pytest.raises(ValueError, match=said):
            evaluate(SQUARE, SQUARE, spacing=1.0, labels=[1], metrics=["dice", "flaky"])
    finally:
        unregister("flaky")
    import torch

    for fine, expected in ((np.float32(0.5), 0.5), (np.array(0.5), 0.5), (1, 1.0), (torch.tensor(0.5), 0.5),
                           (torch.tensor([0.25]), 0.25)):  # a torch metric's .mean() without .item()
        register(Metric(MetricInfo("flaky", True, "fraction", ""), lambda ctx, v=fine: v))
        try:
            (row,) = evaluate(SQUARE, SQUARE, spacing=1.0, labels=[1], metrics=["flaky"])
            assert isinstance(row["flaky"], float) and row["flaky"] == expected
        finally:
            unregister("flaky")


@pytest.mark.parametrize("kwargs, match", [
    ({"metrics": None}, r"metrics must be a list of metric names such as \['dice', 'hd95'\], got None"),
    ({"metrics": ["dice"], "options": "x"}, "metric options must be a mapping of option name to value"),
    ({"metrics": ["dice"], "options": [("percentile", 90)]}, "metric options must be a mapping"),
])
def test_metric_names_and_options_of_the_wrong_type_are_named(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        evaluate(SQUARE, SQUARE, spacing=1.0, labels=[1], **kwargs)
    assert "\n" not in str(info.value)
