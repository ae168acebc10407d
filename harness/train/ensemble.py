"""An ensemble of U-Nets that averages their class probabilities (nnU-Net's ensembling).

``harness train --ensemble N`` trains N networks that differ in seed (initial weights, patch order,
augmentation) and saves them as one :class:`UNetEnsemble`: one state_dict (keys
``members.<k>.<parameter>``) and one model card whose entry is :func:`build_unet_ensemble`, so
every adapter, attack and report treats the ensemble as a single model.

The output is ``log(mean_k softmax(z_k))``: valid logits whose softmax is exactly the members' mean
probability map, differentiable for white-box attacks.

>>> import torch
>>> net = build_unet_ensemble(members=2, spatial_dims=2, in_channels=1, out_channels=3, features=(4, 8))
>>> p = torch.softmax(net.eval()(torch.zeros(1, 1, 16, 16)), dim=1)
>>> bool(torch.allclose(p.sum(1), torch.ones(1, 16, 16)))
True
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from harness.train.unet import build_unet


class UNetEnsemble(nn.Module):
    """Members' softmax probabilities averaged; returned as log-probabilities ``(N, K, *spatial)``."""

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logp = []
        for member in self.members:
            out = member(x)
            if isinstance(out, (list, tuple)):  # deep supervision in training mode: full resolution first
                out = out[0]
            logp.append(torch.log_softmax(out.float(), dim=1))
        return torch.logsumexp(torch.stack(logp), dim=0) - math.log(len(logp))


def build_unet_ensemble(*, members: int, **unet_kwargs: Any) -> UNetEnsemble:
    """Model-card entry point (``harness.train.ensemble:build_unet_ensemble``): ``members`` U-Nets
    built by :func:`~harness.train.unet.build_unet` from the other ``[model.kwargs]``."""
    if int(members) < 1:
        raise ValueError(f"members must be ≥ 1, got {members}")
    return UNetEnsemble([build_unet(**unet_kwargs) for _ in range(int(members))])


def ensemble_state(states: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """One :class:`UNetEnsemble` state_dict from the members' U-Net state_dicts, in member order."""
    return {f"members.{k}.{name}": value for k, state in enumerate(states) for name, value in state.items()}


__all__ = ["UNetEnsemble", "build_unet_ensemble", "ensemble_state"]
