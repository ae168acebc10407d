"""Benchmark: run throughput per executor, and the runner's overhead over pure model inference.

Run: ``python benchmarks/throughput.py`` (``--cases 2 --json out.json``). The bundled
``robustness`` suite (clean + every family that applies to MRI x 5 severities, per case) on
``phantom2d`` with the bundled reference U-Net, executed by ``harness.runner.execute`` exactly as ``harness run``
does (journal with fsync included; reports excluded) with:

* ``local-1``: ``--workers 1`` (in process),
* ``local-2``: ``--workers 2`` (the supervised process pool),
* ``dask-2``: ``--executor dask --workers 2`` (a LocalCluster of 2 single-thread workers).

Torch runs one intra-op thread in every configuration (``--threads``; pool and Dask workers always
use one), so the configurations differ only in how items are scheduled. Items/s count the whole
``execute`` call, pool/cluster start-up included; "steady" items/s leave out the time to the
first report (an item; for Dask a batch of up to 16). CPU seconds cover the whole process tree (workers, fork server).

Overhead, from the ``local-1`` run itself (so that load drift on a shared machine does not enter):
``inference`` is the summed ``model.predict`` time (the records' ``inference_s``); ``evaluation``
adds perturbing and scoring (time inside ``Evaluator.evaluate``) and case loading; the
``runner overhead`` is the rest of the wall time — planning, batching, journaling with fsync,
building rows, progress. It is reported as a share of inference time (target <= 10 %), and so is
the whole non-inference time (perturbation and metrics included).

On a shared machine, worker scaling is bounded by the cores actually free: the benchmark measures
that "parallel capacity" before and after (two CPU-bound processes against one) and prints the
load average with every row.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness.pipeline import RunOptions, prepare
from harness.records import Journal, WorkItem, records_frame
from harness.runner import Evaluator, Plan, execute, plan_items

CONFIGS = {"local-1": {"workers": 1}, "local-2": {"workers": 2}, "dask-2": {"workers": 2, "executor": "dask"}}


def cpu_seconds() -> float:
    """CPU time of this process and all its descendants, living and reaped."""
    total = 0.0
    for proc in [psutil.Process(), *psutil.Process().children(recursive=True)]:
        try:
            t = proc.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


_SPIN = "import time; t = time.perf_counter(); x = 0\nfor i in range(20_000_000): x += i\nprint(time.perf_counter() - t)"


def parallel_capacity() -> float:
    """How many cores this process tree can use right now: 2 x (one spinner's time) / (the time of
    each of two spinners run together) — 2.0 on two idle cores, 1.0 when only one core is free."""
    import subprocess

    def spin(n: int) -> float:
        procs = [subprocess.Popen([sys.executable, "-c", _SPIN], stdout=subprocess.PIPE, text=True) for _ in range(n)]
        return max(float(p.communicate()[0]) for p in procs)

    return 2 * spin(1) / spin(2)


class _Timed:
    """Wraps a method (``cls.name``) and accumulates the time spent in it; ``restore()`` undoes it."""

    def __init__(self, cls: type, name: str) -> None:
        self.cls, self.name, self.fn, self.seconds = cls, name, getattr(cls, name), 0.0

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return self.fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        setattr(cls, name, timed)

    def restore(self) -> None:
        setattr(self.cls, self.name, self.fn)


def harness_run(plan: Plan, items: list[WorkItem], model: Any, config: dict[str, Any]) -> dict[str, Any]:
    stamps: list[float] = []
    load_before = os.getloadavg()[0]
    evaluate, load = _Timed(Evaluator, "evaluate"), _Timed(type(plan.dataset), "load")
    journal_time = _Timed(Journal, "append_many")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            journal = Journal(Path(tmp) / "journal.jsonl")
            cpu0, start = cpu_seconds(), time.perf_counter()
            rows = execute(plan, items, journal, model=model,
                           progress=lambda n: stamps.extend([time.perf_counter() - start] * n), **config)
            wall, cpu = time.perf_counter() - start, cpu_seconds() - cpu0
    finally:
        evaluate.restore()
        load.restore()
        journal_time.restore()
    frame = records_frame(rows, plan.suite.metrics)
    first = stamps[0] if stamps else wall
    first_n = stamps.count(first)  # items in the first report (Dask reports a batch at a time)
    inference = float(frame.drop_duplicates(["case_id", "perturbation", "severity", "repeat"])["inference_s"].sum())
    result = {"items": len(items), "wall_s": wall, "cpu_s": cpu, "items_per_s": len(items) / wall,
              "steady_items_per_s": (len(items) - first_n) / max(wall - first, 1e-9), "first_item_s": first,
              "cpu_s_per_item": cpu / len(items), "errors": int((frame["status"] == "ERROR").sum()),
              "inference_s": inference, "load_avg": [round(load_before, 2), round(os.getloadavg()[0], 2)],
              "frame": frame}
    if evaluate.seconds:  # in process: the split of the wall time
        result.update(evaluate_s=evaluate.seconds, case_load_s=load.seconds, journal_s=journal_time.seconds,
                      runner_overhead_s=wall - evaluate.seconds - load.seconds)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", default="robustness")
    parser.add_argument("--cases", type=int, default=2, help="phantom cases")
    parser.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated, of {', '.join(CONFIGS)}")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    unknown = [name for name in args.configs.split(",") if name not in CONFIGS]
    if unknown:
        parser.error(f"--configs: unknown {', '.join(unknown)}; choose from {', '.join(CONFIGS)}")

    import torch

    torch.set_num_threads(1)  # as every executor computes (the in-process one included)
    suite, dataset, model, plan, _ = prepare(RunOptions(suite=args.suite, limit=args.cases))
    items = plan_items(suite, dataset.case_ids)
    print(f"{suite.name}: {len(dataset.case_ids)} cases, {len(items)} items; {os.cpu_count()} CPUs; "
          f"load average {os.getloadavg()}", flush=True)
    Evaluator(plan, model=model).evaluate(items[1], dataset.load(items[1].case_id))  # warm-up (numba, torch)

    capacity = parallel_capacity()
    print(f"parallel capacity now: {capacity:.2f} cores (two CPU-bound processes vs one)", flush=True)
    results: dict[str, Any] = {"suite": suite.name, "cases": len(dataset.case_ids), "items": len(items),
                               "cpus": os.cpu_count(), "torch_threads_in_process": 1,
                               "parallel_capacity_before": capacity, "configs": {}}
    frames = {}
    for name in args.configs.split(","):
        result = harness_run(plan, items, model, CONFIGS[name])
        frames[name] = result.pop("frame")
        results["configs"][name] = result
        print(f"{name:8s} {result['items_per_s']:6.2f} items/s (steady {result['steady_items_per_s']:6.2f}), "
              f"wall {result['wall_s']:6.1f} s, CPU {result['cpu_s_per_item']:5.2f} s/item, first item after "
              f"{result['first_item_s']:.1f} s, errors {result['errors']}, load avg {result['load_avg']}", flush=True)
    names = list(frames)
    cols = [c for c in frames[names[0]].columns if c != "inference_s"]
    results["records_equal"] = all(frames[n][cols].equals(frames[names[0]][cols]) for n in names)
    one = results["configs"].get("local-1")
    if one:
        inference = one["inference_s"]
        results["overhead"] = o = {
            "inference_s": inference, "perturb_and_metrics_s": one["evaluate_s"] - inference,
            "case_load_s": one["case_load_s"], "runner_overhead_s": one["runner_overhead_s"],
            "runner_overhead_of_inference": one["runner_overhead_s"] / inference,
            "all_non_inference_of_inference": (one["wall_s"] - inference) / inference}
        print(f"local-1 wall {one['wall_s']:.1f} s = inference {inference:.1f} s + perturb/metrics "
              f"{o['perturb_and_metrics_s']:.1f} s + case loading {o['case_load_s']:.2f} s + runner "
              f"{o['runner_overhead_s']:.2f} s (of which journal writes {one['journal_s']:.2f} s)")
        print(f"runner overhead / inference: {100 * o['runner_overhead_of_inference']:.1f} %; "
              f"all non-inference time / inference: {100 * o['all_non_inference_of_inference']:.1f} %")
    print(f"records identical across {', '.join(names)}: {results['records_equal']}")
    results["parallel_capacity_after"] = capacity = parallel_capacity()
    print(f"parallel capacity at the end: {capacity:.2f} cores; load average {os.getloadavg()}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
