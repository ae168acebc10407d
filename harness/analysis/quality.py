"""Image statistics per case and their comparison across sites: evidence of distribution shift.

Per case (:func:`image_statistics`, written by a run as ``quality.csv``):

* ``shape``, ``spacing`` (mm), ``voxel_mm`` (geometric mean spacing), ``fov_mm`` (geometric mean
  extent) — resolution;
* ``mean``, ``std``, 41 intensity quantiles ``q0, q25, ..., q1000`` (per mille, all channels pooled;
  images over 4 M voxels are subsampled with a fixed stride) and ``dynamic_range`` (p99.5 − p0.5);
* ``noise_sigma``: Immerkær's estimate (1996) from the mean absolute response to the separable
  kernel ``[1, -2, 1] ⊗ [1, -2, 1]`` over the two in-plane axes (those with the finest spacing; the
  last two when spacings tie, so NIfTI volumes stored (X, Y, Z) with thick Z slices use X–Y),
  averaged over channels. It also answers to fine texture, so read it as "high-frequency energy"
  on textured images;
* ``snr`` = foreground mean / ``noise_sigma``; ``cnr`` = |foreground mean − mean of a
  ``RING``-voxel ring around the foreground| / ``noise_sigma`` (foreground = reference label > 0;
  both NaN when the label is empty or ``noise_sigma`` is 0);
* ``sharpness`` = mean gradient magnitude (per voxel) / ``dynamic_range``;
* ``foreground_fraction``.

Across sites: :func:`quality_summary` (median, IQR, shift vs the reference site and the rank-biserial
effect size), :func:`intensity_histograms` (each site's pooled intensity distribution, rebuilt from
the per-case quantile functions on common bins) and :func:`intensity_distances` (Wasserstein-1 and
Kolmogorov–Smirnov distances to the reference site's distribution).
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from harness.analysis.stats import rank_biserial
from harness.case import Case

LEVELS = np.linspace(0.0, 1.0, 41)
QUANTILE_COLUMNS = [f"q{int(round(1000 * q))}" for q in LEVELS]
MAX_VOXELS = 4_000_000
RING = 5
STATISTICS = ("snr", "cnr", "noise_sigma", "sharpness", "mean", "std", "q500", "dynamic_range",
              "voxel_mm", "fov_mm", "foreground_fraction")


def in_plane_axes(spacing: tuple[float, ...]) -> tuple[int, int]:
    """The two spatial axes with the finest spacing (the later ones on ties), in order.

    >>> in_plane_axes((0.8, 0.8, 5.0)), in_plane_axes((1.0, 1.0, 1.0)), in_plane_axes((3.0, 0.7, 0.7))
    ((0, 1), (1, 2), (1, 2))
    """
    order = sorted(range(len(spacing)), key=lambda a: (spacing[a], -a))
    first, second = sorted(order[:2])
    return first, second


def noise_sigma(image: np.ndarray, spacing: tuple[float, ...] | None = None) -> float:
    """Immerkær's noise standard deviation estimate of ``image`` ``(C, *spatial)`` over the in-plane
    axes of ``spacing`` (:func:`in_plane_axes`; the last two when None).

    >>> rng = np.random.default_rng(0)
    >>> round(noise_sigma(rng.normal(0, 2.0, (1, 256, 256))), 1)
    2.0
    """
    ndim = image.ndim - 1
    a, b = in_plane_axes(tuple(spacing)) if spacing is not None and ndim >= 2 else (ndim - 2, ndim - 1)
    if min(image.shape[1 + a], image.shape[1 + b]) < 3:
        return float("nan")
    values = []
    for channel in image.astype(np.float64):
        response = np.diff(np.diff(channel, 2, axis=a), 2, axis=b)
        values.append(math.sqrt(math.pi / 2.0) * float(np.abs(response).mean()) / 6.0)
    return float(np.mean(values))


def image_statistics(case: Case) -> dict[str, float | str]:
    """The per-case statistics listed in the module docstring (no model involved)."""
    image = case.image
    flat = image.ravel()
    if flat.size > MAX_VOXELS:
        flat = flat[:: math.ceil(flat.size / MAX_VOXELS)]
    flat = flat.astype(np.float64)
    quantiles = np.quantile(flat, np.concatenate([LEVELS, [0.005, 0.995]]))
    spacing = np.asarray(case.spacing, dtype=float)
    extent = spacing * np.asarray(case.spatial_shape, dtype=float)
    fg = case.label > 0
    sigma = noise_sigma(image, case.spacing)
    dynamic = float(quantiles[-1] - quantiles[-2])
    row: dict[str, float | str] = {
        "case_id": case.case_id, "channels": int(image.shape[0]),
        "shape": "x".join(str(s) for s in case.spatial_shape),
        "spacing": "x".join(f"{s:g}" for s in case.spacing),
        "voxel_mm": float(np.exp(np.log(spacing).mean())), "fov_mm": float(np.exp(np.log(extent).mean())),
        "mean": float(flat.mean()), "std": float(flat.std()), "dynamic_range": dynamic,
        "noise_sigma": sigma, "foreground_fraction": float(fg.mean()),
    }
    row.update({name: float(v) for name, v in zip(QUANTILE_COLUMNS, quantiles[:-2])})
    snr = cnr = float("nan")
    if fg.any() and sigma > 0:
        pooled = image.mean(axis=0)
        fg_mean = float(pooled[fg].mean())
        ring = ndi.binary_dilation(fg, iterations=RING) & ~fg
        snr = fg_mean / sigma
        if ring.any():
            cnr = abs(fg_mean - float(pooled[ring].mean())) / sigma
    row["snr"], row["cnr"] = snr, cnr
    grads = np.gradient(image.astype(np.float64), axis=tuple(range(1, image.ndim)))
    magnitude = np.sqrt(sum(g ** 2 for g in grads))
    row["sharpness"] = float(magnitude.mean()) / dynamic if dynamic > 0 else float("nan")
    return row


def quality_table(cases: Iterable[Case]) -> pd.DataFrame:
    """One row of :func:`image_statistics` per case."""
    return pd.DataFrame([image_statistics(c) for c in cases])


def _groups(quality: pd.DataFrame, groups: pd.Series) -> pd.DataFrame:
    frame = quality.assign(case_id=quality["case_id"].astype(str)).set_index("case_id")
    return frame.join(groups.rename("_group"), how="inner").dropna(subset=["_group"])


def _finite(values: pd.Series) -> np.ndarray:
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    return x[np.isfinite(x)]


def quality_summary(quality: pd.DataFrame, groups: pd.Series, *, reference: str,
                    statistics: Iterable[str] = STATISTICS) -> pd.DataFrame:
    """One row per (site, statistic): n, median, q25, q75, ``shift`` (median − reference median)
    and ``effect`` (rank-biserial P(site > reference) − P(site < reference); NaN for the reference).

    ``groups`` maps case_id → site; NaN statistics (e.g. SNR of an empty label) are left out.
    """
    frame = _groups(quality, groups)
    rows = []
    order = [reference] + sorted(set(frame["_group"]) - {reference})
    for stat in statistics:
        if stat not in frame.columns:
            continue
        ref = _finite(frame.loc[frame["_group"] == reference, stat])
        ref_median = float(np.median(ref)) if ref.size else float("nan")
        for site in order:
            x = _finite(frame.loc[frame["_group"] == site, stat])
            if not x.size:
                rows.append({"site": site, "statistic": stat, "n": 0})
                continue
            q25, median, q75 = np.quantile(x, [0.25, 0.5, 0.75])
            effect = (float(rank_biserial(x, ref)) if site != reference and ref.size else float("nan"))
            rows.append({"site": site, "statistic": stat, "n": int(x.size), "median": float(median),
                         "q25": float(q25), "q75": float(q75), "shift": float(median) - ref_median,
                         "effect": effect})
    return pd.DataFrame(rows, columns=["site", "statistic", "n", "median", "q25", "q75", "shift", "effect"])


def _mixture_cdf(frame: pd.DataFrame, grid: np.ndarray) -> np.ndarray:
    """CDF on ``grid`` of the equal-weight mixture of the cases' piecewise-linear quantile functions."""
    q = frame[QUANTILE_COLUMNS].to_numpy(dtype=float)
    q = np.maximum.accumulate(q, axis=1)  # guard against rounding: quantiles are non-decreasing
    cdf = np.zeros_like(grid)
    for row in q:
        cdf += np.interp(grid, row, LEVELS, left=0.0, right=1.0)
    return cdf / max(len(q), 1)


