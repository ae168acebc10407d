"""With [suite].cluster the report's descriptive CIs (clean performance, robustness table) resample
patients while their means stay over cases; without it they resample cases."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.analysis.robustness import bootstrap_mean_ci
from harness.report.rundir import load_run
from harness.report.sections import robustness_section, summary_section
from tests.report.conftest import make_run

IDS = [f"c{i:02d}" for i in range(16)]


def _runs(tmp_path: Path) -> tuple[object, object, np.ndarray, np.ndarray]:
    dice = {cid: 0.5 + 0.4 * ((i // 2) % 4) / 3 for i, cid in enumerate(IDS)}  # a patient's two images alike
    patients = [f"p{i // 2}" for i in range(len(IDS))]
    runs = []
    for name, extra in (("loose", ""), ("clustered", 'cluster = "Case"')):
        folder = make_run(tmp_path / name, case_ids=IDS, dice=dice, metadata={"Case": patients}, suite_extra=extra)
        records = pd.read_csv(folder / "records.csv")
        noisy = (records["perturbation"] == "gaussian_noise") & (records["severity"] == 3)
        extra_drop = records["case_id"].map({c: 0.04 * ((i // 2) % 3) for i, c in enumerate(IDS)})
        records.loc[noisy, "dice"] -= extra_drop[noisy]  # each patient's two images degrade alike
        records.to_csv(folder / "records.csv", index=False)
        runs.append(load_run(folder, with_baseline=False))
    return runs[0], runs[1], np.array([dice[c] for c in IDS]), np.array(patients)


def test_clean_and_robustness_cis_resample_patients(tmp_path: Path) -> None:
    loose, clustered, values, patients = _runs(tmp_path)
    by_case, by_patient = (summary_section(r)["clean_ci"]["dice"] for r in (loose, clustered))
    assert by_case["n"] == by_patient["n"] == 16  # the mean is still over the 16 cases
    assert (by_case["low"], by_case["high"]) == pytest.approx(bootstrap_mean_ci(values))
    assert (by_patient["low"], by_patient["high"]) == pytest.approx(bootstrap_mean_ci(values, clusters=patients))
    assert by_patient["high"] - by_patient["low"] > 1.2 * (by_case["high"] - by_case["low"])
    width, degradation = {}, {}
    for name, run in (("loose", loose), ("clustered", clustered)):
        table = robustness_section(run)["table"]
        clean = next(r for r in table if r["perturbation"] == "clean" and r["metric"] == "dice")
        width[name] = clean["ci_high"] - clean["ci_low"]
        noisy = next(r for r in table if r["perturbation"] == "gaussian_noise" and r["metric"] == "dice"
                     and r["severity"] == 3)
        degradation[name] = (noisy["degradation_ci_low"], noisy["degradation_ci_high"])
    assert width["clustered"] > 1.2 * width["loose"]
    wider = degradation["clustered"][1] - degradation["clustered"][0]
    assert wider > 1.2 * (degradation["loose"][1] - degradation["loose"][0])  # the paired CI resamples patients too
