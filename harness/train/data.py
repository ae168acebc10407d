"""Training data: normalisation, patient-grouped splits and an in-memory case cache.

* **Normalisation** matches the model card's ``[input] normalize``: ``"zscore"`` is
  ``(x - mean) / std`` over all voxels of each channel of one case (what the adapter does at
  inference); ``"window"`` (CT) clips to ``[lo, hi]`` HU and maps it linearly to ``[0, 1]`` (as the
  model adapters' ``normalize = "window"``).
* **Splits** never put one patient in two sets: cases are grouped by a patient column
  (``Case``, ``patient``, ``patient_id``, ``subject``, ``subject_id``, ``participant``,
  ``participant_id``, compared ignoring case, spaces, ``_`` and ``-``; every case is its own group
  when none exists, and ``harness train`` says so). An official fold column (``kFold``, ``fold``)
  is used when present.
"""
from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from harness.case import Case
from harness.datasets.base import Dataset
from harness.datasets.columns import PATIENT_COLUMNS, column
from harness.errors import ConfigError

# patient and fold columns, matched ignoring case, spaces, "_" and "-" ("Patient ID" is patient_id)
GROUP_COLUMNS = PATIENT_COLUMNS
FOLD_COLUMNS = ("kFold", "fold")
Normalize = Literal["zscore", "window"]


def normalize_image(image: np.ndarray, kind: Normalize = "zscore",
                    window: Sequence[float] | None = None) -> np.ndarray:
    """Normalise a ``(C, *spatial)`` image per channel (see module docstring). float32."""
    image = np.asarray(image, dtype=np.float32)
    if kind == "window":
        if window is None:
            raise ValueError("normalize='window' needs window=(lo, hi)")
        lo, hi = float(window[0]), float(window[1])
        return ((np.clip(image, lo, hi) - lo) / (hi - lo)).astype(np.float32)
    if kind != "zscore":
        raise ValueError(f"unknown normalisation {kind!r}")
    flat = image.reshape(image.shape[0], -1).astype(np.float64)
    mean = flat.mean(axis=1)
    std = flat.std(axis=1)
    std = np.where(std > 1e-8, std, 1.0)
    shape = (-1,) + (1,) * (image.ndim - 1)
    return ((image - mean.reshape(shape)) / std.reshape(shape)).astype(np.float32)


FOREGROUND_CASES, FOREGROUND_PER_CASE = 20, 10_000  # the training foreground sampled for CT windows
WINDOW_MIN_FOREGROUND = 0.05  # a given --window must hold at least this share of the training foreground
WINDOW_MIN_SPREAD = 0.01  # ... and the foreground's p0.5-p99.5 at least this share of the window's width


def foreground_window(dataset: Dataset, ids: Sequence[str], *, max_cases: int = FOREGROUND_CASES,
                      per_case: int = FOREGROUND_PER_CASE) -> tuple[float, float]:
    """CT window from the training data (nnU-Net): 0.5 and 99.5 percentiles of the intensities
    inside the labelled foreground of up to ``max_cases`` cases."""
    lo, hi = np.percentile(_foreground_sample(dataset, ids, max_cases=max_cases, per_case=per_case), [0.5, 99.5])
    return float(lo), float(hi) if hi > lo else float(lo) + 1.0


def check_window(window: tuple[float, float], dataset: Dataset, ids: Sequence[str]) -> None:
    """ConfigError when a given ``--window`` holds (almost) none of the training foreground (every
    labelled voxel would clip to one value, as background does), or is so wide that the foreground
    fills under 1 % of it (a window in HU on data already scaled to 0..1)."""
    sample = _foreground_sample(dataset, ids, max_cases=FOREGROUND_CASES, per_case=FOREGROUND_PER_CASE)
    inside = float(np.mean((sample > window[0]) & (sample < window[1])))
    lo, hi = (float(v) for v in np.percentile(sample, [0.5, 99.5]))
    share = (hi - lo) / (window[1] - window[0])
    if inside < WINDOW_MIN_FOREGROUND:
        raise ConfigError(f"--window {window[0]:g},{window[1]:g}: only {100 * inside:.1f} % of the training foreground "
                          f"lies inside it (the foreground runs {lo:g} to {hi:g}), so the labelled structures would clip "
                          "to the window's edges; give a window over them, or drop --window to take it from the data")
    if share < WINDOW_MIN_SPREAD:
        raise ConfigError(f"--window {window[0]:g},{window[1]:g}: the training foreground runs {lo:g} to {hi:g}, "
                          f"{100 * share:.2g} % of the window's width, so its contrast would be squeezed away (data "
                          "already scaled, not in HU?); give a window over the structures, or drop --window")


