"""Synthetic phantoms: deterministic 2D and 3D cases with an organ and a lesion.

Each case is generated from ``(seed, index)`` alone, so a dataset is reproducible bit-for-bit and
loads lazily. Images are MRI-like magnitude images in arbitrary units (roughly 0..1.2):

* background tissue with low-frequency inhomogeneity and fine texture,
* class 1 ``organ``: a smoothly deformed ellipse/ellipsoid, brighter than background,
* class 2 ``lesion``: a small blob inside the organ (absent in ~15 % of cases), darker than organ,
* a site-specific acquisition profile (gain, gamma, noise, blur) per ``site``/``device``.

Metadata per case: ``sex`` (F/M), ``age`` (years, 20..85), ``site`` (A/B/C), ``device``.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from harness.case import Case
from harness.datasets.base import Dataset

LABEL_NAMES = {1: "organ", 2: "lesion"}

# Acquisition profile per site: multiplicative gain, gamma of the contrast curve, additive noise
# std (image units), Gaussian blur sigma (voxels). Site C is deliberately the most different.
SITE_PROFILES: dict[str, dict[str, float | str]] = {
    "A": {"device": "Alpha 1.5T", "gain": 1.00, "gamma": 1.00, "noise": 0.020, "blur": 0.0},
    "B": {"device": "Beta 3T", "gain": 0.92, "gamma": 1.15, "noise": 0.030, "blur": 0.5},
    "C": {"device": "Gamma 1.5T", "gain": 1.10, "gamma": 0.85, "noise": 0.040, "blur": 0.8},
}
SITE_WEIGHTS = {"A": 0.5, "B": 0.3, "C": 0.2}
LESION_PROBABILITY = 0.85


@dataclass(frozen=True)
class PhantomSpec:
    ndim: int
    n: int
    seed: int
    shape: tuple[int, ...]
    spacing: tuple[float, ...]


DEFAULT_2D = PhantomSpec(ndim=2, n=48, seed=0, shape=(128, 128), spacing=(0.8, 0.8))
DEFAULT_3D = PhantomSpec(ndim=3, n=24, seed=0, shape=(32, 64, 64), spacing=(2.0, 1.0, 1.0))


def _smooth_field(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Zero-mean, unit-std Gaussian random field with correlation length ~sigma voxels."""
    field = ndi.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return (field - field.mean()) / (field.std() + 1e-12)


def _case_metadata(rng: np.random.Generator) -> dict[str, str | int]:
    site = str(rng.choice(list(SITE_WEIGHTS), p=list(SITE_WEIGHTS.values())))
    return {
        "sex": str(rng.choice(["F", "M"])),
        "age": int(rng.integers(20, 86)),
        "site": site,
        "device": str(SITE_PROFILES[site]["device"]),
    }


