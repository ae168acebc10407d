"""Third-party adapters through the ``harness.models`` entry-point group."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from harness.errors import ConfigError
from harness.models import available_formats, load_model
from tests.models.conftest import card


@pytest.fixture
def install(tmp_path, monkeypatch):
    """Install a fake distribution whose ``harness.models`` entry points are the given lines."""
    def _install(name: str, *lines: str) -> None:
        dist = tmp_path / name / f"{name}-0.1.dist-info"
        dist.mkdir(parents=True)
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
        (dist / "entry_points.txt").write_text("[harness.models]\n" + "\n".join(lines) + "\n")
        monkeypatch.syspath_prepend(str(tmp_path / name))
        assert str(tmp_path / name) in sys.path
    return _install


PLUGIN_CARD = '''[model]
format = "threshold"
[model.options]
level = 0.6
[output]
kind = "labels"
labels = {1 = "bright"}
'''


def test_plugin_adapter_from_entry_point(install, tmp_path, case2d):
    install("harness_test_plugin", "threshold = tests.models.helpers:ThresholdAdapter")
    assert available_formats()["threshold"] == "tests.models.helpers:ThresholdAdapter"
    assert available_formats()["onnx"].startswith("harness.models.onnx_adapter")
    model = load_model(card(tmp_path, PLUGIN_CARD))
    assert model.format == "threshold" and model.labels == {1: "bright"}
    pred = model.predict(case2d.image, case2d.spacing)
    np.testing.assert_array_equal(pred.labels, case2d.image[0] > 0.6)


def test_broken_plugin_is_named_when_used_and_stops_nothing_else(install, tmp_path):
    install("harness_broken_plugin", "broken = tests.models.helpers:NoSuchThing",
            "threshold = tests.models.helpers:ThresholdAdapter")
    with pytest.raises(ConfigError, match=r"plugin 'broken' in entry-point group 'harness.models'"):
        load_model(card(tmp_path, PLUGIN_CARD.replace('"threshold"', '"broken"'), "broken.toml"))
    assert load_model(card(tmp_path, PLUGIN_CARD)).format == "threshold"  # a broken other plugin is not imported


def test_a_plugin_may_not_take_a_bundled_format_and_a_failing_one_is_named(install, tmp_path):
    """A plugin named "torch" was silently ignored (the bundled adapter ran); an adapter plugin that
    raised in __init__ was an "internal error" naming neither the card nor the format."""
    install("harness_shadow_plugin", "torch = tests.models.helpers:ThresholdAdapter",
            "raises = tests.models.helpers:raising_adapter")
    with pytest.raises(ConfigError, match=r"plugin 'torch' in entry-point group 'harness.models' .* takes the name "
                                          "of a bundled model format; rename the entry point"):
        load_model(card(tmp_path, PLUGIN_CARD.replace('"threshold"', '"torch"'), "torch.toml"))
    with pytest.raises(ConfigError, match=r"raises.toml: adapter plugin 'raises' failed to build the model: "
                                          r"FileNotFoundError: no weights here; fix the card or the plugin"):
        load_model(card(tmp_path, PLUGIN_CARD.replace('"threshold"', '"raises"'), "raises.toml"))


def test_plugin_adapter_runs_through_the_shared_pipeline(install, tmp_path, case2d):
    install("harness_pipeline_plugin", "threshold = tests.models.helpers:ThresholdAdapter",
            "useless = tests.models.helpers:not_a_model")
    text = '''[model]
format = "threshold"
[model.options]
level = 0.6
[input]
patch_size = [64, 64]
[output]
kind = "labels"
labels = {1 = "bright"}
'''
    model = load_model(card(tmp_path, text))
    pred = model.predict(case2d.image, case2d.spacing)  # sliding windows over label maps
    assert (pred.labels == (case2d.image[0] > 0.6)).mean() > 0.999
    with pytest.raises(ConfigError, match=r"adapter plugin 'useless' returned object, which has no predict"):
        load_model(card(tmp_path, text.replace('"threshold"', '"useless"'), "useless.toml"))
    with pytest.raises(ConfigError, match=r"unknown format 'nope'; use one of torch, .*threshold"):
        load_model(card(tmp_path, text.replace('"threshold"', '"nope"'), "nope.toml"))
    assert np.all(np.isin(pred.labels, [0, 1]))
