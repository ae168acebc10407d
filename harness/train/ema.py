"""Exponential moving average (EMA) of the network weights, for validation and the saved model.

A U-Net trained for minutes on a small dataset moves a lot from step to step: the validation Dice
of consecutive epochs differs by a few points, so the best checkpoint is partly chance. The EMA
(``w̄ ← d·w̄ + (1−d)·w`` after every optimiser step) is a smoothed model that is validated and saved
instead of the raw weights (as in timm and mean-teacher training). The decay warms up as
``min(d, (1 + n) / (10 + n))`` after ``n`` updates, so early averages do not cling to the random
initial weights. Buffers (batch-norm statistics) are averaged too.

Built on :class:`torch.optim.swa_utils.AveragedModel`; its state dict (averaged weights and the
update count) goes into the trainer's checkpoint so resumed runs continue exactly.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel


def _warmup_ema(decay: float) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor | int], torch.Tensor]:
    def average(avg: torch.Tensor, new: torch.Tensor, n: torch.Tensor | int) -> torch.Tensor:
        d = min(decay, (1.0 + float(n)) / (10.0 + float(n)))
        return avg + (new - avg) * (1.0 - d)

    return average


def weight_ema(net: nn.Module, decay: float) -> AveragedModel:
    """An EMA copy of ``net`` with per-step ``decay`` in (0, 1); call ``.update_parameters(net)``
    after each optimiser step and use ``.module`` for evaluation."""
    if not 0.0 < decay < 1.0:
        raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
    ema = AveragedModel(net, avg_fn=_warmup_ema(decay), use_buffers=True)
    ema.module.requires_grad_(False)
    return ema


__all__ = ["weight_ema"]
