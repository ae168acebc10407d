"""The compiled kernels against the numpy fallback, piece by piece."""
from __future__ import annotations

import numpy as np
import pytest

from harness.metrics import _fallback, surface_distances
from harness.metrics import _geometry as geo
from tests.metrics import oracle

kernels = pytest.importorskip("harness.metrics._kernels", reason="numba is not installed")


@pytest.mark.parametrize("seed", range(6))
def test_kernels_equal_fallback(seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = (1, 50, 37) if seed % 2 else (9, 14, 11)
    flat0 = shape[0] == 1
    a = geo.as3d((oracle.blobs if seed % 3 else oracle.speckle)(rng, shape))
    b = geo.as3d(oracle.blobs(rng, shape))
    box_k, counts_k = kernels.scan_pair(a, b)
    box_f, counts_f = _fallback.scan_pair(a, b)
    np.testing.assert_array_equal(counts_k, counts_f)
    np.testing.assert_array_equal(box_k, box_f)
    lo, hi = box_k[:, 0].min(axis=0), box_k[:, 1].max(axis=0)
    for fn in ("boundary", "surfel_codes"):
        got, want = getattr(kernels, fn)(a, lo, hi, flat0), getattr(_fallback, fn)(a, lo, hi, flat0)
        for x, y in zip(got, want, strict=True):
            np.testing.assert_array_equal(x, y)
    spacing = np.array([1.0, 0.7, 1.9])
    with geo.use_numba(True):
        pa, pb = geo.boundary(a, lo, hi, flat0), geo.boundary(b, lo, hi, flat0)
        fast = geo.nearest(pa.coords, pb, spacing, flat0).all()
    with geo.use_numba(False):
        slow = geo.nearest(pa.coords, pb, spacing, flat0).all()
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-12)


def test_row_map_is_the_capped_distance_along_the_row() -> None:
    rng = np.random.default_rng(0)
    mask = rng.random((3, 4, 600)) < 0.004
    mask[0, 0] = False  # an empty row
    coords = np.argwhere(mask).astype(np.int64)
    rowstart = _fallback._rowstart(coords, 3, 4)
    near = kernels.row_map(coords, rowstart, 3, 4, 600, 1, 2).reshape(5, 8, 600)
    for i in range(3):
        for j in range(4):
            ks = np.flatnonzero(mask[i, j])
            want = np.full(600, 255) if ks.size == 0 else \
                np.minimum(np.abs(np.arange(600)[:, None] - ks[None]).min(axis=1), 255)
            np.testing.assert_array_equal(near[i + 1, j + 2], want)
    assert (near[0] == 255).all() and (near[:, :2] == 255).all()


def test_far_points_are_settled_only_when_needed() -> None:
    """A distant false positive: HD95 and a small-tolerance NSD never compute its distances."""
    ref = np.zeros((40, 40, 150), bool)
    ref[5:35, 5:35, 5:35] = True
    pred = ref.copy()
    pred[18:21, 18:21, 140:143] = True  # ~100 voxels away along the row axis
    spacing = (1.0, 1.0, 1.0)
    want = oracle.surface_metrics(pred, ref, spacing, q=95.0, tau=2.0)
    with geo.use_numba(True):
        got = surface_distances(pred, ref, spacing=spacing)
        assert got._pred.pending > 0
        assert got.hausdorff(95) == pytest.approx(want["hd95"], abs=1e-12)
        assert got.nsd(2.0) == pytest.approx(want["nsd"], abs=1e-12)
        assert got._pred.pending > 0  # neither needed the far distances
        assert got.hausdorff() == pytest.approx(want["hd"], abs=1e-12)
        assert got._pred.pending == 0
        assert got.assd() == pytest.approx(want["assd"], abs=1e-12)
        tight = surface_distances(pred, ref, spacing=spacing)
        assert tight.nsd(60.0) == pytest.approx(
            oracle.surface_metrics(pred, ref, spacing, tau=60.0)["nsd"], abs=1e-12)
        assert tight._pred.pending == 0  # a tolerance beyond the walk settles them
