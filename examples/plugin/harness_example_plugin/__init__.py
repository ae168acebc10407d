"""Example harness plugin (see docs/plugins.md).

Entry points declared in ``pyproject.toml``:

* ``harness.perturbations``: ``salt_pepper`` -> :class:`~harness_example_plugin.perturbation.SaltPepper`
* ``harness.metrics``: ``volume_similarity`` -> :data:`~harness_example_plugin.metric.VOLUME_SIMILARITY`
* ``harness.models``: ``threshold`` -> :class:`~harness_example_plugin.model.ThresholdModel`
* ``harness.suites``: ``plugin-demo`` -> :data:`SUITE`, the path of the bundled ``plugin_demo.toml``

Nothing heavy is imported here, so ``import harness_example_plugin`` stays cheap; harness loads
each object through its entry point when a suite or card asks for it.
"""
from pathlib import Path

__version__ = "0.1.0"

SUITE = str(Path(__file__).with_name("plugin_demo.toml"))
