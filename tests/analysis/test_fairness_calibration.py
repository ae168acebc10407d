"""Small versions of benchmarks/fairness_power.py: the gate is calibrated, powered and covers.

Bounds are wide enough for the small simulation counts (the benchmark runs ≥ 1000 simulations).
"""
from __future__ import annotations

import numpy as np

from harness.analysis.fairness_validation import coverage, detection_rate, gate_outcomes, null_fail_rate, simulate_dice


def test_simulated_dice_is_realistic():
    x = simulate_dice(20000, rng=np.random.default_rng(0))
    assert abs(x.mean() - 0.85) < 0.003 and abs(x.std() - 0.08) < 0.003 and x.min() >= 0 and x.max() <= 1


def test_null_rejection_rate_of_the_test():
    rates = null_fail_rate(sizes=(40, 40), n_sims=300, n_perm=199, seed=1, path="test")
    assert 0.02 <= rates[0.0] <= 0.09  # nominal 0.05; binomial 99 % range for 300 simulations


def test_null_through_the_gate_rarely_fails_and_margin_makes_it_rarer():
    rates = null_fail_rate(sizes=(30, 30, 20), n_sims=25, n_perm=199, seed=2, max_gaps=(0.0, 0.05))
    assert rates[0.0] <= 0.2 and rates[0.05] <= rates[0.0]


def test_power_for_a_planted_drop():
    rates = detection_rate(delta=0.05, n=100, n_sims=60, n_perm=199, seed=3)
    assert rates[0.0] >= 0.85  # ≈ 0.99 in the benchmark
    assert detection_rate(delta=0.0, n=100, n_sims=60, n_perm=199, seed=3)[0.0] <= 0.15


def test_gate_outcomes_for_a_planted_drop():
    rng = np.random.default_rng(4)
    values = simulate_dice(200, rng=rng)
    values[100:] -= 0.08
    groups = np.repeat([0, 1], 100)
    assert gate_outcomes(values, groups, alpha=0.05, max_gaps=(0.03, 0.2), n_perm=500, seed=0) == ["FAIL", "WARN"]
    small = gate_outcomes(values[95:], groups[95:], alpha=0.05, max_gaps=(0.03,), n_perm=200, seed=0)
    assert small == ["INCONCLUSIVE"]  # group 0 has 5 < min_group_size cases


def test_group_mean_ci_coverage():
    c = coverage(n=30, n_sims=300, n_boot=400, seed=5)
    assert 0.90 <= c <= 0.99
