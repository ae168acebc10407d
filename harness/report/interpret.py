"""Interpretability maps for the worst cases, computed during ``harness run`` (never by the report).

* :func:`tta_entropy` — per-pixel predictive entropy over test-time augmentations; works for any
  model (label-map models contribute one-hot votes).
* :func:`smoothgrad` — gradient saliency of the segmented structure for differentiable models
  (``Model.torch_logits``).

The texts in :data:`UNCERTAINTY_DOC` and :data:`SALIENCY_DOC` are printed beside the maps.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

TTA_DOC = "identity + a flip along each spatial axis"
UNCERTAINTY_DOC = (
    "Uncertainty: per-pixel entropy of the mean class distribution over test-time augmentations "
    f"({TTA_DOC}; each prediction flipped back), divided by log K so that 0 means every augmented "
    "prediction agrees with full confidence and 1 means a uniform distribution over the K classes. "
    "Bright pixels are where the segmentation is fragile; they often, but not always, coincide with errors.")
SALIENCY_DOC = (
    "Saliency (SmoothGrad): mean absolute gradient, with respect to the input intensities, of the summed "
    "logit of the structure shown (its predicted pixels, or its reference pixels when nothing was "
    "predicted), over {n} copies of the perturbed image with Gaussian noise of 10 % of its intensity range; "
    "maximum over channels, scaled to [0, 1] at its 99.5th percentile. It shows which pixels most change "
    "the model's evidence for the structure — where the model looks — not why it decided.")


def _one_hot(labels: np.ndarray, k: int) -> np.ndarray:
    return (labels[None] == np.arange(k).reshape(k, *[1] * labels.ndim)).astype(np.float32)


def n_classes(model: Any) -> int:
    return int(max([0, *(int(k) for k in model.labels)])) + 1


def tta_entropy(model: Any, image: np.ndarray, spacing: Sequence[float], *, first: Any = None) -> np.ndarray:
    """Normalised entropy in [0, 1] of the TTA-mean class distribution, shape ``(*spatial)``.

    ``first``: the model's prediction for ``image`` when already computed (the identity pass).
    The flipped copies go through ``predict_batch`` in one call when the model offers it.
    """
    k = n_classes(model)
    ndim = image.ndim - 1
    variants: list[tuple[int, ...]] = [(), *((axis + 1,) for axis in range(ndim))]
    todo = variants if first is None else variants[1:]
    images = [np.ascontiguousarray(np.flip(image, axis=flip)) if flip else image for flip in todo]
    if hasattr(model, "predict_batch"):
        predictions = list(model.predict_batch(images, [spacing] * len(images)))
    else:
        predictions = [model.predict(x, spacing) for x in images]
    if first is not None:
        predictions.insert(0, first)
    total = np.zeros((k, *image.shape[1:]), np.float64)
    for flip, prediction in zip(variants, predictions):
        p = prediction.probabilities
        if p is None or p.shape[0] != k:
            p = _one_hot(np.asarray(prediction.labels), k)
        total += np.flip(p, axis=flip) if flip else p
    mean = np.clip(total / len(variants), 0.0, 1.0)
    plogp = np.where(mean > 0, mean * np.log(np.where(mean > 0, mean, 1.0)), 0.0)
    entropy = np.maximum(-plogp.sum(axis=0), 0.0) / np.log(max(k, 2))
    return np.clip(entropy, 0.0, 1.0).astype(np.float32)


def saliency_unavailable(model: Any) -> str | None:
    """Why a saliency map cannot be computed for ``model`` (None when it can)."""
    if not getattr(model, "differentiable", False) or not hasattr(model, "torch_logits"):
        return "the model is not differentiable (no torch_logits), so no saliency map is shown"
    card = getattr(model, "model_card", None)
    inp = getattr(card, "input", None)
    if getattr(model, "patch_size", None) is not None:
        return "the model runs in sliding windows; gradient saliency over a whole image is not computed"
    if inp is not None and getattr(inp, "spacing", None) is not None:
        return "the model resamples its input; gradient saliency on the image grid is not computed"
    return None


def smoothgrad(model: Any, image: np.ndarray, mask: np.ndarray, label: int, *, n: int = 8,
               seed: int = 0) -> np.ndarray:
    """SmoothGrad saliency in [0, 1], shape ``(*spatial)``, of ``sum(logit[label][mask])``."""
    import torch

    rng = np.random.default_rng(seed)
    lo, hi = (float(v) for v in np.percentile(image, [0.5, 99.5]))
    sigma = 0.1 * (hi - lo if hi > lo else 1.0)
    region = torch.from_numpy(np.asarray(mask, bool) if np.any(mask) else np.ones(image.shape[1:], bool))
    total = torch.zeros((1, *image.shape), dtype=torch.float64)
    base = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None]
    for _ in range(n):
        noise = torch.from_numpy(rng.standard_normal(image.shape).astype(np.float32))[None]
        x = (base + sigma * noise).requires_grad_(True)
        logits = model.torch_logits(x)
        score = logits[0, int(label)][region.to(logits.device)].sum()
        (grad,) = torch.autograd.grad(score, x)
        total += grad.detach().abs().double().cpu()
    sal = (total[0] / n).amax(dim=0).numpy()
    scale = float(np.percentile(sal, 99.5))
    return np.clip(sal / scale if scale > 0 else sal, 0.0, 1.0).astype(np.float32)
