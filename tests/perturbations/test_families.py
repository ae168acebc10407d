"""Family-specific physics: the recorded parameters describe what happened to the image."""
from __future__ import annotations

import numpy as np
import pytest

from harness import perturbations
from harness.case import Case
from harness.errors import ConfigError
from harness.perturbations import _us
from harness.perturbations.ct_dose import fbp_noise
from harness.perturbations.scanner_shift import transfer_curve
from tests.perturbations import cases


def _run(name: str, case: Case, severity: int = 3, seed: int = 0, **options):
    return perturbations.get(name, **options)(case, severity, seed)


def test_gaussian_noise_sigma_is_relative_to_foreground_std() -> None:
    case = cases.phantom(2)
    out, p = _run("gaussian_noise", case, 4)
    fg_std = case.image[0][case.label > 0].std()
    assert p["sigma"][0] == pytest.approx(p["sigma_fraction"] * fg_std, rel=1e-6)
    assert (out.image - case.image).std() == pytest.approx(p["sigma"][0], rel=0.05)


def test_rician_noise_is_non_negative_magnitude() -> None:
    out, _ = _run("rician_noise", cases.phantom(2), 5)
    assert out.image.min() >= 0


def _zscored(case: Case) -> Case:
    x = case.image.astype(np.float32)
    return case.with_(image=(x - x.mean()) / x.std())


def test_rician_noise_on_a_zscored_image_is_magnitude_above_its_minimum() -> None:
    """Negative voxels are not folded into positive ones: the noise stays about sigma in size."""
    case = _zscored(cases.phantom(2))
    out, p = _run("rician_noise", case, 1)
    assert p["offset"] == [pytest.approx(float(case.image.min()))]
    assert out.image.min() >= case.image.min() - 1e-5
    rmse = float(np.sqrt(((out.image - case.image) ** 2).mean()))
    assert rmse < 1.5 * p["sigma"][0]  # folding |x| made it about 5 sigma here


@pytest.mark.parametrize("name", ["acoustic_shadow", "reverberation", "speckle"])
def test_ultrasound_families_keep_a_normalised_images_negative_values(name: str) -> None:
    """Outside the shadow / echo band the image is unchanged; negative values are not clipped to 0."""
    case = _zscored(cases.phantom(2))
    out, _ = _run(name, case, 1)
    negative = case.image < -0.5
    assert (out.image[negative] < 0).mean() > 0.9
    assert out.image.min() >= case.image.min() - 1e-5


def test_poisson_noise_std_at_foreground_mean() -> None:
    flat = Case(image=np.full((1, 96, 96), 50.0, np.float32), label=np.ones((96, 96), np.int64),
                spacing=(1.0, 1.0))
    noise = np.random.default_rng(0).normal(0, 5, flat.image.shape).astype(np.float32)
    case = flat.with_(image=flat.image + noise)
    out, p = _run("poisson_noise", case, 3)
    assert (out.image - case.image).std() == pytest.approx(p["sigma_fraction"] * 5.0, rel=0.1)


def test_poisson_noise_keeps_the_image_when_the_lesion_is_black() -> None:
    """A flat lesion at the image minimum (anechoic): counts calibrated on it were ~0 everywhere and
    the whole image became 0."""
    image = np.full((1, 64, 64), 100.0, np.float32)
    image[0, 20:40, 20:40] = 0.0
    label = np.zeros((64, 64), np.int64)
    label[20:40, 20:40] = 1
    case = Case(image=image, label=label, spacing=(1.0, 1.0))
    for severity in (1, 5):
        out, _ = _run("poisson_noise", case, severity)
        background = out.image[0][label == 0]
        assert background.mean() == pytest.approx(100.0, rel=0.05) and background.std() > 0


def test_blur_sigma_in_mm() -> None:
    case = cases.phantom(3)
    _, p = _run("blur", case, 2)
    assert p["sigma_mm"] == pytest.approx(1.5 * min(case.spacing))


