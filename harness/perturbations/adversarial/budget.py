"""Attack budgets in physical intensity units, and the suite options every attack understands.

An attack perturbs a case in *scaled units*: ``delta_c = s_c * u_c`` where ``s_c`` is the reference
intensity scale of channel ``c``:

* ``eps_unit = "fg_std"`` (default): the intensity std over the reference foreground (the whole
  image when the label is empty) — the scale the noise families use, comparable across MRI, CT
  and ultrasound;
* ``eps_unit = "range"``: the robust intensity range ``p99.5 - p0.5`` of the channel, the analogue
  of an ``8/255`` budget on images normalised to [0, 1] (ROG, AutoAttack).

The budget ``f = eps_fractions[severity - 1]`` bounds ``u``: ``max|u| <= f`` for L∞ attacks, and
``rms(u) = ||u||_2 / sqrt(u.size) <= f`` for L2 attacks (so an L2 ball contains the L∞ ball of
the same ``f``, whatever the image size). Perturbed intensities are also kept in the valid range
(``clip``): by default the clean image's own ``[min, max]`` per channel.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from itertools import pairwise
from typing import Any, Literal

import numpy as np

from harness.case import Case
from harness.errors import ConfigError
from harness.options import must_be_one_of
from harness.perturbations._util import foreground_std, robust_range

# f per severity 1..5 (the ε ladder), doubling per severity; severity 3 is ROG's budget.
# fg_std: 1/16 .. 1 x foreground std (on the phantoms 8/255 of the range is ~0.2-0.25 std);
# range: 2, 4, 8, 16, 32 / 255 of the robust range (ROG / AutoAttack use 8/255).
EPS_LADDER: dict[str, tuple[float, ...]] = {
    "fg_std": (1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0),
    "range": (2 / 255, 4 / 255, 8 / 255, 16 / 255, 32 / 255),
}
EpsUnit = Literal["fg_std", "range"]


@dataclass(frozen=True)
class AttackOptions:
    """Options from the suite's ``[perturbations.options]`` table (all keyword, all optional).

    eps_fractions: five budgets ``f`` for severities 1..5 (non-decreasing, >= 0); overrides the
        ladder of ``eps_unit``.
    eps_unit: ``"fg_std"`` or ``"range"`` (see module docstring).
    clip: ``"image"`` (clean image's per-channel [min, max]), ``"none"``, or ``[lo, hi]``.
    steps, restarts, step_size, random_start: iterative white-box attacks; ``step_size`` is a
        fraction of the budget per step, ``"auto"`` = ``min(1, 2.5 / steps)`` (Madry et al.), so
        that a walk from any random start can reach the far side of the ball.
    queries, p_init: the black-box Square attack (model calls; initial square area fraction).
    check_masking, masking_queries, masking_tolerance: run a Square attack at the same ε after a
        white-box attack and flag ``gradient_masking_suspected`` when it lowers Dice by more than
        ``masking_tolerance`` below the white-box result.
    nondifferentiable: what a white-box attack does on a model without gradients: ``"blackbox"``
        (run the Square attack at the same ε, flagged ``fallback`` in the params) or ``"error"``.
    """

    eps_fractions: tuple[float, ...] | None = None
    eps_unit: EpsUnit = "fg_std"
    clip: str | tuple[float, float] = "image"
    steps: int = 10
    restarts: int = 1
    step_size: float | Literal["auto"] = "auto"
    random_start: bool = True
    queries: int = 100
    p_init: float = 0.1
    check_masking: bool = False
    masking_queries: int = 30
    masking_tolerance: float = 0.02
    nondifferentiable: Literal["blackbox", "error"] = "blackbox"

    @classmethod
    def parse(cls, family: str, options: dict[str, Any], allowed: Sequence[str],
              defaults: dict[str, Any] | None = None) -> AttackOptions:
        """Validate ``options`` for ``family``; ConfigError naming the bad key and the fix."""
        known = {f.name for f in fields(cls)}
        problems = []
        for key in options:
            if key not in allowed:
                where = "" if key in known else " (unknown option)"
                problems.append(f"{key!r} is not an option of {family}{where}; allowed: {', '.join(allowed)}")
        values = {**(defaults or {}), **{k: v for k, v in options.items() if k in allowed}}
        try:
            opts = cls(**_coerce(values))
            problems.extend(opts._problems())
        except (TypeError, ValueError) as exc:
            problems.append(str(exc))
            opts = cls()
        if problems:
            raise ConfigError(f"perturbation {family}: bad options", problems=problems)
        return opts

    def _problems(self) -> list[str]:
        out = []
        if self.eps_fractions is not None:
            f = self.eps_fractions
            if len(f) != 5 or any(not math.isfinite(v) or v < 0 for v in f) or any(b < a for a, b in pairwise(f)):
                out.append(f"eps_fractions must be 5 non-decreasing numbers >= 0 (severities 1..5), got {list(f)}")
        if self.eps_unit not in EPS_LADDER:
            out.append(f"eps_unit {must_be_one_of(EPS_LADDER, self.eps_unit)}")
        if isinstance(self.clip, str) and self.clip not in ("image", "none"):
            out.append(f'clip must be "image", "none" or [lo, hi], got {self.clip!r}')
        if not isinstance(self.clip, str) and not (len(self.clip) == 2 and self.clip[0] < self.clip[1]):
            out.append(f"clip = [lo, hi] needs lo < hi, got {list(self.clip)}")
        for name in ("steps", "restarts", "queries", "masking_queries"):
            if getattr(self, name) < 1:
                out.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.step_size != "auto" and not 0 < self.step_size <= 10:
            out.append(f'step_size (a fraction of eps per step) must be in (0, 10] or "auto", got {self.step_size}')
        if not 0 < self.p_init <= 1:
            out.append(f"p_init (fraction of the image a square covers) must be in (0, 1], got {self.p_init}")
        if not (math.isfinite(self.masking_tolerance) and self.masking_tolerance >= 0):
            out.append(f"masking_tolerance must be a finite number >= 0, got {self.masking_tolerance}")
        if self.nondifferentiable not in ("blackbox", "error"):
            out.append(f'nondifferentiable must be "blackbox" or "error", got {self.nondifferentiable!r}')
        return out

    def step_fraction(self) -> float:
        """The step size as a fraction of the budget (``"auto"`` resolved)."""
        return min(1.0, 2.5 / self.steps) if self.step_size == "auto" else float(self.step_size)

    def fraction(self, severity: int) -> float:
        ladder = self.eps_fractions if self.eps_fractions is not None else EPS_LADDER[self.eps_unit]
        return float(ladder[severity - 1])


def _coerce(values: dict[str, Any]) -> dict[str, Any]:
    """TOML types -> dataclass types (lists to tuples; ints where ints are meant)."""
    out = dict(values)

    def numbers(value: Any) -> bool:
        return isinstance(value, (list, tuple)) and all(
            isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in value)

    if out.get("eps_fractions") is not None:
        if not numbers(out["eps_fractions"]):
            raise TypeError(f"eps_fractions must be a list of 5 numbers (severities 1..5), got {out['eps_fractions']!r}")
        out["eps_fractions"] = tuple(float(v) for v in out["eps_fractions"])
    if "clip" in out and not isinstance(out["clip"], str):
        if not (numbers(out["clip"]) and len(out["clip"]) == 2):
            raise TypeError(f'clip must be "image", "none" or [lo, hi] (two numbers), got {out["clip"]!r}')
        out["clip"] = tuple(float(v) for v in out["clip"])
    for name in ("eps_unit", "nondifferentiable"):
        if name in out and not isinstance(out[name], str):
            raise TypeError(f"{name} must be a string, got {out[name]!r}")
    for name in ("steps", "restarts", "queries", "masking_queries"):
        if name in out:
            if isinstance(out[name], bool) or not isinstance(out[name], (int, np.integer)):
                raise TypeError(f"{name} must be an integer, got {out[name]!r}")
            out[name] = int(out[name])
    for name in ("step_size", "p_init", "masking_tolerance"):
        if name in out and not (name == "step_size" and out[name] == "auto"):
            if isinstance(out[name], bool) or not isinstance(out[name], (int, float)):
                raise TypeError(f"{name} must be a number, got {out[name]!r}")
            out[name] = float(out[name])
    for name in ("random_start", "check_masking"):
        if name in out and not isinstance(out[name], bool):
            raise TypeError(f"{name} must be true or false, got {out[name]!r}")
    return out


def intensity_scale(case: Case, unit: str) -> list[float]:
    """Per-channel reference scale ``s_c`` (see module docstring); always > 0."""
    if unit == "fg_std":
        return [float(s) for s in foreground_std(case)]
    return [float(hi - lo) for lo, hi in robust_range(case)]


def intensity_bounds(case: Case, clip: str | tuple[float, float]) -> list[list[float]] | None:
    """Per-channel ``[lo, hi]`` the perturbed image must stay in (None: unbounded); see
    :func:`voxel_bounds` for voxels the clean image already has outside it."""
    if clip == "none":
        return None
    if clip == "image":
        return [[float(ch.min()), float(ch.max())] for ch in case.image]
    assert not isinstance(clip, str), clip
    return [[float(clip[0]), float(clip[1])] for _ in range(case.image.shape[0])]


def voxel_bounds(clean: np.ndarray, bounds: Sequence[Sequence[float]] | None) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-voxel ``(lo, hi)`` float64 arrays: the channel's ``[lo, hi]`` widened to contain the
    clean voxel, so a voxel the clean image already has outside the range never moves further
    out, the clean image is always feasible, and ε = 0 changes nothing."""
    if bounds is None:
        return None
    shape = (-1, *[1] * (clean.ndim - 1))
    lo = np.asarray([b[0] for b in bounds], dtype=np.float64).reshape(shape)
    hi = np.asarray([b[1] for b in bounds], dtype=np.float64).reshape(shape)
    x = clean.astype(np.float64)
    return np.minimum(lo, x), np.maximum(hi, x)


def perturbation_report(clean: np.ndarray, attacked: np.ndarray, scale: Sequence[float]) -> dict[str, Any]:
    """Achieved norms of ``attacked - clean``: per-channel L∞ (intensity units), total L2
    (intensity units), and L∞ / RMS in scaled units (comparable with ``eps_fraction``)."""
    delta = attacked.astype(np.float64) - clean.astype(np.float64)
    s = np.asarray(scale, dtype=np.float64).reshape(-1, *[1] * (delta.ndim - 1))
    u = delta / s
    return {
        "achieved_linf": [float(np.abs(d).max()) for d in delta],
        "achieved_l2": float(np.sqrt((delta ** 2).sum())),
        "achieved_linf_fraction": float(np.abs(u).max()),
        "achieved_rms_fraction": float(np.sqrt((u ** 2).mean())),
    }


def inside_linf(clean: np.ndarray, attacked: np.ndarray, eps: Sequence[float]) -> np.ndarray:
    """``attacked`` with every voxel moved (by float32 ulps towards ``clean``) into the L∞ ball
    ``|attacked - clean| <= eps_c`` evaluated in float64: float32 rounding of ``x0 + eps`` can
    land one ulp outside, and the ball is a guarantee, not an approximation."""
    out = attacked.copy()
    bound = np.asarray(eps, dtype=np.float64).reshape(-1, *[1] * (clean.ndim - 1))
    for _ in range(8):
        over = np.abs(out.astype(np.float64) - clean.astype(np.float64)) > bound
        if not over.any():
            break
        out[over] = np.nextafter(out[over], clean[over])
    return out
