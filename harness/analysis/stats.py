"""Statistics for group comparisons, vectorised with numpy.

* :func:`group_bootstrap` — group-stratified bootstrap: every group is resampled within itself at
  its own size, so group sizes stay fixed (the design is "n_g cases from group g").
* :func:`studentized_ci` — bootstrap-t CI of a group mean (better small-n coverage than the
  percentile CI on skewed metrics such as Dice; see ``benchmarks/fairness_power.py``);
  :func:`bootstrap_t_interval` the same for any statistic with a standard error (a difference).
* :func:`gap_statistics` — max–min difference, ratio, worst value, SER and both ES definitions,
  for an array of group means (point estimate or bootstrap replicates alike).
* :func:`permutation_gap_test` — studentized (Welch-type) permutation test of equal group means, with
  sequential (Besag–Clifford) refinement so small p-values are resolved when a correction needs it.
* :func:`kruskal_test`, :func:`rank_biserial`, :func:`adjust_pvalues` (Holm, Benjamini–Hochberg).

Arrays are laid out ``(..., group, metric)``; all functions are pure, ``rng`` is explicit.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import stats as _st

from harness.options import CORRECTIONS, must_be_one_of

Correction = Literal["holm", "bh"]
SER_EPS = 1e-12  # SER smoothing: (max err + eps) / (min err + eps); only matters when an error is 0
_BATCH_ELEMENTS = 2_000_000  # floats per vectorised batch (~16 MB)


def adjust_pvalues(p: np.ndarray, *, method: Correction = "holm") -> np.ndarray:
    """Holm (family-wise error) or Benjamini–Hochberg (false discovery rate) adjusted p-values.

    NaN entries are not tests: they stay NaN and do not count in the family size.

    >>> adjust_pvalues(np.array([0.01, 0.04, 0.03]), method="holm").round(3).tolist()
    [0.03, 0.06, 0.06]
    """
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    q = p[ok]
    m = q.size
    if m == 0:
        return out
    order = np.argsort(q, kind="stable")
    ranked = q[order]
    if method == "holm":
        adj = np.maximum.accumulate((m - np.arange(m)) * ranked)
    elif method == "bh":
        adj = np.minimum.accumulate((ranked * m / np.arange(1, m + 1))[::-1])[::-1]
    else:
        raise ValueError(f"correction {must_be_one_of(CORRECTIONS, method)}")
    res = np.empty(m)
    res[order] = np.minimum(adj, 1.0)
    out[ok] = res
    return out


def _batch(n_rows: int, width: int) -> int:
    return max(1, _BATCH_ELEMENTS // max(1, n_rows * width))


def group_bootstrap(groups: list[np.ndarray], *, n_boot: int, rng: np.random.Generator
                    ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Group-stratified bootstrap of group means.

    ``groups[g]`` is an ``(n_g, M)`` array (cases × metrics, no NaN). Returns ``means`` and
    ``ses`` (standard error of each replicate's mean, ddof=1; 0 when n_g == 1), both
    ``(n_boot, G, M)``, and the resampling indices ``(n_boot, n_g)`` per group (for statistics on
    the resampled values themselves, e.g. effect sizes).
    """
    n_metrics = groups[0].shape[1]
    means = np.empty((n_boot, len(groups), n_metrics))
    ses = np.zeros_like(means)
    indices = []
    for g, x in enumerate(groups):
        n = x.shape[0]
        idx = rng.integers(0, n, size=(n_boot, n), dtype=np.int32)
        indices.append(idx)
        step = _batch(n, n_metrics)
        for start in range(0, n_boot, step):
            xb = x[idx[start:start + step]]  # (b, n, M)
            means[start:start + step, g] = xb.mean(axis=1)
            if n > 1:
                ses[start:start + step, g] = xb.std(axis=1, ddof=1) / np.sqrt(n)
    return means, ses, indices


