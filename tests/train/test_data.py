"""Normalisation, patient-grouped splits (no leakage), patch sampling."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harness.case import Case
from harness.errors import ConfigError
from harness.train.data import cache_case, make_split, normalize_image
from harness.train.sampling import sample_batch, sample_patch


def _busbra_like(n_patients: int = 60, seed: int = 0) -> pd.DataFrame:
    """Several images per patient; official folds assigned per patient (as BUS-BRA)."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        fold = int(rng.integers(1, 6))
        for side in "lrs"[: int(rng.integers(1, 4))]:
            rows.append({"case_id": f"bus_{p:04d}-{side}", "Case": p, "kFold": fold})
    return pd.DataFrame(rows).set_index("case_id")


def _groups(meta: pd.DataFrame, ids: tuple[str, ...]) -> set[int]:
    return set(meta.loc[list(ids), "Case"])


@pytest.mark.parametrize("folds", [None, "1", "2,3", "test=10", "test=0.25", "none"])
def test_split_never_shares_patients(folds: str | None) -> None:
    meta = _busbra_like()
    split = make_split(meta, folds=folds, seed=3)
    sets = [split.train, split.val, split.test]
    assert sum(map(len, sets)) == len(meta) and len(set().union(*sets)) == len(meta)
    groups = [_groups(meta, s) for s in sets]
    assert not (groups[0] & groups[1]) and not (groups[0] & groups[2]) and not (groups[1] & groups[2])
    assert split.group_column == "Case" and split.val


def test_val_fraction_zero_trains_on_every_non_test_patient() -> None:
    meta = _busbra_like()
    split = make_split(meta, folds="1", seed=3, val_fraction=0.0)
    assert split.val == () and set(split.train) == set(meta.index[meta["kFold"] != 1])
    assert make_split(meta, folds="1", seed=3).val  # the default holds some out
    for bad in (-0.1, 1.0):
        with pytest.raises(ConfigError, match="--val-fraction"):
            make_split(meta, val_fraction=bad)


def test_official_fold_is_the_test_set_by_default() -> None:
    meta = _busbra_like()
    split = make_split(meta, seed=0)
    assert set(split.test) == set(meta.index[meta["kFold"] == 1])


def test_split_is_seeded() -> None:
    meta = _busbra_like()
    assert make_split(meta, folds="test=10", seed=1) == make_split(meta, folds="test=10", seed=1)
    assert make_split(meta, folds="test=10", seed=1).test != make_split(meta, folds="test=10", seed=2).test


def test_cases_are_their_own_groups_without_patient_column() -> None:
    meta = pd.DataFrame(index=pd.Index([f"c{i}" for i in range(20)], name="case_id"))
    split = make_split(meta, folds="test=5", seed=0)
    assert len(split.test) == 5 and split.group_column is None


@pytest.mark.parametrize("name", ["Patient", "patientID", "Patient ID", "subject-id", "CASE", "participant_id"])
def test_patient_columns_are_found_whatever_their_spelling(name: str) -> None:
    """A column "Patient" once matched nothing: patient A's images went to training and test."""
    meta = pd.DataFrame({name: [p for p in "ABCDEFGHIJ" for _ in range(2)], "FOLD": [1, 1] + [2] * 18},
                        index=pd.Index([f"c{i}" for i in range(20)], name="case_id"))
    split = make_split(meta, folds="test=3", seed=0)
    assert split.group_column == name
    for other in (split.train, split.val):
        assert not set(meta.loc[list(split.test), name]) & set(meta.loc[list(other), name])
    assert set(make_split(meta, seed=0).test) == {"c0", "c1"}  # the fold column, spelt FOLD


@pytest.mark.parametrize("folds", ["9", "abc", "test=0"])
def test_bad_folds(folds: str) -> None:
    with pytest.raises(ConfigError):
        make_split(_busbra_like(), folds=folds)
    with pytest.raises(ConfigError):
        make_split(pd.DataFrame(index=["a", "b"]), folds="1")


