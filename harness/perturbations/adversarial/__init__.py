"""Adversarial attacks as perturbation families: white-box (FGSM, PGD-L∞/L2, SegPGD, CosPGD,
erase) for differentiable adapters, a black-box Square attack for any model, and a uniform-noise
control, with budgets in physical intensity units (see :mod:`.budget` and docs/adversarial.md).

Every family has ``requires_model = True``: the runner calls ``family.bind_model(model)`` before
the first work item. Importing this package registers the families.
"""
from harness.perturbations.adversarial.budget import EPS_LADDER, AttackOptions
from harness.perturbations.adversarial.families import (
    FGSM,
    PGDL2,
    CosPGD,
    Erase,
    PGDLinf,
    RandomLinf,
    SegPGD,
    SquareAttack,
)

WHITEBOX = ("fgsm", "pgd_linf", "pgd_l2", "segpgd", "cospgd", "erase")
BLACKBOX = ("square_attack",)

__all__ = [
    "BLACKBOX",
    "EPS_LADDER",
    "FGSM",
    "PGDL2",
    "WHITEBOX",
    "AttackOptions",
    "CosPGD",
    "Erase",
    "PGDLinf",
    "RandomLinf",
    "SegPGD",
    "SquareAttack",
]
