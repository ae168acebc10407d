"""Model adapters: any segmentation model behind one protocol.

Usage::

    from harness.models import load_model
    model = load_model("my_model.onnx")                 # a bare file, defaults
    model = load_model("cards/nnunet.toml", ndim=3)     # a card
    pred = model.predict(case.image, case.spacing)      # Prediction(labels, probabilities)

Formats: ``torch``, ``torchscript``, ``onnx``, ``callable``, ``command`` and any adapter
installed under the entry-point group ``harness.models`` (a class or factory taking the parsed
:class:`~harness.models.card.ModelCard` and returning a :class:`~harness.models.base.Model`).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from harness.errors import FOREIGN_FAILURES, ConfigError, ModelError, describe_failure
from harness.models.base import Model, Prediction
from harness.models.card import ModelCard, default_card, read_card

RESOURCES = Path(__file__).resolve().parent.parent / "resources"

# format -> "module:class", imported on first use (torch / onnxruntime load only when needed)
_BUILTIN: dict[str, str] = {
    "torch": "harness.models.torch_adapter:TorchModel",
    "torchscript": "harness.models.torchscript:TorchScriptModel",
    "onnx": "harness.models.onnx_adapter:OnnxModel",
    "callable": "harness.models.callable_adapter:CallableModel",
    "command": "harness.models.command:CommandModel",
}


def available_formats() -> dict[str, str]:
    """Format name → where its adapter lives (bundled first, then ``harness.models`` plugins)."""
    from importlib.metadata import entry_points

    found = dict(_BUILTIN)
    for ep in entry_points(group="harness.models"):
        found.setdefault(ep.name, ep.value)
    return found


def _adapter(fmt: str, where: str) -> Callable[..., Any]:
    """The bundled adapter class or the plugin of format ``fmt`` (only that plugin is imported)."""
    from harness.plugins import entry_point_names, entry_point_object, import_object, refuse_shadowing

    if fmt in _BUILTIN:
        refuse_shadowing("harness.models", fmt, "model format")
        return import_object(_BUILTIN[fmt], what="model adapter")
    plugin = entry_point_object("harness.models", fmt)
    if plugin is None:
        known = ", ".join([*_BUILTIN, *sorted(entry_point_names("harness.models"))])
        raise ConfigError(f"{where}: [model] format: unknown format {fmt!r}; use one of {known} "
                          "(or install the adapter plugin that provides it)")
    return plugin


def build_model(card: ModelCard, *, ndim_hint: int = 2) -> Model:
    """Instantiate the adapter for a parsed card (bundled adapters get ``ndim_hint`` for probing)."""
    factory = _adapter(card.model.format, card.where)
    if card.model.format in _BUILTIN:
        model = factory(card, ndim_hint=ndim_hint)
    else:
        try:
            model = factory(card)
        except (ConfigError, ModelError):
            raise
        except FOREIGN_FAILURES as exc:  # a plugin adapter may fail in any way: it is not the harness's error
            raise ConfigError(f"{card.where}: adapter plugin {card.model.format!r} failed to build the model: "
                              f"{describe_failure(exc)}; fix the card or the plugin") from exc
    if not callable(getattr(model, "predict", None)):
        raise ConfigError(f"{card.where}: adapter plugin {card.model.format!r} returned "
                          f"{type(model).__name__}, which has no predict(image, spacing) method")
    return model


def _rebuild(card: ModelCard, ndim_hint: int) -> Model:
    """Unpickling hook of :class:`Model` (see ``Model.__reduce__``)."""
    return build_model(card, ndim_hint=ndim_hint)


def reference_card_path(ndim: int = 2) -> Path:
    """The bundled reference model card for ``ndim`` (2 or 3)."""
    if ndim not in (2, 3):
        raise ConfigError(f"no bundled reference model for ndim={ndim}; use 2 or 3")
    return RESOURCES / f"reference{ndim}d.toml"


def load_card(spec: str | Path | None, *, ndim: int = 2) -> ModelCard:
    """Resolve ``spec`` (card, bare model file, ``"reference"`` or None) to a parsed card."""
    if spec is None or str(spec) == "reference":
        path = reference_card_path(ndim)
        if not path.is_file():
            raise ConfigError(f"the bundled reference model card {path} is missing; reinstall harness "
                              "or pass --model with your own card")
        return read_card(path)
    path = Path(os.fspath(spec)).expanduser()
    if path.suffix.lower() == ".toml":
        return read_card(path)
    if not path.exists():
        raise ConfigError(f"model {str(spec)!r} does not exist; pass a .toml model card or a "
                          ".ts/.pt/.onnx file (Python functions and programs need a card: see docs/models.md)")
    return default_card(path)


def load_model(spec: str | Path | None, *, ndim: int = 2) -> Model:
    """Load a model from a card (``.toml``), a bare ``.ts``/``.pt``/``.pth``/``.onnx`` file, or the
    bundled reference (``None`` or ``"reference"``) for ``ndim``. Bad cards raise ConfigError.

    A network or function in memory is not a spec: write a card whose ``entry`` names it
    (``format = "torch"`` / ``"callable"``, docs/models.md) so worker processes can build it too.
    """
    if spec is not None and not isinstance(spec, (str, os.PathLike)):
        raise ConfigError(f"load_model takes a card or model file path, got a {type(spec).__name__} object; "
                          'write a card with format = "torch" or "callable" and entry = "module:name" naming '
                          "it (docs/models.md), so worker processes can build it too")
    model = build_model(load_card(spec, ndim=ndim), ndim_hint=ndim)
    _ = model.labels  # undeclared classes are probed now, so a broken model fails at load time
    return model


__all__ = ["Model", "ModelCard", "Prediction", "available_formats", "build_model", "load_card",
           "load_model", "read_card", "reference_card_path"]
