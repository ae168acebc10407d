"""Hypothesis properties: symmetry, bounds, identity, translation and erosion monotonicity."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage

from harness.metrics import (abs_volume_error, dice, evaluate, iou, lesion_counts, nsd,
                             precision, recall, rel_volume_error, surface_distances)

FAST = settings(max_examples=40, deadline=None)
shapes = st.one_of(st.tuples(st.integers(1, 12), st.integers(1, 12)),
                   st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(1, 6)))
spacings = st.lists(st.floats(0.25, 4.0, allow_nan=False), min_size=3, max_size=3)


@st.composite
def mask_pairs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, tuple[float, ...]]:
    shape = draw(shapes)
    a = draw(arrays(bool, shape))
    b = draw(arrays(bool, shape))
    return a, b, tuple(draw(spacings)[: len(shape)])


@FAST
@given(mask_pairs())
def test_symmetry_and_bounds(pair: tuple[np.ndarray, np.ndarray, tuple[float, ...]]) -> None:
    a, b, spacing = pair
    ab = surface_distances(a, b, spacing=spacing)
    ba = surface_distances(b, a, spacing=spacing)
    for q in (100.0, 95.0, 50.0):
        assert ab.hausdorff(q) == ba.hausdorff(q)
    assert ab.assd() == pytest.approx(ba.assd(), rel=1e-12)
    assert ab.masd() == pytest.approx(ba.masd(), rel=1e-12)
    assert ab.nsd(1.0) == pytest.approx(ba.nsd(1.0), rel=1e-12)
    assert dice(a, b) == dice(b, a) and iou(a, b) == iou(b, a)
    assert precision(a, b) == recall(b, a)
    for value in (dice(a, b), iou(a, b), precision(a, b), recall(a, b), ab.nsd(1.0)):
        assert 0.0 <= value <= 1.0
    for value in (ab.hausdorff(), ab.hausdorff(95), ab.assd(), ab.masd()):
        assert 0.0 <= value <= ab.diagonal
    assert ab.hausdorff(95) <= ab.hausdorff() and ab.assd() <= ab.hausdorff()
    assert iou(a, b) <= dice(a, b)
    assert abs_volume_error(a, b, spacing=spacing) >= 0 and rel_volume_error(a, b) >= 0


@FAST
@given(mask_pairs())
def test_identity_gives_perfect_scores(
        pair: tuple[np.ndarray, np.ndarray, tuple[float, ...]]) -> None:
    a, _, spacing = pair
    names = ["dice", "iou", "precision", "recall", "hd", "hd95", "assd", "masd", "nsd",
             "abs_volume_error", "rel_volume_error", "fp_lesions", "fn_lesions"]
    (row,) = evaluate(a.astype(np.int16), a.astype(np.int16), spacing=spacing, labels=[1],
                      metrics=names)
    assert row == {"label": 1, "dice": 1.0, "iou": 1.0, "precision": 1.0, "recall": 1.0,
                   "hd": 0.0, "hd95": 0.0, "assd": 0.0, "masd": 0.0, "nsd": 1.0,
                   "abs_volume_error": 0.0, "rel_volume_error": 0.0, "fp_lesions": 0.0,
                   "fn_lesions": 0.0, "empty": "both" if not a.any() else "none"}
    if a.ndim == 2:  # (3D surfels need MONAI's area table: covered by the golden tests)
        assert nsd(a, a, spacing=spacing, method="surfel") == 1.0


@FAST
@given(arrays(bool, st.sampled_from([(6, 7), (4, 5, 3)])),
       st.lists(st.integers(-4, 4), min_size=3, max_size=3), spacings)
def test_translation_by_k_voxels(core: np.ndarray, shift: list[int], spacing: list[float]) -> None:
    if not core.any():
        return
    ndim = core.ndim
    a = np.pad(core, 5)
    b = np.roll(a, shift[:ndim], axis=tuple(range(ndim)))
    sp = tuple(spacing[:ndim])
    want = float(np.sqrt(sum((k * s) ** 2 for k, s in zip(shift, sp, strict=False))))
    assert surface_distances(a, b, spacing=sp).hausdorff() == pytest.approx(want, rel=1e-12)
    assert lesion_counts(a, b).n_pred == lesion_counts(b, b).n_ref  # components move intact


@FAST
@given(arrays(bool, st.sampled_from([(10, 10), (7, 6, 6)])), spacings)
def test_erosion_is_monotone(core: np.ndarray, spacing: list[float]) -> None:
    """Eroding the prediction never raises overlap nor brings the reference boundary closer."""
    ref = ndimage.binary_closing(np.pad(core, 2), iterations=2)
    if not ref.any():
        return
    sp = tuple(spacing[: ref.ndim])
    cross = ndimage.generate_binary_structure(ref.ndim, 1)
    previous: tuple[float, ...] | None = None
    pred = ref
    for _ in range(4):
        sd = surface_distances(pred, ref, spacing=sp)
        if sd.empty == "none":
            directed = (float(sd.ref_to_pred.max()), float(np.percentile(sd.ref_to_pred, 95)))
        else:
            directed = (sd.diagonal, sd.diagonal)
        scores = (dice(pred, ref), iou(pred, ref), recall(pred, ref))
        if previous is not None:
            assert all(s <= p + 1e-12 for s, p in zip(scores, previous[:3], strict=True))
            assert all(d >= p - 1e-12 for d, p in zip(directed, previous[3:], strict=True))
        previous = scores + directed
        pred = ndimage.binary_erosion(pred, structure=cross, border_value=0)


@FAST
@given(arrays(bool, st.tuples(st.integers(2, 12), st.integers(2, 12))),
       arrays(bool, st.tuples(st.integers(2, 12), st.integers(2, 12))),
       st.integers(0, 2), st.floats(0.5, 6.0), st.sampled_from(["voxel", "surfel"]))
def test_a_single_slice_scores_as_its_plane(a: np.ndarray, b: np.ndarray, axis: int, thickness: float,
                                            method: str) -> None:
    """A 2D image stored as 3D ((H, W, 1) NIfTI, one slice of a scan) scores as the 2D image: its
    boundary is the in-plane contour, not every voxel of a one-voxel-thick slab (which gave other
    HD95, ASSD and NSD, and an ASSD of 0.1 instead of 0.5 for a 10 x 10 square moved by one pixel)."""
    b = np.resize(b, a.shape)
    spacing = (0.7, 1.3)
    metrics = ["dice", "hd", "hd95", "assd", "masd", "nsd", "fp_lesions", "fn_lesions", "abs_volume_error"]
    flat = evaluate(a.astype(np.uint8), b.astype(np.uint8), spacing=spacing, labels=[1], metrics=metrics,
                    options={"nsd_method": method})[0]
    thick = list(spacing)
    thick.insert(axis, thickness)
    sliced = evaluate(np.expand_dims(a, axis).astype(np.uint8), np.expand_dims(b, axis).astype(np.uint8),
                      spacing=tuple(thick), labels=[1], metrics=metrics, options={"nsd_method": method})[0]
    for name in metrics[:-1]:
        if flat["empty"] == "none" or name in ("dice", "nsd", "fp_lesions", "fn_lesions"):
            assert sliced[name] == pytest.approx(flat[name], abs=1e-9), name
        else:  # one empty: the diagonal includes the slice's thickness
            assert sliced[name] >= flat[name]
    assert sliced["abs_volume_error"] == pytest.approx(flat["abs_volume_error"] * thickness)


def test_a_square_moved_by_one_pixel_has_the_same_assd_as_2d_and_as_one_slice() -> None:
    square = np.zeros((14, 14), np.uint8)
    square[2:12, 2:12] = 1
    moved = np.roll(square, 1, axis=0)
    assert evaluate(square, moved, spacing=1.0, labels=[1], metrics=["assd"])[0]["assd"] == pytest.approx(0.5)
    one_slice = evaluate(square[..., None], moved[..., None], spacing=1.0, labels=[1], metrics=["assd"])[0]
    assert one_slice["assd"] == pytest.approx(0.5)  # the slab reading gave 0.1
