"""Statistical primitives against brute force / scipy and their degenerate cases."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats as st

from harness.analysis import stats


def test_holm_and_bh_match_hand_computation():
    p = np.array([0.01, 0.04, 0.03, 0.005, np.nan])
    holm = stats.adjust_pvalues(p, method="holm")
    np.testing.assert_allclose(holm[:4], [0.03, 0.06, 0.06, 0.02])
    assert np.isnan(holm[4])
    bh = stats.adjust_pvalues(p, method="bh")
    np.testing.assert_allclose(bh[:4], st.false_discovery_control(p[:4]))
    with pytest.raises(ValueError):
        stats.adjust_pvalues(p, method="bonferroni")  # type: ignore[arg-type]


def test_permutation_test_is_exact_on_a_tiny_example():
    x = np.array([[1.0], [2.0], [3.5], [10.0]])
    codes = np.array([0, 0, 1, 1])
    # Exact p by enumerating the 6 label splits with the same (Welch-type) statistic.
    floor = np.array([1e-6 * x.var(ddof=1)])

    def welch(idx: tuple[int, ...]) -> float:
        groups = [x[list(idx), 0], np.delete(x[:, 0], list(idx))]
        sums = np.array([[g.sum()] for g in groups])
        sumsq = np.array([[(g * g).sum()] for g in groups])
        return float(stats.welch_statistic(sums, sumsq, np.array([2.0, 2.0]), floor)[0])

    splits = list(itertools.combinations(range(4), 2))
    t = np.array([welch(c) for c in splits])
    exact = np.mean(t >= welch((0, 1)) - 1e-9)
    _, p, used = stats.permutation_gap_test(x, codes, n_perm=20000, rng=np.random.default_rng(0))
    assert used[0] == 20000 and abs(p[0] - exact) < 0.01


def test_permutation_test_ties_and_refinement():
    rng = np.random.default_rng(1)
    flat = np.full((30, 1), 0.8)
    _, p, _ = stats.permutation_gap_test(flat, np.arange(30) % 3, n_perm=200, rng=rng)
    assert p[0] == 1.0  # all values equal: every permutation ties the observed gap
    x = np.concatenate([rng.normal(0, 1, 40), rng.normal(3, 1, 40)])[:, None]
    codes = np.repeat([0, 1], 40)
    _, p_fixed, used_fixed = stats.permutation_gap_test(x, codes, n_perm=500, rng=rng)
    _, p_seq, used_seq = stats.permutation_gap_test(x, codes, n_perm=500, max_perm=20000, rng=rng)
    assert used_fixed[0] == 500 and p_fixed[0] == pytest.approx(1 / 501)
    assert used_seq[0] == 20000 and p_seq[0] == pytest.approx(1 / 20001)  # resolved below 1/n_perm


def test_permutation_test_stops_early_when_p_is_large():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(60, 2))
    _, p, used = stats.permutation_gap_test(x, np.arange(60) % 2, n_perm=300, max_perm=50000, rng=rng)
    assert (used == 300).all() and (p > 0.05).all()


def test_permutation_null_rate_small():
    rng = np.random.default_rng(3)
    rejections = []
    for _ in range(150):
        x = rng.beta(16, 2.8, (40, 1))
        _, p, _ = stats.permutation_gap_test(x, rng.permutation(np.arange(40) % 2), n_perm=199, rng=rng)
        rejections.append(p[0] < 0.05)
    assert np.mean(rejections) < 0.12  # 5 % nominal; generous bound for 150 simulations


def test_permutation_test_valid_with_unequal_sizes_and_spreads():
    """Equal means, a large tight group and a small noisy one: the raw-gap permutation test rejected
    about half of such nulls; the studentized one stays near the nominal 5 %."""
    rng = np.random.default_rng(4)
    rejections = []
    for _ in range(200):
        x = np.concatenate([rng.normal(0.85, 0.02, 60), rng.normal(0.85, 0.2, 8)])[:, None]
        codes = np.repeat([0, 1], [60, 8])
        _, p, _ = stats.permutation_gap_test(x, codes, n_perm=199, rng=rng)
        rejections.append(p[0] < 0.05)
    assert np.mean(rejections) < 0.11


def test_kruskal_matches_scipy_and_handles_ties():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(45, 1))
    codes = np.arange(45) % 3
    h, p = stats.kruskal_test(x, codes)
    ref = st.kruskal(*[x[codes == g, 0] for g in range(3)])
    assert h[0] == pytest.approx(ref.statistic) and p[0] == pytest.approx(ref.pvalue)
    h, p = stats.kruskal_test(np.ones((10, 1)), np.arange(10) % 2)
    assert (h[0], p[0]) == (0.0, 1.0)


def test_rank_biserial_brute_force():
    rng = np.random.default_rng(5)
    a, b = rng.integers(0, 5, 9).astype(float), rng.integers(0, 5, 7).astype(float)
    brute = np.mean([np.sign(i - j) for i in a for j in b])
    assert stats.rank_biserial(a, b) == pytest.approx(brute)
    batch = stats.rank_biserial(np.stack([a, a + 10]), np.stack([b, b]))
    assert batch[1] == 1.0


def test_gap_statistics_known_values():
    means = np.array([[0.9], [0.8]])
    g = stats.gap_statistics(means, np.array([1.0, 3.0]), higher_is_better=np.array([True]), bounded=np.array([True]))
    overall = (0.9 + 3 * 0.8) / 4
    assert g["difference"][0] == pytest.approx(0.1)
    assert g["ratio"][0] == pytest.approx(0.8 / 0.9)
    assert g["worst"][0] == pytest.approx(0.8)
    assert g["ser"][0] == pytest.approx(0.2 / 0.1)
    assert g["es_fairseg"][0] == pytest.approx(overall / (1 + abs(0.9 - overall) + abs(0.8 - overall)))
    assert g["es_fairmedfm"][0] == pytest.approx(overall / (1 + 0.05))
    dist = stats.gap_statistics(np.array([[3.0], [5.0]]), np.array([1.0, 1.0]),
                                higher_is_better=np.array([False]), bounded=np.array([False]))
    assert dist["worst"][0] == 5.0 and np.isnan(dist["ser"][0]) and np.isnan(dist["es_fairseg"][0])
    zeros = stats.gap_statistics(np.zeros((2, 1)), np.ones(2), higher_is_better=np.array([False]),
                                 bounded=np.array([False]))
    assert zeros["ratio"][0] == 1.0


def test_ser_with_a_perfect_group_is_finite():
    g = stats.gap_statistics(np.array([[1.0], [0.9]]), np.ones(2), higher_is_better=np.array([True]),
                             bounded=np.array([True]))
    assert np.isfinite(g["ser"][0]) and g["ser"][0] > 1e6
    same = stats.gap_statistics(np.ones((2, 1)), np.ones(2), higher_is_better=np.array([True]), bounded=np.array([True]))
    assert same["ser"][0] == 1.0


def test_bootstrap_is_stratified_and_ci_degenerate_cases():
    rng = np.random.default_rng(6)
    groups = [rng.normal(0, 1, (12, 2)), rng.normal(5, 1, (3, 2)), np.full((1, 2), 7.0)]
    means, ses, idx = stats.group_bootstrap(groups, n_boot=300, rng=rng)
    assert means.shape == (300, 3, 2) and [i.shape for i in idx] == [(300, 12), (300, 3), (300, 1)]
    assert (means[:, 2] == 7.0).all() and (ses[:, 2] == 0).all()
    lo, hi = stats.studentized_ci(groups[2], means[:, 2], ses[:, 2])
    assert (lo == 7.0).all() and (hi == 7.0).all()
    flat = np.full((5, 1), 0.5)
    m, s, _ = stats.group_bootstrap([flat], n_boot=50, rng=rng)
    assert stats.studentized_ci(flat, m[:, 0], s[:, 0]) == (np.array([0.5]), np.array([0.5]))
    lo, hi = stats.studentized_ci(groups[0], means[:, 0], ses[:, 0])
    assert (lo < groups[0].mean(0)).all() and (hi > groups[0].mean(0)).all()


def test_studentized_ci_with_heavy_ties_is_finite():
    rng = np.random.default_rng(7)
    x = np.array([[1.0]] * 9 + [[0.2]])  # most resamples have zero spread
    means, ses, _ = stats.group_bootstrap([x], n_boot=500, rng=rng)
    lo, hi = stats.studentized_ci(x, means[:, 0], ses[:, 0])
    assert np.isfinite(lo).all() and np.isfinite(hi).all() and lo[0] <= x.mean() <= hi[0]


def test_studentized_ci_stays_within_the_observed_values():
    """A small, skewed group (most Dice near 0, two near 0.2): the bootstrap-t upper bound reached
    far past every observed value."""
    x = np.array([[0.0], [0.001], [0.002], [0.003], [0.0], [0.004], [0.001], [0.002], [0.0], [0.003],
                  [0.001], [0.002], [0.21], [0.24]])
    means, ses, _ = stats.group_bootstrap([x], n_boot=2000, rng=np.random.default_rng(3))
    lo, hi = stats.studentized_ci(x, means[:, 0], ses[:, 0])
    assert x.min() <= lo[0] < x.mean() < hi[0] <= x.max()
    # without the limit (the raw bootstrap-t bound) this group's upper bound is far beyond 0.24
    t = (means[:, 0, 0] - x.mean()) / ses[:, 0, 0]
    raw_hi = x.mean() - np.quantile(t, 0.025) * x.std(ddof=1) / np.sqrt(len(x))
    assert raw_hi > 0.3 and hi[0] == x.max()


def test_cluster_bootstrap_keeps_the_mean_over_cases_and_resamples_clusters():
    """Oracle: values each present twice in a cluster of two give the interval of the values once;
    clusters of one give the plain bootstrap-t interval; unequal clusters weigh every case alike."""
    from harness.analysis.robustness import bootstrap_mean_ci
    from harness.analysis.stats import cluster_bootstrap_mean

    x = np.random.default_rng(3).uniform(0, 1, 25)
    once = bootstrap_mean_ci(x, seed=1)
    assert bootstrap_mean_ci(np.repeat(x, 2), seed=1, clusters=np.repeat(np.arange(25), 2)) == pytest.approx(once)
    assert bootstrap_mean_ci(x, seed=1, clusters=np.arange(25)) == once
    values, clusters = np.array([0.0, 1.0, 1.0, 1.0]), np.array(["p", "q", "q", "q"])
    mean, se, boot, boot_se = cluster_bootstrap_mean(values, clusters, n_boot=200, rng=np.random.default_rng(0))
    assert mean == 0.75 and se > 0 and boot.shape == boot_se.shape == (200,)
    assert set(np.round(boot, 6)) <= {0.0, 0.75, 1.0}  # p alone, p and q, q alone
    lo, hi = bootstrap_mean_ci(x[:6], clusters=["p"] * 6)  # one patient: no interval, never a zero-width one
    assert np.isnan(lo) and np.isnan(hi)