@pytest.mark.parametrize("ndim", [2, 3])
def test_low_resolution_returns_to_the_grid(ndim: int) -> None:
    case = cases.phantom(ndim)
    out, p = _run("low_resolution", case, 2)
    assert out.spacing == case.spacing and out.image.shape == case.image.shape
    assert p["acquired_spacing"] == [s * f for s, f in zip(case.spacing, p["factors"])]
    if ndim == 3:  # only the slice axis (largest spacing: axis 0 for the phantom) is coarsened
        assert p["factors"] == [3.0, 1.0, 1.0]
        plane = np.repeat(case.image[:, :1], case.spatial_shape[0], axis=1)
        same, _ = _run("low_resolution", case.with_(image=plane), 5)
        np.testing.assert_allclose(same.image, plane, atol=1e-4)


@pytest.mark.parametrize("spacing, axis", [((0.9, 0.9, 0.625), 2), ((0.625, 0.9, 0.9), 0), ((0.7, 0.8, 3.0), 2),
                                           ((1.0, 1.0, 1.0), 2)])
def test_the_slice_axis_of_thin_slice_ct_is_the_odd_spacing_not_the_largest(spacing, axis) -> None:
    """Thin-slice CT (slices thinner than its square pixels) had its slices taken along a pixel axis:
    low_resolution thickened a sagittal axis and CT artefacts ran in sagittal planes."""
    case = cases.phantom(3).with_(spacing=spacing)
    _, p = _run("low_resolution", case, 2)
    assert p["factors"] == [3.0 if a == axis else 1.0 for a in range(3)]
    out, p = _run("metal_streaks", case.with_(image=case.image * 1000 - 1000), 3)
    metal = np.moveaxis(out.image[0] == p["metal_hu"], axis, 0)[p["planes"][0]:p["planes"][1]]
    assert metal.any() and (metal == metal[:1]).all()  # a cylinder along the slice axis: the same disc per plane


def test_the_slice_axis_does_not_depend_on_the_axis_order() -> None:
    """Spacings whose 1 % agreement chains (1 ~ 1.009 ~ 1.018, 1 !~ 1.018) gave the largest axis in one
    order and the smallest in another."""
    from itertools import permutations

    from harness.perturbations._util import slice_axis

    for order in permutations((1.0, 1.009, 1.018)):
        assert order[slice_axis(order)] == 1.018


def test_resample_spacing_keeps_grid() -> None:
    case = cases.phantom(3)
    out, p = _run("resample_spacing", case, 4)
    assert out.spacing == case.spacing and p["site_spacing"] == [s * 2.5 for s in case.spacing]


def test_bias_field_gain_within_bounds() -> None:
    case = cases.phantom(3)
    ones = case.with_(image=np.ones_like(case.image))
    for severity in range(1, 6):
        out, p = _run("bias_field", ones, severity, seed=severity)
        log_gain = np.log(out.image)
        assert np.abs(log_gain).max() == pytest.approx(p["max_log_gain"], rel=1e-3)


def test_ghost_amplitude_does_not_depend_on_period() -> None:
    case = cases.phantom(2)
    amplitudes = {}
    for seed in range(8):
        _, p = _run("ghosting", case, 3, seed)
        amplitudes[p["period"]] = p["ghost_amplitude"]
        assert p["intensity"] == pytest.approx(p["ghost_amplitude"] * p["period"])
    assert len(set(amplitudes.values())) == 1


def test_motion_corrupts_nested_kspace_segments() -> None:
    case = cases.phantom(2)
    times = [_run("motion", case, s, 5)[1]["times"] for s in range(1, 6)]
    for lower, higher in zip(times, times[1:]):
        assert len(higher) == len(lower) + 2 and set(np.round(lower, 12)) <= set(np.round(higher, 12))


