"""The ``callable`` format: a Python function ``pkg.module:function`` on numpy arrays.

The function receives one prepared ``(C, *spatial)`` float32 image (or, with
``[model] batched = true``, a ``(N, C, *spatial)`` batch) and, if it has a parameter named
``spacing``, the voxel spacing in mm as a keyword. It returns an integer label map ``(*spatial)``
(``(N, *spatial)`` batched) for ``kind = "labels"`` (the default), or class scores
``(K, *spatial)`` (``(N, K, *spatial)``) for ``kind = "logits"``/``"probabilities"``.

>>> def threshold(image):            # a complete "model"
...     return (image[0] > 0.5).astype("uint8")
"""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Callable

import numpy as np

from harness.errors import ConfigError
from harness.models.base import Model
from harness.models.card import ModelCard
from harness.plugins import import_object


class CallableModel(Model):
    """``format = "callable"``: ``[model] entry`` names the function."""

    format = "callable"

    def __init__(self, card: ModelCard, *, ndim_hint: int = 2) -> None:
        super().__init__(card, ndim_hint=ndim_hint)
        if not card.model.entry:
            raise ConfigError(f"{card.where}: [model] entry: missing; the callable format needs "
                              '"package.module:function"')
        self.function: Callable[..., Any] = import_object(card.model.entry, what=f"{card.where}: [model] entry")
        if not callable(self.function):
            raise ConfigError(f"{card.where}: [model] entry {card.model.entry} is not callable")
        try:
            params = inspect.signature(self.function).parameters
        except (TypeError, ValueError):
            params = {}  # type: ignore[assignment]
        self._wants_spacing = "spacing" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
        self.batching = card.model.batched

    def _call(self, x: np.ndarray, spacing: tuple[float, ...]) -> Any:
        return self.function(x, spacing=spacing) if self._wants_spacing else self.function(x)

    def _forward(self, batch: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
        if self.batching:
            return np.asarray(self._call(batch, spacing))
        return np.stack([np.asarray(self._call(image, spacing)) for image in batch])

    def files(self) -> list[Path]:
        return []

    def identity(self) -> bytes:
        """The function's source code (its module's file, or its name, when source is unavailable)."""
        try:
            return inspect.getsource(self.function).encode()
        except (OSError, TypeError):
            module = inspect.getmodule(self.function)
            path = getattr(module, "__file__", None)
            if path and Path(path).is_file():
                return Path(path).read_bytes()
            return str(self.model_card.model.entry).encode()
