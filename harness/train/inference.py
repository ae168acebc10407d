"""Inference for trained networks: sliding window with Gaussian weighting, flip TTA, postprocessing.

:func:`predict_logits` runs the network on a normalised ``(C, *S)`` image. When the image is no
larger than the patch (after padding) it is one forward pass; otherwise windows of the patch size
overlap by ``overlap`` and their softmax outputs are blended with a Gaussian importance map
(σ = 1/8 of the window, nnU-Net), so window borders do not show. ``tta`` averages over mirrored
copies along ``flip_axes``. :func:`keep_largest_components` (from
:mod:`harness.models.postprocess`, as the card's ``[output] postprocess`` uses it) is the optional
connected-component postprocessing (largest component per class).
"""
from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from harness.models.postprocess import keep_largest_components


def gaussian_importance(size: Sequence[int], sigma_scale: float = 1 / 8) -> torch.Tensor:
    """Separable Gaussian weight map of ``size``, max 1, strictly positive: exact zeros (underflow)
    take the smallest positive weight, as in nnU-Net. A larger floor (1e-3 before) made a window's
    padded edge weigh as much as another window's centre wherever both sat at the floor."""
    axes = []
    for n in size:
        x = torch.arange(n, dtype=torch.float64) - (n - 1) / 2
        axes.append(torch.exp(-0.5 * (x / max(n * sigma_scale, 1e-6)) ** 2))
    w = axes[0]
    for a in axes[1:]:
        w = w[..., None] * a
    w = w / w.max()
    return w.clamp_min(float(w[w > 0].min())).float()


def _starts(dim: int, size: int, step: int) -> list[int]:
    if dim <= size:
        return [0]
    n = int(np.ceil((dim - size) / step)) + 1
    return sorted({int(round(i * (dim - size) / (n - 1))) for i in range(n)})


@torch.no_grad()
def _window_probs(net: nn.Module, image: torch.Tensor, patch: Sequence[int], overlap: float,
                  batch_size: int) -> torch.Tensor:
    spatial = image.shape[1:]
    pad = []
    for n, p in zip(reversed(spatial), reversed(patch)):
        pad += [0, max(0, p - n)]
    x = F.pad(image, pad) if any(pad) else image
    full = x.shape[1:]
    win = [min(p, n) for p, n in zip(patch, full)]
    steps = [max(1, int(w * (1 - overlap))) for w in win]
    starts = list(itertools.product(*[_starts(n, w, s) for n, w, s in zip(full, win, steps)]))
    weight = gaussian_importance(win)
    acc: torch.Tensor | None = None
    norm = torch.zeros(full)
    for i in range(0, len(starts), batch_size):
        chunk = starts[i:i + batch_size]
        sl = [tuple(slice(s, s + w) for s, w in zip(st, win)) for st in chunk]
        batch = torch.stack([x[(slice(None),) + s] for s in sl])
        probs = torch.softmax(net(batch).float(), dim=1)
        if acc is None:
            acc = torch.zeros((probs.shape[1],) + tuple(full))
        for p, s in zip(probs, sl):
            acc[(slice(None),) + s] += p * weight
            norm[s] += weight
    assert acc is not None
    out = acc / norm
    return out[(slice(None),) + tuple(slice(0, n) for n in spatial)]


@torch.no_grad()
def predict_probabilities(net: nn.Module, image: np.ndarray, *, patch: Sequence[int] | None = None,
                          overlap: float = 0.5, tta: bool = False, flip_axes: Sequence[int] = (),
                          batch_size: int = 2) -> np.ndarray:
    """Softmax probabilities ``(K, *S)`` for a normalised ``(C, *S)`` image (eval mode)."""
    was_training = net.training
    net.eval()
    try:
        x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))
        spatial = x.shape[1:]
        patch = tuple(spatial) if patch is None else tuple(int(p) for p in patch)
        flips: list[tuple[int, ...]] = [()]
        if tta:
            axes = list(flip_axes)
            flips = [c for r in range(len(axes) + 1) for c in itertools.combinations(axes, r)]
        total: torch.Tensor | None = None
        for flip in flips:
            dims = [a + 1 for a in flip]
            xi = torch.flip(x, dims) if flip else x
            p = _window_probs(net, xi, patch, overlap, batch_size)
            p = torch.flip(p, dims) if flip else p
            total = p if total is None else total + p
        assert total is not None
        return (total / len(flips)).numpy()
    finally:
        net.train(was_training)


def predict_labels(net: nn.Module, image: np.ndarray, *, postprocess: bool = False,
                   **kwargs: object) -> np.ndarray:
    """Integer label map ``(*S)``: argmax of :func:`predict_probabilities` (+ optional CC step)."""
    labels = predict_probabilities(net, image, **kwargs).argmax(0).astype(np.int64)  # type: ignore[arg-type]
    return keep_largest_components(labels) if postprocess else labels


__all__ = ["gaussian_importance", "keep_largest_components", "predict_labels", "predict_probabilities"]
