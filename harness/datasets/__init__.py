"""Dataset readers: bundled phantoms, MSD/nnU-Net folders, dataset cards."""
from __future__ import annotations

import re
from pathlib import Path

from harness.datasets.base import Dataset
from harness.datasets.phantom import phantom_dataset
from harness.errors import ConfigError

_PHANTOM = re.compile(r"^phantom(?P<dims>[23])d(?::(?P<opts>.*))?$")


def _phantom(spec: str, where: str = "--data") -> Dataset | None:
    match = _PHANTOM.match(spec)
    if not match:
        return None
    options: dict[str, int] = {}
    for part in filter(None, (match.group("opts") or "").split(",")):
        key, _, value = part.partition("=")
        if key not in ("n", "seed") or not (value.isascii() and value.isdigit()):
            raise ConfigError(f"{where} {spec!r}: phantom options are n=INT and seed=INT, e.g. 'phantom2d:n=24,seed=1'")
        if key in options:
            raise ConfigError(f"{where} {spec!r}: {key} is given twice; give it once")
        options[key] = int(value)
    if options.get("n", 1) < 1:
        raise ConfigError(f"{where} {spec!r}: n must be at least 1")
    return phantom_dataset(int(match.group("dims")), **options)


def open_dataset(spec: str | Path | None, *, default: str = "phantom2d", where: str = "--data") -> Dataset:
    """A dataset from ``phantom2d``/``phantom3d[:n=N,seed=S]``, an MSD/nnU-Net folder or a card.

    None means ``default``. ConfigError (exit 3) with the fix when nothing matches, its message
    starting with ``where`` (what gave the spec: ``--data``, or a suite's ``data`` key).
    """
    text = str(spec) if spec is not None else default
    if (dataset := _phantom(text, where)) is not None:
        return dataset
    path = Path(text)
    if path.suffix.lower() == ".toml":
        if not path.is_file():
            raise ConfigError(f"{where} {path}: dataset card not found")
        from harness.datasets.card import load_card

        return load_card(path)
    if path.is_dir():
        from harness.datasets.msd import is_msd_folder, load_msd_folder

        if is_msd_folder(path):
            return load_msd_folder(path)
        raise ConfigError(f"{where} {path}: not an MSD/nnU-Net folder (expected imagesTr/ + labelsTr/ "
                          "or imagesTs/ + labelsTs/); for other layouts write a dataset card (.toml)")
    raise ConfigError(f"{where} {text!r}: no such folder or card; use phantom2d, phantom3d, an "
                      "MSD/nnU-Net folder or a dataset card .toml")


__all__ = ["Dataset", "open_dataset", "phantom_dataset"]
