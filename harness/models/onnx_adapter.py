"""The ``onnx`` format: an ONNX file run with onnxruntime (``[model] providers``, CPU by default).

The first graph input receives ``(N, C, *spatial)`` float input, the first output is read back.
Fixed dimensions in the graph are honoured: a fixed batch size of 1 turns batching off, a larger
one is filled (the last batch padded with zeros, their outputs dropped), and fixed spatial
dimensions become the default ``patch_size`` (sliding windows), so exports with static shapes work
without a card. A graph whose first input is not a float tensor is refused at load.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import ConfigError
from harness.models.base import Model, missing_file
from harness.models.card import ModelCard

_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}


class OnnxModel(Model):
    """``format = "onnx"``: ``[model] path`` is the ``.onnx`` file."""

    format = "onnx"

    def __init__(self, card: ModelCard, *, ndim_hint: int = 2) -> None:
        super().__init__(card, ndim_hint=ndim_hint)
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise ConfigError(f"{card.where}: format = \"onnx\" needs onnxruntime; "
                              "install it with pip install onnxruntime (or pip install '.[onnx]' in the harness "
                              "checkout)") from exc
        path = card.model.path
        if path is None or not path.is_file():
            raise ConfigError(f"{card.where}: [model] path: "
                              + ("missing; point it at the .onnx file" if path is None else
                                 f"{missing_file(path)}; fix the path (relative to the card)"))
        available = set(ort.get_available_providers())
        # a preference list, as onnxruntime reads it: those this installation lacks are skipped
        usable = [p for p in card.model.providers if p in available]
        if not usable:
            raise ConfigError(f"{card.where}: [model] providers: none of {list(card.model.providers)} is available "
                              f"in this onnxruntime (available: {sorted(available)}); add \"CPUExecutionProvider\"")
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only; warnings would be printed, not raised
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options, providers=usable)
        except Exception as exc:  # onnxruntime raises its own exception types for bad graphs
            raise ConfigError(f"{card.where}: {path.name} is not a loadable ONNX model "
                              f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from exc
        skipped = [p for p in card.model.providers if p not in available]
        self.runs_on = ", ".join(self.session.get_providers()) + (f" ({', '.join(skipped)} not available here)"
                                                                  if skipped else "")
        graph_input = self.session.get_inputs()[0]
        self._input_name = graph_input.name
        if graph_input.type not in _DTYPES:
            raise ConfigError(f"{card.where}: {path.name} takes {graph_input.type} input {graph_input.name!r}; the "
                              "harness feeds float images (float, float16 or double): re-export it with a float input")
        self._dtype = _DTYPES[graph_input.type]
        shape: list[Any] = list(graph_input.shape)
        self._rank = len(shape)
        if len(shape) not in (4, 5):
            raise ConfigError(f"{card.where}: {path.name} takes input of shape {shape}; the harness feeds "
                              "(N, C, *spatial) with 2 or 3 spatial axes")
        self.batching = not (isinstance(shape[0], int) and shape[0] == 1)
        self._fixed_batch = shape[0] if isinstance(shape[0], int) and shape[0] > 1 else None
        spatial = shape[2:]
        if all(isinstance(s, int) and s > 0 for s in spatial):
            fixed = tuple(int(s) for s in spatial)
            if self.patch_size is None:
                self.patch_size = fixed
            elif tuple(self.patch_size) != fixed:
                raise ConfigError(f"{card.where}: [input] patch_size {list(self.patch_size)} differs from "
                                  f"the model's fixed input size {list(fixed)}; remove it or match it")
        if isinstance(shape[1], int) and card.input.channels not in (None, shape[1]):
            raise ConfigError(f"{card.where}: [input] channels = {card.input.channels} but the model "
                              f"takes {shape[1]}")
        self._channels = shape[1] if isinstance(shape[1], int) else None

    @property
    def ndim(self) -> int | None:
        return self.model_card.ndim or self._rank - 2

    def check_input(self, *, channels: int, ndim: int) -> list[str]:
        problems = super().check_input(channels=channels, ndim=ndim)
        if self._channels is not None and self.model_card.input.channels is None and channels != self._channels:
            problems.append(f"model {self.name!r} takes {self._channels} channel(s), data has {channels}")
        return problems

    def _probe_labels(self) -> dict[int, str]:
        if self.model_card.input.channels is None and self._channels is not None:
            from dataclasses import replace

            self.model_card = replace(self.model_card, input=replace(self.model_card.input,
                                                                     channels=self._channels))
        return super()._probe_labels()

    def _forward(self, batch: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
        batch = batch.astype(self._dtype, copy=False)
        size = self._fixed_batch
        if size is None:
            return self.session.run(None, {self._input_name: batch})[0]
        outputs = []
        for start in range(0, len(batch), size):  # a graph exported with a fixed batch of `size`
            chunk = batch[start:start + size]
            filled = np.concatenate([chunk, np.zeros((size - len(chunk), *chunk.shape[1:]), chunk.dtype)])
            outputs.append(np.asarray(self.session.run(None, {self._input_name: filled})[0])[:len(chunk)])
        return np.concatenate(outputs)

    def files(self) -> list[Path]:
        path = self.model_card.model.path
        assert path is not None
        data = path.with_name(path.name + ".data")  # external weights of large exports
        return [path, data] if data.is_file() else [path]
