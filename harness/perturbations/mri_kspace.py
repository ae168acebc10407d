"""MRI k-space artefacts: ghosting and spikes (TorchIO), Gibbs ringing (MONAI).

Ghosting and spike artefacts are linear in their intensity parameter once the ghost period /
spike position is fixed, so with coupled draws (period, axis and positions drawn once) the
distortion grows strictly with severity; ROOD-MRI's non-monotone ghosting ladder came from
re-drawing the number of ghosts at every severity.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from harness.case import Case
from harness.perturbations import register
from harness.perturbations._util import in_plane_axis, ladder, monai_transforms
from harness.perturbations.base import NumberOption, Perturbation

GHOST_AMPLITUDE = (0.05, 0.1, 0.17, 0.25, 0.35)
SPIKE_INTENSITY = (0.05, 0.1, 0.16, 0.24, 0.35)
GIBBS_ALPHA = (0.4, 0.5, 0.6, 0.7, 0.8)


@register
class Ghosting(Perturbation):
    """Periodic ghosts along a phase-encoding axis: every ``period``-th k-space plane is scaled by
    ``1 - intensity`` (centre plane restored), which adds ``period - 1`` copies of the object
    shifted by multiples of FOV/period, each of amplitude ``intensity / period``. The ladder fixes
    that ghost amplitude (``intensity = amplitude * period``), so severity does not depend on the
    drawn period.

    Params: ``period`` (TorchIO ``num_ghosts``, 2..6), ``axis`` (case spatial axis),
    ``ghost_amplitude`` (fraction of the object intensity), ``intensity``.
    """

    name = "ghosting"
    options_doc = {}
    modalities = frozenset({"mri"})
    parameter_doc = ("ghosts (k-space period 2-6, in-plane axis) of {5, 10, 17, 25, 35} % of the "
                     "object intensity")

    def draw(self, case: Case, severity: int, rng: np.random.Generator) -> dict[str, Any]:
        period = int(rng.integers(2, 7))
        axis = in_plane_axis(case, rng)
        amplitude = ladder(GHOST_AMPLITUDE, severity)
        return {"period": period, "axis": axis, "ghost_amplitude": amplitude, "intensity": amplitude * period}

    def apply(self, case: Case, params: dict[str, Any]) -> Case:
        import torchio as tio

        from harness.perturbations import _tio

        transform = tio.Ghosting(num_ghosts=int(params["period"]), axis=int(params["axis"]),
                                 intensity=float(params["intensity"]), restore=None)
        return _tio.run(case, transform)


@register
class Spike(Perturbation):
    """Herringbone artefact: spikes added to k-space, each ``intensity`` x the spectrum maximum
    (stripes whose amplitude is ~``intensity`` x the mean magnitude; a z-scored image, taken as the
    intensity above its minimum, gets the same stripes as the raw magnitude image).

    Params: ``positions`` (spikes x 3 fractional k-space coordinates, TorchIO axes),
    ``intensity``. Options: ``spikes`` (default 1).
    """

    name = "spike"
    # each spike is scaled by the spectrum maximum as it stands, so many spikes compound (1e6 → 1e36)
    numbers = {"spikes": NumberOption(at_least=1, at_most=100, integer=True)}
    options_doc = {"spikes": "number of k-space spikes, 1–100 (default 1)"}
    modalities = frozenset({"mri"})
    parameter_doc = ("k-space spike of {0.05, 0.1, 0.16, 0.24, 0.35} x the spectrum maximum at a random "
                     "off-centre position")

    def draw(self, case: Case, severity: int, rng: np.random.Generator) -> dict[str, Any]:
        n = int(self.options.get("spikes", 1))
        offsets = rng.uniform(0.05, 0.4, (n, 3)) * np.where(rng.random((n, 3)) < 0.5, -1.0, 1.0)
        positions = 0.5 + offsets
        if case.ndim == 2:
            positions[:, 2] = 0.0
        return {"positions": positions.tolist(), "intensity": ladder(SPIKE_INTENSITY, severity)}

    def apply(self, case: Case, params: dict[str, Any]) -> Case:
        import torchio as tio

        from harness.perturbations import _tio

        transform = tio.Spike(spikes_positions=np.asarray(params["positions"], dtype=float),
                              intensity=float(params["intensity"]))
        return _tio.run_on_magnitude(case, transform)


@register
class Gibbs(Perturbation):
    """Gibbs ringing from k-space truncation (MONAI ``GibbsNoise``): frequencies outside a ball of
    radius ``(1 - alpha) * max(shape) / sqrt(2)`` (index units) are zeroed. Deterministic.

    Params: ``alpha``; ``kept_fraction`` (radius over half the largest dimension).
    """

    name = "gibbs"
    options_doc = {}
    modalities = frozenset({"mri"})
    parameter_doc = ("k-space truncated to a ball of radius (1 - alpha) max(shape)/sqrt(2), "
                     "alpha = {0.4, 0.5, 0.6, 0.7, 0.8} (keeps 85 ... 28 % of the largest axis)")

    def draw(self, case: Case, severity: int, rng: np.random.Generator) -> dict[str, Any]:
        alpha = ladder(GIBBS_ALPHA, severity)
        return {"alpha": alpha, "kept_fraction": (1 - alpha) * np.sqrt(2.0)}

    def apply(self, case: Case, params: dict[str, Any]) -> Case:
        gibbs = monai_transforms().GibbsNoise(alpha=float(params["alpha"]))
        out = np.asarray(gibbs(np.ascontiguousarray(case.image)))
        return case.with_(image=out.astype(np.float32))
