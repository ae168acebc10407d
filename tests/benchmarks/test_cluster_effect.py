"""benchmarks/cluster_effect.py: the simulated data have the patient structure it claims, the pair
correlation it reads from a run is the planted one, and both modes run to the end."""
from __future__ import annotations

import sys
from argparse import Namespace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.cluster_effect import pair_icc, run_folder, run_simulation, simulate  # noqa: E402


def test_simulated_patients_have_one_or_two_images_and_the_planted_correlation() -> None:
    records, cases = simulate(np.random.default_rng(0), patients=3000, icc=0.6, two=0.75)
    per_patient = cases["Case"].value_counts()
    assert set(per_patient) == {1, 2} and (per_patient == 2).mean() == pytest.approx(0.75, abs=0.02)
    assert cases.groupby("Case")["group"].nunique().max() == 1
    assert pair_icc(records, cases, "Case", "dice") == pytest.approx(0.6, abs=0.04)


def test_both_modes_print_their_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = Namespace(sims=2, patients=8, icc=0.7, two=0.77, n_boot=50, n_perm=50, seed=0, run=None, cluster="Case")
    run_simulation(args)
    out = capsys.readouterr().out
    assert "per image" in out and "by patient" in out and "2 null data sets" in out
    records, cases = simulate(np.random.default_rng(1), patients=15, icc=0.7, two=0.77)
    records.to_csv(tmp_path / "records.csv", index=False)
    cases.to_csv(tmp_path / "cases.csv", index=False)
    (tmp_path / "suite.toml").write_text('[suite]\nname = "x"\ncohorts = ["group"]\nmetrics = ["dice"]\n'
                                         "n_bootstrap = 50\nn_permutations = 50\n")
    run_folder(Namespace(run=str(tmp_path), cluster="Case"))
    out = capsys.readouterr().out
    assert "group: analysed by Case" in out and "width_ratio" in out and "p_value_pat" in out
    assert pd.notna(pair_icc(records, cases, "Case", "dice"))
