"""Benchmark: HD95 from harness.metrics against MONAI (and MetricsReloaded when installed).

Run: ``python benchmarks/metrics.py`` (``--quick`` for fewer repeats). Single thread, same
process, same masks; each timing is the best of ``--repeat`` runs after one warm-up call (so
numba's one-off compilation is not counted), as wall-clock time and as the process's CPU time
(``time.process_time``, all threads; the fairer measure on a shared, loaded machine). Values are
checked against a brute-force scipy reference (erosion boundaries + exact EDT, float64).

Cases: (a) 128^3 smooth overlapping blobs, (b) 256x256x160 blobs with anisotropic spacing,
(c) 512^2 2D blobs, (d) a near-perfect 128^3 prediction (30 % of the boundary pushed out by one
voxel), (e) a 128^3 prediction with a distant false-positive blob (exercises the far-point path).
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable  # noqa: E402
from functools import partial  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness.metrics import HAVE_NUMBA, hausdorff  # noqa: E402

Case = tuple[str, np.ndarray, np.ndarray, tuple[float, ...]]


def blob(shape: tuple[int, ...], seed: int, radius: float, *, extra: float = 0.0) -> np.ndarray:
    """A smooth random blob: a sphere whose radius is modulated by low-pass noise (in voxels)."""
    rng = np.random.default_rng(seed)
    coarse = ndimage.gaussian_filter(rng.standard_normal(tuple(max(4, n // 8) for n in shape)), 1)
    zoom = [n / c for n, c in zip(shape, coarse.shape, strict=True)]
    noise = ndimage.zoom(coarse / coarse.std(), zoom, order=1)
    grid = np.indices(shape, dtype=np.float32)
    dist = np.sqrt(sum((g - (n - 1) / 2) ** 2 for g, n in zip(grid, shape, strict=True)))
    return dist + 0.08 * radius * noise < radius + extra


def cases() -> list[Case]:
    a = blob((128,) * 3, 0, 40.0)
    b = blob((128,) * 3, 1, 40.0, extra=1.0)
    big_a = blob((256, 256, 160), 2, 60.0)
    big_b = blob((256, 256, 160), 3, 60.0, extra=1.0)
    flat_a = blob((512, 512), 4, 150.0)
    flat_b = blob((512, 512), 5, 150.0, extra=2.0)
    rng = np.random.default_rng(6)
    edge = np.argwhere(a & ~ndimage.binary_erosion(a))
    near = a.copy()
    picks = edge[rng.random(len(edge)) < 0.30]
    for p in picks:  # push 30 % of the boundary voxels out by one voxel along a random axis
        q = p.copy()
        q[rng.integers(3)] += rng.choice([-1, 1])
        near[tuple(q)] = True
    far = b.copy()
    far[110:122, 4:14, 110:120] = True  # a false positive ~80 voxels away from the blob
    return [
        ("(a) 128^3 blobs, 1 mm", a, b, (1.0, 1.0, 1.0)),
        ("(b) 256x256x160 blobs, 0.8x0.8x1.5 mm", big_a, big_b, (0.8, 0.8, 1.5)),
        ("(c) 512^2 2D blobs, 0.5 mm", flat_a, flat_b, (0.5, 0.5)),
        ("(d) 128^3 near-perfect, 1 mm", near, a, (1.0, 1.0, 1.0)),
        ("(e) 128^3 distant false positive", far, a, (1.0, 1.0, 1.0)),
    ]


def brute_force(pred: np.ndarray, ref: np.ndarray, spacing: tuple[float, ...]) -> float:
    """HD95 from scipy: erosion boundaries and exact EDTs, float64, linear percentile."""
    cross = ndimage.generate_binary_structure(pred.ndim, 1)
    bp = pred & ~ndimage.binary_erosion(pred, cross, border_value=0)
    br = ref & ~ndimage.binary_erosion(ref, cross, border_value=0)
    d_pr = ndimage.distance_transform_edt(~br, sampling=spacing)[bp]
    d_rp = ndimage.distance_transform_edt(~bp, sampling=spacing)[br]
    return float(max(np.percentile(d_pr, 95), np.percentile(d_rp, 95)))


def best_time(fn: Callable[[], float], repeat: int) -> tuple[float, float, float]:
    """(best wall-clock s, best CPU s, value) over ``repeat`` calls after a warm-up call."""
    value = fn()  # warm-up (numba compilation, MONAI imports)
    wall, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        cpu.append(time.process_time() - start_cpu)
        wall.append(time.perf_counter() - start)
    return min(wall), min(cpu), value


def peers() -> dict[str, Callable[[np.ndarray, np.ndarray, tuple[float, ...]], float]]:
    found: dict[str, Callable[[np.ndarray, np.ndarray, tuple[float, ...]], float]] = {}
    try:
        import torch
        from monai.metrics import compute_hausdorff_distance

        torch.set_num_threads(1)

        def monai_hd95(p: np.ndarray, r: np.ndarray, s: tuple[float, ...]) -> float:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # MONAI-internal deprecation
                out = compute_hausdorff_distance(p[None, None], r[None, None], percentile=95,
                                                 include_background=True, spacing=list(s))
            return float(out[0, 0])

        found["MONAI"] = monai_hd95
    except ImportError:
        print("MONAI not installed: no MONAI comparison")
    try:
        from MetricsReloaded.metrics.pairwise_measures import BinaryPairwiseMeasures

        def mr_hd95(p: np.ndarray, r: np.ndarray, s: tuple[float, ...]) -> float:
            m = BinaryPairwiseMeasures(p.astype(int), r.astype(int), pixdim=list(s),
                                       dict_args={"hd_perc": 95})
            return float(m.measured_hausdorff_distance_perc())

        found["MetricsReloaded"] = mr_hd95
    except ImportError:
        print("MetricsReloaded not installed (not on PyPI): no MetricsReloaded comparison")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="3 repeats")
    args = parser.parse_args()
    repeat = 3 if args.quick else args.repeat
    others = peers()
    print(f"numba kernels: {HAVE_NUMBA}; best of {repeat}, single thread\n")
    header = f"{'case':38} {'HD95 mm':>8} {'|err|':>7} {'ours ms wall/cpu':>17}"
    for name in others:
        header += f" {name + ' ms wall/cpu':>24} {'ratio wall/cpu':>15} {'|diff|':>8}"
    print(header)
    for label, pred, ref, spacing in cases():
        truth = brute_force(pred, ref, spacing)
        def run_ours(pred: np.ndarray = pred, ref: np.ndarray = ref,
                     spacing: tuple[float, ...] = spacing) -> float:
            return hausdorff(pred, ref, spacing=spacing, percentile=95)

        wall, cpu, ours = best_time(run_ours, repeat)
        line = (f"{label:38} {ours:8.4f} {abs(ours - truth):7.0e} "
                f"{wall * 1e3:8.2f}/{cpu * 1e3:<8.2f}")
        for fn in others.values():
            p_wall, p_cpu, theirs = best_time(partial(fn, pred, ref, spacing), repeat)
            line += (f" {p_wall * 1e3:15.1f}/{p_cpu * 1e3:<8.1f} {p_wall / wall:7.1f}x/"
                     f"{p_cpu / cpu:5.1f}x {abs(theirs - ours):8.0e}")
        print(line, flush=True)


if __name__ == "__main__":
    main()
