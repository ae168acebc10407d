"""CT metal artefact: a metal insert with streaks from beam hardening and photon starvation.

One or two metal discs (a cylinder of 10-30 mm along the slice axis for volumes) are placed in
the body (> -200 HU), away from the labelled structures (their labels are untouched). The metal
trace in the sinogram is the analytic chord length ``p`` through the discs; its error
``-p^2`` (beam hardening: dark bands along lines joining metal objects) plus ``0.6 p n``
(photon starvation: random bright/dark rays, ``n`` white noise per ray) is reconstructed by
filtered back-projection on a working grid of at most 128 pixels. The streak field is
normalised so that its 99th percentile of |HU| outside the metal is 1, scaled to the ladder, and
the metal pixels are set to 3000 HU. The geometry and the noise are drawn once (coupled), so only
the streak amplitude changes with severity and the error grows strictly.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage as ndi

from harness.case import Case
from harness.perturbations import register
from harness.perturbations._ct import WorkGrid, in_plane_spacing, planes, scanner_range, unplanes
from harness.perturbations._util import draw_seed, ladder
from harness.perturbations.base import Perturbation

STREAK_HU = (40.0, 80.0, 150.0, 250.0, 400.0)
METAL_HU = 3000.0
BODY_HU = -200.0


def _place(stack: np.ndarray, label: np.ndarray, rng: np.random.Generator, radius_px: float,
           count: int) -> list[list[float]]:
    """Disc centres (row, col) in the body, clear of labels and of the body edge."""
    body = (stack > BODY_HU).all(axis=0)
    margin = radius_px + 2.0
    clear = ndi.distance_transform_edt(~label.any(axis=0)) > margin
    inside = ndi.distance_transform_edt(body) > margin
    candidates = np.argwhere(body & clear & inside)
    if len(candidates) == 0:
        candidates = np.argwhere(body & ~label.any(axis=0))
    if len(candidates) == 0:
        candidates = np.array([[s // 2 for s in stack.shape[1:]]])
    first = candidates[rng.integers(len(candidates))]
    centres = [first]
    if count > 1:
        far = candidates[np.hypot(*(candidates - first).T) > 5 * radius_px]
        if len(far):
            centres.append(far[rng.integers(len(far))])
    return [[float(v) for v in c] for c in centres]


def streak_field(shape: tuple[int, int], pixel_mm: float, centres: list[list[float]], radius_mm: float,
                 seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(unit streak field, metal mask) for one axial plane."""
    grid = WorkGrid(shape, pixel_mm)
    zoom = grid.n / grid.side
    work_centres = np.array([[(c + p[0] + 0.5) * zoom - 0.5 for c, p in zip(cen, grid.pad)]
                             for cen in centres])
    from skimage.transform import radon

    detectors = radon(np.zeros((grid.n, grid.n)), grid.theta[:1], circle=False).shape[0]
    p = grid.disc_sinogram(work_centres, radius_mm / grid.pixel_mm, detectors)
    p = p / (p.max() or 1.0)
    noise = np.random.default_rng(seed).standard_normal(p.shape)
    field = grid.from_work(grid.fbp(-(p ** 2) + 0.6 * p * noise))
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    metal = np.zeros(shape, dtype=bool)
    for cy, cx in centres:
        metal |= (rows - cy) ** 2 + (cols - cx) ** 2 <= (radius_mm / pixel_mm) ** 2
    outside = ~ndi.binary_dilation(metal, iterations=2)
    scale = float(np.percentile(np.abs(field[outside]), 99)) if outside.any() else 1.0
    return field / (scale or 1.0), metal


@register
class MetalStreaks(Perturbation):
    """Metal insert + streak artefact.

    Params: ``centres`` (row, col in the axial plane), ``radius_mm``, ``planes`` ([first, stop)
    along the slice axis; null for 2D), ``streak_hu`` (99th pct of |streak| outside the metal),
    ``metal_hu``, ``noise_seed``.
    """

    name = "metal_streaks"
    options_doc = {}
    modalities = frozenset({"ct"})
    parameter_doc = ("1-2 metal discs (r 2.5-4.5 mm, 3000 HU); streaks with 99th pct |HU| = "
                     "{40, 80, 150, 250, 400}")

    def draw(self, case: Case, severity: int, rng: np.random.Generator) -> dict[str, Any]:
        x = case.image[0]
        stack, axis = planes(x, case.spacing)
        labels, _ = planes(case.label, case.spacing)
        pixel = min(in_plane_spacing(case.spacing))
        radius = float(rng.uniform(2.5, 4.5))
        count = int(rng.integers(1, 3))
        span: list[int] | None = None
        if axis is not None:
            thick = float(case.spacing[axis])
            half = max(1, int(round(rng.uniform(5.0, 15.0) / thick)))
            area = (stack > BODY_HU).sum(axis=(1, 2))
            centre = int(rng.choice(np.flatnonzero(area >= area.max() / 2)))
            span = [max(0, centre - half), min(stack.shape[0], centre + half + 1)]
            stack, labels = stack[span[0]:span[1]], labels[span[0]:span[1]]
        centres = _place(stack, labels > 0, rng, radius / pixel, count)
        return {"centres": centres, "radius_mm": radius, "planes": span, "metal_hu": METAL_HU,
                "streak_hu": ladder(STREAK_HU, severity), "noise_seed": draw_seed(rng)}

    def apply(self, case: Case, params: dict[str, Any]) -> Case:
        out = case.image.copy()
        for c in range(out.shape[0]):
            stack, axis = planes(out[c], case.spacing)
            stack = stack.copy()
            shape = stack.shape[1:]
            field, metal = streak_field(shape, min(in_plane_spacing(case.spacing)), params["centres"],
                                        params["radius_mm"], int(params["noise_seed"]))
            first, stop = params["planes"] or [0, 1]
            for i in range(first, stop):
                stack[i] = np.where(metal, params["metal_hu"], stack[i] + params["streak_hu"] * field)
            out[c] = scanner_range(unplanes(stack, axis), case.image[c])
        return case.with_(image=out.astype(np.float32))
