"""Several images per patient: what treating them as independent does, and what `cluster` restores.

    python benchmarks/cluster_effect.py                     # simulation (~3 CPU-minutes)
    python benchmarks/cluster_effect.py --sims 100          # quicker, noisier
    python benchmarks/cluster_effect.py --run reports/<run> --cluster Case   # one real run, both ways

Simulation: two groups of patients with equal means (the null), each patient with one or two
images (BUS-BRA's mix: 77 % of its test patients have two), the two images of a patient sharing a
patient effect (intra-class correlation ``--icc``). The same fairness analysis (``fairness_tables``,
studentized permutation test, bootstrap-t CIs) is run per image and with ``cluster``; printed: the
false-positive rate at α = 0.05 (should be 5 %), the coverage of the 95 % group-mean CI, and that of
the 95 % CI of the mean over all images (``bootstrap_mean_ci``, the report's clean-performance CI:
cases resampled, or whole patients with ``clusters``), each with its Monte-Carlo standard error.

``--run``: the run's clean fairness analysis (its suite's cohorts and metrics) per image and by
``--cluster``: n, CI width and p-value of each group and attribute, and their ratios.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.analysis.fairness import fairness_tables  # noqa: E402
from harness.analysis.robustness import bootstrap_mean_ci  # noqa: E402

MEAN, SD = 0.80, 0.10  # per-image Dice around the patient's value, before clipping to [0, 1]


def simulate(rng: np.random.Generator, *, patients: int, icc: float, two: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Records and cases of one null data set: ``patients`` per group, a share ``two`` with two images."""
    rows, cases = [], []
    sd_between, sd_within = SD * np.sqrt(icc), SD * np.sqrt(1 - icc)
    for group in ("A", "B"):
        for p in range(patients):
            patient = f"{group}{p:04d}"
            effect = rng.normal(0, sd_between)
            for k in range(2 if rng.random() < two else 1):
                case = f"{patient}_{k}"
                dice = float(np.clip(MEAN + effect + rng.normal(0, sd_within), 0, 1))
                rows.append({"case_id": case, "perturbation": "clean", "severity": 0, "label": 1, "status": "OK",
                             "dice": dice})
                cases.append({"case_id": case, "group": group, "Case": patient})
    return pd.DataFrame(rows), pd.DataFrame(cases)


def _rate(hits: list[bool]) -> str:
    p = float(np.mean(hits))
    return f"{100 * p:5.1f} % ± {100 * np.sqrt(p * (1 - p) / len(hits)):.1f}"


def run_simulation(args: argparse.Namespace) -> None:
    rng = np.random.default_rng(args.seed)
    truth = np.clip(MEAN + rng.normal(0, SD, 2_000_000), 0, 1).mean()  # the clipped mean, by Monte Carlo
    results: dict[str, dict[str, list[bool]]] = {k: {"fp": [], "cover": [], "mean": []}
                                                 for k in ("per image", "by patient")}
    start = time.perf_counter()
    for i in range(args.sims):
        records, cases = simulate(rng, patients=args.patients, icc=args.icc, two=args.two)
        for key, cluster in (("per image", None), ("by patient", "Case")):
            result = fairness_tables(records, cases, cohorts=["group"], metrics=["dice"], n_boot=args.n_boot,
                                     n_perm=args.n_perm, seed=i, cluster=cluster)
            results[key]["fp"].append(bool(result.gaps["p_value"].iloc[0] < 0.05))
            g = result.groups
            results[key]["cover"] += [bool(lo <= truth <= hi) for lo, hi in zip(g["ci_low"], g["ci_high"])]
            lo, hi = bootstrap_mean_ci(records["dice"].to_numpy(), n_boot=args.n_boot, seed=i,
                                       clusters=cases["Case"].to_numpy() if cluster else None)
            results[key]["mean"].append(bool(lo <= truth <= hi))
    print(f"{args.sims} null data sets: {args.patients} patients per group, {100 * args.two:.0f} % with two images, "
          f"ICC {args.icc}; {time.perf_counter() - start:.0f} s")
    print(f"{'analysis':<12} {'false positives (α 5 %)':>24} {'group-mean CI coverage':>24} "
          f"{'overall-mean CI coverage':>26}")
    for key, r in results.items():
        print(f"{key:<12} {_rate(r['fp']):>24} {_rate(r['cover']):>24} {_rate(r['mean']):>26}")
    fp = [np.mean(r["fp"]) for r in results.values()]
    print("ratio per image / by patient, false positives: " + (f"{fp[0] / fp[1]:.2f}" if fp[1] else "n/a (none by patient)"))