def cluster_bootstrap_mean(values: np.ndarray, clusters: np.ndarray, *, n_boot: int, rng: np.random.Generator
                           ) -> tuple[float, float, np.ndarray, np.ndarray]:
    """The mean over cases of ``values`` ``(n,)`` whose cases form ``clusters`` ``(n,)`` (e.g. patient
    ids), its cluster-robust standard error, and ``n_boot`` replicates of both from resampling whole
    clusters with replacement (the cases of a drawn cluster come together).

    Mean ``r = ΣS_c / Σm_c`` (cluster sums and sizes: every case weighs the same, as without
    clusters); standard error of that ratio, linearised: ``sqrt(C/(C−1) Σ(S_c − r m_c)²) / Σm_c`` over
    the ``C`` clusters, which is the usual ``s/√n`` when every cluster holds one case. Feed the
    result to :func:`bootstrap_t_interval`. Fewer than 2 clusters: standard errors are 0.
    """
    _, codes = np.unique(clusters, return_inverse=True)
    sums = np.bincount(codes, weights=values)
    sizes = np.bincount(codes).astype(float)
    n_clusters = len(sums)
    factor = n_clusters / (n_clusters - 1) if n_clusters > 1 else 0.0

    def mean_and_se(s: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        total = m.sum(axis=-1)
        r = s.sum(axis=-1) / total
        resid = s - r[..., None] * m
        return r, np.sqrt(factor * (resid ** 2).sum(axis=-1)) / total

    estimate, se = mean_and_se(sums, sizes)
    boot_means = np.empty(n_boot)
    boot_ses = np.empty(n_boot)
    idx = rng.integers(0, n_clusters, size=(n_boot, n_clusters), dtype=np.int32)  # as group_bootstrap draws
    step = _batch(n_clusters, 1)
    for start in range(0, n_boot, step):
        part = idx[start:start + step]
        boot_means[start:start + len(part)], boot_ses[start:start + len(part)] = mean_and_se(sums[part], sizes[part])
    return float(estimate), float(se), boot_means, boot_ses


def percentile_ci(boot: np.ndarray, *, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile CI along axis 0 (NaN replicates → NaN bound: the statistic is n/a)."""
    tail = (1.0 - level) / 2.0
    with np.errstate(invalid="ignore"):
        lo, hi = np.quantile(boot, [tail, 1.0 - tail], axis=0)
    return lo, hi


def studentized_ci(x: np.ndarray, boot_means: np.ndarray, boot_ses: np.ndarray, *,
                   level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap-t CI of the mean of ``x`` ``(n, M)`` from its replicates ``(B, M)``.

    ``[m - t*_(1-a/2) se, m - t*_(a/2) se]`` with ``t* = (m* - m) / se*``, limited to the range of
    ``x`` (on a small, skewed group the interval can otherwise reach far past every observed value:
    14 values, twelve below 0.005 and two of 0.21 and 0.24, give a raw upper bound of 2.4). Degenerate
    cases, all documented: n == 1 or zero spread → ``[m, m]``; a replicate with zero spread has
    ``t* = ±inf`` (or 0 when its mean equals m); where a t-quantile is not finite the percentile
    bound is used.
    """
    m = x.mean(axis=0)
    if x.shape[0] < 2:
        return m.copy(), m.copy()
    se = x.std(axis=0, ddof=1) / np.sqrt(x.shape[0])
    return bootstrap_t_interval(m, se, boot_means, boot_ses, limits=(x.min(axis=0), x.max(axis=0)), level=level)


def bootstrap_t_interval(estimate: np.ndarray, se: np.ndarray, boot_estimates: np.ndarray, boot_ses: np.ndarray,
                         *, limits: tuple[np.ndarray, np.ndarray],
                         level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap-t interval of a statistic ``estimate`` ``(M,)`` with standard error ``se``, from its
    replicates and their standard errors ``(B, M)``, clipped to ``limits`` (the values the statistic
    can take given the data, e.g. the sample's range for a mean). Degenerate cases as in
    :func:`studentized_ci`; ``se == 0`` → ``[estimate, estimate]``.
    """
    diff = boot_estimates - estimate
    tiny = 1e-12 * np.maximum(1.0, np.abs(estimate))  # float noise: std of identical values is ~1e-16, not 0
    close = np.abs(diff) <= tiny
    spread = boot_ses > tiny
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(spread, diff / np.where(spread, boot_ses, 1.0), np.where(close, 0.0, np.sign(diff) * np.inf))
        tail = (1.0 - level) / 2.0
        q_lo, q_hi = np.quantile(t, [tail, 1.0 - tail], axis=0)
        lo, hi = estimate - q_hi * se, estimate - q_lo * se
    p_lo, p_hi = percentile_ci(boot_estimates, level=level)
    lo = np.maximum(np.where(np.isfinite(lo), lo, p_lo), limits[0])
    hi = np.minimum(np.where(np.isfinite(hi), hi, p_hi), limits[1])
    flat = se <= tiny
    return np.where(flat, estimate, lo), np.where(flat, estimate, hi)


def gap_statistics(means: np.ndarray, weights: np.ndarray, *, higher_is_better: np.ndarray,
                   bounded: np.ndarray) -> dict[str, np.ndarray]:
    """Gap statistics of group means ``(..., G, M)``; group sizes ``weights`` ``(G,)``.

    * ``difference`` = max − min (≥ 0, fairlearn ``difference()``), ``ratio`` = min / max (1 when
      both are 0; NaN = n/a when a mean is negative), ``worst`` = worst group's mean.
    * For ``bounded`` (higher-is-better, in [0, 1]) metrics, else NaN (n/a):
      ``ser`` = max_g(1 − m_g) / min_g(1 − m_g) (FairMedFM; ``SER_EPS`` added to both errors),
      ``es_fairseg`` = m / (1 + Σ_g |m_g − m|) (FairSeg), ``es_fairmedfm`` = m / (1 + SD_g(m_g))
      (FairMedFM, population SD), with m the overall (case-weighted) mean.
    """
    hi, lo = means.max(axis=-2), means.min(axis=-2)
    higher = np.asarray(higher_is_better, dtype=bool)
    na = ~np.asarray(bounded, dtype=bool)
    w = np.asarray(weights, dtype=float)
    overall = (means * w[:, None]).sum(axis=-2) / w.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(lo < 0, np.nan, np.where(hi > 0, lo / np.where(hi > 0, hi, 1.0), 1.0))
        err_hi, err_lo = 1.0 - lo, 1.0 - hi
        # means within SER_EPS of each other are equal up to float rounding (a constant summed over
        # groups of different sizes): their ratio of near-zero errors would be noise, so 1
        ser = np.where(hi - lo <= SER_EPS, 1.0, (err_hi + SER_EPS) / (err_lo + SER_EPS))
    es_fairseg = overall / (1.0 + np.abs(means - overall[..., None, :]).sum(axis=-2))
    es_fairmedfm = overall / (1.0 + means.std(axis=-2))
    return {
        "difference": hi - lo,
        "ratio": ratio,
        "worst": np.where(higher, lo, hi),
        "ser": np.where(na, np.nan, ser),
        "es_fairseg": np.where(na, np.nan, es_fairseg),
        "es_fairmedfm": np.where(na, np.nan, es_fairmedfm),
    }


def rank_biserial(better: np.ndarray, worse: np.ndarray) -> np.ndarray:
    """P(a > b) − P(a < b) for samples along the last axis (ties count half); in [−1, 1].

    The Mann–Whitney effect size (rank-biserial correlation); 0 = no tendency either way.
    """
    n_a, n_b = better.shape[-1], worse.shape[-1]
    ranks = _st.rankdata(np.concatenate([better, worse], axis=-1), axis=-1)
    u = ranks[..., :n_a].sum(axis=-1) - n_a * (n_a + 1) / 2.0
    return 2.0 * u / (n_a * n_b) - 1.0


def welch_statistic(sums: np.ndarray, sumsq: np.ndarray, counts: np.ndarray, var_floor: np.ndarray) -> np.ndarray:
    """Welch-type k-sample statistic ``Σ_g w_g (m_g − m̄_w)²`` with ``w_g = n_g / s_g²`` and
    ``m̄_w`` the ``w``-weighted mean, from per-group sums and sums of squares ``(..., G, M)``.

    Studentizing keeps a permutation test valid when groups differ in size *and* spread (Chung &
    Romano 2013); permuting the raw max–min gap is not (it rejected ~50 % of true nulls at α = 0.05
    with 200 vs 10 cases of unequal spread). Groups of one case, or with no spread, use ``var_floor``.
    """
    n = counts[:, None]
    means = sums / n
    var = (sumsq - sums * means) / np.maximum(n - 1.0, 1.0)
    var = np.maximum(np.where(n > 1, var, 0.0), var_floor)
    weights = n / var
    centre = (weights * means).sum(axis=-2, keepdims=True) / weights.sum(axis=-2, keepdims=True)
    return (weights * (means - centre) ** 2).sum(axis=-2)


def permutation_gap_test(x: np.ndarray, codes: np.ndarray, *, n_perm: int, rng: np.random.Generator,
                         max_perm: int | None = None, min_exceed: int = 20
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Studentized permutation test of equal group means, for each column of ``x`` ``(n, M)``.

    T is :func:`welch_statistic` (heteroscedasticity-robust, so unequal group sizes and spreads do
    not inflate false positives); the reported gap itself comes from :func:`gap_statistics`.

    Group labels ``codes`` (0..G−1, every group non-empty) are permuted across cases (exchangeable
    under H0: the metric's distribution does not depend on the group). ``p = (h + 1) / (L + 1)``
    with h the permutations with T* ≥ T (ties count) out of L. After ``n_perm`` permutations, a
    metric with fewer than ``min_exceed`` exceedances keeps drawing (Besag–Clifford sequential
    Monte Carlo) until it has them or ``max_perm`` is reached, so that p-values far below
    1/n_perm — needed after a Holm/BH correction over many tests — are resolved. Returns
    ``(T, p, L)`` per metric. All columns share one permutation stream (deterministic in ``rng``).
    """
    codes = np.asarray(codes)
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes[order]).astype(float)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.intp)
    n, n_metrics = x.shape
    # A small variance floor (from the permutation-invariant total variance) keeps flat groups finite.
    var_floor = np.maximum(1e-6 * x.var(axis=0, ddof=1), 1e-12) if n > 1 else np.full(n_metrics, 1e-12)
    xx = x * x

    def statistic(idx: np.ndarray, cols: np.ndarray) -> np.ndarray:
        sums = np.add.reduceat(x[:, cols][idx], starts, axis=-2)
        sumsq = np.add.reduceat(xx[:, cols][idx], starts, axis=-2)
        return welch_statistic(sums, sumsq, counts, var_floor[cols])

    t_obs = statistic(order, np.arange(n_metrics))
    tol = 1e-10 * np.maximum(1.0, np.abs(t_obs))
    max_perm = max(n_perm, max_perm or n_perm)
    exceed = np.zeros(n_metrics, dtype=np.int64)
    used = np.zeros(n_metrics, dtype=np.int64)
    active = np.ones(n_metrics, dtype=bool)
    drawn = 0
    base = np.arange(n)
    step = _batch(n, n_metrics)
    while active.any():
        limit = n_perm if drawn < n_perm else max_perm
        b = min(step, limit - drawn)
        # Case perms[k] takes the label of case k: the groups of cases summed do not depend on how
        # the groups are named, so p-values are exactly invariant to relabelling.
        perms = rng.permuted(np.broadcast_to(base, (b, n)), axis=1)[:, order]
        cols = np.flatnonzero(active)
        t_perm = statistic(perms, cols)  # (b, m_active)
        exceed[cols] += (t_perm >= t_obs[cols] - tol[cols]).sum(axis=0)
        used[cols] += b
        drawn += b
        if drawn >= n_perm:
            active &= (exceed < min_exceed) & (used < max_perm)
    return t_obs, (exceed + 1.0) / (used + 1.0), used


def kruskal_test(x: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kruskal–Wallis H and its chi-square p-value per column (all values tied → H = 0, p = 1)."""
    codes = np.asarray(codes)
    n_groups = int(codes.max()) + 1
    h = np.zeros(x.shape[1])
    p = np.ones(x.shape[1])
    for m in range(x.shape[1]):
        col = x[:, m]
        if np.ptp(col) == 0:
            continue
        res = _st.kruskal(*[col[codes == g] for g in range(n_groups)])
        h[m], p[m] = float(res.statistic), float(res.pvalue)
    return h, p