def make_phantom(spec: PhantomSpec, index: int) -> Case:
    """Generate case ``index`` of the phantom dataset ``spec`` (deterministic)."""
    rng = np.random.default_rng([spec.seed, index, spec.ndim])
    meta = _case_metadata(rng)
    shape = spec.shape
    grids = np.meshgrid(*[np.linspace(-1.0, 1.0, s) for s in shape], indexing="ij")

    # Organ: rotated ellipse(oid) whose radius is modulated by a smooth random field.
    centre = rng.uniform(-0.12, 0.12, spec.ndim)
    axes = rng.uniform(0.38, 0.6, spec.ndim)
    angle = rng.uniform(0, np.pi)
    coords = [g - c for g, c in zip(grids, centre)]
    a, b = coords[-2], coords[-1]  # rotate in the in-plane axes
    coords[-2], coords[-1] = a * np.cos(angle) - b * np.sin(angle), a * np.sin(angle) + b * np.cos(angle)
    radius = np.sqrt(sum((c / ax) ** 2 for c, ax in zip(coords, axes)))
    wobble = 0.12 * _smooth_field(rng, shape, sigma=max(shape) / 8)
    organ = radius + wobble < 1.0
    organ = ndi.binary_fill_holes(organ)
    labels, count = ndi.label(organ)
    if count > 1:  # keep the largest component
        sizes = ndi.sum(organ, labels, range(1, count + 1))
        organ = labels == (1 + int(np.argmax(sizes)))
    label = organ.astype(np.uint8)

    # Lesion: a blob centred well inside the organ.
    if rng.random() < LESION_PROBABILITY:
        inner = ndi.binary_erosion(organ, iterations=max(2, min(shape) // 10))
        candidates = np.argwhere(inner if inner.any() else organ)
        centre_vox = candidates[rng.integers(len(candidates))]
        r_mm = rng.uniform(3.0, 7.0)
        dist = np.sqrt(sum(((np.arange(s) - c) * sp)[tuple(slice(None) if i == k else None
                                                            for i in range(spec.ndim))] ** 2
                           for k, (s, c, sp) in enumerate(zip(shape, centre_vox, spec.spacing))))
        lesion = (dist + 1.2 * _smooth_field(rng, shape, sigma=2.0) < r_mm) & organ
        label[lesion] = 2

    # Tissue intensities with texture and a slowly varying inhomogeneity.
    base = np.select([label == 2, label == 1], [0.38, 0.72], default=0.30)
    texture = 0.05 * _smooth_field(rng, shape, sigma=1.2) + 0.03 * _smooth_field(rng, shape, sigma=3.0)
    inhomogeneity = 1.0 + 0.08 * _smooth_field(rng, shape, sigma=max(shape) / 3)
    image = (base + texture) * inhomogeneity
    image = ndi.gaussian_filter(image, 0.6)  # partial-volume edges

    # Site acquisition profile.
    prof = SITE_PROFILES[str(meta["site"])]
    image = float(prof["gain"]) * np.clip(image, 0, None) ** float(prof["gamma"])
    if float(prof["blur"]) > 0:
        image = ndi.gaussian_filter(image, float(prof["blur"]))
    image = image + float(prof["noise"]) * rng.standard_normal(shape)
    image = np.clip(image, 0, None).astype(np.float32)[None]

    return Case(image=image, label=label.astype(np.int64), spacing=spec.spacing,
                metadata=meta, case_id=f"phantom{spec.ndim}d_{index:03d}")


class PhantomDataset(Dataset):
    """``n`` phantom cases (2D or 3D), generated lazily from a seed."""

    modality = "mri"
    label_names = LABEL_NAMES

    def __init__(self, spec: PhantomSpec) -> None:
        self.spec = spec
        self.name = f"phantom{spec.ndim}d"

    @property
    def case_ids(self) -> list[str]:
        return [f"phantom{self.spec.ndim}d_{i:03d}" for i in range(self.spec.n)]

    def _index(self, case_id: str) -> int:
        ids = self.case_ids
        if case_id not in ids:  # "phantom2d_099" of 3 cases, or another dimension's id, must not load a case
            raise KeyError(f"{self.name} has no case {case_id!r} (its ids: {ids[0]} ... {ids[-1]})")
        return ids.index(case_id)

    def load(self, case_id: str) -> Case:
        return make_phantom(self.spec, self._index(case_id))

    @cached_property
    def _metadata(self) -> pd.DataFrame:
        rows = []
        for i, cid in enumerate(self.case_ids):
            rng = np.random.default_rng([self.spec.seed, i, self.spec.ndim])
            rows.append({"case_id": cid, **_case_metadata(rng)})
        return pd.DataFrame(rows).set_index("case_id")

    @property
    def metadata(self) -> pd.DataFrame:
        return self._metadata

    @property
    def ndim(self) -> int:
        return self.spec.ndim


def phantom_dataset(ndim: int = 2, *, n: int | None = None, seed: int = 0) -> PhantomDataset:
    """The bundled synthetic dataset: ``phantom2d`` (48 cases, 128², 0.8 mm) or ``phantom3d``
    (24 cases, 32×64×64, 2×1×1 mm). ``n`` and ``seed`` override the defaults."""
    base = DEFAULT_2D if ndim == 2 else DEFAULT_3D
    return PhantomDataset(PhantomSpec(ndim=ndim, n=base.n if n is None else n, seed=seed,
                                      shape=base.shape, spacing=base.spacing))
