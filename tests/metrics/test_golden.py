"""Golden tests: our metrics against a brute-force scipy oracle, MONAI and DeepMind's
surface-distance, on random and structured masks (2D/3D, isotropic and anisotropic)."""
from __future__ import annotations

import numpy as np
import pytest

from harness.metrics import evaluate, nsd, surface_distances, surfel_distances
from tests.metrics import oracle

TOL = 1e-9  # against float64 references (brute force, DeepMind)


def _pair(seed: int) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    rng = np.random.default_rng(seed)
    ndim = 2 + seed % 2
    shape = tuple(int(n) for n in rng.integers(5, 40 if ndim == 2 else 16, ndim))
    spacing = tuple(float(s) for s in rng.uniform(0.3, 3.0, ndim)) if seed % 3 else (1.0,) * ndim
    make = oracle.speckle if seed % 4 == 0 else oracle.blobs
    a, b = make(rng, shape), make(rng, shape)
    a.flat[rng.integers(a.size)] = True  # never empty
    b.flat[rng.integers(b.size)] = True
    return a, b, spacing


@pytest.mark.parametrize("seed", range(16))
def test_surface_metrics_match_brute_force(seed: int, backend: str) -> None:
    a, b, spacing = _pair(seed)
    want = oracle.surface_metrics(a, b, spacing, q=95.0, tau=1.5)
    got = surface_distances(a, b, spacing=spacing)
    da, db = oracle.directed(a, b, spacing)
    np.testing.assert_allclose(np.sort(got.pred_to_ref), np.sort(da), rtol=0, atol=TOL)
    np.testing.assert_allclose(np.sort(got.ref_to_pred), np.sort(db), rtol=0, atol=TOL)
    assert got.hausdorff() == pytest.approx(want["hd"], abs=TOL)
    assert got.hausdorff(95.0) == pytest.approx(want["hd95"], abs=TOL)
    assert got.assd() == pytest.approx(want["assd"], abs=TOL)
    assert got.masd() == pytest.approx(want["masd"], abs=TOL)
    assert got.nsd(1.5) == pytest.approx(want["nsd"], abs=TOL)


@pytest.mark.parametrize("seed", range(4))
def test_evaluate_label_maps_match_per_class_brute_force(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    shape = (24, 20, 12) if seed % 2 else (48, 40)
    spacing = tuple(float(s) for s in rng.uniform(0.5, 2.0, len(shape)))
    pred = rng.integers(0, 4, shape)
    ref = np.where(rng.random(shape) < 0.7, pred, rng.integers(0, 4, shape))
    names = ["dice", "iou", "precision", "recall", "hd", "hd95", "assd", "masd", "nsd"]
    rows = evaluate(pred, ref, spacing=spacing, labels=[1, 2, 3], metrics=names,
                    options={"percentile": 90, "nsd_tolerance": 2.0})
    for row in rows:
        p, r = pred == row["label"], ref == row["label"]
        want = oracle.surface_metrics(p, r, spacing, q=90.0, tau=2.0)
        for key in ("hd", "hd95", "assd", "masd", "nsd"):
            assert row[key] == pytest.approx(want[key], abs=TOL), key
        tp = np.count_nonzero(p & r)
        assert row["dice"] == pytest.approx(2 * tp / (p.sum() + r.sum()), abs=TOL)
        assert row["iou"] == pytest.approx(tp / np.count_nonzero(p | r), abs=TOL)
        assert row["precision"] == pytest.approx(tp / p.sum(), abs=TOL)
        assert row["recall"] == pytest.approx(tp / r.sum(), abs=TOL)
        assert row["empty"] == "none"


# --- MONAI (float32 distances: agreement to ~1e-6 relative) ---------------------------------

# MONAI >= 1.5 warns about its own deprecated ``always_return_as_numpy`` argument inside
# get_mask_edges; the warning is MONAI-internal and says nothing about our inputs.
monai_warning = pytest.mark.filterwarnings(
    "ignore:.*always_return_as_numpy.*:FutureWarning")


@monai_warning
@pytest.mark.parametrize("seed", [1, 2, 3, 5, 6, 7])
def test_against_monai(seed: int) -> None:
    torch = pytest.importorskip("torch")
    mm = pytest.importorskip("monai.metrics")
    a, b, spacing = _pair(seed)
    pa, pb = (torch.as_tensor(m[None, None], dtype=torch.float32) for m in (a, b))
    kw = {"include_background": True, "spacing": list(spacing)}
    got = surface_distances(a, b, spacing=spacing)

    def close(ours: float, theirs: object) -> None:
        assert ours == pytest.approx(float(theirs), rel=1e-6, abs=1e-6)

    close(got.hausdorff(), mm.compute_hausdorff_distance(pa, pb, **kw))
    close(got.hausdorff(95.0), mm.compute_hausdorff_distance(pa, pb, percentile=95, **kw))
    close(got.assd(), mm.compute_average_surface_distance(pa, pb, symmetric=True, **kw))
    close(got.nsd(1.5), mm.compute_surface_dice(pa, pb, class_thresholds=[1.5], **kw))
    close(nsd(a, b, spacing=spacing, tolerance=1.5, method="surfel"),
          mm.compute_surface_dice(pa, pb, class_thresholds=[1.5], use_subvoxels=True, **kw))


# --- DeepMind surface-distance (area-weighted surfel NSD) -----------------------------------

# The PyPI package still imports scipy.ndimage.filters / .morphology (deprecated namespaces).
deepmind_warning = pytest.mark.filterwarnings(
    "ignore:Please import `.*` from the `scipy.ndimage` namespace:DeprecationWarning")


@deepmind_warning
@pytest.mark.parametrize("seed", range(8))
def test_surfel_nsd_against_deepmind(seed: int, backend: str) -> None:
    sd = pytest.importorskip("surface_distance")
    a, b, spacing = _pair(seed)
    theirs = sd.compute_surface_distances(b, a, spacing)  # (gt, pred)
    ours = surfel_distances(a, b, spacing=spacing)
    np.testing.assert_allclose(np.sort(ours.pred_to_ref), theirs["distances_pred_to_gt"], atol=TOL)
    np.testing.assert_allclose(np.sort(ours.ref_to_pred), theirs["distances_gt_to_pred"], atol=TOL)
    for tau in (0.5, 1.0, 2.5):
        assert ours.nsd(tau) == pytest.approx(sd.compute_surface_dice_at_tolerance(theirs, tau),
                                              abs=1e-6)


# --- MetricsReloaded (not on PyPI: runs only where it is importable) ------------------------

@pytest.mark.parametrize("seed", range(8))
def test_against_metrics_reloaded(seed: int) -> None:
    mr = pytest.importorskip("MetricsReloaded.metrics.pairwise_measures")
    a, b, spacing = _pair(seed)
    theirs = mr.BinaryPairwiseMeasures(a.astype(int), b.astype(int), pixdim=list(spacing),
                                       dict_args={"hd_perc": 95, "nsd": 1.5})
    ours = surface_distances(a, b, spacing=spacing)
    pairs = [(ours.hausdorff(), theirs.measured_hausdorff_distance()),
             (ours.hausdorff(95), theirs.measured_hausdorff_distance_perc()),
             (ours.assd(), theirs.measured_average_distance()),
             (ours.masd(), theirs.measured_masd()),
             (ours.nsd(1.5), theirs.normalised_surface_distance())]
    for mine, reference in pairs:
        assert mine == pytest.approx(float(reference), abs=TOL)
