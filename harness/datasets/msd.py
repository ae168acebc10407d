"""Medical Segmentation Decathlon / nnU-Net raw folders: ``imagesTr/`` + ``labelsTr/`` (or ``Ts``).

Channel files ``case_0000.nii.gz, case_0001.nii.gz`` (nnU-Net) or 4D ``case.nii.gz`` (MSD) are both
read. ``dataset.json`` supplies label names and modality when present; ``metadata.csv`` beside the
folders (column ``case_id``) supplies subgroup attributes.
"""
from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import pandas as pd

from harness.datasets.folder import CaseFiles, FileDataset
from harness.datasets.io import strip_suffix
from harness.errors import ConfigError

_CHANNEL = re.compile(r"^(?P<key>.+)_(?P<channel>\d{4})$")
_MODALITY_WORDS = {"mri": "mri", "mr": "mri", "t1": "mri", "t2": "mri", "flair": "mri", "ct": "ct",
                   "us": "us", "ultrasound": "us"}


def is_msd_folder(path: Path) -> bool:
    return any((path / f"images{s}").is_dir() and (path / f"labels{s}").is_dir() for s in ("Tr", "Ts"))


def _read_dataset_json(folder: Path) -> tuple[dict[int, str], str]:
    meta = folder / "dataset.json"
    if not meta.is_file():
        return {}, "other"
    try:
        doc = json.loads(meta.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{meta}: invalid JSON ({exc}); fix or remove it") from exc
    labels = doc.get("labels", {})
    # MSD: {"0": "background", "1": "Anterior"}; nnU-Net v2: {"background": 0, "Anterior": 1}
    names = ({int(k): v for k, v in labels.items() if str(k).isdigit()} or
             {int(v): k for k, v in labels.items() if isinstance(v, int)})
    names.pop(0, None)
    modality_field = doc.get("modality") or doc.get("channel_names") or {}
    words = [str(v).lower() for v in modality_field.values()] if isinstance(modality_field, dict) else []
    modality = next((_MODALITY_WORDS[w] for w in words if w in _MODALITY_WORDS), "other")
    return names, modality


def load_msd_folder(folder: Path) -> FileDataset:
    split = "Tr" if (folder / "imagesTr").is_dir() and (folder / "labelsTr").is_dir() else "Ts"
    images_dir, labels_dir = folder / f"images{split}", folder / f"labels{split}"
    channels: dict[str, list[Path]] = defaultdict(list)
    for path in sorted(images_dir.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        stem = strip_suffix(path.name)
        match = _CHANNEL.match(stem)
        channels[match.group("key") if match else stem].append(path)
    if not channels:
        raise ConfigError(f"{images_dir}: no images found")
    metadata = pd.DataFrame()
    meta_csv = folder / "metadata.csv"
    if meta_csv.is_file():
        metadata = pd.read_csv(meta_csv, dtype=str, keep_default_na=False).set_index("case_id")
    cases = []
    for key, paths in channels.items():
        suffix = ".nii.gz" if paths[0].name.endswith(".nii.gz") else paths[0].suffix
        label = labels_dir / f"{key}{suffix}"
        meta = dict(metadata.loc[key]) if key in metadata.index else {}
        cases.append(CaseFiles(case_id=key, images=tuple(sorted(paths)), label=label, metadata=meta))
    names, modality = _read_dataset_json(folder)
    return FileDataset(folder.name, cases, modality=modality, label_names=names)
