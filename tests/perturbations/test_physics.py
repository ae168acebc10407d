"""Physical behaviour a family must keep whatever the image's intensity scale or axis order."""
from __future__ import annotations

import numpy as np
import pytest

from harness import perturbations
from harness.case import Case
from harness.errors import ConfigError
from tests.perturbations import cases


def _ultrasound(brightest: float) -> Case:
    """An 8-bit B-mode-like image whose brightest value is ``brightest``."""
    rng = np.random.default_rng(3)
    image = np.round(rng.uniform(0.1, 1.0, (48, 40)) * brightest).astype(np.float32)
    label = np.zeros((48, 40), np.int64)
    label[10:30, 12:28] = 1
    return Case(image=image[None], label=label, spacing=(1.0, 1.0), case_id="us")


@pytest.mark.parametrize("family", ["spike", "bias_field"])
def test_mri_artefacts_follow_the_image_s_offset_and_scale(family: str) -> None:
    """f(a·x + b) = a·f(x) + b for z-scoring (a raw magnitude image, minimum 0): a z-scored image
    gets the same artefact as the raw one. Spikes were scaled by the image mean (z-scored MRI: 59 dB PSNR at severity 1
    against 36 dB raw) and the bias field multiplied the negative background instead of tissue."""
    case = cases.phantom(3)
    assert case.image.min() == 0
    family_ = perturbations.get(family)
    raw = family_(case, 4, 5)[0].image
    a, b = 1.0 / float(case.image.std()), -float(case.image.mean() / case.image.std())
    z = family_(case.with_(image=(case.image * a + b).astype(np.float32)), 4, 5)[0].image
    np.testing.assert_allclose(z, raw * a + b, atol=2e-4 * float(np.abs(raw * a + b).max()))


@pytest.mark.parametrize("family", ["gain", "depth_attenuation"])
def test_a_dim_8bit_scan_gets_the_same_grey_level_change_as_a_bright_one(family: str) -> None:
    """The display reference was the image maximum when it was ≤ 128 (255 above), so the same dB
    moved grey values twice as far after a four-level brightness difference."""
    change = {}
    for brightest in (127.0, 131.0):
        case = _ultrasound(brightest)
        options = {"direction": "down"} if family == "gain" else {}
        out, params = perturbations.get(family, **options)(case, 3, 0)
        assert params["i_ref"] == [255.0]
        moved = out.image - case.image
        change[brightest] = moved[out.image > 0]  # unclipped pixels
    assert np.median(change[127.0]) == pytest.approx(np.median(change[131.0]), rel=0.05)


def test_a_float_image_keeps_its_own_display_reference() -> None:
    from harness.perturbations._us import display_max

    case = _ultrasound(200.0)
    assert display_max(case) == [255.0]
    assert display_max(case.with_(image=case.image / 255.0)) == [pytest.approx(200.0 / 255.0)]  # not 8-bit


@pytest.mark.parametrize("case", [_ultrasound(211.0), cases.ct_phantom(2)], ids=["8-bit", "ct"])
def test_jpeg_compression_stays_within_the_clean_range(case: Case) -> None:
    """A JPEG decoder clamps to 0..255: 8-bit ultrasound got negative values and CT voxels fell
    1400 HU below the clean minimum."""
    out = perturbations.get("quantization")(case, 5, 0)[0].image
    assert out.min() >= case.image.min() - 1e-3 * np.ptp(case.image)
    assert out.max() <= case.image.max() + 1e-3 * np.ptp(case.image)


def _central_error_share(clean: np.ndarray, moved: np.ndarray, axis: int) -> float:
    """Share of the error's k-space energy within the central 20 % along ``axis``."""
    energy = np.abs(np.fft.fftshift(np.fft.fftn(moved - clean), axes=axis)) ** 2
    n = clean.shape[axis]
    central = np.take(energy, range(int(0.4 * n), int(0.6 * n) + 1), axis=axis)
    return float(central.sum() / energy.sum())


def test_motion_reads_k_space_lines_along_an_in_plane_axis() -> None:
    """A slices-last multislice volume (spacing 1, 1, 2 mm) was segmented along its slice axis:
    through-plane ghosting. The segmented axis is the one whose central k-space keeps no error
    (the reference pose holds while the centre is read)."""
    base = cases.phantom(3)  # spacing (2, 1, 1): slices first
    case = base.with_(image=np.ascontiguousarray(np.moveaxis(base.image, 1, 3)),
                      label=np.ascontiguousarray(np.moveaxis(base.label, 0, 2)), spacing=(1.0, 1.0, 2.0))
    for seed in range(4):
        out, params = perturbations.get("motion")(case, 3, seed)
        assert params["phase_axis"] in (0, 1)
        shares = [_central_error_share(case.image[0], out.image[0], axis) for axis in range(3)]
        assert shares[params["phase_axis"]] < 0.01 < shares[2], shares


def test_motion_params_recorded_before_the_phase_axis_replay_as_before() -> None:
    case = cases.phantom(3)
    family = perturbations.get("motion")
    out, params = family(case, 2, 1)
    old = {k: v for k, v in params.items() if k != "phase_axis"}
    replayed = family.apply(case, old).image
    assert np.array_equal(replayed, family.apply(case, {**old, "phase_axis": 2}).image)  # read along axis 2, as before


@pytest.mark.parametrize("family, options, said", [
    ("motion", {"degrees": 360}, "option 'degrees' must be ≤ 90"),
    ("speckle", {"grain_px": [1e9, 1e9]}, "option 'grain_px' must be ≤ 64"),
])
def test_options_that_flatten_the_ladder_or_exhaust_memory_are_refused(family: str, options: dict, said: str) -> None:
    with pytest.raises(ConfigError, match=said):
        perturbations.get(family, **options)


@pytest.mark.parametrize("family", ["ct_dose", "metal_streaks", "beam_hardening", "hu_offset"])
def test_ct_artefacts_stay_within_what_a_scanner_exports(family: str) -> None:
    """Streaks ran into air down to -1573 HU, dose noise to -1233 HU: no scanner exports values below
    -1024 HU (padding stored at -2048 beyond the field of view is not scanned and is left alone)."""
    case = cases.ct_phantom(2)
    padded = case.image.copy()
    padded[0, :2, :2] = -2048.0  # stored padding outside the field of view
    case = case.with_(image=padded)
    out = perturbations.get(family, **({"direction": "down"} if family == "hu_offset" else {}))(case, 5, 0)[0].image
    scanned = (case.image[0] >= -1024) & (case.image[0] <= 3071)
    assert out[0][scanned].min() >= -1024.0 and out[0][scanned].max() <= 3071.0
    assert np.all(out[0][:2, :2] == -2048.0)  # the padding as stored: no noise, streak or offset on it
    np.testing.assert_array_equal(out[0][~scanned], case.image[0][~scanned])
