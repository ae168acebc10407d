"""Write the model card (TOML) for a trained network, in the CONTRACTS.md layout.

A tiny TOML writer for the value types a card needs (str, int, float, bool, lists, nested
tables, and inline tables with integer keys such as ``labels = {1 = "organ"}``).
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"TOML cannot hold {v}")
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _key(k: Any) -> str:
    s = str(k)
    return s if s.replace("_", "").replace("-", "").isalnum() else json.dumps(s)


def dumps_toml(doc: Mapping[str, Any], *, inline_keys: frozenset[str] = frozenset({"labels"})) -> str:
    """Serialise nested dicts: dict values become ``[tables]`` except keys in ``inline_keys``."""
    lines: list[str] = []

    def table(prefix: str, d: Mapping[str, Any]) -> None:
        scalars = [(k, v) for k, v in d.items() if not isinstance(v, Mapping) or k in inline_keys]
        subs = [(k, v) for k, v in d.items() if isinstance(v, Mapping) and k not in inline_keys]
        if prefix and (scalars or not subs):
            lines.append(f"[{prefix}]")
        for k, v in scalars:
            lines.append(f"{_key(k)} = {_value(v)}")
        if prefix and (scalars or not subs):
            lines.append("")
        for k, v in subs:
            table(f"{prefix}.{_key(k)}" if prefix else _key(k), v)

    table("", doc)
    return "\n".join(lines).rstrip() + "\n"


def model_card(*, name: str, weights: str, kwargs: Mapping[str, Any], labels: Mapping[int, str],
               pad_multiple: int | list[int], normalize: str = "zscore", window: list[float] | None = None,
               patch_size: list[int] | None = None, overlap: float = 0.5,
               spacing: list[float] | None = None, tta_flip_axes: list[int] | None = None,
               tta_shifts: bool = False,
               postprocess: str | None = None, intended_use: str, training: Mapping[str, Any] | None = None,
               entry: str = "harness.train.unet:build_unet") -> dict[str, Any]:
    """The card as a dict (see docs/dev/CONTRACTS.md). ``pad_multiple`` is one int or one per
    axis; ``patch_size`` (with ``overlap``) asks the adapter for Gaussian-blended sliding-window
    inference (the test Dice is measured through it; validation during training uses overlap 0.25,
    a cheaper window for checkpoint selection); ``spacing`` (mm) is the grid the network was trained on
    (the adapter resamples to it and back); ``tta_flip_axes``, ``tta_shifts`` and ``postprocess`` ask
    for flip and shift test-time augmentation and connected-component cleaning; ``entry`` is the
    factory that ``kwargs`` go to (``harness.train.ensemble:build_unet_ensemble`` for ensembles)."""
    card: dict[str, Any] = {
        "model": {"name": name, "format": "torch", "entry": entry,
                  "weights": weights, "intended_use": intended_use, "kwargs": dict(kwargs)},
        "input": {"channels": int(kwargs["in_channels"]), "normalize": normalize,
                  "pad_multiple": pad_multiple if isinstance(pad_multiple, int) else [int(m) for m in pad_multiple]},
        "output": {"kind": "logits", "labels": {int(k): str(v) for k, v in sorted(labels.items())}},
    }
    if window is not None:
        card["input"]["window"] = [float(w) for w in window]
    if spacing is not None:
        card["input"]["spacing"] = [float(s) for s in spacing]
    if patch_size is not None:
        card["input"]["patch_size"] = [int(p) for p in patch_size]
        card["input"]["overlap"] = float(overlap)
    if tta_flip_axes:
        card["input"]["tta_flip_axes"] = [int(a) for a in tta_flip_axes]
    if tta_shifts:
        card["input"]["tta_shifts"] = True
    if postprocess:
        card["output"]["postprocess"] = postprocess
    if training:
        card["training"] = dict(training)
    return card


def write_card(path: Path, card: Mapping[str, Any]) -> None:
    Path(path).write_text(dumps_toml(card), encoding="utf-8")
