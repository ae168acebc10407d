"""The ``torch`` format: a ``pkg.module:factory`` entry point plus a state_dict weights file.

The factory is called with the card's ``[model.kwargs]`` and must return a ``torch.nn.Module``;
the weights are loaded with ``torch.load(..., weights_only=True)``, so a file that would run code
when unpickled is refused with a ConfigError. :class:`TorchBackedModel` is shared with the
``torchscript`` format: normalisation runs in torch, so :meth:`TorchBackedModel.torch_logits` is
differentiable with respect to raw intensities (for adversarial attacks).
"""
from __future__ import annotations

import inspect
import pickle
import warnings
from abc import abstractmethod
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from harness.errors import FOREIGN_FAILURES, ConfigError
from harness.models import preprocessing as pp
from harness.models.base import Model, missing_file
from harness.models.card import ModelCard, per_axis
from harness.plugins import import_object


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (torch's run to pages), else its type's name."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _mismatch(exc: BaseException, limit: int = 400) -> str:
    """torch's ``load_state_dict`` refusal on one line: the missing, unexpected and mis-sized keys."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = " ".join(lines[1:] or lines)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _tensor(array: np.ndarray) -> torch.Tensor:
    """A tensor sharing memory with ``array`` when it is writable (torch warns on read-only arrays)."""
    return torch.from_numpy(array if array.flags.writeable else array.copy())


def _unpickling_detail(exc: BaseException) -> str:
    """The informative part of torch's weights-only refusal: the unpickler's own error, up to its
    first sentence ("Unsupported global: GLOBAL torch.nn.modules.conv.Conv2d was not an allowed
    global by default"); torch's advice around it (re-run with weights_only=False, allowlist the
    class) contradicts the safe-loading rule, so it is dropped."""
    text = str(exc)
    marker = "WeightsUnpickler error:"
    if marker in text:
        detail = text.split(marker, 1)[1].strip().splitlines()[0]
        return detail.split(". ", 1)[0].rstrip(".")[:200]
    lines = [line.strip() for line in text.splitlines()[1:] if line.strip()]
    useful = [line for line in lines if not line.startswith(("Please file an issue", "Check the documentation", "(1)",
                                                              "(2)"))]
    return " ".join(useful)[:200] or first_line(exc)


def _placeholder(path: Path) -> str | None:
    """What ``path`` holds instead of weights when it is a Git LFS pointer or a text/HTML page."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(64).lstrip()
    except OSError:
        return None  # torch.load below names the problem
    if head.startswith(b"version https://git-lfs"):
        return "a Git LFS pointer, not the weights; run git lfs pull"
    if head[:1] in (b"<", b"{"):
        return "text (an HTML page or JSON?), not torch weights; the download probably failed, fetch the file again"
    return None


def safe_load(path: Path) -> Any:
    """``torch.load(path, weights_only=True)``: tensors and plain containers only, nothing in the
    file runs (pickle.UnpicklingError for anything else)."""
    with warnings.catch_warnings():
        # Plain-pickle files make the safe unpickler warn about their protocol before it refuses
        # (or accepts) them; the callers report the outcome, the warning adds nothing.
        warnings.filterwarnings("ignore", message=r"Detected pickle protocol", category=UserWarning)
        return torch.load(path, map_location="cpu", weights_only=True)


def state_dict_of(obj: Any) -> Mapping[str, torch.Tensor] | None:
    """``obj`` as a state_dict (a mapping of names to tensors, also inside the common checkpoint
    layout ``{"state_dict": ..., "epoch": ...}``), else None."""
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if isinstance(obj, Mapping) and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj
    return None


def load_state_dict(path: Path, where: str) -> Mapping[str, torch.Tensor]:
    """``torch.load(path, weights_only=True)`` → a state_dict; ConfigError naming the card otherwise."""
    if not path.is_file():
        raise ConfigError(f"{where}: [model] weights: {missing_file(path)}; fix the path "
                          "(relative to the card) or train/download the weights")
    placeholder = _placeholder(path)
    if placeholder:
        raise ConfigError(f"{where}: [model] weights: {path.name} is {placeholder}")
    try:
        obj: Any = safe_load(path)
    except pickle.UnpicklingError as exc:
        raise ConfigError(f"{where}: [model] weights: refused to load {path.name}: torch.load(weights_only=True) "
                          f"accepts only tensors and plain containers, and this file holds something else "
                          f"({_unpickling_detail(exc)}): a pickled Python object such as a whole model, which "
                          "would run code when unpickled; save a plain state_dict with "
                          "torch.save(model.state_dict(), path)") from exc
    except Exception as exc:  # torch's readers fail in many ways on a file that is not weights (KeyError too)
        raise ConfigError(f"{where}: [model] weights: {path.name} is not a readable torch weights file "
                          f"({type(exc).__name__}: {first_line(exc)}); save it with "
                          "torch.save(model.state_dict(), path)") from exc
    state = state_dict_of(obj)
    if state is None:
        raise ConfigError(f"{where}: [model] weights: {path.name} is not a state_dict (a mapping of "
                          "parameter names to tensors); save it with torch.save(model.state_dict(), path)")
    return state


def _unusable_device(card: ModelCard, exc: BaseException) -> ConfigError:
    """``[model] device`` names a device this host cannot use (e.g. "Torch not compiled with CUDA")."""
    return ConfigError(f"{card.where}: [model] device: cannot use {card.model.device!r} "
                       f"({first_line(exc)}); use \"cpu\" or an available GPU")


class TorchBackedModel(Model):
    """Shared by ``torch`` and ``torchscript``: an ``nn.Module`` run on ``[model] device``."""

    differentiable = True

    def __init__(self, card: ModelCard, *, ndim_hint: int = 2) -> None:
        super().__init__(card, ndim_hint=ndim_hint)
        try:
            self.device = torch.device(card.model.device)
        except (RuntimeError, ValueError) as exc:
            raise ConfigError(f"{card.where}: [model] device: {exc}; use e.g. \"cpu\" or \"cuda:0\"") from exc
        try:  # before loading: a TorchScript archive mapped to a missing GPU blames the archive otherwise
            torch.empty(0, device=self.device)
        except (RuntimeError, AssertionError) as exc:
            raise _unusable_device(card, exc) from exc
        network = self._build()
        try:
            self.network = network.to(self.device).eval()
        except (RuntimeError, AssertionError) as exc:  # e.g. "Torch not compiled with CUDA enabled"
            raise _unusable_device(card, exc) from exc
        # A label-map network has no scores to differentiate.
        self.differentiable = card.output.kind != "labels"

    @abstractmethod
    def _build(self) -> torch.nn.Module:
        """Construct the network (weights loaded)."""

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        out = self.network(x)
        if isinstance(out, (list, tuple)):  # deep supervision: full resolution first
            out = out[0]
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"network returned {type(out).__name__}, expected a tensor")
        return out

    def _normalise(self, image: np.ndarray) -> np.ndarray:
        inp = self.model_card.input
        with torch.no_grad():
            return pp.normalize_torch(_tensor(image[None]), inp.normalize, inp.window)[0].numpy()

    def _forward(self, batch: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
        with torch.inference_mode():
            out = self._run(_tensor(batch).to(self.device))
            return out.float().cpu().numpy()

    def torch_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, K, *spatial)`` for raw-intensity input ``(N, C, *spatial)``, differentiable
        w.r.t. ``x`` (normalisation and padding included; no resampling or sliding windows, so
        feed images at the model's spacing and of a size the network can take whole).
        ``kind = "probabilities"`` models return log-probabilities; one-channel (sigmoid) models
        get a zero background channel so that softmax/argmax work as for K classes."""
        if not self.differentiable:
            raise ConfigError(f"{self.model_card.where}: model {self.name!r} returns label maps; "
                              "it has no differentiable scores")
        inp = self.model_card.input
        x = x.to(self.device, torch.float32)
        z = pp.normalize_torch(x, inp.normalize, inp.window)
        spatial = tuple(x.shape[2:])
        target = pp.padded_shape(spatial, per_axis(inp.pad_multiple, len(spatial)))
        amounts = pp.pad_amounts(spatial, target)
        if any(a or b for a, b in amounts):
            z = F.pad(z, [v for pair in reversed(amounts) for v in pair])
        out = self._run(z)
        out = out[(slice(None), slice(None), *(slice(b, b + s) for (b, _), s in zip(amounts, spatial)))]
        if out.shape[1] == 1:
            out = torch.cat([torch.zeros_like(out), out] if self.model_card.output.kind == "logits"
                            else [1 - out, out], dim=1)
        if self.model_card.output.kind == "probabilities":
            out = torch.log(out.clamp_min(1e-12))
        return out


class TorchModel(TorchBackedModel):
    """``format = "torch"``: ``entry`` factory + ``weights`` state_dict (optional: without it the
    factory must return a ready network, e.g. one that loads its own weights)."""

    format = "torch"

    def _build(self) -> torch.nn.Module:
        card = self.model_card
        if not card.model.entry:
            raise ConfigError(f"{card.where}: [model] entry: missing; the torch format needs "
                              '"package.module:factory" returning an nn.Module (e.g. '
                              '"harness.train.unet:build_unet")')
        factory = import_object(card.model.entry, what=f"{card.where}: [model] entry")
        try:
            with torch.random.fork_rng(devices=[]):  # random init the weights replace: not the caller's RNG
                network = factory(**dict(card.model.kwargs))
        except (TypeError, ValueError) as exc:  # unknown keyword / a value the factory refuses
            raise ConfigError(f"{card.where}: [model.kwargs] do not fit {card.model.entry}: "
                              f"{first_line(exc)}; fix the keyword arguments") from exc
        except FOREIGN_FAILURES as exc:  # the factory itself failed
            raise ConfigError(f"{card.where}: [model] entry {card.model.entry} raised "
                              f"{type(exc).__name__}: {first_line(exc)}; fix the factory or its "
                              "[model.kwargs]") from exc
        if not isinstance(network, torch.nn.Module):
            raise ConfigError(f"{card.where}: [model] entry {card.model.entry} returned "
                              f"{type(network).__name__}, not a torch.nn.Module")
        if card.model.weights is not None:
            state = load_state_dict(card.model.weights, card.where)
            try:
                network.load_state_dict(state, strict=True)
            except RuntimeError as exc:
                raise ConfigError(f"{card.where}: [model] weights {card.model.weights.name} do not fit the "
                                  f"network built by {card.model.entry} with [model.kwargs] "
                                  f"({_mismatch(exc)}); use matching kwargs or weights") from exc
        return network

    def files(self) -> list[Path]:
        return [self.model_card.model.weights] if self.model_card.model.weights else []

    def identity(self) -> bytes:
        factory = import_object(str(self.model_card.model.entry))
        try:
            return inspect.getsource(factory).encode() + repr(dict(self.model_card.model.kwargs)).encode()
        except (OSError, TypeError):
            return super().identity()