@pytest.mark.parametrize("seed", range(12))
def test_motion_keeps_the_reference_pose_in_the_centre_segment(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    """TorchIO gives the unmoved spectrum to the segment holding k-space line 0.5; every planned
    segment must keep its pose there, at every severity (12 seeds cover splits across 0.4..0.6)."""
    import torchio as tio

    chosen: list[int] = []
    original = tio.Motion.sort_spectra

    def record(spectra, times):  # the segment TorchIO swaps the reference pose into
        chosen.append(int(np.where(times > 0.5)[0].min()) if np.any(times > 0.5) else len(spectra) - 1)
        original(spectra, times)

    monkeypatch.setattr(tio.Motion, "sort_spectra", staticmethod(record))
    case = cases.phantom(2)
    for severity in range(1, 6):
        chosen.clear()
        _, params = _run("motion", case, severity, seed)
        assert chosen == [severity], params["split"]  # severity segments before the centre, then the reference


@pytest.mark.parametrize("options", [{"degrees": 0, "translation_voxels": 0}, {"degrees": "five"}, {"degrees": -1}])
def test_motion_refuses_options_that_move_nothing_or_are_not_numbers(options: dict) -> None:
    with pytest.raises(ConfigError, match="perturbation 'motion': option"):
        perturbations.get("motion", **options)


def test_ct_dose_noise_level_and_texture() -> None:
    case = cases.ct_phantom(2)
    out, p = _run("ct_dose", case, 2)
    assert p["added_sigma_hu"] == pytest.approx(10 * np.sqrt(1 / 0.25 - 1))
    body = case.image > -900  # air is clipped at -1024 HU, as a scanner exports it
    assert (out.image - case.image)[body].std() == pytest.approx(p["added_sigma_hu"], rel=0.03)
    noise = fbp_noise((1, 128, 128), 0)[0]
    power = np.abs(np.fft.fft2(noise)) ** 2
    assert power[0, 0] < 1e-6 * power.mean()  # ramp-shaped: no DC component, unlike white noise


def test_hu_offset_and_window() -> None:
    case = cases.ct_phantom(2)
    out, p = _run("hu_offset", case, 3)
    inside = (case.image + p["offset_hu"] >= -1024) & (case.image + p["offset_hu"] <= 3071)
    np.testing.assert_allclose((out.image - case.image)[inside], p["offset_hu"], atol=1e-3)
    assert out.image[case.image >= -1024].min() >= -1024.0  # a scanner exports nothing darker
    out, p = _run("window_shift", case, 4)
    assert out.image.min() >= p["low_hu"] and out.image.max() <= p["high_hu"]
    assert p["high_hu"] - p["low_hu"] == pytest.approx(p["width_hu"])


def test_metal_streaks_insert_metal_outside_labels() -> None:
    for ndim in (2, 3):
        case = cases.ct_phantom(ndim)
        out, p = _run("metal_streaks", case, 3)
        metal = out.image[0] >= p["metal_hu"] - 1
        assert metal.any() and not (metal & (case.label > 0)).any()
        assert np.array_equal(out.label, case.label)


def test_beam_hardening_cups_the_body_centre() -> None:
    case = cases.ct_phantom(2)
    out, p = _run("beam_hardening", case, 5)
    diff = (out.image - case.image)[0]
    centre = diff[54:74, 54:74].mean()
    rim = diff[np.abs(case.image[0] - (-100)) < 60].mean()
    assert centre < rim < 0.5 * p["depth_hu"] and centre < -0.3 * p["depth_hu"]


def test_ultrasound_display_model() -> None:
    x = np.linspace(0, 255, 11)
    back = _us.from_amplitude(_us.to_amplitude(x, 255.0, 60.0), 255.0, 60.0)
    np.testing.assert_allclose(back, x, atol=1e-9)


def test_gain_and_depth_attenuation_in_db() -> None:
    case = cases.busbra() or cases.phantom(2)
    out, p = _run("depth_attenuation", case, 2)
    assert p["i_ref"][0] in (255.0, float(case.image.max()))
    top, bottom = (out.image - case.image)[0, 0], (out.image - case.image)[0, -1]
    np.testing.assert_allclose(top, 0.0, atol=1e-4)
    unclipped = case.image[0, -1] > 60
    expected = -p["attenuation_db"] * p["i_ref"][0] / p["dynamic_range_db"]
    np.testing.assert_allclose(bottom[unclipped], expected, rtol=1e-4)
    out, p = _run("gain", case, 1, direction="up")
    assert (out.image >= case.image - 1e-4).mean() > 0.3 and p["gain_db"] == 3.0


def test_shadow_darkens_only_below_onset() -> None:
    case = cases.busbra() or cases.phantom(2)
    out, p = _run("acoustic_shadow", case, 5)
    rows = int(p["onset"] * case.spatial_shape[0]) - 2
    np.testing.assert_allclose(out.image[:, :rows], case.image[:, :rows], atol=1e-3)
    assert (out.image <= case.image + 1e-3).all()


def test_reverberation_only_brightens() -> None:
    case = cases.busbra() or cases.phantom(2)
    out, _ = _run("reverberation", case, 5)
    assert (out.image >= case.image - 1e-3).all() and (out.image > case.image + 1).any()


def test_speckle_is_bounded_by_the_display() -> None:
    case = cases.busbra() or cases.phantom(2)
    out, p = _run("speckle", case, 5)
    assert out.image.min() >= 0 and out.image.max() <= p["i_ref"][0] + 1e-3


def test_histogram_shift_is_monotone_and_keeps_range() -> None:
    q = np.linspace(0, 1, 2001)
    rng = np.random.default_rng(0)
    for _ in range(50):
        c = rng.dirichlet(np.ones(3)) * rng.choice([-1, 1], 3)
        t = transfer_curve(q, c.tolist(), 0.85)
        assert np.all(np.diff(t) > 0) and t[0] == pytest.approx(0) and t[-1] == pytest.approx(1)
    case = cases.phantom(2)
    out, _ = _run("histogram_shift", case, 5)
    assert out.image.min() == pytest.approx(case.image.min(), abs=1e-5)
    assert out.image.max() == pytest.approx(case.image.max(), abs=1e-5)


@pytest.mark.parametrize("profile", ["smooth", "sharp", "contrast"])
def test_vendor_style_profile_option(profile: str) -> None:
    _, p = _run("vendor_style", cases.phantom(2), 2, profile=profile)
    assert p["profile"] == profile and p["scale"] == 0.4


@pytest.mark.parametrize("profile", ["smooth", "sharp", "contrast"])
def test_vendor_style_stays_within_the_clean_range(profile: str) -> None:
    """An 8-bit image stays within its 0..255 grey levels (sharp, severity 5 reached -116..385)."""
    base = cases.phantom(2)
    lo, hi = float(base.image.min()), float(base.image.max())
    eight_bit = base.with_(image=np.round((base.image - lo) / (hi - lo) * 255).astype(np.float32))
    out, _ = _run("vendor_style", eight_bit, 5, profile=profile)
    assert out.image.min() >= 0 and out.image.max() <= 255
    assert not np.array_equal(out.image, eight_bit.image)


def test_quantization_keeps_flat_images_and_block_structure() -> None:
    flat = Case(image=np.full((1, 32, 32), 3.0, np.float32), label=np.zeros((32, 32), np.int64),
                spacing=(1, 1))
    out, p = _run("quantization", flat, 5)
    np.testing.assert_array_equal(out.image, flat.image)
    assert p["quality"] == 6
    case = cases.phantom(2)
    err = np.abs(_run("quantization", case, 5)[0].image - case.image)[0]
    assert err.max() > 0 and err.max() < 0.5 * (case.image.max() - case.image.min())


@pytest.mark.parametrize(("shape", "spacing"), [((80, 60), (0.5, 1.5)), ((20, 40, 40), (3.0, 0.8, 0.8))])
def test_affine_moves_content_by_the_recorded_translation(shape: tuple[int, ...], spacing: tuple[float, ...]) -> None:
    """TorchIO scales after translating: the content moved by scale × translation_mm (3–20 % off)."""
    from scipy import ndimage as ndi

    grid = np.meshgrid(*[(np.arange(n) - (n - 1) / 2) * s for n, s in zip(shape, spacing)], indexing="ij")
    blob = np.exp(-sum(g ** 2 for g in grid) / (2 * 4.0 ** 2)).astype(np.float32)  # centred, sigma 4 mm
    case = Case(image=blob[None], label=(blob > 0.5).astype(np.int64), spacing=spacing)
    for seed in (0, 1):
        out, p = _run("affine", case, 5, seed=seed)
        moved = (np.asarray(ndi.center_of_mass(out.image[0])) - np.asarray(ndi.center_of_mass(blob))) * spacing
        assert moved == pytest.approx(p["translation_mm"], abs=0.05 * max(spacing))
