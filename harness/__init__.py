"""harness: robustness and fairness evaluation for medical image segmentation models.

The public Python API (the command line's main jobs, as functions)::

    import harness

    if __name__ == "__main__":  # in a script: worker processes import it again
        result = harness.run(harness.RunOptions(suite="robustness", model="model.toml", data="cases.toml"))
        result.exit_code, result.outcome, result.records      # 0/1/2, PASS/FAIL/..., a DataFrame

    suite = harness.load_suite("robustness")                 # a bundled name or a TOML path
    model = harness.load_model("model.toml")                 # None: the bundled reference U-Net
    data = harness.open_dataset("phantom2d")                 # phantoms, MSD folder or dataset card
    noisy, params = harness.get_perturbation("gaussian_noise")(data.load(data.case_ids[0]), 3, rng=0)
    rows = harness.evaluate_metrics(pred, ref, spacing=(1, 1), labels=[1], metrics=["dice", "hd95"])
    harness.compare_runs(old_run, new_run)                   # paired regression / unpaired site shift
    harness.train_model("phantom2d", out, harness.TrainConfig(epochs=5))

Names are imported lazily, so ``import harness`` stays light (no torch until a model is used).
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

from harness.case import Case  # noqa: E402
from harness.errors import ConfigError, HarnessError, ModelError  # noqa: E402

# public name -> (module, attribute)
_LAZY: dict[str, tuple[str, str]] = {
    "RunOptions": ("harness.pipeline", "RunOptions"),
    "RunResult": ("harness.pipeline", "RunResult"),
    "run": ("harness.pipeline", "run"),
    "Suite": ("harness.suite", "Suite"),
    "load_suite": ("harness.suite", "load_suite"),
    "bundled_suites": ("harness.suite", "bundled_suites"),
    "load_model": ("harness.models", "load_model"),
    "open_dataset": ("harness.datasets", "open_dataset"),
    "Perturbation": ("harness.perturbations", "Perturbation"),
    "register_perturbation": ("harness.perturbations", "register"),
    "get_perturbation": ("harness.perturbations", "get"),
    "available_perturbations": ("harness.perturbations", "available"),
    "evaluate_metrics": ("harness.metrics", "evaluate"),
    "register_metric": ("harness.metrics", "register"),
    "available_metrics": ("harness.metrics", "available"),
    "fairness_tables": ("harness.analysis.fairness", "fairness_tables"),
    "GateResult": ("harness.gates", "GateResult"),
    "gate_check": ("harness.gates", "gate_check"),
    "with_defaults": ("harness.gates", "with_defaults"),
    "SuiteSetting": ("harness.gates", "SuiteSetting"),
    "item_seed": ("harness.seeds", "item_seed"),
    "CompareOptions": ("harness.compare", "CompareOptions"),
    "compare_runs": ("harness.compare", "compare_runs"),
    "TrainConfig": ("harness.train", "TrainConfig"),
    "train_model": ("harness.train", "train"),  # not "train": that name is the subpackage
}

__all__ = ["Case", "ConfigError", "HarnessError", "ModelError", "__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    """A public name, imported on first use; or a subpackage (``harness.perturbations.get``, as
    ``import harness.perturbations`` would give)."""
    if name not in _LAZY:
        if name in _submodules():
            return importlib.import_module(f"harness.{name}")  # the import binds it on this module
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    module, attribute = _LAZY[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # cache: the next lookup is a plain attribute
    return value


def _submodules() -> set[str]:
    """The package's public modules and subpackages (not its data folders such as ``suites``)."""
    import pkgutil

    return {m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")}


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
