"""examples/plugin installs as a package and its entry points reach the harness: the perturbation,
metric, model format and suite it registers show up and run."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import pandas as pd
import pytest

from ._markdown import REPO

PLUGIN = REPO / "examples" / "plugin"


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory) -> dict[str, str]:
    """Environment whose PYTHONPATH holds the plugin installed with pip into a temporary target
    (a copy of the source is built, so the checkout gets no build/ or egg-info)."""
    root = tmp_path_factory.mktemp("plugin")
    source = shutil.copytree(PLUGIN, root / "src", ignore=shutil.ignore_patterns("build", "*.egg-info"))
    target = root / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--disable-pip-version-check", "--target", str(target), str(source)],
                   check=True, capture_output=True, text=True, timeout=300)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")]),
               COLUMNS="200", NO_COLOR="1")
    return env


def test_plugin_registers_perturbation_metric_and_model(plugin_env, tmp_path):
    """`harness list perturbations`, `harness list metrics` and `harness validate-model` on the
    plugin's card, in one interpreter (the CLI's own entry point, called three times)."""
    script = ("import sys; from harness.cli import main\n"
              "for argv in (['list', 'perturbations'], ['list', 'metrics'],\n"
              f"             ['validate-model', '--model', {str(PLUGIN / 'threshold.toml')!r}, '--data', 'phantom2d']):\n"
              "    print('EXIT', argv[0], main(argv), flush=True)\n")
    result = subprocess.run([sys.executable, "-c", script], env=plugin_env, cwd=tmp_path, capture_output=True,
                            text=True, timeout=600)
    out = result.stdout
    assert result.returncode == 0 and out.count("EXIT") == 3, out + result.stderr
    assert "EXIT list 0" in out and "EXIT validate-model 0" in out, out + result.stderr
    assert "salt_pepper" in out and "volume_similarity" in out
    assert "threshold" in out  # validate-model prints the format


def test_plugin_suite_runs_on_phantom2d(plugin_env, tmp_path):
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "harness", "run", "--suite", "plugin-demo", "--data", "phantom2d",
                             "--limit", "2", "--workers", "1", "--out", str(out)], env=plugin_env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr  # 2 cases: gates INCONCLUSIVE, exit 0
    records = pd.read_csv(out / "records.csv")
    assert set(records["perturbation"]) == {"clean", "salt_pepper"}
    assert sorted(set(records["severity"])) == [0, 1, 3, 5]
    assert (records["status"] == "OK").all()
    assert records["volume_similarity"].between(0, 1).all()
    assert (out / "report.html").is_file()


def test_without_the_plugin_the_suite_is_unknown(capsys):
    from harness.cli import main

    assert main(["run", "--suite", "plugin-demo"]) == 3
    assert "plugin-demo" in capsys.readouterr().err


def test_salt_pepper_is_monotone_and_replayable():
    sys.path.insert(0, str(PLUGIN))
    try:
        from harness_example_plugin.perturbation import SaltPepper
    finally:
        sys.path.remove(str(PLUGIN))
    from harness.datasets import phantom_dataset

    import numpy as np

    case = phantom_dataset(2, n=1).load("phantom2d_000")
    family = SaltPepper()
    errors = []
    for severity in range(1, 6):
        perturbed, params = family(case, severity, np.random.default_rng(7))
        replay = family.apply(case, params)
        assert np.array_equal(perturbed.image, replay.image)
        assert np.array_equal(perturbed.label, case.label)
        errors.append(float(np.mean((perturbed.image - case.image) ** 2)))
    assert all(a < b for a, b in zip(errors, errors[1:])), errors
