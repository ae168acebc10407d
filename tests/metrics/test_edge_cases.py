"""Edge cases: single voxels, image borders, full and thin masks, far-apart objects, anisotropy,
and the empty policy of every metric."""
from __future__ import annotations

import math

import numpy as np
import pytest

from harness.metrics import (abs_volume_error, available, dice, evaluate, hausdorff, iou,
                             lesion_counts, nsd, precision, recall, rel_volume_error,
                             surface_distances)
from tests.metrics import oracle

ALL = sorted(available())
BUILTIN = ["dice", "iou", "precision", "recall", "hd", "hd95", "assd", "masd", "nsd",
           "abs_volume_error", "rel_volume_error", "fp_lesions", "fn_lesions"]


def _check_oracle(a: np.ndarray, b: np.ndarray, spacing: tuple[float, ...]) -> None:
    want = oracle.surface_metrics(a, b, spacing)
    got = surface_distances(a, b, spacing=spacing)
    assert got.hausdorff() == pytest.approx(want["hd"], abs=1e-9)
    assert got.hausdorff(95) == pytest.approx(want["hd95"], abs=1e-9)
    assert got.assd() == pytest.approx(want["assd"], abs=1e-9)
    assert got.masd() == pytest.approx(want["masd"], abs=1e-9)
    assert got.nsd(1.0) == pytest.approx(want["nsd"], abs=1e-9)


def test_single_voxels(backend: str) -> None:
    a = np.zeros((9, 9, 9), bool)
    b = a.copy()
    a[2, 3, 4] = True
    b[4, 3, 5] = True
    spacing = (0.5, 1.0, 3.0)
    d = math.hypot(2 * 0.5, 1 * 3.0)
    for fn in ("hausdorff", "assd", "masd"):
        got = getattr(surface_distances(a, b, spacing=spacing), fn)()
        assert got == pytest.approx(d, abs=1e-12)
    assert hausdorff(a, a, spacing=spacing) == 0.0
    assert dice(a, b) == 0.0 and dice(a, a) == 1.0
    assert nsd(a, b, spacing=spacing, tolerance=d) == 1.0
    assert nsd(a, b, spacing=spacing, tolerance=0.99 * d) == 0.0


@pytest.mark.parametrize("ndim", [2, 3])
def test_masks_touching_the_border(ndim: int, backend: str) -> None:
    shape = (12, 10, 7)[:ndim]
    a = np.zeros(shape, bool)
    b = np.zeros(shape, bool)
    a[:5] = True  # a slab on the low face
    b[tuple(slice(2, None) for _ in shape)] = True  # a block in the far corner
    _check_oracle(a, b, (0.8, 1.7, 1.1)[:ndim])


@pytest.mark.parametrize("ndim", [2, 3])
def test_full_masks(ndim: int, backend: str) -> None:
    shape = (6, 7, 5)[:ndim]
    full = np.ones(shape, bool)
    assert hausdorff(full, full) == 0.0
    half = full.copy()
    half[3:] = False
    _check_oracle(full, half, (1.0, 2.0, 0.5)[:ndim])


def test_thin_structures(backend: str) -> None:
    line = np.zeros((30, 30), bool)
    line[5:25, 10] = True
    other = np.zeros_like(line)
    other[5:25, 13] = True
    assert hausdorff(line, other, spacing=(1.0, 0.7)) == pytest.approx(3 * 0.7)
    plane = np.zeros((8, 9, 10), bool)
    plane[:, 4, :] = True
    wavy = np.zeros_like(plane)
    wavy[:, 5, :5] = True
    wavy[:, 6, 5:] = True
    _check_oracle(plane, wavy, (1.0, 2.0, 1.0))


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_far_apart_objects(axis: int, backend: str) -> None:
    """Points beyond the row walk (3D) or 255 voxels along a row are resolved exactly."""
    shape = [6, 6, 6]
    shape[axis] = 400
    a = np.zeros(shape, bool)
    b = np.zeros(shape, bool)
    lo = [slice(1, 4)] * 3
    hi = [slice(1, 4)] * 3
    lo[axis], hi[axis] = slice(2, 6), slice(380, 390)
    a[tuple(lo)] = True
    b[tuple(hi)] = True
    b[tuple(slice(1, 3) for _ in range(3))] = True  # one near piece too
    _check_oracle(a, b, (0.9, 1.1, 1.3))


def test_few_far_points(backend: str) -> None:
    """A stray voxel 30-60 voxels from a large surface takes the wide walk (or the KD-tree)."""
    a = np.zeros((90, 34, 34), bool)
    a[2:30, 3:31, 3:31] = True
    b = a.copy()
    b[60, 17, 17] = True
    b[75, 30, 2] = True
    _check_oracle(a, b, (1.0, 0.9, 1.2))


