"""Geometric perturbations: small affine misregistration and elastic deformation (TorchIO).

The label map moves with the image (nearest-neighbour), so the reference stays aligned with the
anatomy; shape, spacing and grid are unchanged (content leaving the field of view is lost and
the border is filled with the image minimum / background; the elastic field is applied to an
edge-padded copy, so it never pulls in such fill values). Draws are coupled across severities:
the rotation axis, translation direction, scaling sign and the elastic control-point field are
drawn first and only their magnitudes follow the ladder.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from harness.case import Case
from harness.perturbations import register
from harness.perturbations._util import draw_seed, ladder
from harness.perturbations.base import Perturbation

ROTATION_DEG = (3.0, 6.0, 10.0, 15.0, 20.0)
SCALE_FRACTION = (0.03, 0.06, 0.10, 0.15, 0.20)
TRANSLATION_FOV = (0.015, 0.03, 0.05, 0.075, 0.10)
ELASTIC_FOV = (0.015, 0.03, 0.045, 0.065, 0.09)
CONTROL_POINTS = 7


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal(n)
    return v / (np.linalg.norm(v) or 1.0)


@register
class AffineMisregistration(Perturbation):
    """Rotation + isotropic scaling about the image centre + translation.

    Params: ``degrees`` (per spatial axis, Euler angles about the TorchIO axes; 2D rotates
    in-plane), ``scale`` (isotropic factor), ``translation_mm`` (per spatial axis).
    """

    name = "affine"
    options_doc = {}
    geometric = True
    parameter_doc = ("rotation {3, 6, 10, 15, 20} deg, scaling 1 +- {3, 6, 10, 15, 20} %, translation "
                     "{1.5, 3, 5, 7.5, 10} % of the field of view; labels move with the image")

    def draw(self, case: Case, severity: int, rng: np.random.Generator) -> dict[str, Any]:
        axis = _unit(rng, 3)
        direction = _unit(rng, case.ndim)
        scale_sign = 1 if rng.random() < 0.5 else -1
        rot = ladder(ROTATION_DEG, severity)
        fov = np.asarray(case.spatial_shape, dtype=float) * np.asarray(case.spacing)
        if case.ndim == 2:  # in-plane rotation only
            axis = np.array([0.0, 0.0, 1.0 if axis[2] >= 0 else -1.0])
        return {"degrees": (rot * axis).tolist(),
                "scale": 1.0 + scale_sign * ladder(SCALE_FRACTION, severity),
                "translation_mm": (ladder(TRANSLATION_FOV, severity) * fov * direction).tolist()}

    def apply(self, case: Case, params: dict[str, Any]) -> Case:
        import torchio as tio

        from harness.perturbations import _tio

        translation = [0.0, 0.0, 0.0]
        scales = [1.0, 1.0, 1.0]
        for i, axis in enumerate(_tio.spatial_axes(case.ndim, "last")):
            # TorchIO scales after translating: divide, so the content moves by translation_mm
            translation[axis] = float(params["translation_mm"][i]) / float(params["scale"])
            scales[axis] = float(params["scale"])
        dx, dy, dz = (float(d) for d in params["degrees"])
        transform = tio.Affine(scales=(scales[0], scales[1], scales[2]), degrees=(dx, dy, dz),
                               translation=(translation[0], translation[1], translation[2]),
                               default_pad_value="minimum",
                               image_interpolation="linear", label_interpolation="nearest")
        return _tio.run(case, transform, with_label=True)


@register
class ElasticDeformation(Perturbation):
    """Smooth B-spline deformation (TorchIO ``ElasticDeformation``), 7 control points per axis,
    the two outer layers locked (no displacement at the border).

    Params: ``max_displacement_mm`` (largest control-point displacement per axis component),
    ``fraction_of_fov``, ``field_seed`` (seed of the unit control-point field in [-1, 1]).
    """

    name = "elastic"
    options_doc = {}
    geometric = True
    parameter_doc = ("B-spline deformation, max control-point displacement {1.5, 3, 4.5, 6.5, 9} % of "
                     "the smallest field-of-view extent (below the folding limit); labels move")

    def draw(self, case: Case, severity: int, rng: np.random.Generator) -> dict[str, Any]:
        frac = ladder(ELASTIC_FOV, severity)
        fov = min(n * s for n, s in zip(case.spatial_shape, case.spacing))
        return {"fraction_of_fov": frac, "max_displacement_mm": frac * fov, "field_seed": draw_seed(rng)}

    @staticmethod
    def unit_field(seed: int, ndim: int) -> np.ndarray:
        """Control-point displacements in [-1, 1], shape (7, 7, 7, 3), borders locked."""
        field = np.random.default_rng(seed).uniform(-1.0, 1.0, (CONTROL_POINTS,) * 3 + (3,))
        locked = [0, 1, CONTROL_POINTS - 2, CONTROL_POINTS - 1]
        for axis in range(ndim):
            index: list[Any] = [slice(None)] * 3
            index[axis] = locked
            field[tuple(index)] = 0.0
        if ndim == 2:
            field[..., 2] = 0.0
        return field

    def apply(self, case: Case, params: dict[str, Any]) -> Case:
        import torchio as tio

        from harness.perturbations import _tio

        d = float(params["max_displacement_mm"])
        field = self.unit_field(int(params["field_seed"]), case.ndim) * d
        bound = (d, d, d) if case.ndim == 3 else (d, d, 0.0)  # no displacement across a 2D plane
        transform = tio.ElasticDeformation(control_points=field, max_displacement=bound,
                                           image_interpolation="linear", label_interpolation="nearest")
        # Edge-pad by the largest displacement so no voxel samples outside the image (SimpleITK
        # would fill it with the minimum, drawing dark lines along the border), then crop back.
        pad = [int(np.ceil(d / s)) + 1 for s in case.spacing]
        crop = tuple(slice(p, p + n) for p, n in zip(pad, case.spatial_shape))
        widths = [(p, p) for p in pad]
        padded = case.with_(image=np.pad(case.image, [(0, 0), *widths], mode="edge"),
                            label=np.pad(case.label, widths, mode="edge"))
        out = _tio.run(padded, transform, with_label=True)
        return case.with_(image=np.ascontiguousarray(out.image[(slice(None), *crop)]),
                          label=np.ascontiguousarray(out.label[crop]))
