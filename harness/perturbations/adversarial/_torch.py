"""Differentiable access to a model for white-box attacks, and the damage criterion in torch.

:class:`LogitFn` maps raw intensities ``(1, C, *spatial)`` to logits ``(1, K, *spatial)`` on the
model's device, differentiably. Plain models use ``model.torch_logits``. Models whose pipeline
resamples (``[input] spacing``) or runs sliding windows (``[input] patch_size``) get the same
pipeline rebuilt in torch: normalise the whole image, resample (linear), pad, Gaussian-blend the
patch outputs (nnU-Net weights, the same windows as ``predict``), resample back. Test-time flips
(``[input] tta_flip_axes``) mirror the prepared image, and test-time shifts (``[input] tta_shifts``)
move it within its padding; probabilities are averaged on that grid, as ``predict`` does. Patch
chunks are gradient-checkpointed, so memory grows with one chunk, not the whole volume.
"""
from __future__ import annotations

from collections.abc import Sequence
from itertools import product
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from harness.errors import ModelError
from harness.models import preprocessing as pp
from harness.models.base import flip_combinations


def is_differentiable(model: Any) -> bool:
    """True when the model offers gradients (``differentiable`` and ``torch_logits``)."""
    return bool(getattr(model, "differentiable", False)) and callable(getattr(model, "torch_logits", None))