def test_zscore_per_channel() -> None:
    img = np.stack([np.arange(12.0).reshape(3, 4), 5 * np.ones((3, 4))]).astype(np.float32)
    out = normalize_image(img)
    assert out.dtype == np.float32
    assert out[0].mean() == pytest.approx(0, abs=1e-6) and out[0].std() == pytest.approx(1, abs=1e-5)
    assert np.all(out[1] == 0)  # constant channel: centred, not divided by 0
    win = normalize_image(np.array([[[-2000.0, 40.0, 3000.0]]]), "window", (-160, 240))
    np.testing.assert_allclose(win, [[[0.0, 0.5, 1.0]]], atol=1e-6)


def _case(shape: tuple[int, ...]) -> Case:
    label = np.zeros(shape, dtype=np.int64)
    label[(slice(1, 3),) * len(shape)] = 2
    return Case(image=np.random.default_rng(0).random((1, *shape), dtype=np.float32), label=label,
                spacing=(1.0,) * len(shape), case_id="c")


def test_patch_foreground_oversampling_and_padding() -> None:
    cached = cache_case(_case((40, 50)))
    rng = np.random.default_rng(0)
    for _ in range(20):
        img, lab = sample_patch(cached, (16, 16), rng, force_fg=True)
        assert img.shape == (1, 16, 16) and (lab == 2).any()
    small = cache_case(_case((5, 6, 7)))
    img, lab = sample_patch(small, (8, 8, 8), rng)
    assert img.shape == (1, 8, 8, 8) and lab.shape == (8, 8, 8) and lab.sum() == 2 * 8
    batch = sample_batch([cached], (16, 16), 3, rng, fg_fraction=0.33)
    assert len(batch) == 3 and (batch[-1][1] == 2).any()


def test_ct_window_from_foreground_percentiles() -> None:
    from harness.datasets.phantom import phantom_dataset
    from harness.train.data import foreground_window

    data = phantom_dataset(2, n=3, seed=0)
    lo, hi = foreground_window(data, data.case_ids)
    fg = np.concatenate([c.image[0][c.label > 0] for c in data])
    assert fg.min() <= lo < hi <= fg.max()


@pytest.mark.parametrize("batch_size", [1, 2, 4])
def test_every_batch_has_a_foreground_patch(batch_size: int) -> None:
    """round(B·fg_fraction) is 0 for B = 1: the sampler still forces one foreground patch."""
    label = np.zeros((64, 64), np.int64)
    label[60:63, 1:4] = 1  # a small corner target that uniform patches of 16² mostly miss
    cached = cache_case(Case(image=np.random.default_rng(0).normal(size=(1, 64, 64)).astype(np.float32),
                             label=label, spacing=(1.0, 1.0), case_id="corner"))
    rng = np.random.default_rng(1)
    for _ in range(20):
        batch = sample_batch([cached], (16, 16), batch_size, rng, fg_fraction=0.33)
        assert (batch[-1][1] == 1).any()
    none = [sample_batch([cached], (16, 16), 1, rng, fg_fraction=0.0)[0][1].any() for _ in range(20)]
    assert not all(none)  # without oversampling the corner is usually missed


def test_a_high_val_fraction_leaves_a_patient_to_train_on() -> None:
    meta = _busbra_like(n_patients=3)
    split = make_split(meta, folds="none", seed=0, val_fraction=0.9)
    assert split.train and split.val and not _groups(meta, split.train) & _groups(meta, split.val)


def test_cases_without_a_patient_id_are_patients_of_their_own() -> None:
    meta = _busbra_like(n_patients=6)
    meta["Case"] = meta["Case"].astype(object)
    meta.loc[meta.index[:4], "Case"] = None
    missing = set(meta.index[:4])
    # the four cases without an id are not one patient "nan": some seed puts them in different sets
    splits = [make_split(meta, folds="test=2", seed=s, val_fraction=0.0) for s in range(20)]
    assert any(len({c in sp.test for c in missing}) > 1 for sp in splits)


@pytest.mark.parametrize(("folds", "fragment"), [
    ("test=abc", "expected test=N"), ("test=1.7", "whole number of patients or a fraction < 1"),
])
def test_malformed_hold_out_specs(folds: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        make_split(_busbra_like(), folds=folds, seed=0)
