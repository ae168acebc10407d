"""Black-box, query-budgeted Square attack (L∞) for segmentation: needs only ``model.predict``.

Square Attack (Andriushchenko et al., ECCV 2020), adapted to dense outputs. In scaled units
``u = (x - x0) / s`` with ``|u| <= f``:

1. start from vertical stripes: ``u = ±f`` drawn per channel and per index of the last axis;
2. each query: pick a random square (cube in 3D) covering a fraction ``p`` of the image, set ``u``
   inside it to ``±f`` per channel (redrawn when that changes nothing), query the model, keep the
   candidate when the objective strictly decreases. ``p`` starts at ``p_init`` and halves on the
   original schedule (iterations 10, 50, 200, 500, ... of 10 000, rescaled to the budget).

Objective (lower = stronger): the soft Dice between the model's probabilities and the one-hot
reference, averaged over the foreground classes present in the reference; for models that return
only label maps, the hard Dice of the labels (then the attack is decision-based). An empty
reference makes the objective the mean background probability (the attack creates false
positives). Every ``predict`` call counts as one query; the budget includes the first one.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from harness.perturbations.adversarial.budget import voxel_bounds

Predict = Callable[[np.ndarray], Any]  # image (C, *spatial) -> Prediction(labels, probabilities)


def soft_dice(prediction: Any, target: np.ndarray, classes: Sequence[int]) -> float:
    """Mean soft Dice of ``prediction`` over ``classes`` (see module docstring)."""
    probs = prediction.probabilities
    if probs is None:
        k = int(max(int(prediction.labels.max(initial=0)), int(target.max(initial=0)), 1)) + 1
        probs = (prediction.labels[None] == np.arange(k).reshape(-1, *[1] * target.ndim)).astype(np.float64)
    if not classes:
        return float(np.asarray(probs[0], dtype=np.float64).mean())
    scores = []
    for k in classes:
        p = np.asarray(probs[k], dtype=np.float64) if k < len(probs) else np.zeros(target.shape)
        t = target == k
        scores.append(2.0 * float(p[t].sum()) / (float(p.sum()) + float(t.sum())))
    return float(np.mean(scores))


def hard_dice(labels: np.ndarray, target: np.ndarray, classes: Sequence[int]) -> float:
    """Mean Dice of a label map over ``classes`` (both empty -> 1); no classes -> fraction background."""
    if not classes:
        return float((labels == 0).mean())
    scores = []
    for k in classes:
        p, t = labels == k, target == k
        denom = int(p.sum()) + int(t.sum())
        scores.append(1.0 if denom == 0 else 2.0 * int((p & t).sum()) / denom)
    return float(np.mean(scores))


def p_selection(p_init: float, it: int, n_iters: int) -> float:
    """The original Square-attack schedule of the square's area fraction, rescaled to ``n_iters``."""
    it = int(it / max(n_iters, 1) * 10000)
    for bound, div in ((10, 1), (50, 2), (200, 4), (500, 8), (1000, 16), (2000, 32), (4000, 64),
                       (6000, 128), (8000, 256)):
        if it <= bound:
            return p_init / div
    return p_init / 512


def square_attack(predict: Predict, x0: np.ndarray, target: np.ndarray, *, scale: Sequence[float],
                  bounds: Sequence[Sequence[float]] | None, fraction: float, queries: int,
                  p_init: float, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Attack ``x0 (C, *spatial)`` with at most ``queries`` model calls; returns (image, report)."""
    if fraction == 0:
        return x0.copy(), {"queries": 0}
    rng = np.random.default_rng(seed)
    c, spatial = x0.shape[0], x0.shape[1:]
    s = np.asarray(scale, dtype=np.float64).reshape(-1, *[1] * len(spatial))
    limits = voxel_bounds(x0, bounds)
    classes = [int(k) for k in np.unique(target) if k > 0]
    x0d = x0.astype(np.float64)

    def image(u: np.ndarray) -> np.ndarray:
        x = x0d + s * u
        if limits is not None:
            x = np.minimum(np.maximum(x, limits[0]), limits[1])
        return x.astype(np.float32)

    stripes = rng.choice([-fraction, fraction], size=(c, *[1] * (len(spatial) - 1), spatial[-1]))
    u_best = np.broadcast_to(stripes, x0.shape).copy()
    x_best = image(u_best)
    pred = predict(x_best)
    obj_best, labels_best, used, accepted = soft_dice(pred, target, classes), pred.labels, 1, 0
    n_vox = int(np.prod(spatial))
    for it in range(1, queries):
        p = p_selection(p_init, it, queries)
        side = int(min(max(round((p * n_vox) ** (1 / len(spatial))), 1), min(spatial)))
        corner = [int(rng.integers(0, n - side + 1)) for n in spatial]
        window = (slice(None), *(slice(a, a + side) for a in corner))
        candidate = u_best.copy()
        for _ in range(10):  # redraw signs that would leave the window unchanged
            signs = rng.choice([-fraction, fraction], size=(c, *[1] * len(spatial)))
            if not np.all(candidate[window] == signs):
                break
        candidate[window] = signs
        x_new = image(candidate)
        pred = predict(x_new)
        used += 1
        obj = soft_dice(pred, target, classes)
        if obj < obj_best:
            u_best, x_best, obj_best, labels_best, accepted = candidate, x_new, obj, pred.labels, accepted + 1
    report = {"queries": used, "accepted": accepted, "attack_objective": obj_best,
              "attack_dice": hard_dice(np.asarray(labels_best), target, classes)}
    return x_best, report