def test_long_2d_rows(backend: str) -> None:
    a = np.zeros((3, 700), bool)
    b = np.zeros((3, 700), bool)
    a[1, 3] = True
    b[:, 650:] = True
    assert hausdorff(a, b, spacing=(1.0, 0.5)) == pytest.approx(
        oracle.surface_metrics(a, b, (1.0, 0.5))["hd"])


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_anisotropic_translation(axis: int, backend: str) -> None:
    spacing = (0.6, 1.3, 4.0)
    a = np.zeros((20, 20, 20), bool)
    a[6:12, 5:13, 7:11] = True
    b = np.roll(a, 3, axis=axis)
    assert hausdorff(a, b, spacing=spacing) == pytest.approx(3 * spacing[axis], abs=1e-12)


def _masks(case: str) -> tuple[np.ndarray, np.ndarray]:
    some = np.zeros((10, 12, 8), int)
    some[2:5, 3:7, 1:4] = 1
    some[7, 9, 6] = 1  # a second lesion
    none = np.zeros_like(some)
    return {"both": (none, none), "reference": (some, none), "prediction": (none, some)}[case]


EXPECTED = {  # metric -> (both empty, reference empty, prediction empty); "diag"/"vol" below
    "dice": (1, 0, 0), "iou": (1, 0, 0), "precision": (1, 0, 0), "recall": (1, 0, 0),
    "hd": (0, "diag", "diag"), "hd95": (0, "diag", "diag"), "assd": (0, "diag", "diag"),
    "masd": (0, "diag", "diag"), "nsd": (1, 0, 0), "abs_volume_error": (0, "vol", "vol"),
    "rel_volume_error": (0, 1, 1), "fp_lesions": (0, 2, 0), "fn_lesions": (0, 0, 2),
}


@pytest.mark.parametrize("method", ["voxel", "surfel"])
@pytest.mark.parametrize("column,case", [(1, "reference"), (2, "prediction"), (0, "both")])
def test_empty_policy(case: str, column: int, method: str) -> None:
    pred, ref = _masks(case)
    spacing = (0.5, 1.0, 2.0)
    (row,) = evaluate(pred, ref, spacing=spacing, labels=[1], metrics=BUILTIN,
                      options={"nsd_method": method})
    assert row["empty"] == case
    diag = math.sqrt((10 * 0.5) ** 2 + 12.0 ** 2 + (8 * 2.0) ** 2)
    vol = 37 * 0.5 * 1.0 * 2.0
    for name, values in EXPECTED.items():
        want = {"diag": diag, "vol": vol}.get(values[column], values[column])  # type: ignore
        assert row[name] == pytest.approx(want), name
        assert not math.isnan(row[name])


def test_empty_policy_of_single_metric_functions() -> None:
    none = np.zeros((5, 6), bool)
    some = none.copy()
    some[1:3, 1:4] = True
    diag = math.hypot(5 * 2.0, 6 * 1.0)
    for fn in (dice, iou, precision, recall):
        assert fn(none, none) == 1.0 and fn(some, none) == 0.0 and fn(none, some) == 0.0
    assert hausdorff(none, none, spacing=(2.0, 1.0)) == 0.0
    assert hausdorff(some, none, spacing=(2.0, 1.0), percentile=95) == pytest.approx(diag)
    assert nsd(none, none) == 1.0 and nsd(none, some) == 0.0
    assert nsd(none, some, method="surfel") == 0.0
    assert abs_volume_error(none, some, spacing=(2.0, 1.0)) == 12.0
    assert rel_volume_error(none, none) == 0.0 and rel_volume_error(some, none) == 1.0
    assert lesion_counts(some, none).fp == 1 and lesion_counts(none, some).fn == 1


def test_lesion_connectivity() -> None:
    ref = np.zeros((6, 6), bool)
    pred = np.zeros((6, 6), bool)
    pred[1, 1] = pred[2, 2] = True  # diagonal neighbours: one lesion at full connectivity
    (full,) = evaluate(pred.astype(int), ref.astype(int), spacing=1.0, labels=[1],
                       metrics=["fp_lesions"])
    (faces,) = evaluate(pred.astype(int), ref.astype(int), spacing=1.0, labels=[1],
                        metrics=["fp_lesions"], options={"connectivity": 1})
    assert full["fp_lesions"] == 1.0 and faces["fp_lesions"] == 2.0


def test_background_label_and_absent_label() -> None:
    pred = np.zeros((4, 4), np.uint8)
    pred[1:3, 1:3] = 2
    rows = evaluate(pred, pred, spacing=(1.0, 1.0), labels=[0, 2, 5], metrics=["dice", "hd"])
    assert [r["label"] for r in rows] == [0, 2, 5]
    assert [r["empty"] for r in rows] == ["none", "none", "both"]
    assert all(r["dice"] == 1.0 and r["hd"] == 0.0 for r in rows)
    assert set(ALL) >= set(BUILTIN)
