"""Medical Segmentation Decathlon / nnU-Net raw folders: ``imagesTr/`` + ``labelsTr/`` (or ``Ts``).

Channel files ``case_0000.nii.gz, case_0001.nii.gz`` (nnU-Net) or 4D ``case.nii.gz`` (MSD) are both
read. ``dataset.json`` supplies label names and modality when present; ``metadata.csv`` beside the
folders (column ``case_id``) supplies subgroup attributes.
"""
from __future__ import annotations

import re
from collections import defaultdict
import os
from pathlib import Path

from harness.datasets.folder import CaseFiles, FileDataset
from harness.datasets.io import IMAGE_SUFFIXES, strip_suffix
from harness.datasets.metadata import MetadataTable, coerce_cell, read_metadata_csv, some_of, unused_rows
from harness.errors import ConfigError
from harness.json_files import read_json_object

_CHANNEL = re.compile(r"^(?P<key>.+)_(?P<channel>\d{4})$")
_MODALITY_WORDS = {"mri": "mri", "mr": "mri", "t1": "mri", "t2": "mri", "flair": "mri", "ct": "ct",
                   "us": "us", "ultrasound": "us"}


def is_msd_folder(path: Path) -> bool:
    return any((path / f"images{s}").is_dir() and (path / f"labels{s}").is_dir() for s in ("Tr", "Ts"))


def _read_dataset_json(folder: Path) -> tuple[dict[int, str], str]:
    meta = folder / "dataset.json"
    if not meta.is_file():
        return {}, "other"
    doc = read_json_object(meta, fix='fix or remove it (an object with "labels" and "modality")')
    labels = doc.get("labels", {})
    if not isinstance(labels, dict):
        raise ConfigError(f'{meta}: "labels" must be an object like {{"0": "background", "1": "organ"}}; '
                          "fix or remove it")
    # MSD: {"0": "background", "1": "Anterior"}; nnU-Net v2: {"background": 0, "Anterior": 1}
    names = ({int(k): str(v) for k, v in labels.items() if str(k).isdigit()} or
             {int(v): k for k, v in labels.items() if isinstance(v, int)})
    names.pop(0, None)
    modality_field = doc.get("modality") or doc.get("channel_names") or {}
    values = (modality_field.values() if isinstance(modality_field, dict)
              else modality_field if isinstance(modality_field, list) else [modality_field])  # "MRI" alone too
    words = [str(v).strip().lower() for v in values]
    modality = next((_MODALITY_WORDS[w] for w in words if w in _MODALITY_WORDS), "other")
    return names, modality


def _read_metadata_csv(csv: Path, keys: list[str]) -> tuple[dict[str, dict[str, object]], MetadataTable | None]:
    """``metadata.csv`` (column ``case_id``, one row per case) as case -> attributes, numeric-looking
    values numeric (as in dataset cards), and the table itself; ({}, None) when the file is absent."""
    if not csv.is_file():
        return {}, None
    table = read_metadata_csv(csv, "case_id", missing_key_hint="add a case_id column naming each case")
    missing = [k for k in keys if table.row(k) is None]
    if missing:
        raise ConfigError(f"{csv}: no row for case(s) {missing[:5]}" + (" ..." if len(missing) > 5 else "")
                          + "; add them (cells may be empty)")
    return {k: {c: coerce_cell(v) for c, v in (table.row(k) or {}).items() if c != "case_id"} for k in keys}, table


def _image_files(folder: Path) -> dict[str, Path]:
    """Image files of ``folder`` by name without suffix (suffixes case-insensitive; other files and
    dot-files skipped); one stem with two suffixes (``c1.nii`` and ``c1.nii.gz``) is refused."""
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.name.lower().endswith(IMAGE_SUFFIXES):
            continue
        if path.is_symlink() and not path.exists():  # dangling or looping: dropping the case would go unnoticed
            raise ConfigError(f"{path}: a symbolic link to {os.readlink(path)!r}, which cannot be read "
                              "(missing, or a loop); fix the link or remove it")
        if not path.is_file():
            continue
        stem = strip_suffix(path.name)
        if stem in found:
            raise ConfigError(f"{folder}: {found[stem].name} and {path.name} are the same case; keep one")
        found[stem] = path
    return found


def _group_channels(images: dict[str, Path], labels: dict[str, Path]) -> dict[str, list[Path]]:
    """Case key -> its image files. ``<key>_NNNN`` is channel NNNN of case ``<key>`` (nnU-Net) unless
    the labels name ``<key>_NNNN`` itself (single-file cases that merely end in four digits) or an
    image ``<key>`` exists."""
    channels: dict[str, dict[int, Path]] = defaultdict(dict)
    for stem, path in images.items():
        match = _CHANNEL.match(stem)
        if match and stem not in labels and match.group("key") not in images:
            channels[match.group("key")][int(match.group("channel"))] = path
        else:
            channels[stem][0] = path
    for key, files in channels.items():
        if sorted(files) != list(range(len(files))):
            raise ConfigError(f"case {key}: channel files {[f.name for f in files.values()]} are not numbered "
                              f"_0000 to _{len(files) - 1:04d}; rename them (nnU-Net channel order)")
    return {key: [files[c] for c in sorted(files)] for key, files in channels.items()}


def load_msd_folder(folder: Path) -> FileDataset:
    split = "Tr" if (folder / "imagesTr").is_dir() and (folder / "labelsTr").is_dir() else "Ts"
    images_dir, labels_dir = folder / f"images{split}", folder / f"labels{split}"
    labels = _image_files(labels_dir)
    channels = _group_channels(_image_files(images_dir), labels)
    if not channels:
        raise ConfigError(f"{images_dir}: no images found")
    metadata, table = _read_metadata_csv(folder / "metadata.csv", list(channels))
    cases = []
    for key, paths in channels.items():
        suffix = paths[0].name[len(strip_suffix(paths[0].name)):]
        label = labels.get(key, labels_dir / f"{key}{suffix}")  # a missing label is named by validate
        cases.append(CaseFiles(case_id=key, images=tuple(paths), label=label, metadata=metadata.get(key, {})))
    names, modality = _read_dataset_json(folder)
    unmatched = []
    if orphans := sorted(set(labels) - set(channels)):
        unmatched.append(f"{len(orphans)} label file(s) in {labels_dir.name} with no image: "
                         f"{some_of([labels[k].name for k in orphans])}")
    if table is not None and (unused := unused_rows(table, set(channels))):
        unmatched.append(unused)
    return FileDataset(folder.name, cases, modality=modality, label_names=names, unmatched=unmatched)
