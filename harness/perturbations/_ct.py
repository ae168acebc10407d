"""CT helpers: axial planes, HU <-> attenuation, filtered back-projection (scikit-image).

Axial planes are the planes orthogonal to the slice axis (:func:`slice_axis`); a 2D case is one
plane. Projection-domain artefacts are simulated on a square working grid of at most
``WORK_SIDE`` pixels (the artefact, not the image, is interpolated back), so the cost does not
grow with the matrix size.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from scipy import ndimage as ndi

from harness.perturbations._util import slice_axis

MU_WATER = 0.019  # 1/mm, water at ~70 keV effective energy
WORK_SIDE = 128
SCANNER_HU = (-1024.0, 3071.0)  # what a scanner exports: 12 bits with a -1024 intercept


def scanner_range(perturbed: np.ndarray, clean: np.ndarray) -> np.ndarray:
    """``perturbed`` clipped to the scanner's HU range where the clean voxel lies in it: no scanner
    exports air darker than -1024 HU, so an artefact must not produce it. Voxels outside it (padding
    stored at -2048 or -3024 beyond the field of view, not scanned) keep their clean value: no noise,
    streak or offset lands on the padding."""
    low, high = SCANNER_HU
    inside = (clean >= low) & (clean <= high)
    return np.where(inside, np.clip(perturbed, low, high), clean).astype(np.float32)


def planes(volume: np.ndarray, spacing: tuple[float, ...]) -> tuple[np.ndarray, int | None]:
    """``(N, H, W)`` stack of axial planes (a view) and the slice axis (None for 2D)."""
    if volume.ndim == 2:
        return volume[None], None
    axis = slice_axis(spacing)
    return np.moveaxis(volume, axis, 0), axis


def unplanes(stack: np.ndarray, axis: int | None) -> np.ndarray:
    """Inverse of :func:`planes`."""
    return stack[0] if axis is None else np.moveaxis(stack, 0, axis)


def in_plane_spacing(spacing: tuple[float, ...]) -> tuple[float, float]:
    if len(spacing) == 2:
        return (float(spacing[0]), float(spacing[1]))
    axis = slice_axis(spacing)
    a, b = (float(s) for i, s in enumerate(spacing) if i != axis)
    return (a, b)


def hu_to_mu(hu: np.ndarray) -> np.ndarray:
    """Linear attenuation (1/mm) of a water-equivalent material, clipped at 0."""
    return np.clip(MU_WATER * (1.0 + hu / 1000.0), 0.0, None)


def mu_to_hu(mu: np.ndarray) -> np.ndarray:
    """HU change for an attenuation change ``mu`` (1/mm)."""
    return 1000.0 * mu / MU_WATER


class WorkGrid:
    """A square working grid (side <= WORK_SIDE) covering a plane of shape ``(H, W)``: the plane
    is padded to a square and zoomed by ``scale`` (< 1 shrinks)."""

    def __init__(self, shape: tuple[int, int], pixel_mm: float) -> None:
        self.shape = (int(shape[0]), int(shape[1]))
        self.side = max(self.shape)
        self.scale = min(1.0, WORK_SIDE / self.side)
        self.n = max(8, int(round(self.side * self.scale)))
        self.pixel_mm = pixel_mm * self.side / self.n
        self.theta = np.linspace(0.0, 180.0, max(self.n, 90), endpoint=False)
        self.pad = [((self.side - s) // 2, self.side - s - (self.side - s) // 2) for s in self.shape]

    def to_work(self, plane: np.ndarray, fill: float) -> np.ndarray:
        square = np.pad(plane, self.pad, mode="constant", constant_values=fill)
        return ndi.zoom(square, self.n / self.side, order=1, mode="nearest", grid_mode=True)

    def from_work(self, work: np.ndarray) -> np.ndarray:
        square = ndi.zoom(work, self.side / self.n, order=1, mode="nearest", grid_mode=True)
        square = square[: self.side, : self.side]
        (top, _), (left, _) = self.pad
        return square[top:top + self.shape[0], left:left + self.shape[1]]

    def radon(self, image: np.ndarray) -> np.ndarray:
        """Line integrals (image units x mm) of a working-grid image, skimage convention."""
        from skimage.transform import radon

        return radon(image, self.theta, circle=False) * self.pixel_mm

    def fbp(self, sinogram: np.ndarray) -> np.ndarray:
        """Ramp-filtered back-projection of a line-integral sinogram (back to 1/mm units)."""
        from skimage.transform import iradon

        return iradon(sinogram, self.theta, output_size=self.n, circle=False,
                      filter_name="ramp") / self.pixel_mm

    def disc_sinogram(self, centres_px: np.ndarray, radius_px: float, detectors: int) -> np.ndarray:
        """Analytic chord lengths (mm) through discs at working-grid ``centres_px`` (K x 2, row/col),
        laid out as :func:`skimage.transform.radon` with ``circle=False`` would."""
        t = np.arange(detectors) - detectors // 2
        a = np.deg2rad(self.theta)
        c0 = self.n // 2
        out = np.zeros((detectors, a.size))
        for cy, cx in centres_px:
            sc = (cx - c0) * np.cos(a) - (cy - c0) * np.sin(a)
            out += 2.0 * np.sqrt(np.clip(radius_px ** 2 - (t[:, None] - sc[None]) ** 2, 0.0, None))
        return out * self.pixel_mm


def sample_indices(n: int, limit: int) -> np.ndarray:
    """At most ``limit`` evenly spread plane indices out of ``n`` (all when ``n <= limit``)."""
    return np.arange(n) if n <= limit else np.unique(np.round(np.linspace(0, n - 1, limit)).astype(int))


def interpolate_planes(values: dict[int, np.ndarray], n: int) -> Iterator[np.ndarray]:
    """Linear interpolation along the slice axis of per-plane fields computed at some indices."""
    keys = sorted(values)
    for i in range(n):
        j = int(np.searchsorted(keys, i))
        if j < len(keys) and keys[j] == i:
            yield values[i]
        elif j == 0:
            yield values[keys[0]]
        elif j == len(keys):
            yield values[keys[-1]]
        else:
            lo, hi = keys[j - 1], keys[j]
            w = (i - lo) / (hi - lo)
            yield (1 - w) * values[lo] + w * values[hi]