def attack_device(model: Any) -> torch.device:
    """Where attack tensors live: the model's device (``model.device``, else its parameters'),
    else CUDA when available, else CPU."""
    device = getattr(model, "device", None)
    if isinstance(device, (str, torch.device)):
        return torch.device(device)
    network = getattr(model, "network", None)
    if isinstance(network, torch.nn.Module):
        for param in network.parameters():
            return param.device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class LogitFn:
    """Differentiable ``x (1, C, *spatial) raw -> logits (1, K, *spatial)`` for one model and spacing."""

    def __init__(self, model: Any, spacing: Sequence[float]) -> None:
        self.model = model
        self.spacing = tuple(float(s) for s in spacing)
        card = getattr(model, "model_card", None)
        self.inp: Any = getattr(card, "input", None)
        self.kind: str = getattr(getattr(card, "output", None), "kind", "logits")
        self.patch: Any = getattr(self.inp, "patch_size", None)
        target = getattr(self.inp, "spacing", None)
        self.target_spacing = tuple(target) if target is not None else None
        self.pipeline = self.patch is not None or (
            self.target_spacing is not None and not np.allclose(self.target_spacing, self.spacing))
        self.flips = flip_combinations(getattr(self.inp, "tta_flip_axes", ()) or ())  # identity first
        self.shifts = bool(getattr(self.inp, "tta_shifts", False))
        needs = ("resamples or uses sliding windows" if self.pipeline else
                 "averages over shifted placements ([input] tta_shifts)" if self.shifts else None)
        if needs and not callable(getattr(model, "_run", None)):
            raise ModelError(f"model {getattr(model, 'name', '?')!r} {needs}, and its adapter does not expose "
                             "the network (_run) to rebuild that in torch")
        self.calls = 0  # forward passes (each backward counts with its forward)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the model as ``predict`` runs it. With the card's test-time flips and shifts, as
        ``predict`` does: the prepared (normalised, resampled, padded) image is mirrored and moved
        within its padding, the class probabilities (moved back) averaged on that grid, then cropped
        and resampled back; the log of that mean is returned (what ``predict`` takes the argmax of)."""
        if len(self.flips) == 1 and not self.shifts:
            self.calls += 1
            return self._pipeline(x) if self.pipeline else self.model.torch_logits(x)
        if not callable(getattr(self.model, "_run", None)):  # no network to rebuild: mirror the raw image
            return self._mirrored_raw(x)
        z, geometry = self._prepare(x)
        amounts, resampled = geometry[0], geometry[1]
        home = tuple(b for b, _ in amounts)
        offsets = pp.placements(z.shape[2:], resampled) if self.shifts else [home]
        total: torch.Tensor | None = None
        for offset in offsets:
            placed = _move(z, home, offset, resampled)
            for flip in self.flips:
                dims = [2 + a for a in flip]
                self.calls += 1
                out = self._as_logits(self._scores(torch.flip(placed, dims) if dims else placed))
                probs = self._probabilities(torch.flip(out, dims) if dims else out)
                probs = _move(probs, offset, home, resampled)
                total = probs if total is None else total + probs
        assert total is not None
        probs = self._restore(total / (len(offsets) * len(self.flips)), geometry)
        if geometry[1] != geometry[2]:  # linear resampling of probabilities: renormalise, as predict does
            probs = probs / probs.sum(dim=1, keepdim=True).clamp_min(1e-12)
        return torch.log(probs.clamp_min(1e-12))

    def _mirrored_raw(self, x: torch.Tensor) -> torch.Tensor:
        """TTA through ``torch_logits`` alone (an adapter without ``_run``): mirror the raw image.
        Equal to ``predict`` when no padding is uneven along a mirrored axis."""
        total: torch.Tensor | None = None
        for flip in self.flips:
            dims = [2 + a for a in flip]
            self.calls += 1
            out = self.model.torch_logits(torch.flip(x, dims) if dims else x)
            probs = self._probabilities(out)
            probs = torch.flip(probs, dims) if dims else probs
            total = probs if total is None else total + probs
        assert total is not None
        return torch.log((total / len(self.flips)).clamp_min(1e-12))

    def _probabilities(self, out: torch.Tensor) -> torch.Tensor:
        """The class probabilities ``predict`` averages over flipped copies: softmax of logits; for
        ``kind = "probabilities"`` the model's own values (``out`` holds their log), which need not
        sum to 1 (independent sigmoids), so a softmax would renormalise what ``predict`` does not."""
        if self.kind == "probabilities":
            return out.exp()
        return torch.softmax(out, dim=1)

    # -- rebuilt pipeline (sliding windows and/or resampling) -----------------------------------
    def _pipeline(self, x: torch.Tensor) -> torch.Tensor:
        z, geometry = self._prepare(x)
        return self._as_logits(self._restore(self._scores(z), geometry))

    def _prepare(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[Any, ...]]:
        """Normalise, resample to the card's spacing and pad, as ``Model._prepare``; returns the
        prepared tensor and ``(pad amounts, resampled shape, image shape)`` to undo it."""
        inp = self.inp
        x = x.to(attack_device(self.model), torch.float32)
        spatial = tuple(x.shape[2:])
        z = pp.normalize_torch(x, inp.normalize, inp.window)
        if self.target_spacing is not None:
            shape = pp.resampled_shape(spatial, self.spacing, self.target_spacing)
            if shape != spatial:
                z = F.interpolate(z, size=shape, mode=_linear(len(spatial)), align_corners=False)
        resampled = tuple(z.shape[2:])
        multiple = _per_axis(inp.pad_multiple, len(spatial))
        amounts = pp.pad_amounts(resampled, pp.padded_shape(resampled, multiple, self.patch))
        if any(a or b for a, b in amounts):
            z = F.pad(z, [v for pair in reversed(amounts) for v in pair])
        return z, (amounts, resampled, spatial)

    def _scores(self, z: torch.Tensor) -> torch.Tensor:
        """Network outputs on the prepared grid (Gaussian-blended windows with a patch size)."""
        return self._windows(z) if self.patch is not None else self._network(z)

    @staticmethod
    def _restore(out: torch.Tensor, geometry: tuple[Any, ...]) -> torch.Tensor:
        """Crop the padding and resample back to the image grid (linear)."""
        amounts, resampled, spatial = geometry
        out = out[(slice(None), slice(None), *(slice(b, b + s) for (b, _), s in zip(amounts, resampled)))]
        if resampled != spatial:
            out = F.interpolate(out, size=spatial, mode=_linear(len(spatial)), align_corners=False)
        return out

    def _network(self, z: torch.Tensor) -> torch.Tensor:
        return self.model._run(z)

    def _windows(self, z: torch.Tensor) -> torch.Tensor:
        patch = tuple(self.patch)
        spatial = tuple(z.shape[2:])
        overlap = float(getattr(self.inp, "overlap", 0.5))
        starts = list(product(*[pp.window_starts(s, p, overlap) for s, p in zip(spatial, patch)]))
        weights = torch.from_numpy(pp.gaussian_weights(patch)).to(z.device)
        total: torch.Tensor | None = None
        norm = torch.zeros(spatial, device=z.device)
        batch = max(1, int(getattr(self.model.model_card.model, "batch_size", 1) or 1))
        for first in range(0, len(starts), batch):
            regions = [tuple(slice(s, s + p) for s, p in zip(start, patch)) for start in starts[first:first + batch]]
            chunk = torch.cat([z[(slice(None), slice(None), *r)] for r in regions])
            if torch.is_grad_enabled() and len(starts) > batch:
                scores = torch.utils.checkpoint.checkpoint(self._network, chunk, use_reentrant=False)
            else:
                scores = self._network(chunk)
            if total is None:
                total = torch.zeros((1, scores.shape[1], *spatial), device=z.device, dtype=scores.dtype)
            for r, score in zip(regions, scores):
                total[(slice(None), slice(None), *r)] += score[None] * weights  # autograd: CopySlices
                norm[r] += weights
        assert total is not None
        return total / norm

    def _as_logits(self, out: torch.Tensor) -> torch.Tensor:
        kind = self.model.model_card.output.kind
        if out.shape[1] == 1:
            out = torch.cat([torch.zeros_like(out), out] if kind == "logits" else [1 - out, out], dim=1)
        if kind == "probabilities":
            out = torch.log(out.clamp_min(1e-12))
        return out


def _move(z: torch.Tensor, src: Sequence[int], dst: Sequence[int], size: Sequence[int]) -> torch.Tensor:
    """:func:`harness.models.preprocessing.move` for ``(N, K, *canvas)`` tensors, differentiable: the
    block of ``size`` at ``src`` placed at ``dst`` of a zero canvas."""
    if tuple(src) == tuple(dst):
        return z
    block = z[(slice(None), slice(None), *(slice(s, s + n) for s, n in zip(src, size)))]
    pads = []
    for d, n, t in zip(reversed(dst), reversed(size), reversed(z.shape[2:])):
        pads += [d, t - d - n]
    return F.pad(block, pads)


def _linear(ndim: int) -> str:
    return "bilinear" if ndim == 2 else "trilinear"


def _per_axis(value: Any, ndim: int) -> tuple[int, ...]:
    return tuple(int(v) for v in value) if isinstance(value, (list, tuple)) else (int(value),) * ndim


def damage(pred: torch.Tensor, target: torch.Tensor, classes: Sequence[int]) -> float:
    """The attack's progress criterion (lower = stronger attack): mean Dice over ``classes`` of the
    label map ``pred`` against ``target``; with no classes, the fraction of voxels left background."""
    if not classes:
        return float((pred == 0).double().mean())
    scores = []
    for k in classes:
        p, t = pred == k, target == k
        denom = int(p.sum()) + int(t.sum())
        scores.append(1.0 if denom == 0 else 2.0 * int((p & t).sum()) / denom)
    return float(np.mean(scores))
