"""Confidence intervals at their edges: float-noise spreads, impossible values, undefined ratios."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from harness.analysis.robustness import robustness_table
from harness.analysis.stats import studentized_ci


def test_a_replicate_with_float_noise_spread_counts_as_zero_spread() -> None:
    """std of identical values can be 1e-16, not 0: t* = 1e13 once gave a bound of -7e10."""
    x = np.array([[0.97], [0.98], [0.99]])
    boot_means = np.array([[0.97], [0.98], [0.99], [0.975], [0.985]] * 20)
    boot_ses = np.full_like(boot_means, 0.005)
    boot_ses[::5] = 1.36e-16  # a replicate of three copies of 0.97
    lo, hi = studentized_ci(x, boot_means, boot_ses)
    assert 0.9 < lo[0] <= 0.98 <= hi[0] < 1.0


def test_relative_degradation_from_a_zero_clean_mean_is_undefined() -> None:
    rows = [{"case_id": f"c{i}", "perturbation": p, "severity": s, "repeat": 0, "label": 1, "status": "OK",
             "hd95": v} for i in range(4) for p, s, v in (("clean", 0, 0.0), ("blur", 1, 5.0), ("noise", 1, 0.0))]
    table = robustness_table(pd.DataFrame(rows), ["hd95"], n_boot=50).set_index("perturbation")
    assert np.isnan(table.loc["blur", "relative_degradation"]) and table.loc["noise", "relative_degradation"] == 0


def test_dossier_states_the_metric_options_in_effect() -> None:
    from harness.report.dossier import metric_options

    run = SimpleNamespace(settings={"metric_options": {"percentile": 90}}, metrics=["dice", "hd95", "nsd"])
    assert metric_options(run) == {"percentile": 90, "nsd_tolerance": 1.0, "nsd_method": "voxel"}
    lesions = SimpleNamespace(settings={"metric_options": {}}, metrics=["fp_lesions"])
    assert metric_options(lesions) == {"connectivity": "full (every neighbour)"}