def _foreground_sample(dataset: Dataset, ids: Sequence[str], *, max_cases: int, per_case: int) -> np.ndarray:
    """Intensities inside the labelled foreground of up to ``max_cases`` training cases (at most
    ``per_case`` each, drawn with a fixed seed); ConfigError when none has any."""
    rng = np.random.default_rng(0)
    values = []
    for cid in list(ids)[:max_cases]:
        case = dataset.load(cid)
        fg = case.image[0][case.label > 0]
        if fg.size:
            values.append(fg if fg.size <= per_case else rng.choice(fg, per_case, replace=False))
    if not values:
        raise ConfigError("CT data without foreground: give --window LO,HI (HU)")
    return np.concatenate(values)


@dataclass(frozen=True)
class Split:
    """Case ids per set, and how the split was made (for the training record)."""

    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]
    group_column: str | None
    description: str

    def as_dict(self) -> dict[str, object]:
        return {"train": list(self.train), "val": list(self.val), "test": list(self.test),
                "group_column": self.group_column, "description": self.description}


_TEST_SPEC = re.compile(r"^test=(?P<value>\d+(?:\.\d+)?)$")


def make_split(metadata: pd.DataFrame, *, folds: str | None = None, seed: int = 0,
               val_fraction: float = 0.1, max_val: int = 40) -> Split:
    """Patient-grouped train/val/test split of the cases indexed by ``metadata``.

    ``folds``:

    * ``None`` — an official fold column, if present, makes fold 1 the test set; otherwise no
      test set (all cases train/validate);
    * ``"K"`` or ``"K,L"`` — official folds K (and L) are the test set;
    * ``"test=N"`` / ``"test=0.2"`` — a seeded random hold-out of N patients (or that fraction);
    * ``"none"`` — no test set even when official folds exist.

    The validation set is a seeded ``val_fraction`` of the remaining patients (at least one,
    at most ``max_val`` cases' worth of patients; none when ``val_fraction`` is 0, so that every
    non-test patient trains); training never sees validation or test cases.
    """
    if not 0 <= val_fraction < 1:
        raise ConfigError(f"--val-fraction {val_fraction}: expected a fraction in [0, 1)")
    ids = list(metadata.index)
    if not ids:
        raise ConfigError("training data has no cases")
    group_col = column(metadata, GROUP_COLUMNS)
    # a case without a patient id is a patient of its own
    groups = {i: str(g) if group_col and pd.notna(g) else f"case {i}"
              for i, g in zip(ids, metadata[group_col] if group_col else ids)}
    fold_col = column(metadata, FOLD_COLUMNS)
    rng = np.random.default_rng([seed, 7919])

    test_ids: list[str]
    if folds is None and fold_col is not None:
        folds = "1"
    if folds is None or folds == "none":
        test_ids, how = [], "no test set"
    elif match := _TEST_SPEC.match(folds):
        value = float(match.group("value"))
        uniq = sorted(set(groups.values()))
        if value >= 1 and not value.is_integer():
            raise ConfigError(f"--folds {folds!r}: test=N takes a whole number of patients or a fraction < 1")
        n = int(round(value * len(uniq))) if value < 1 else int(value)
        if not 0 < n < len(uniq):
            raise ConfigError(f"--folds {folds!r}: need between 1 and {len(uniq) - 1} test patients")
        chosen = set(rng.permutation(uniq)[:n].tolist())
        test_ids, how = [i for i in ids if groups[i] in chosen], f"seeded hold-out of {n} patients"
    else:
        if folds.startswith("test"):
            raise ConfigError(f"--folds {folds!r}: expected test=N (patients) or test=F (a fraction < 1)")
        if fold_col is None:
            raise ConfigError(f"--folds {folds!r}: the data has no official fold column "
                              f"({', '.join(FOLD_COLUMNS)}); use test=N for a seeded hold-out")
        try:
            wanted = {int(f) for f in folds.split(",")}
        except ValueError:
            raise ConfigError(f"--folds {folds!r}: expected fold numbers like '1' or '1,2', "
                              "'test=N', or 'none'") from None
        fold_values = pd.to_numeric(metadata[fold_col], errors="coerce")
        known = set(fold_values.dropna().astype(int))
        if not wanted <= known:
            raise ConfigError(f"--folds {folds!r}: folds {sorted(wanted - known)} not in {fold_col} "
                              f"(has {sorted(known)})")
        test_ids = [i for i in ids if fold_values[i] in wanted]
        how = f"official folds {sorted(wanted)} ({fold_col}) as test"
    test_groups = {groups[i] for i in test_ids}
    rest = [i for i in ids if groups[i] not in test_groups]
    test_ids = [i for i in ids if groups[i] in test_groups]  # whole patients, even if folds disagree
    if not rest:
        raise ConfigError("the split leaves no training cases")

    rest_groups = sorted({groups[i] for i in rest})
    n_val = (min(max(1, int(round(val_fraction * len(rest_groups)))), len(rest_groups) - 1)  # ≥ 1 patient trains
             if val_fraction and len(rest_groups) > 1 else 0)
    order = rng.permutation(rest_groups).tolist()
    val_groups: set[str] = set()
    n_cases = 0
    per_group = pd.Series([groups[i] for i in rest]).value_counts().to_dict()
    for g in order:
        if len(val_groups) >= n_val or (val_groups and n_cases + per_group[g] > max_val):
            break
        val_groups.add(g)
        n_cases += per_group[g]
    val = [i for i in rest if groups[i] in val_groups]
    train = [i for i in rest if groups[i] not in val_groups]
    return Split(tuple(train), tuple(val), tuple(test_ids), group_col,
                 f"{how}; validation {len(val_groups)} patients (seed {seed})")