def _range(frame: pd.DataFrame) -> tuple[float, float]:
    lo = float(frame[QUANTILE_COLUMNS[1]].min())  # p2.5 and p97.5: keep outliers from the axis
    hi = float(frame[QUANTILE_COLUMNS[-2]].max())
    return (lo, hi) if hi > lo else (lo - 0.5, lo + 0.5)


def intensity_histograms(quality: pd.DataFrame, groups: pd.Series, *, bins: int = 40) -> pd.DataFrame:
    """Per site, the pooled intensity distribution on common bins: columns site, bin_left,
    bin_right, mass (fraction of voxels; mass outside the common range is not shown)."""
    frame = _groups(quality, groups).dropna(subset=QUANTILE_COLUMNS)
    if frame.empty:
        return pd.DataFrame(columns=["site", "bin_left", "bin_right", "mass"])
    edges = np.linspace(*_range(frame), bins + 1)
    rows: list[dict[str, float | str]] = []
    for site, part in frame.groupby("_group", sort=True):
        mass = np.diff(_mixture_cdf(part, edges))
        rows.extend({"site": site, "bin_left": float(a), "bin_right": float(b), "mass": float(m)}
                    for a, b, m in zip(edges[:-1], edges[1:], mass))
    return pd.DataFrame(rows)


def intensity_distances(quality: pd.DataFrame, groups: pd.Series, *, reference: str,
                        points: int = 1024) -> pd.DataFrame:
    """Per site, distances of its pooled intensity distribution to the reference site's:
    ``w1`` (Wasserstein-1, intensity units), ``w1_relative`` (w1 / the reference's pooled
    inter-quartile range) and ``ks`` (largest CDF difference, 0..1)."""
    frame = _groups(quality, groups).dropna(subset=QUANTILE_COLUMNS)
    columns = ["site", "n", "w1", "w1_relative", "ks"]
    ref = frame[frame["_group"] == reference]
    if frame.empty or ref.empty:
        return pd.DataFrame(columns=columns)
    lo = float(frame[QUANTILE_COLUMNS[0]].min())
    hi = float(frame[QUANTILE_COLUMNS[-1]].max())
    grid = np.linspace(lo, hi if hi > lo else lo + 1.0, points)
    ref_cdf = _mixture_cdf(ref, grid)
    iqr = float(np.interp(0.75, ref_cdf, grid) - np.interp(0.25, ref_cdf, grid))
    rows = []
    for site, part in frame.groupby("_group", sort=True):
        diff = np.abs(_mixture_cdf(part, grid) - ref_cdf)
        w1 = float(np.sum((diff[1:] + diff[:-1]) / 2.0 * np.diff(grid)))  # trapezoid rule
        rows.append({"site": site, "n": len(part), "w1": w1,
                     "w1_relative": w1 / iqr if iqr > 0 else float("nan"), "ks": float(diff.max())})
    return pd.DataFrame(rows, columns=columns)
