"""The ``torchscript`` format: a ``torch.jit.save``-d archive (``.ts``; also ``.pt``/``.pth``).

TorchScript archives hold TorchScript code and tensors, not arbitrary pickles, so loading one does
not run Python. A ``.pt`` file that turns out to be a state_dict is reported with the fix (a card
with ``format = "torch"``, an ``entry`` factory and ``weights``).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import torch

from harness.errors import ConfigError
from harness.models.base import missing_file
from harness.models.torch_adapter import TorchBackedModel, _first_line


class TorchScriptModel(TorchBackedModel):
    """``format = "torchscript"``: ``[model] path`` is the archive."""

    format = "torchscript"

    def _build(self) -> torch.nn.Module:
        card = self.model_card
        path = card.model.path
        if path is None:
            raise ConfigError(f"{card.where}: [model] path: missing; point it at the TorchScript file")
        if not path.is_file():
            raise ConfigError(f"{card.where}: [model] path: {missing_file(path)}; fix the path "
                              "(relative to the card)")
        try:
            with warnings.catch_warnings():
                # torch >= 2.10 deprecates TorchScript in favour of torch.export (a FutureWarning
                # from 2.14); users still ship .ts files, and loading them is this adapter's job.
                for category in (DeprecationWarning, FutureWarning):
                    warnings.filterwarnings("ignore", message=r"`torch\.jit\.load` is deprecated",
                                            category=category)
                return torch.jit.load(str(path), map_location=self.device)
        except (RuntimeError, ValueError, OSError) as exc:
            raise ConfigError(f"{card.where}: {path.name} is not a TorchScript archive ({_first_line(exc)}); "
                              "if it is a state_dict, write a card with format = \"torch\", entry "
                              "(the network factory) and weights") from exc

    def files(self) -> list[Path]:
        return [self.model_card.model.path] if self.model_card.model.path else []
