"""Label-map postprocessing a model card may ask for (``[output] postprocess``).

``largest_component``: per foreground class, keep only its largest connected component
(face connectivity: 4-neighbourhood in 2D, 6 in 3D); the other components become background.
``most_confident_component``: per foreground class, keep the connected component that holds the
class's most probable voxel (needs the model's class scores): where a large false region outweighs
a smaller true one, the network's confidence rather than the size decides (on BUS-BRA ultrasound
the lesion is often the smaller of two dark regions; docs/training.md).
Both suit targets that are one connected structure per image (one lesion, one organ) and are wrong
for multi-focal disease. An empty class stays empty.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi


def keep_largest_components(labels: np.ndarray, classes: Sequence[int] | None = None) -> np.ndarray:
    """A copy of the integer label map ``labels`` with only the largest connected component of
    each class in ``classes`` (default: every non-zero class present); ties keep the first found.

    >>> keep_largest_components(np.array([1, 1, 0, 1, 2, 0, 2, 2])).tolist()
    [1, 1, 0, 0, 0, 0, 2, 2]
    """
    out = labels.copy()
    for k in classes if classes is not None else [int(v) for v in np.unique(labels) if v]:
        comp, n = ndi.label(labels == k)
        if n > 1:
            sizes = ndi.sum_labels(np.ones_like(comp), comp, range(1, n + 1))
            out[(comp > 0) & (comp != 1 + int(np.argmax(sizes)))] = 0
    return out


def keep_most_confident_components(labels: np.ndarray, probabilities: np.ndarray,
                                   classes: Sequence[int] | None = None) -> np.ndarray:
    """A copy of the integer label map ``labels`` (``(*S)``) with, per class ``k`` in ``classes``
    (default: every non-zero class present), only the connected component that contains the
    highest ``probabilities[k]`` among the voxels labelled ``k``; ``probabilities`` is
    ``(K, *S)``, background first. Ties keep the first voxel in C order.

    >>> p = np.array([[0.0, 0.0, 0.0, 0.0, 0.0], [0.6, 0.7, 0.0, 0.9, 0.0]])
    >>> keep_most_confident_components(np.array([1, 1, 0, 1, 0]), p).tolist()
    [0, 0, 0, 1, 0]
    """
    if probabilities.shape[1:] != labels.shape:
        raise ValueError(f"probabilities {probabilities.shape} do not match the label map {labels.shape}")
    out = labels.copy()
    for k in classes if classes is not None else [int(v) for v in np.unique(labels) if v]:
        mask = labels == k
        comp, n = ndi.label(mask)
        if n > 1:
            peak = np.unravel_index(int(np.argmax(np.where(mask, probabilities[k], -np.inf))), labels.shape)
            out[mask & (comp != comp[peak])] = 0
    return out


def apply_postprocess(rule: str, labels: np.ndarray, probabilities: np.ndarray | None,
                      classes: Sequence[int] | None = None) -> np.ndarray:
    """``labels`` cleaned by the card's ``[output] postprocess`` ``rule`` ("none" returns them as
    they are); ``probabilities`` (``(K, *S)``) are needed by ``most_confident_component`` only."""
    if rule == "largest_component":
        return keep_largest_components(labels, classes)
    if rule == "most_confident_component":
        if probabilities is None:
            raise ValueError("most_confident_component needs the class probabilities")
        return keep_most_confident_components(labels, probabilities, classes)
    return labels
