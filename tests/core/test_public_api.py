"""The names in ``harness.__all__`` resolve and do what the module docstring shows."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import harness


@pytest.mark.parametrize("name", harness.__all__)
def test_every_public_name_resolves(name):
    assert getattr(harness, name) is not None
    assert name in dir(harness)


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        harness.nope  # noqa: B018


def test_subpackages_are_reached_from_the_package_as_the_docs_write_them():
    """``import harness`` then ``harness.perturbations.get(...)`` (docs/perturbations.md), in a fresh
    interpreter where nothing has imported the subpackage yet."""
    code = ("import harness; f = harness.perturbations.get('gaussian_noise'); "
            "print(type(f).__name__, 'dice' in harness.metrics.available())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["GaussianNoise", "True"]
    for name in ("_private", "nosuch.x", "analysis.fairness", "suites"):  # no dotted names, no data folders
        assert not hasattr(harness, name), name


def test_import_is_light():
    code = "import sys, harness; print('torch' in sys.modules, 'pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_docstring_calls_work():
    data = harness.open_dataset("phantom2d:n=2")
    case = data.load(data.case_ids[0])
    noisy, params = harness.get_perturbation("gaussian_noise")(case, 3, rng=0)
    assert noisy.image.shape == case.image.shape and not np.array_equal(noisy.image, case.image) and params
    rows = harness.evaluate_metrics(case.label, case.label, spacing=case.spacing, labels=[1], metrics=["dice", "hd95"])
    assert rows[0]["dice"] == 1.0 and rows[0]["hd95"] == 0.0
    assert "robustness" in harness.bundled_suites()
    assert harness.load_suite("smoke").name


def test_no_public_name_is_shadowed_by_a_subpackage():
    """Importing a subpackage binds its name on ``harness``; a public name equal to a submodule
    would then silently become that module."""
    import importlib
    import pkgutil

    submodules = {m.name for m in pkgutil.iter_modules(harness.__path__)}
    assert not submodules & set(harness.__all__)
    importlib.import_module("harness.train.unet")  # binds harness.train to the subpackage
    from harness.train.trainer import train

    assert harness.train_model is train
