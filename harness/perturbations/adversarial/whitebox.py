"""White-box attack engine: FGSM / PGD (L∞, L2) with the SegPGD, CosPGD and erase losses.

All attacks work in scaled units ``u = (x - x0) / s`` (see :mod:`.budget`). One step ascends the
attack loss over *all* pixels of the logits:

* L∞: ``u <- clip(u + a * sign(grad_u), -f, f)``, ``a = step_size * f`` (FGSM: one step, ``a = f``,
  no random start — Goodfellow et al. 2015; PGD: Madry et al. 2018, default ``a = 2.5 f / steps``);
* L2: ``u <- P(u + a * grad_u / ||grad_u||)``, ``a = step_size * f * sqrt(n)``, ``P`` the projection
  on the ball ``||u||_2 <= f * sqrt(n)``;

then ``x = clip(x0 + s * u, valid range)``. Random starts draw from a numpy generator seeded by
the params (device-independent). Iterative attacks keep the best iterate (lowest mean Dice of the
argmax against the reference, the first one on ties) over all steps and restarts, so with a fixed
``step_size`` and seed, more steps or restarts are never weaker on that criterion (the first
iterates of a longer run are those of the shorter one).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from harness.errors import ModelError
from harness.perturbations.adversarial._torch import LogitFn, attack_device, damage
from harness.perturbations.adversarial.budget import voxel_bounds

LossName = Literal["ce", "segpgd", "cospgd", "erase"]


@dataclass(frozen=True)
class WhiteboxSpec:
    norm: Literal["linf", "l2"]
    loss: LossName
    steps: int
    restarts: int
    step_size: float  # fraction of the budget per step
    random_start: bool
    track_best: bool


def attack_loss(name: LossName, logits: torch.Tensor, target: torch.Tensor, step: int, steps: int) -> torch.Tensor:
    """The scalar each step ascends (mean over all pixels of the batch).

    * ``ce``: cross-entropy against the reference.
    * ``segpgd``: ``(1 - l) * CE`` on correctly and ``l * CE`` on wrongly classified pixels, with
      ``l = (t - 1) / (2T)`` at step ``t = 1..T`` (Gu et al. 2022, eq. 4-5): first push the
      pixels still right, then balance.
    * ``cospgd``: CE weighted per pixel by the cosine similarity between ``sigmoid(logits)`` and the
      one-hot reference (detached; Agnihotri et al. 2024): pixels already fooled weigh less.
    * ``erase``: targeted, minus the cross-entropy towards background everywhere.
    """
    if name == "erase":
        return -F.cross_entropy(logits, torch.zeros_like(target))
    ce = F.cross_entropy(logits, target, reduction="none")
    if name == "ce":
        return ce.mean()
    if name == "segpgd":
        lam = step / (2.0 * steps)  # step is 0-based: (t - 1) / (2T)
        correct = (logits.argmax(dim=1) == target).to(ce.dtype)
        return ((1 - lam) * correct * ce + lam * (1 - correct) * ce).mean()
    if name == "cospgd":
        with torch.no_grad():
            sig = torch.sigmoid(logits)
            onehot = F.one_hot(target, logits.shape[1]).movedim(-1, 1).to(sig.dtype)
            weight = (sig * onehot).sum(dim=1) / sig.norm(p=2, dim=1).clamp_min(1e-12)
        return (weight * ce).mean()
    raise ValueError(f"unknown attack loss {name!r}")


def run_whitebox(logit_fn: LogitFn, x0: np.ndarray, target: np.ndarray, *, scale: Sequence[float],
                 bounds: Sequence[Sequence[float]] | None, fraction: float, spec: WhiteboxSpec,
                 seed: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Attack one image ``x0 (C, *spatial)``; returns the perturbed image and a report."""
    if fraction == 0:
        return x0.copy(), {"grad_steps": 0, "forward_passes": 0}
    device = attack_device(logit_fn.model)
    shape = (1, x0.shape[0]) + (1,) * (x0.ndim - 1)
    x0t = torch.from_numpy(np.ascontiguousarray(x0, dtype=np.float32)[None]).to(device)
    s = torch.tensor(scale, dtype=torch.float32, device=device).reshape(shape)
    lo = hi = None
    limits = voxel_bounds(x0, bounds)
    if limits is not None:
        lo, hi = (torch.from_numpy(v.astype(np.float32)[None]).to(device) for v in limits)
    k = _n_classes(logit_fn.model)
    ignored = sorted(int(c) for c in np.unique(target) if c >= k)  # classes the model cannot predict
    target = np.where(target >= k, 0, target) if ignored else target
    y = torch.from_numpy(target.astype(np.int64)[None]).to(device)
    classes = [int(c) for c in np.unique(target) if c > 0]
    radius = fraction if spec.norm == "linf" else fraction * math.sqrt(x0.size)
    alpha = spec.step_size * radius
    rng = np.random.default_rng(seed)

    def project(u: torch.Tensor) -> torch.Tensor:
        if spec.norm == "linf":
            u = u.clamp(-fraction, fraction)
        else:
            u = u * torch.clamp(radius / u.norm().clamp_min(1e-12), max=1.0)
        x = x0t + s * u
        return x if lo is None or hi is None else torch.maximum(torch.minimum(x, hi), lo)

    def progress(logits: torch.Tensor) -> float:
        """Lower = a stronger attack: the targeted erase's share of voxels still foreground, else
        the Dice against the reference (:func:`damage`)."""
        pred = logits.detach().argmax(dim=1)
        return float((pred != 0).double().mean()) if spec.loss == "erase" else damage(pred, y, classes)

    best: tuple[float, torch.Tensor | None, list[int]] = (math.inf, None, [-1, -1])
    zero_grad = None
    for restart in range(spec.restarts):
        x = project(_start(rng, x0.shape, spec, fraction, radius, device))
        for step in range(spec.steps):
            x = x.detach().requires_grad_(True)
            logits = logit_fn(x)
            if spec.track_best:
                d = progress(logits)
                if d < best[0]:
                    best = (d, x.detach().clone(), [restart, step])
            loss = attack_loss(spec.loss, logits, y, step, spec.steps)
            (grad,) = torch.autograd.grad(loss, x)
            if not torch.isfinite(grad).all():
                raise ModelError("the attack gradient contains NaN/Inf")
            g = grad * s
            if zero_grad is None:
                zero_grad = float((g == 0).double().mean())
            if spec.norm == "linf":
                step_u = alpha * g.sign()
            else:
                step_u = alpha * g / g.norm().clamp_min(1e-12)
            x = project((x.detach() - x0t) / s + step_u)
        if spec.track_best:
            with torch.no_grad():
                d = progress(logit_fn(x))
            if d < best[0]:
                best = (d, x.detach().clone(), [restart, spec.steps])
        else:
            best = (math.nan, x.detach(), [restart, spec.steps])
    assert best[1] is not None
    adv = best[1][0].cpu().numpy().astype(np.float32)
    report: dict[str, Any] = {"grad_steps": spec.restarts * spec.steps, "forward_passes": logit_fn.calls,
                              "zero_grad_fraction": zero_grad, "best_iterate": best[2]}
    if ignored:
        report["ignored_reference_classes"] = ignored  # attacked as background
    if spec.track_best:  # the progress criterion of the kept iterate
        report["attack_foreground_fraction" if spec.loss == "erase" else "attack_dice"] = best[0]
    return adv, report


def _n_classes(model: Any) -> int:
    labels = getattr(model, "labels", None)
    return 1 + max(labels) if labels else 2


def _start(rng: np.random.Generator, shape: tuple[int, ...], spec: WhiteboxSpec, fraction: float,
           radius: float, device: torch.device) -> torch.Tensor:
    """Initial ``u``: zero, uniform in the L∞ cube, or uniform-radius random direction (L2)."""
    if not spec.random_start:
        u = np.zeros(shape, dtype=np.float32)
    elif spec.norm == "linf":
        u = rng.uniform(-fraction, fraction, size=shape).astype(np.float32)
    else:
        direction = rng.standard_normal(shape)
        norm = max(float(np.linalg.norm(direction)), 1e-12)
        u = (direction / norm * radius * rng.uniform()).astype(np.float32)
    return torch.from_numpy(u[None]).to(device)

