"""Isotropic Gaussian blur (TorchIO ``Blur``), sigma in mm.

Severity 1 is the upper edge of nnU-Net's blur augmentation (sigma 0.5-1 voxel); sigma is set in
voxels of the finest spacing and applied isotropically in mm, so anisotropic volumes are blurred
the same physical amount along every axis as far as a sampled kernel can: along an axis whose
spacing exceeds about 3 sigma (sigma under ~0.35 voxel, e.g. 0.8 mm on 3 mm slices at severity 1)
the kernel is nearly a delta and that axis is hardly blurred. Deterministic (no random draws).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from harness.case import Case
from harness.perturbations import register
from harness.perturbations._util import ladder
from harness.perturbations.base import Perturbation

SIGMA_VOXELS = (1.0, 1.5, 2.0, 2.75, 3.5)


@register
class Blur(Perturbation):
    """Gaussian blur. Params: ``sigma_mm`` (isotropic), ``sigma_voxels`` (of the finest spacing)."""

    name = "blur"
    options_doc = {}
    parameter_doc = "Gaussian sigma = {1, 1.5, 2, 2.75, 3.5} x finest voxel spacing (mm, isotropic)"

    def draw(self, case: Case, severity: int, rng: np.random.Generator) -> dict[str, Any]:
        sigma_vox = ladder(SIGMA_VOXELS, severity)
        return {"sigma_voxels": sigma_vox, "sigma_mm": sigma_vox * min(case.spacing)}

    def apply(self, case: Case, params: dict[str, Any]) -> Case:
        import torchio as tio

        from harness.perturbations import _tio

        sigma = float(params["sigma_mm"])
        std = [0.0, 0.0, 0.0]
        for axis in _tio.spatial_axes(case.ndim, "last"):
            std[axis] = sigma
        return _tio.run(case, tio.Blur(std=(std[0], std[1], std[2])))
