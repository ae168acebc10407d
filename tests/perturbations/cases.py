"""Test cases for the perturbation tests: phantoms (MRI-like, HU-scaled CT) and real data."""
from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np

from harness.case import Case
from harness.datasets.phantom import phantom_dataset

_HERE = Path(__file__).resolve()
DATA_CANDIDATES = (Path("/work/shared/data"), _HERE.parents[3] / "shared" / "data",
                   _HERE.parents[2] / ".." / "shared" / "data")


def shared_data() -> Path | None:
    """``../shared/data`` when present (it is not part of the project), else None."""
    for cand in DATA_CANDIDATES:
        if (cand / "busbra").is_dir() or (cand / "hippocampus").is_dir():
            return cand.resolve()
    return None


@cache
def phantom(ndim: int, index: int = 0) -> Case:
    ds = phantom_dataset(ndim)
    return ds.load(ds.case_ids[index])


@cache
def ct_phantom(ndim: int, index: int = 0) -> Case:
    """A phantom rescaled to Hounsfield units: air (-1000) outside an elliptical body, a fat
    rim (-100 HU), soft tissue ~40 HU, organ ~210 HU, lesion ~70 HU, a 700 HU bone disc."""
    case = phantom(ndim, index)
    x = case.image[0]
    shape = x.shape[-2:]
    yy, xx = np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij")
    r = np.sqrt((yy / 0.92) ** 2 + (xx / 0.97) ** 2)
    bone = np.sqrt(((yy - 0.78) / 0.1) ** 2 + (xx / 0.12) ** 2) < 1
    hu = (x - 0.30) * 400.0 + 40.0
    hu = np.where(r < 0.88, hu, np.where(r < 1.0, -100.0 + (x - 0.3) * 100, -1000.0))
    hu = np.where(bone & (case.label == 0), 700.0 + (x - 0.3) * 200, hu)
    rng = np.random.default_rng(index)
    hu = hu + 8.0 * rng.standard_normal(hu.shape)
    return Case(image=hu.astype(np.float32)[None], label=case.label, spacing=case.spacing,
                metadata=dict(case.metadata), case_id=f"ct_{case.case_id}")


@cache
def busbra(name: str = "bus_0001-l") -> Case | None:
    root = shared_data()
    if root is None or not (root / "busbra").is_dir():
        return None
    from PIL import Image

    img = np.asarray(Image.open(root / "busbra" / "images" / f"{name}.png").convert("L"), dtype=np.float32)
    mask_name = name.replace("bus_", "mask_")
    mask = np.asarray(Image.open(root / "busbra" / "masks" / f"{mask_name}.png").convert("L")) > 0
    return Case(image=img[None], label=mask.astype(np.int64), spacing=(1.0, 1.0), case_id=name)


@cache
def hippocampus(name: str = "hippocampus_001") -> Case | None:
    root = shared_data()
    if root is None or not (root / "hippocampus").is_dir():
        return None
    import nibabel as nib

    img = nib.load(root / "hippocampus" / "imagesTr" / f"{name}.nii.gz")
    lab = nib.load(root / "hippocampus" / "labelsTr" / f"{name}.nii.gz")
    spacing = tuple(float(s) for s in img.header.get_zooms()[:3])
    return Case(image=np.asarray(img.dataobj, dtype=np.float32)[None],
                label=np.rint(np.asarray(lab.dataobj)).astype(np.int64), spacing=spacing, case_id=name)


def distortion(clean: Case, pert: Case) -> tuple[float, float]:
    """(PSNR dB, SSIM) of ``pert`` against ``clean``, data range = the clean image's range,
    averaged over channels (skimage.metrics)."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    psnrs, ssims = [], []
    for a, b in zip(clean.image.astype(np.float64), pert.image.astype(np.float64)):
        rng = float(a.max() - a.min()) or 1.0
        psnrs.append(peak_signal_noise_ratio(a, b, data_range=rng))
        ssims.append(structural_similarity(a, b, data_range=rng))
    return float(np.mean(psnrs)), float(np.mean(ssims))


FAMILIES: dict[str, str] = {  # the bundled families and their modality tag
    "gaussian_noise": "any", "rician_noise": "mri", "poisson_noise": "any", "blur": "any",
    "contrast": "any", "gamma": "any", "brightness": "any", "quantization": "any",
    "low_resolution": "any", "affine": "any", "elastic": "any",
    "bias_field": "mri", "motion": "mri", "ghosting": "mri", "spike": "mri", "gibbs": "mri",
    "ct_dose": "ct", "metal_streaks": "ct", "beam_hardening": "ct", "window_shift": "ct", "hu_offset": "ct",
    "speckle": "us", "acoustic_shadow": "us", "gain": "us", "depth_attenuation": "us", "reverberation": "us",
    "resample_spacing": "any", "histogram_shift": "any", "vendor_style": "any",
}
GEOMETRIC = {"affine", "elastic"}
DETERMINISTIC = {"blur", "quantization", "low_resolution", "gibbs", "beam_hardening", "depth_attenuation"}

# Test cases per modality tag: phantoms first, then the real case of that modality.
CASES_FOR: dict[str, tuple[str, ...]] = {
    "any": ("phantom2d", "phantom3d", "busbra", "hippocampus"),
    "mri": ("phantom2d", "phantom3d", "hippocampus"),
    "ct": ("ct2d", "ct3d"),
    "us": ("phantom2d", "busbra"),  # B-mode is 2D (3D works too: see test_properties)
}
REAL = {"busbra", "hippocampus"}


def load(key: str) -> Case | None:
    """A test case by key (None when it needs absent real data)."""
    return {"phantom2d": lambda: phantom(2), "phantom3d": lambda: phantom(3), "ct2d": lambda: ct_phantom(2),
            "ct3d": lambda: ct_phantom(3), "busbra": busbra, "hippocampus": hippocampus}[key]()


def all_cases() -> dict[str, Case]:
    keys = ("phantom2d", "phantom3d", "ct2d", "ct3d", "busbra", "hippocampus")
    return {k: c for k in keys if (c := load(k)) is not None}


def small(tag: str, ndim: int) -> Case:
    """A 2x-subsampled phantom (64x64 or 16x32x32, whole field of view) suited to a modality tag
    (HU-scaled for CT), for fast tests."""
    base = ct_phantom(ndim) if tag == "ct" else phantom(ndim)
    step = (slice(None, None, 2),) * ndim
    return base.with_(image=np.ascontiguousarray(base.image[(slice(None), *step)]),
                      label=np.ascontiguousarray(base.label[step]),
                      spacing=tuple(2 * s for s in base.spacing))
