"""``format = "threshold"``: a model adapter that segments by intensity thresholds.

Not a useful model, but the smallest complete adapter: subclass ``harness.models.base.Model``,
implement ``_forward`` on prepared ``(N, C, *spatial)`` float32 arrays and return ``(N, *spatial)``
integer labels (``[output] kind = "labels"``) or ``(N, K, *spatial)`` scores. The base class does
normalisation, padding, output validation and hashing. A card selects it with::

    [model]
    name = "threshold-demo"
    format = "threshold"
    [model.options]
    thresholds = [0.5, 1.5]     # on the normalised image: class k where value > thresholds[k-1]
    [input]
    normalize = "zscore"
    [output]
    kind = "labels"
    labels = {1 = "organ", 2 = "lesion"}
"""
from __future__ import annotations

from typing import Any

import numpy as np

from harness.errors import ConfigError
from harness.models.base import Model
from harness.models.card import ModelCard


class ThresholdModel(Model):
    format = "threshold"

    def __init__(self, card: ModelCard, **kwargs: Any) -> None:
        super().__init__(card, **kwargs)
        thresholds = card.model.options.get("thresholds", [0.5])
        if not (isinstance(thresholds, list) and thresholds
                and all(isinstance(t, (int, float)) for t in thresholds)):
            raise ConfigError(f"{card.where}: [model.options] thresholds must be a list of numbers")
        self.thresholds = sorted(float(t) for t in thresholds)

    def identity(self) -> bytes:
        """No model file: the sha256 covers the card's [model] table (thresholds included)."""
        return repr((self.format, self.thresholds)).encode()

    def _forward(self, batch: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
        image = batch[:, 0]
        labels = np.zeros(image.shape, dtype=np.int64)
        for k, threshold in enumerate(self.thresholds, start=1):
            labels[image > threshold] = k
        return labels
