"""Label-map postprocessing a model card may ask for (``[output] postprocess``).

``largest_component``: per foreground class, keep only its largest connected component
(face connectivity: 4-neighbourhood in 2D, 6 in 3D); the other components become background.
Suited to targets that are one connected structure per image (one lesion, one organ); wrong for
multi-focal disease. An empty class stays empty.
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
