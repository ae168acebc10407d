"""Self-validation of the fairness statistics by simulation (used by ``benchmarks/fairness_power.py``
and, in small versions, by the unit tests).

* :func:`null_fail_rate` — groups assigned at random to per-case values: how often does the gate
  FAIL? (should be ≈ α when ``max_gap = 0``; lower with a clinical margin).
* :func:`detection_rate` — a drop of Δ planted in one group: how often is it detected?
* :func:`coverage` — how often does the group-mean CI contain the true mean?

Values come from a real run (``pool``) or from :func:`simulate_dice` (beta, mean 0.85, SD 0.08).
Every simulation runs the same code path as a suite run (``fairness_tables`` → ``fairness_gates``)
unless ``path="test"`` asks for the statistical test alone (fast, for power curves).
"""
from __future__ import annotations

from typing import Callable, Literal

import numpy as np
import pandas as pd

from harness.analysis import stats
from harness.analysis.fairness import fairness_gates, fairness_tables
from harness.analysis.fairness_cell import Test


def simulate_dice(size: int | tuple[int, ...], *, rng: np.random.Generator, mean: float = 0.85,
                  sd: float = 0.08, failure_rate: float = 0.0) -> np.ndarray:
    """Per-case Dice: Beta with the given mean/SD (left-skewed like real Dice); optionally a share
    of failures drawn uniformly from [0, 0.5] (heavy lower tail)."""
    k = mean * (1 - mean) / sd**2 - 1
    x = rng.beta(mean * k, (1 - mean) * k, size)
    if failure_rate:
        fail = rng.random(size) < failure_rate
        x = np.where(fail, rng.uniform(0.0, 0.5, size), x)
    return x


def beta_mean(*, mean: float = 0.85, sd: float = 0.08, failure_rate: float = 0.0) -> float:
    """True mean of :func:`simulate_dice` values."""
    return (1 - failure_rate) * mean + failure_rate * 0.25


def _tables(values: np.ndarray, groups: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    ids = [f"c{i:05d}" for i in range(len(values))]
    records = pd.DataFrame({"case_id": ids, "perturbation": "clean", "severity": 0, "label": 1,
                            "status": "OK", "dice": values})
    cases = pd.DataFrame({"case_id": ids, "group": [f"g{g}" for g in groups]})
    return records, cases


def gate_outcomes(values: np.ndarray, groups: np.ndarray, *, alpha: float, max_gaps: tuple[float, ...],
                  n_perm: int, seed: int, n_boot: int = 0, min_group_size: int = 10,
                  test: Test = "permutation") -> list[str]:
    """Outcomes of fairness gates (one per margin) on one simulated data set, full analysis path."""
    records, cases = _tables(values, groups)
    result = fairness_tables(records, cases, cohorts=["group"], metrics=["dice"], alpha=alpha, n_boot=n_boot,
                             n_perm=n_perm, seed=seed, min_group_size=min_group_size, test=test)
    return [fairness_gates(result, gate={"name": "sim", "metric": "dice", "max_gap": m, "alpha": alpha})[0].outcome
            for m in max_gaps]


def _assign(rng: np.random.Generator, sizes: tuple[int, ...]) -> np.ndarray:
    return rng.permutation(np.repeat(np.arange(len(sizes)), sizes))


def _simulate(draw: Callable[[np.random.Generator], tuple[np.ndarray, np.ndarray]], rng: np.random.Generator, *,
              n_sims: int, path: str, alpha: float, max_gaps: tuple[float, ...], n_perm: int,
              test: Test) -> dict[float, float]:
    """Run ``n_sims`` simulations of ``draw(rng) -> (values, groups)``; the share that FAIL the gate
    per margin (path "gate") or whose permutation test rejects at ``alpha`` (path "test", key 0.0)."""
    outcomes, rejections = [], []
    for i in range(n_sims):
        values, groups = draw(rng)
        if path == "gate":
            outcomes.append(gate_outcomes(values, groups, alpha=alpha, max_gaps=max_gaps, n_perm=n_perm, seed=i,
                                          test=test))
        else:
            _, p, _ = stats.permutation_gap_test(values[:, None], groups, n_perm=n_perm, rng=rng)
            rejections.append(bool(p[0] < alpha))
    if path == "test":
        return {0.0: float(np.mean(rejections))}
    return {m: float(np.mean([o[k] == "FAIL" for o in outcomes])) for k, m in enumerate(max_gaps)}


def null_fail_rate(*, sizes: tuple[int, ...], n_sims: int, alpha: float = 0.05, max_gaps: tuple[float, ...] = (0.0,),
                   n_perm: int = 2000, seed: int = 0, pool: np.ndarray | None = None,
                   path: Literal["gate", "test"] = "gate", test: Test = "permutation") -> dict[float, float]:
    """Share of simulations that FAIL (path "gate", per margin) or reject (path "test") under H0.

    With a ``pool`` (per-case values of a real run) each simulation draws ``sum(sizes)`` of them
    without replacement and assigns groups at random; otherwise values are simulated.
    """
    def draw(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        n = sum(sizes)
        values = rng.choice(pool, n, replace=False) if pool is not None else simulate_dice(n, rng=rng)
        return values, _assign(rng, sizes)

    return _simulate(draw, np.random.default_rng(seed), n_sims=n_sims, path=path, alpha=alpha,
                     max_gaps=max_gaps, n_perm=n_perm, test=test)


def detection_rate(*, delta: float, n: int, n_sims: int, alpha: float = 0.05, max_gaps: tuple[float, ...] = (0.0,),
                   n_perm: int = 2000, seed: int = 0, path: Literal["gate", "test"] = "test",
                   failure_rate: float = 0.0, test: Test = "permutation") -> dict[float, float]:
    """Two groups of ``n`` cases; Dice of group 1 lowered by ``delta`` (clipped at 0). Share of
    simulations with p < α (path "test") or a FAIL (path "gate", per margin: also needs gap > margin)."""
    groups = np.repeat([0, 1], n)

    def draw(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        values = simulate_dice(2 * n, rng=rng, failure_rate=failure_rate)
        values[n:] = np.clip(values[n:] - delta, 0.0, 1.0)
        return values, groups

    return _simulate(draw, np.random.default_rng(seed), n_sims=n_sims, path=path, alpha=alpha,
                     max_gaps=max_gaps, n_perm=n_perm, test=test)


def coverage(*, n: int, n_sims: int, n_boot: int = 1000, level: float = 0.95, seed: int = 0,
             failure_rate: float = 0.0) -> float:
    """Share of simulations whose group-mean CI (the one in ``FairnessResult.groups``) contains
    the true mean, for a group of ``n`` simulated Dice values."""
    rng = np.random.default_rng(seed)
    truth = beta_mean(failure_rate=failure_rate)
    hits = 0
    for _ in range(n_sims):
        x = simulate_dice((n, 1), rng=rng, failure_rate=failure_rate)
        means, ses, _ = stats.group_bootstrap([x], n_boot=n_boot, rng=rng)
        lo, hi = stats.studentized_ci(x, means[:, 0], ses[:, 0], level=level)
        hits += bool(np.clip(lo[0], 0, 1) <= truth <= np.clip(hi[0], 0, 1))
    return hits / n_sims
