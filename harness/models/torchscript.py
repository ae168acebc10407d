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
from harness.models.torch_adapter import TorchBackedModel, first_line, safe_load, state_dict_of


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
            if _is_torchscript_archive(path):  # e.g. an unknown custom op, a newer torch, a device mapping
                raise ConfigError(f"{card.where}: {path.name} is a TorchScript archive that this torch cannot load "
                                  f"({first_line(exc)})") from exc
            raise ConfigError(f"{card.where}: {path.name} is not a TorchScript archive: {_what_it_is(path)}") from exc

    def files(self) -> list[Path]:
        return [self.model_card.model.path] if self.model_card.model.path else []


def _is_torchscript_archive(path: Path) -> bool:
    """Whether ``path`` is a zip that holds TorchScript code (``*/code/`` or ``*/constants.pkl``), which a
    plain ``torch.save`` archive does not."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return any("/code/" in name or name.endswith("/constants.pkl") for name in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def _what_it_is(path: Path) -> str:
    """What a ``.pt``/``.pth`` file that is not TorchScript holds, and what to do: a state_dict, a
    pickled Python object (a whole model), or something torch cannot read (damaged, another format).
    Read with ``weights_only=True``: nothing in the file runs."""
    import pickle

    try:
        obj = safe_load(path)
    except pickle.UnpicklingError:
        return ("it holds a pickled Python object (a whole model saved with torch.save(model)), which the harness "
                "does not unpickle (it would run code); export it with torch.jit.script or torch.jit.trace, or save "
                "model.state_dict() and write a card with format = \"torch\", entry (the network factory) and weights")
    except Exception:  # noqa: BLE001 - torch's readers fail in many ways on a file that is not theirs
        return "torch cannot read it (a damaged file, or another format); export the model again"
    if state_dict_of(obj):  # a non-empty one
        return ("it is a state_dict (weights without the network's code); write a card with format = \"torch\", "
                "entry (the network factory) and weights")
    return (f"it holds a {type(obj).__name__}, not a network; export the model with torch.jit.script or "
            "torch.jit.trace, or write a card")
