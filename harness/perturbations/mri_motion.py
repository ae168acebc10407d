"""MRI rigid-motion artefact (TorchIO ``Motion``, after Shaw et al. 2019).

The k-space is read line by line along the phase-encoding axis (TorchIO segments its last axis);
lines read while the object is out of its reference pose come from a rigidly moved copy. The
reference pose holds while the central lines are read, so the anatomy stays in place and the
artefact is ghosting/blurring along the phase-encoding direction. 2D images are lifted as
``(C, 1, H, W)`` so that TorchIO segments k-space along the columns; in 3D the phase-encoding axis
is drawn among the in-plane axes (not the slice axis, :func:`~harness.perturbations._util.slice_axis`:
a multislice scan's slices are not k-space lines) and swapped to the last place for TorchIO.

Monotone by construction (nested corruption): the moved share of k-space grows from the outside
in with severity, split into up to 5 segments on each side of the centre; the pose of every
segment is drawn once, so severity ``s`` corrupts exactly the lines of severity ``s - 1`` with the
same poses plus one more segment on each side. Scaling the motion amplitude instead (as ROOD-MRI
does) saturates and even reverses: a translation ``t`` changes k-space line ``k`` by
``|exp(-i k t) - 1|``, which is periodic in ``t``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from harness.case import Case
from harness.errors import ConfigError
from harness.perturbations import register
from harness.perturbations._util import in_plane_axis
from harness.perturbations.base import NumberOption, Perturbation

MOVED_FRACTION = (0.2, 0.35, 0.5, 0.65, 0.8)
DEGREES = 5.0
TRANSLATION_VOXELS = 5.0


def _units(rng: np.random.Generator, n: int, dims: int) -> np.ndarray:
    v = rng.standard_normal((n, dims))
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


@register
class Motion(Perturbation):
    """Rigid motion during acquisition.

    Params: ``moved_fraction`` (share of k-space lines read in a moved pose), ``split`` (share of
    them read before the centre, 0.4..0.6), ``degrees`` / ``translation_mm`` (2 x severity poses, TorchIO
    axes, in TorchIO's transform order), ``times`` (segment boundaries, fractions of k-space) and,
    in 3D, ``phase_axis`` (the case's spatial axis read line by line).
    Options: ``degrees`` (rotation per pose, default 5), ``translation_voxels`` (default 5).
    """

    name = "motion"
    # rotations are periodic: 360 degrees is no motion, so the ladder would be flat
    numbers = {"degrees": NumberOption(at_least=0, at_most=90), "translation_voxels": NumberOption(at_least=0)}
    options_doc = {"degrees": "rotation of each pose in degrees, 0–90 (default 5)",
                   "translation_voxels": "translation of each pose, voxels of the finest spacing (default 5)"}
    modalities = frozenset({"mri"})
    parameter_doc = ("{20, 35, 50, 65, 80} % of k-space (outer lines, 1-5 segments per side) read "
                     "in random poses of 5 deg rotation and 5 voxels translation")

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        get = self.options.get
        if get("degrees", DEGREES) == 0 and get("translation_voxels", TRANSLATION_VOXELS) == 0:
            raise ConfigError("perturbation 'motion': options degrees and translation_voxels are both 0, so no "
                              "pose moves; give one of them a positive value")

    def draw(self, case: Case, severity: int, rng: np.random.Generator) -> dict[str, Any]:
        # Either side's moved share split·m, (1 - split)·m stays below half of k-space for m ≤ 0.8, so
        # the reference pose keeps the centre segment (TorchIO gives it the segment holding 0.5).
        split = float(rng.uniform(0.4, 0.6))
        n = len(MOVED_FRACTION)
        rot = _units(rng, 2 * n, 3) * float(self.options.get("degrees", DEGREES))
        voxels = float(self.options.get("translation_voxels", TRANSLATION_VOXELS))
        shift = _units(rng, 2 * n, case.ndim) * voxels * min(case.spacing)
        if case.ndim == 2:  # lifted as (1, H, W): rotate about the singleton axis, move in-plane
            rot = np.linalg.norm(rot, axis=1, keepdims=True) * np.sign(rot[:, :1]) * np.array([[1.0, 0, 0]])
            shift = np.concatenate([np.zeros((2 * n, 1)), shift], axis=1)
        m = np.asarray(MOVED_FRACTION[:severity])
        times = [*(split * m), *(1.0 - (1.0 - split) * m[::-1])]
        # Pose j (1 = outermost) before / after the centre; TorchIO puts the identity in the
        # centre segment by swapping it with transform ``severity``, hence this order.
        before, after = list(range(severity)), list(range(n, n + severity))
        order = before[1:] + before[:1] + after[::-1]
        params = {"moved_fraction": float(m[-1]), "split": split, "times": times,
                  "degrees": rot[order].tolist(), "translation_mm": shift[order].tolist()}
        if case.ndim == 3:  # drawn last, so the draws above are those of earlier versions
            params["phase_axis"] = in_plane_axis(case, rng)
        return params

    def apply(self, case: Case, params: dict[str, Any]) -> Case:
        import torchio as tio

        from harness.perturbations import _tio

        transform = tio.Motion(degrees=np.asarray(params["degrees"], dtype=float),
                               translation=np.asarray(params["translation_mm"], dtype=float),
                               times=np.asarray(params["times"], dtype=float), image_interpolation="linear")
        axis = int(params.get("phase_axis", 2))  # params recorded before phase_axis read along axis 2
        if case.ndim == 2 or axis == 2:
            return _tio.run(case, transform, layout="first")
        spacing = list(case.spacing)
        spacing[axis], spacing[2] = spacing[2], spacing[axis]
        swapped = case.with_(image=np.ascontiguousarray(np.swapaxes(case.image, axis + 1, 3)),
                             label=np.ascontiguousarray(np.swapaxes(case.label, axis, 2)), spacing=tuple(spacing))
        out = _tio.run(swapped, transform, layout="first")
        return case.with_(image=np.ascontiguousarray(np.swapaxes(out.image, axis + 1, 3)))