@dataclass
class CachedCase:
    """A normalised case held in memory (float16 when the dataset is large)."""

    case_id: str
    image: np.ndarray  # (C, *spatial) normalised
    label: np.ndarray  # (*spatial) uint8
    spacing: tuple[float, ...]
    class_locations: dict[int, np.ndarray]  # class -> (M, ndim) voxel indices (subsampled)


def to_spacing(image: np.ndarray, spacing: Sequence[float], target: Sequence[float] | None, *,
               order: int) -> np.ndarray:
    """``(C, *S)`` array resampled from ``spacing`` to ``target`` mm (as the model adapters do:
    ``order`` 1 for images, 0 for labels); unchanged when ``target`` is None."""
    from harness.models import preprocessing as pp

    if target is None:
        return image
    return pp.resample(image, pp.resampled_shape(image.shape[1:], spacing, target), order=order)


def cache_case(case: Case, *, normalize: Normalize = "zscore", window: Sequence[float] | None = None,
               half: bool = False, max_locations: int = 10_000, seed: int = 0,
               spacing: Sequence[float] | None = None) -> CachedCase:
    """Normalise ``case`` (then resample it to ``spacing`` mm when given) and precompute
    foreground voxel locations per class for oversampling."""
    if not np.isfinite(case.image).all():
        raise ConfigError(f"case {case.case_id}: the image has NaN or infinite values; fix or leave out this case")
    if case.label.size and (case.label.min() < 0 or case.label.max() > 255):
        raise ConfigError(f"case {case.case_id}: label values {int(case.label.min())}..{int(case.label.max())}; "
                          "the trainer takes classes 0..255 (0 = background): map them with label_values "
                          "in the dataset card")
    image = to_spacing(normalize_image(case.image, normalize, window), case.spacing, spacing, order=1)
    label = to_spacing(case.label[None], case.spacing, spacing, order=0)[0]
    rng = np.random.default_rng([seed, zlib.crc32(case.case_id.encode())])
    locs: dict[int, np.ndarray] = {}
    for k in np.unique(label):
        if k == 0:
            continue
        where = np.argwhere(label == k)
        if len(where) > max_locations:
            where = where[np.sort(rng.choice(len(where), max_locations, replace=False))]
        locs[int(k)] = where.astype(np.int32)
    return CachedCase(case.case_id, image.astype(np.float16) if half else image,
                      label.astype(np.uint8), tuple(spacing) if spacing is not None else case.spacing, locs)


def load_cases(dataset: Dataset, ids: Sequence[str], *, normalize: Normalize = "zscore",
               window: Sequence[float] | None = None, half: bool = False,
               spacing: Sequence[float] | None = None) -> list[CachedCase]:
    """Read, normalise (resample to ``spacing`` mm when given) and cache ``ids`` (in order)."""
    return [cache_case(dataset.load(cid), normalize=normalize, window=window, half=half, spacing=spacing)
            for cid in ids]