def pair_icc(records: pd.DataFrame, cases: pd.DataFrame, cluster: str, metric: str) -> float:
    """Pearson correlation of the clean ``metric`` of the two images of patients with exactly two
    (each pair entered in both orders: the symmetric, intra-class form)."""
    from harness.analysis.case_values import case_values

    values = case_values(records, metrics=[metric], by_perturbation=False).set_index("case_id")[metric]
    patient = cases.set_index("case_id")[cluster].reindex(values.index)
    pairs = [v.to_numpy() for _, v in values.groupby(patient) if len(v) == 2]
    if not pairs:
        return float("nan")
    a = np.array(pairs)
    return float(np.corrcoef(np.r_[a[:, 0], a[:, 1]], np.r_[a[:, 1], a[:, 0]])[0, 1])


def run_folder(args: argparse.Namespace) -> None:
    from harness.records import read_records
    from harness.tomlread import tomllib

    folder = Path(args.run)
    records = read_records(folder / "records.csv")
    cases = pd.read_csv(folder / "cases.csv", dtype={"case_id": str})
    head = tomllib.loads((folder / "suite.toml").read_text(encoding="utf-8")).get("suite", {})
    cohorts = head.get("cohorts") or "auto"
    metrics = head.get("metrics", ["dice"])[:1]
    kwargs = {"cohorts": cohorts, "metrics": metrics, "bins": head.get("bins") or None,
              "n_boot": int(head.get("n_bootstrap", 1000)), "n_perm": int(head.get("n_permutations", 2000)),
              "seed": int(head.get("seed", 0)), "by_perturbation": False}
    loose = fairness_tables(records, cases, **kwargs)
    clustered = fairness_tables(records, cases, cluster=args.cluster, **kwargs)
    for note in clustered.notes:
        print("note:", note)
    print(f"intra-class correlation of {metrics[0]} between a patient's two images: "
          f"{pair_icc(records, cases, args.cluster, metrics[0]):.2f} (the simulation's --icc)")
    keys = ["attribute", "group", "metric"]
    g = loose.groups.merge(clustered.groups, on=keys, suffixes=("_img", "_pat"))
    g["width_ratio"] = (g["ci_high_img"] - g["ci_low_img"]) / (g["ci_high_pat"] - g["ci_low_pat"])
    print(g[keys + ["n_img", "n_pat", "mean_img", "mean_pat", "width_ratio"]].to_string(index=False,
                                                                                         float_format="%.3f"))
    gaps = loose.gaps.merge(clustered.gaps, on=["attribute", "metric"], suffixes=("_img", "_pat"))
    print(gaps[["attribute", "metric", "difference_img", "difference_pat", "p_value_img", "p_value_pat",
                "p_adjusted_img", "p_adjusted_pat"]].to_string(index=False, float_format="%.4f"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sims", type=int, default=400)
    parser.add_argument("--patients", type=int, default=60, help="patients per group")
    parser.add_argument("--icc", type=float, default=0.7, help="intra-class correlation of a patient's images")
    parser.add_argument("--two", type=float, default=0.77, help="share of patients with two images")
    parser.add_argument("--n-boot", type=int, default=300)
    parser.add_argument("--n-perm", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run", help="a run folder to analyse both ways instead of simulating")
    parser.add_argument("--cluster", default="Case", help="with --run: the metadata column of the patient id")
    args = parser.parse_args()
    run_folder(args) if args.run else run_simulation(args)


if __name__ == "__main__":
    main()
