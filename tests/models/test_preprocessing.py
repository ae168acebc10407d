"""Normalisation definitions, padding, resampling and sliding-window blending."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.models import load_model
from harness.models import preprocessing as pp
from tests.models.conftest import card, rng_image


def test_normalisation_definitions():
    x = np.array([[[0.0, 2.0], [4.0, 6.0]], [[1.0, 1.0], [1.0, 5.0]]], dtype=np.float32)  # (C=2, 2, 2)
    z = pp.normalize(x, "zscore")
    assert z.dtype == np.float32
    np.testing.assert_allclose(z[0], (x[0] - 3.0) / np.sqrt(5.0), rtol=1e-6)  # population std, per channel
    np.testing.assert_allclose(z[1], (x[1] - 2.0) / np.sqrt(3.0), rtol=1e-6)
    np.testing.assert_allclose(pp.normalize(x, "minmax")[0], x[0] / 6.0)
    np.testing.assert_allclose(pp.normalize(x, "minmax")[1], (x[1] - 1.0) / 4.0)
    np.testing.assert_allclose(pp.normalize(x, "window", (1.0, 5.0))[0], [[0.0, 0.25], [0.75, 1.0]])
    np.testing.assert_array_equal(pp.normalize(x, "none"), x)
    nz = pp.normalize(x, "zscore_nonzero")
    values = np.array([2.0, 4.0, 6.0])
    np.testing.assert_allclose(nz[0].ravel()[1:], (values - values.mean()) / values.std(), rtol=1e-6)
    assert nz[0, 0, 0] == 0.0  # zero voxels stay zero, and do not enter the statistics
    np.testing.assert_allclose(nz[1], pp.normalize(x[1:], "zscore")[0], rtol=1e-6)  # no zeros: = zscore


def test_constant_images_do_not_divide_by_zero():
    flat = np.full((1, 4, 4), 3.0, np.float32)
    for method in ("zscore", "zscore_nonzero", "minmax"):
        out = pp.normalize(flat, method)
        assert np.isfinite(out).all() and np.all(out == 0)
        assert torch.all(pp.normalize_torch(torch.from_numpy(flat[None]), method) == 0)
    assert np.all(pp.normalize(np.zeros((1, 3, 3), np.float32), "zscore_nonzero") == 0)


@pytest.mark.parametrize("method, image", [
    ("zscore", np.full((1, 32, 32), 1000.3, np.float32)),
    ("zscore_nonzero", np.pad(np.full((1, 16, 16), 0.1, np.float32), ((0, 0), (8, 8), (8, 8)))),
])
def test_constant_values_whose_float32_mean_is_inexact_normalise_to_zero(method, image):
    """In float32 the mean of 1000.3 (or of 0.1 over the non-zero voxels) is inexact; the rounding
    spread exceeded the 1e-8 cut-off and torch gave ±1 where numpy gave 0 (torch and TorchScript
    models saw a flat image as uniformly bright or dark)."""
    assert np.all(pp.normalize(image, method) == 0)
    x = torch.from_numpy(image[None]).requires_grad_(True)
    out = pp.normalize_torch(x, method)
    assert out.dtype == torch.float32 and torch.all(out == 0)
    out.sum().backward()
    assert torch.isfinite(x.grad).all()  # differentiable even where the std is 0


@pytest.mark.parametrize("method", ["none", "zscore", "zscore_nonzero", "minmax", "window"])
def test_torch_normalisation_matches_numpy(method):
    x = rng_image((2, 9, 7, 5))
    x[0, :3] = 0.0
    window = (80.0, 120.0)
    expected = pp.normalize(x, method, window)
    t = torch.from_numpy(np.stack([x, x * 2 + 1]))
    got = pp.normalize_torch(t, method, window).numpy()
    np.testing.assert_allclose(got[0], expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got[1], pp.normalize(x * 2 + 1, method, window), rtol=1e-4, atol=1e-5)


def test_padding_and_windows():
    assert pp.padded_shape((37, 21), (16, 8)) == (48, 24)
    assert pp.padded_shape((37, 21), (16, 8), (64, 16)) == (64, 24)
    x = rng_image((1, 5, 6))
    padded, crop = pp.pad(x, (8, 6))
    assert padded.shape == (1, 8, 6) and crop == (slice(1, 6), slice(0, 6))
    np.testing.assert_array_equal(padded[(slice(None), *crop)], x)
    assert pp.window_starts(128, 64, 0.5) == [0, 32, 64]
    assert pp.window_starts(100, 64, 0.5) == [0, 18, 36]  # steps never exceed patch * (1 - overlap)
    assert pp.window_starts(64, 64, 0.5) == [0]
    w = pp.gaussian_weights((16, 16))
    assert w.max() == 1.0 and w.min() > 0 and w[8, 8] > w[0, 0]


def test_resampling_round_trip():
    x = np.zeros((1, 20, 30), np.float32)
    x[0, 5:15, 10:20] = 1
    shape = pp.resampled_shape((20, 30), (2.0, 1.0), (1.0, 1.0))
    assert shape == (40, 30)
    up = pp.resample(x, shape, order=0)
    assert up.shape == (1, 40, 30)
    np.testing.assert_array_equal(pp.resample(up, (20, 30), order=0), x)


def test_sliding_window_is_exact_for_a_pointwise_model():
    image = rng_image((2, 50, 70))
    forward = lambda b: np.concatenate([b, -b.sum(1, keepdims=True)], axis=1)  # noqa: E731
    whole = forward(image[None])[0]
    blended = pp.sliding_window(image, (32, 32), forward, overlap=0.5, batch_size=3)
    np.testing.assert_allclose(blended, whole, rtol=1e-5, atol=1e-4)


def _conv_card(tmp_path, kernel: int, patch: str) -> str:
    weights = tmp_path / f"conv{kernel}.pt"
    with torch.random.fork_rng():
        torch.manual_seed(0)
        conv = torch.nn.Conv3d(1, 3, kernel, padding=kernel // 2)
    torch.save(conv.state_dict(), weights)
    return f'''[model]
format = "torch"
entry = "torch.nn:Conv3d"
weights = "{weights.name}"
[model.kwargs]
in_channels = 1
out_channels = 3
kernel_size = {kernel}
padding = {kernel // 2}
[input]
normalize = "zscore"
{patch}
[output]
labels = {{1 = "a", 2 = "b"}}
'''


def test_sliding_window_equals_whole_volume_for_a_fully_convolutional_model(tmp_path, unet3d, case3d):
    """1x1x1 conv: identical; 3x3x3 conv and a U-Net: equal up to patch-border effects."""
    for kernel in (1, 3):
        whole = load_model(card(tmp_path, _conv_card(tmp_path, kernel, ""), "w.toml"))
        tiled = load_model(card(tmp_path, _conv_card(tmp_path, kernel, "patch_size = [16, 32, 32]\noverlap = 0.5"), "t.toml"))
        a = whole.predict(case3d.image, case3d.spacing)
        b = tiled.predict(case3d.image, case3d.spacing)
        if kernel == 1:
            np.testing.assert_allclose(b.probabilities, a.probabilities, atol=1e-5)
            np.testing.assert_array_equal(b.labels, a.labels)
        else:
            assert np.abs(b.probabilities - a.probabilities).mean() < 2e-3
            assert (b.labels == a.labels).mean() > 0.99
    text = unet3d.torch_card.read_text().replace("pad_multiple = 2", "pad_multiple = 2\npatch_size = [16, 32, 32]")
    tiled_unet = load_model(card(unet3d.folder, text, "tiled.toml"))
    a = load_model(unet3d.torch_card).predict(case3d.image, case3d.spacing)
    b = tiled_unet.predict(case3d.image, case3d.spacing)
    assert np.abs(b.probabilities - a.probabilities).mean() < 0.02
    assert (b.labels == a.labels).mean() > 0.97


def test_images_smaller_than_the_patch_are_padded_up(tmp_path, case2d):
    text = '''[model]
format = "callable"
entry = "tests.models.helpers:identity_scores"
[input]
patch_size = [256, 256]
[output]
kind = "logits"
labels = {1 = "x"}
'''
    model = load_model(card(tmp_path, text))
    pred = model.predict(case2d.image, case2d.spacing)
    assert pred.labels.shape == case2d.label.shape


def test_resampling_to_model_spacing_and_back(tmp_path, case2d):
    """A model at 0.4 mm sees a 2x finer grid; the output comes back on the image grid."""
    text = '''[model]
format = "callable"
entry = "tests.models.helpers:threshold_spacing"
[input]
spacing = [0.4, 0.4]
[output]
labels = {1 = "a", 2 = "b"}
'''
    model = load_model(card(tmp_path, text))
    pred = model.predict(case2d.image, case2d.spacing)
    assert pred.labels.shape == case2d.label.shape and pred.probabilities is None
    expected = (case2d.image[0] > 0.5).astype(int)
    assert set(np.unique(pred.labels)) <= {0, 1}  # spacing passed to the model was (0.4, 0.4)
    assert (pred.labels == expected).mean() > 0.97
