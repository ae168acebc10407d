"""The registered attack families (suite names in backticks).

White-box (torch / TorchScript adapters; a Square attack at the same ε on models without
gradients, unless ``nondifferentiable = "error"``):

* ``fgsm``: one signed-gradient step of size ε on the cross-entropy (Goodfellow et al. 2015).
* ``pgd_linf``: PGD, L∞ ball, uniform random start (Madry et al. 2018).
* ``pgd_l2``: PGD, L2 ball of RMS ε (normalised-gradient steps, random-direction start).
* ``segpgd``: PGD with SegPGD's correct/incorrect pixel weighting schedule (Gu et al. 2022).
* ``cospgd``: PGD with CosPGD's cosine-similarity pixel weighting (Agnihotri et al. 2024).
* ``erase``: targeted PGD (L∞) pushing every pixel towards background (removes the structure).

Black-box: ``square_attack`` (Andriushchenko et al. 2020) on ``predict`` with a query budget.
Control: ``random_linf``, uniform noise in the same L∞ ball (what an attack must beat).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from harness.case import Case
from harness.perturbations import register
from harness.perturbations.adversarial.base import COMMON_OPTIONS, WHITEBOX_OPTIONS, Attack, WhiteboxAttack
from harness.perturbations.adversarial.budget import voxel_bounds

_LADDER = "eps = {1/16, 1/8, 1/4, 1/2, 1} x foreground intensity std per channel"


@register
class FGSM(WhiteboxAttack):
    """Fast gradient sign method: ``x + eps * sign(grad CE)``, clipped to the valid range."""

    name = "fgsm"
    iterative = False
    option_names = WHITEBOX_OPTIONS
    parameter_doc = f"L∞ {_LADDER}; one gradient step"


@register
class PGDLinf(WhiteboxAttack):
    """Projected gradient descent in the L∞ ball, random start, best iterate kept."""

    name = "pgd_linf"
    parameter_doc = f"L∞ {_LADDER}; steps x restarts from the suite (default 10 x 1, step 2.5 eps / steps)"


@register
class PGDL2(WhiteboxAttack):
    """Projected gradient descent in the L2 ball ``||delta / s||_2 <= eps_fraction * sqrt(n)``."""

    name = "pgd_l2"
    norm = "l2"
    parameter_doc = ("L2, RMS of delta / foreground std <= {1/16, 1/8, 1/4, 1/2, 1}; "
                     "steps x restarts from the suite (default 10 x 1, step 2.5 radius / steps)")


@register
class SegPGD(WhiteboxAttack):
    """PGD on the SegPGD loss: correct pixels weigh ``1 - (t-1)/2T``, wrong ones ``(t-1)/2T``."""

    name = "segpgd"
    loss = "segpgd"
    parameter_doc = f"L∞ {_LADDER}; SegPGD weighting; steps from the suite (default 10)"


@register
class CosPGD(WhiteboxAttack):
    """PGD on the CosPGD loss: per-pixel CE weighted by cos(sigmoid(logits), one-hot reference)."""

    name = "cospgd"
    loss = "cospgd"
    parameter_doc = f"L∞ {_LADDER}; CosPGD weighting; steps from the suite (default 10)"


@register
class Erase(WhiteboxAttack):
    """Targeted L∞ PGD towards an all-background prediction ("erase the structure")."""

    name = "erase"
    loss = "erase"
    targeted = True
    parameter_doc = f"L∞ {_LADDER}; targeted to background; steps from the suite (default 10)"


@register
class SquareAttack(Attack):
    """Score-based black-box Square attack (L∞) on ``predict``: any adapter, ``queries`` budget."""

    name = "square_attack"
    threat = "blackbox"
    option_names = COMMON_OPTIONS + ("queries", "p_init")
    parameter_doc = f"L∞ {_LADDER}; black-box, queries from the suite (default 100)"

    def _hyper(self) -> dict[str, Any]:
        return {"queries_budget": self.opts.queries, "p_init": self.opts.p_init}

    def _perturb(self, case: Case, params: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
        return self._square(case, params, queries=int(params["queries_budget"]), seed=int(params["attack_seed"]))


@register
class RandomLinf(Attack):
    """Control: uniform noise ``U(-eps, eps)`` per voxel, clipped to the valid range (no model call)."""

    name = "random_linf"
    threat = "random"
    parameter_doc = f"uniform noise, {_LADDER}"

    def _perturb(self, case: Case, params: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
        rng = np.random.default_rng(int(params["attack_seed"]))
        s = np.asarray(params["scale"], dtype=np.float64).reshape(-1, *[1] * case.ndim)
        f = float(params["eps_fraction"])
        x = case.image.astype(np.float64) + s * rng.uniform(-f, f, size=case.image.shape)
        limits = voxel_bounds(case.image, params["clip"])
        if limits is not None:
            x = np.minimum(np.maximum(x, limits[0]), limits[1])
        image = case.image.copy() if f == 0 else x.astype(np.float32)
        return image, {"queries": 0, "grad_steps": 0}
