"""Splits on the real datasets in ../shared/data (skipped where that folder is absent)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from harness.train.data import make_split

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
pytestmark = pytest.mark.realdata


@pytest.mark.skipif(not (DATA / "busbra" / "bus_data.csv").is_file(), reason="../shared/data/busbra absent")
def test_busbra_official_fold_split_is_patient_grouped() -> None:
    meta = pd.read_csv(DATA / "busbra" / "bus_data.csv").set_index("ID")
    meta = meta.join(pd.read_csv(DATA / "busbra" / "5-fold-cv.csv").set_index("ID")["kFold"])
    split = make_split(meta, folds="1", seed=0)
    assert set(split.test) == set(meta.index[meta["kFold"] == 1])
    patients = [set(meta.loc[list(s), "Case"]) for s in (split.train, split.val, split.test)]
    assert not (patients[0] & patients[1]) and not (patients[0] & patients[2]) and not (patients[1] & patients[2])
    assert len(split.train) + len(split.val) + len(split.test) == len(meta)


@pytest.mark.skipif(not (DATA / "hippocampus" / "imagesTr").is_dir(), reason="../shared/data/hippocampus absent")
def test_hippocampus_seeded_200_60_split() -> None:
    from harness.datasets import open_dataset

    data = open_dataset(DATA / "hippocampus")
    split = make_split(data.metadata, folds="test=60", seed=0)
    assert len(split.test) == 60 and len(split.train) + len(split.val) == len(data) - 60 == 200
    assert split == make_split(data.metadata, folds="test=60", seed=0)
