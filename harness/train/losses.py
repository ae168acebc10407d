"""Training loss ``L = α·CE + β·Dice`` (soft multi-class Dice over foreground classes).

The Dice term is the batch Dice of nnU-Net: intersections and sums are pooled over the batch and
spatial axes per class, then ``1 - mean_k (2·I_k + ε) / (P_k + G_k + ε)`` over the foreground
classes ``k = 1..K-1``. A perfect one-hot prediction gives exactly 0 (``ε`` in numerator and
denominator keeps classes absent from both at 0 loss rather than NaN).

>>> import torch
>>> target = torch.tensor([[[0, 1], [2, 1]]])
>>> logits = 50.0 * torch.nn.functional.one_hot(target, 3).permute(0, 3, 1, 2).float()
>>> round(float(soft_dice_loss(logits, target)), 6)
0.0
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, *, eps: float = 1e-5,
                   include_background: bool = False, batch: bool = True) -> torch.Tensor:
    """``1 - mean soft Dice`` of ``softmax(logits)`` (N, K, *S) against integer ``target`` (N, *S).

    ``batch=True`` pools the batch (nnU-Net's batch Dice: large structures weigh more); ``False``
    takes the Dice of each sample and class, then their mean (MONAI's default), so every image
    counts equally, as in the per-case mean Dice reported. A class absent from a sample's target
    scores ``eps / (ΣP + eps)`` there (ΣP: its predicted probability mass): 1 only when ΣP ≪ eps,
    else ≈ 0 with a vanishing gradient, a near-constant term (as MONAI's ``DiceLoss``)."""
    probs = torch.softmax(logits.float(), dim=1)
    onehot = F.one_hot(target.long(), logits.shape[1]).movedim(-1, 1).to(probs.dtype)
    axes = ([0] if batch else []) + list(range(2, logits.ndim))
    inter = (probs * onehot).sum(axes)
    denom = probs.sum(axes) + onehot.sum(axes)
    dice = (2 * inter + eps) / (denom + eps)
    if not include_background:
        dice = dice[1:] if batch else dice[:, 1:]
    return 1.0 - dice.mean()


class DiceCELoss(nn.Module):
    """``α·CrossEntropy + β·SoftDice``; with deep supervision, a weighted sum over output scales.

    Args:
        alpha: weight of the cross-entropy term (≥ 0).
        beta: weight of the Dice term (≥ 0).
        ds_weights: for a list of outputs (full resolution first), the weight of each scale;
            default ``1, 1/2, 1/4, …`` normalised to sum to 1 (nnU-Net). Targets are downsampled
            to each output's size by nearest neighbour.
        batch_dice: pool the Dice over the batch (default) or average per-sample Dice
            (see :func:`soft_dice_loss`).
    """

    def __init__(self, alpha: float = 1.0, beta: float = 1.0,
                 ds_weights: Sequence[float] | None = None, *, batch_dice: bool = True) -> None:
        super().__init__()
        if alpha < 0 or beta < 0 or alpha + beta == 0:
            raise ValueError(f"alpha and beta must be ≥ 0 and not both 0, got {alpha}, {beta}")
        self.alpha, self.beta = float(alpha), float(beta)
        self.ds_weights = None if ds_weights is None else [float(w) for w in ds_weights]
        self.batch_dice = bool(batch_dice)

    def single(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = logits.new_zeros(())
        if self.alpha:
            loss = loss + self.alpha * F.cross_entropy(logits.float(), target.long())
        if self.beta:
            loss = loss + self.beta * soft_dice_loss(logits, target, batch=self.batch_dice)
        return loss

    def forward(self, outputs: torch.Tensor | Sequence[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
        if isinstance(outputs, torch.Tensor):
            return self.single(outputs, target)
        weights = self.ds_weights or [0.5 ** i for i in range(len(outputs))]
        weights = [w / sum(weights[: len(outputs)]) for w in weights[: len(outputs)]]
        total = outputs[0].new_zeros(())
        for w, out in zip(weights, outputs):
            t = target
            if tuple(out.shape[2:]) != tuple(target.shape[1:]):
                t = F.interpolate(target[:, None].float(), size=tuple(out.shape[2:]),
                                  mode="nearest")[:, 0].long()
            total = total + w * self.single(out, t)
        return total
