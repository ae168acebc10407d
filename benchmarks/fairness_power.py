"""Self-validation of the fairness statistics: null FAIL rate, power, CI coverage.

    python benchmarks/fairness_power.py                    # full run (~15 CPU-minutes)
    python benchmarks/fairness_power.py --quick            # smaller, for a smoke check
    python benchmarks/fairness_power.py --records reports/<run>/records.csv   # null from a real run
    python benchmarks/fairness_power.py --json fairness_power.json

Acceptance (issue F): null FAIL rate at α = 0.05 within 3–7 % over ≥ 1000 simulations; a Dice drop
of 0.05 in one group of n = 100 detected ≥ 80 % of the time; group-mean CI coverage within 93–97 %.

Without ``--records`` the per-case Dice values are simulated (Beta, mean 0.85, SD 0.08, i.e.
Beta(16.1, 2.84); "+fail" adds 5 % failures uniform on [0, 0.5]). The null and the headline power
run the full analysis path (``fairness_tables`` → ``fairness_gates``) with ``max_gap = 0`` so
that FAIL ⇔ adjusted p < α; the power curve calls the same permutation test directly.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.analysis import stats
from harness.analysis.case_values import case_values
from harness.analysis.fairness_validation import coverage, detection_rate, null_fail_rate, simulate_dice


def _pool(path: str | None) -> np.ndarray | None:
    if not path:
        return None
    records = pd.read_csv(path)
    values = case_values(records, metrics=["dice"], by_perturbation=False)["dice"].to_numpy()
    print(f"null pool: {len(values)} clean per-case Dice values from {path} "
          f"(mean {values.mean():.3f}, SD {values.std(ddof=1):.3f})")
    return values


def _wilson(p: float, n: int) -> str:
    z = 1.96
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return f"[{max(0.0, centre - half):.3f}, {min(1.0, centre + half):.3f}]"


def gap_ci_excludes_zero(*, n: int, n_sims: int, n_boot: int, seed: int) -> float:
    """Null: share of simulations whose percentile CI of the max–min gap excludes 0 (why we never
    gate on that CI alone)."""
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(n_sims):
        groups = [simulate_dice((n, 1), rng=rng) for _ in range(2)]
        means, _, _ = stats.group_bootstrap(groups, n_boot=n_boot, rng=rng)
        gap = stats.gap_statistics(means, np.array([n, n]), higher_is_better=np.array([True]),
                                   bounded=np.array([True]))["difference"][:, 0]
        hits += bool(stats.percentile_ci(gap)[0] > 0)
    return hits / n_sims


def _task(spec: tuple[str, dict]) -> object:
    kind, kwargs = spec
    fn = {"null": null_fail_rate, "power": detection_rate, "coverage": coverage,
          "gap_ci": gap_ci_excludes_zero}[kind]
    return fn(**kwargs)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sims", type=int, default=1000, help="simulations for the headline figures")
    ap.add_argument("--curve-sims", type=int, default=400, help="simulations per power-curve point")
    ap.add_argument("--quick", action="store_true", help="200 / 100 simulations")
    ap.add_argument("--records", help="records.csv of a real run: null uses its clean per-case Dice")
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--margin", type=float, default=0.03, help="clinical margin (suite max_gap) to report too")
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--workers", type=int, default=2, help="worker processes (independent simulation blocks)")
    ap.add_argument("--only", choices=["null"], help="run only this part (e.g. the null with --records)")
    ap.add_argument("--json", help="write the figures to this file")
    args = ap.parse_args(argv)
    sims, curve_sims = (200, 100) if args.quick else (args.sims, args.curve_sims)
    pool, alpha, seed, margins = _pool(args.records), args.alpha, args.seed, (0.0, args.margin)
    t0 = time.time()

    scenarios = {"2 groups 100/100": (100, 100), "3 groups 100/60/40": (100, 60, 40)}
    if pool is not None:
        half = len(pool) // 2
        scenarios = {f"real pool, 2 groups {half}/{len(pool) - half}": (half, len(pool) - half)}
    deltas, sizes = (0.0, 0.01, 0.02, 0.03, 0.05, 0.08), (20, 50, 100, 200)
    cov = [(fr, tag, n) for fr, tag in ((0.0, "beta"), (0.05, "beta+fail")) for n in (10, 20, 50, 100)]
    tasks: dict[str, tuple[str, dict]] = {}
    for name, sz in scenarios.items():
        tasks[f"null {name}"] = ("null", {"sizes": sz, "n_sims": sims, "alpha": alpha, "max_gaps": margins,
                                          "seed": seed, "pool": pool})
    tasks["null kruskal"] = ("null", {"sizes": next(iter(scenarios.values())), "n_sims": sims // 2, "alpha": alpha,
                                      "max_gaps": margins, "seed": seed, "pool": pool, "test": "kruskal"})
    common = {"delta": 0.05, "n": 100, "alpha": alpha, "path": "gate", "seed": seed}
    tasks["power"] = ("power", {"n_sims": sims, "max_gaps": margins, **common})
    tasks["power fail"] = ("power", {"n_sims": sims // 2, "failure_rate": 0.05, **common})
    tasks["power fail kruskal"] = ("power", {"n_sims": sims // 2, "failure_rate": 0.05, "test": "kruskal", **common})
    for n in sizes:
        for d in deltas:
            tasks[f"curve {n} {d}"] = ("power", {"delta": d, "n": n, "n_sims": curve_sims, "alpha": alpha,
                                                "n_perm": 1000, "seed": seed + n})
    for fr, tag, n in cov:
        tasks[f"coverage {tag} {n}"] = ("coverage", {"n": n, "n_sims": 2 * sims, "seed": seed + n,
                                                     "failure_rate": fr})
    tasks["gap_ci"] = ("gap_ci", {"n": 50, "n_sims": sims // 2, "n_boot": 1000, "seed": seed})
    if args.only == "null":
        tasks = {k: v for k, v in tasks.items() if k.startswith("null")}
    order = sorted(tasks, key=lambda k: not k.startswith(("null", "power")))  # slow ones first
    with ProcessPoolExecutor(max_workers=max(1, args.workers)) as ex:
        res = dict(zip(order, ex.map(_task, [tasks[k] for k in order])))

    out: dict = {"sims": sims, "curve_sims": curve_sims, "alpha": alpha, "margin": args.margin,
                 "values": "records: " + args.records if args.records else "simulated Beta(mean 0.85, SD 0.08)"}
    print(f"\n== Null: random group labels, full gate path, α = {alpha}, {sims} simulations ==")
    out["null"] = {}
    for name in scenarios:
        rates = res[f"null {name}"]
        rate, rate_m = rates[0.0], rates[args.margin]
        out["null"][name] = {"fail_rate": rate, "fail_rate_with_margin": rate_m}
        verdict = "OK" if 0.03 <= rate <= 0.07 else "OUT OF RANGE"
        print(f"{name:<28} FAIL rate {rate:.3f} {_wilson(rate, sims)}  [{verdict}]   "
              f"with margin {args.margin}: {rate_m:.3f}")

    k = res["null kruskal"][0.0]
    out["null"]["kruskal, " + next(iter(scenarios))] = {"fail_rate": k,
                                                        "fail_rate_with_margin": res["null kruskal"][args.margin]}
    print(f"{'test = kruskal, same groups':<28} FAIL rate {k:.3f} {_wilson(k, sims // 2)}  ({sims // 2} simulations)")

    if args.only == "null":
        return _finish(out, args, t0)
    print("\n== Power: Dice drop Δ = 0.05 in one of two groups of n = 100, full gate path ==")
    power, power_m = res["power"][0.0], res["power"][args.margin]
    power_f, power_k = res["power fail"][0.0], res["power fail kruskal"][0.0]
    out["power"] = {"delta_0.05_n_100": power, "with_margin": power_m, "with_5pct_failures": power_f,
                    "with_5pct_failures_kruskal": power_k}
    print(f"detected (adjusted p < α), {sims} sims: {power:.3f} {_wilson(power, sims)}  "
          f"[{'OK' if power >= 0.8 else 'LOW'}];  FAIL with margin {args.margin}: {power_m:.3f}")
    print(f"with 5 % failure cases ({sims // 2} sims): {power_f:.3f} (permutation of means), "
          f"{power_k:.3f} (test = \"kruskal\")")

    print(f"\n== Power curve: P(p < {alpha}), permutation test, {curve_sims} simulations per point ==")
    print("n per group " + "".join(f"  Δ={d:<5}" for d in deltas))
    out["curve"] = {}
    for n in sizes:
        row = [res[f"curve {n} {d}"][0.0] for d in deltas]
        out["curve"][n] = dict(zip(map(str, deltas), row))
        print(f"{n:>11} " + "".join(f"  {r:<7.3f}" for r in row))

    print(f"\n== Coverage of the 95 % group-mean CI (bootstrap-t, 1000 resamples), {2 * sims} simulations ==")
    out["coverage"] = {}
    for fr, tag, n in cov:
        c = res[f"coverage {tag} {n}"]
        out["coverage"][f"{tag} n={n}"] = c
        print(f"{tag:<10} n = {n:<4} coverage {c:.3f} {_wilson(c, 2 * sims)}  "
              f"[{'OK' if 0.93 <= c <= 0.97 else 'OUT OF RANGE'}]")

    excl = res["gap_ci"]
    out["null_gap_ci_excludes_zero"] = excl
    print(f"\nNull, 2 × 50 identical groups: percentile CI of the max–min gap excludes 0 in {excl:.1%} "
          "of simulations (why it is never gated on alone)")
    return _finish(out, args, t0)


def _finish(out: dict, args: argparse.Namespace, t0: float) -> dict:
    out["seconds"] = round(time.time() - t0, 1)
    print(f"\n{out['seconds']} s with {args.workers} worker(s)")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2), encoding="utf-8")
    return out


if __name__ == "__main__":
    main()
