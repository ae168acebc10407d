"""Image statistics (quality.csv) and their per-site comparison."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage as ndi

from harness.analysis.quality import (
    QUANTILE_COLUMNS,
    image_statistics,
    intensity_distances,
    intensity_histograms,
    noise_sigma,
    quality_summary,
    quality_table,
)
from harness.case import Case


def _case(i: int, *, offset: float = 0.0, noise: float = 0.02, label: bool = True) -> Case:
    rng = np.random.default_rng(i)
    smooth = ndi.gaussian_filter(rng.standard_normal((64, 64)), 8) * 3
    lab = np.zeros((64, 64), np.int64)
    if label:
        lab[20:40, 20:44] = 1
    image = 0.3 + 0.4 * lab + 0.05 * smooth + offset + noise * rng.standard_normal((64, 64))
    return Case(image=image[None].astype(np.float32), label=lab, spacing=(0.5, 0.8), case_id=f"c{i}")


def test_noise_estimate_recovers_planted_noise() -> None:
    for sigma in (0.01, 0.05, 0.2):
        case = _case(1, noise=sigma)
        assert noise_sigma(case.image) == pytest.approx(sigma, rel=0.15)
    assert np.isnan(noise_sigma(np.zeros((1, 2, 50), np.float32)))


def test_image_statistics_columns_and_edge_cases() -> None:
    row = image_statistics(_case(2, noise=0.05))
    assert row["shape"] == "64x64" and row["spacing"] == "0.5x0.8" and row["channels"] == 1
    assert row["voxel_mm"] == pytest.approx(np.sqrt(0.4)) and row["fov_mm"] == pytest.approx(64 * np.sqrt(0.4))
    q = [row[c] for c in QUANTILE_COLUMNS]
    assert q == sorted(q) and row["q500"] == pytest.approx(np.median(_case(2, noise=0.05).image), abs=1e-6)
    assert row["snr"] == pytest.approx(0.7 / 0.05, rel=0.2) and row["cnr"] == pytest.approx(0.4 / 0.05, rel=0.2)
    assert 0 < row["foreground_fraction"] < 1 and row["sharpness"] > 0
    empty = image_statistics(_case(3, label=False))
    assert np.isnan(empty["snr"]) and np.isnan(empty["cnr"]) and empty["foreground_fraction"] == 0.0


def test_site_summaries_histograms_and_distances() -> None:
    cases = [_case(i) for i in range(6)] + [_case(i, offset=0.5, noise=0.08) for i in range(6, 10)]
    quality = quality_table(cases)
    groups = pd.Series(["A"] * 6 + ["B"] * 4, index=[c.case_id for c in cases])
    summary = quality_summary(quality, groups, reference="A").set_index(["site", "statistic"])
    assert summary.loc[("B", "noise_sigma"), "effect"] == 1.0  # every B case is noisier than every A case
    assert summary.loc[("B", "q500"), "shift"] == pytest.approx(0.5, abs=0.05)
    assert np.isnan(summary.loc[("A", "snr"), "effect"]) and summary.loc[("A", "snr"), "n"] == 6
    hist = intensity_histograms(quality, groups, bins=30)
    assert set(hist["site"]) == {"A", "B"} and len(hist) == 60
    assert hist.groupby("site")["mass"].sum().between(0.9, 1.0).all()
    dist = intensity_distances(quality, groups, reference="A").set_index("site")
    assert dist.loc["A", "w1"] == 0.0 and dist.loc["B", "w1"] == pytest.approx(0.5, abs=0.05)
    assert dist.loc["B", "ks"] > 0.5 and dist.loc["B", "w1_relative"] > 1
    assert intensity_distances(quality, groups, reference="Z").empty


def test_noise_is_measured_in_plane_of_anisotropic_volumes() -> None:
    """A volume stored (X, Y, Z) with 5 mm slices: its last two axes are Y–Z, where slice-to-slice
    anatomy differs; the estimate must use X–Y."""
    rng = np.random.default_rng(1)
    slices = np.array([0.0, 40.0, -30.0, 25.0, -10.0, 35.0, 5.0, -20.0])  # anatomy changing across slices
    anatomy = np.sin(1.3 * np.arange(64))[:, None] * slices  # varies along Y and Z, not along X
    image = (rng.normal(0, 1.0, (1, 64, 64, 8)) + anatomy).astype(np.float32)
    assert noise_sigma(image, (0.8, 0.8, 5.0)) == pytest.approx(1.0, rel=0.1)
    assert noise_sigma(image) > 5  # the last two axes would read the slices as noise
