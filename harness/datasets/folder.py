"""File-backed datasets: image/label path pairs with metadata, read lazily per case."""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from harness.case import Case
from harness.datasets.base import Dataset
from harness.datasets.io import Probe, is_nifti, label_volumes_problem, probe, probe_shape, read_image, read_label
from harness.errors import ConfigError
from harness.hashing import file_sha256


@dataclass(frozen=True)
class CaseFiles:
    """Where one case's pixels live. ``images`` has one path per channel file (nnU-Net ``_0000``...)."""

    case_id: str
    images: tuple[Path, ...]
    label: Path
    spacing: tuple[float, ...] | None = None  # overrides the file's spacing when set
    channel: int | None = None
    label_values: dict[int, int] | None = None
    metadata: dict[str, object] = field(default_factory=dict)


class FileDataset(Dataset):
    """Cases from files; pixel data is read only in :meth:`load`."""

    def __init__(self, name: str, cases: list[CaseFiles], *, modality: str = "other",
                 label_names: dict[int, str] | None = None, unmatched: Sequence[str] = ()) -> None:
        self.name, self.modality = name, modality
        self.unmatched = list(unmatched)  # files and metadata rows the layout found but made no case of
        self._cases = {c.case_id: c for c in cases}
        if len(self._cases) != len(cases):
            seen: set[str] = set()
            dups = sorted({c.case_id for c in cases if c.case_id in seen or seen.add(c.case_id)})
            raise ConfigError(f"dataset {name}: duplicate case ids {dups[:5]}; make keys unique "
                              "(multi-source cards prefix ids with the source's site)")
        self.label_names = dict(label_names or {})

    @property
    def case_ids(self) -> list[str]:
        return list(self._cases)

    def axis_codes(self, case_ids: Sequence[str] | None = None) -> dict[str, str]:
        """Case -> the axis codes of its first image (nibabel ``aff2axcodes``, e.g. "RAS"), for NIfTI
        images whose header orients them (others are left out)."""
        import nibabel as nib

        out = {}
        for cid in self.case_ids if case_ids is None else case_ids:
            path = self._cases[cid].images[0]
            if not is_nifti(path):
                continue
            found = probe(path)
            if found.oriented and found.affine is not None:
                out[cid] = "".join(nib.aff2axcodes(found.affine))
        return out

    @property
    def metadata(self) -> pd.DataFrame:
        rows = [{**c.metadata, "case_id": cid} for cid, c in self._cases.items()]  # the id wins over a CSV column
        return pd.DataFrame(rows).set_index("case_id")

    def files(self, case_id: str) -> CaseFiles:
        return self._cases[case_id]

    def load(self, case_id: str) -> Case:
        files = self._cases[case_id]
        label = read_label(files.label, label_values=files.label_values)
        channels, spacing = [], None
        for path in files.images:
            data, file_spacing = read_image(path, channel=files.channel)
            if data.shape[1:] != label.shape:
                raise ConfigError(f"case {case_id}: image {path} has spatial shape {data.shape[1:]} but label "
                                  f"{files.label} has {label.shape}")
            if not np.isfinite(data).all():
                bad = int((~np.isfinite(data)).sum())
                raise ConfigError(f"case {case_id}: image {path} has {bad} NaN/Inf voxels; fix or remove the file")
            channels.append(data)
            spacing = spacing or file_spacing
        image = np.concatenate(channels, axis=0)
        if files.spacing is not None and len(files.spacing) != label.ndim:
            raise ConfigError(f"case {case_id}: the card's spacing {list(files.spacing)} needs one value per "
                              f"spatial axis of {files.label} ({label.ndim})")
        spacing = files.spacing or spacing or (1.0,) * label.ndim
        return Case(image=image, label=label, spacing=tuple(spacing)[: label.ndim],
                    metadata=dict(files.metadata), case_id=case_id)

    def assumed_spacing(self, case_ids: Sequence[str] | None = None) -> list[str]:
        """Cases without a card spacing whose images are raster files (PNG, JPEG, TIFF, BMP carry
        no physical spacing; NIfTI headers do)."""
        ids = self._cases if case_ids is None else case_ids
        return [cid for cid in ids if self._cases[cid].spacing is None
                and not any(is_nifti(p) for p in self._cases[cid].images)]

    @property
    def ndim(self) -> int:
        first = next(iter(self._cases.values()))
        return len(probe_shape(first.label)[0])

    def validate(self, case_ids: Sequence[str] | None = None) -> list[str]:
        """Headers only (no pixel data read): files exist and are readable; image and label agree in
        shape and, for NIfTI, in their affine (voxel size, orientation, origin); NIfTI spacings are
        positive unless the card gives the spacing; a label map is one volume; every case has the
        same number of image channels."""
        problems: list[str] = [] if self._cases else [f"dataset {self.name}: no cases found"]
        channels: dict[str, int] = {}
        for cid in self._cases if case_ids is None else case_ids:
            files = self._cases[cid]
            try:
                images = [probe(p, channel=files.channel) for p in files.images]
                label = probe(files.label)
            except ConfigError as exc:
                problems.append(f"case {cid}: {exc}{_channel_file_hint(files)}")
                continue
            problems.extend(f"case {cid}: {p}" for p in _case_problems(files, images, label))
            channels[cid] = sum(i.channels for i in images)
        counts = pd.Series(channels, dtype="int64").value_counts()
        if len(counts) > 1:
            usual = int(counts.index[0])
            problems.extend(f"case {cid}: {n} image channel(s), while {counts.iloc[0]} case(s) have {usual}; "
                            "give every case the same channels" for cid, n in channels.items() if n != usual)
        return problems

    def file_hashes(self, case_id: str) -> dict[str, str]:
        files = self._cases[case_id]
        return {"image_sha256": ",".join(file_sha256(str(p)) for p in files.images),
                "label_sha256": file_sha256(str(files.label))}


_CHANNEL_FILE = re.compile(r"_(\d{4})\.[^/]+$")  # nnU-Net channel files: case_0000.nii.gz, case_0001.nii.gz, ...


def _channel_file_hint(files: CaseFiles) -> str:
    """A hint when a case is an nnU-Net channel file other than the first (``case_0001``) whose label
    cannot be read: a dataset card takes one file per case, the folder form groups the channels."""
    match = _CHANNEL_FILE.search(files.images[0].name)
    if match is None or int(match.group(1)) == 0 or files.label.exists():
        return ""
    return (f" ({files.images[0].name} looks like an nnU-Net channel file: give the folder itself as --data, "
            "which groups case_0000, case_0001, ... into one case, or match only *_0000 files in the card)")


def _case_problems(files: CaseFiles, images: list[Probe], label: Probe) -> list[str]:
    """What the headers of one case's files disagree on (see :meth:`FileDataset.validate`)."""
    problems = []
    odd = [(p, i.shape) for p, i in zip(files.images, images) if i.shape != label.shape]
    if odd:
        problems.append(f"image {odd[0][0]} has shape {odd[0][1]} but label {files.label} has {label.shape}")
    if is_nifti(files.label) and label.channels > 1:
        problems.append(f"{files.label}: {label_volumes_problem(label.channels)}")
    if files.spacing is not None and len(files.spacing) != len(label.shape):
        problems.append(f"the card's spacing {list(files.spacing)} needs one value per spatial axis "
                        f"({len(label.shape)})")
    if files.spacing is not None:  # the card states the grid: the headers' geometry is not used
        return problems
    for path, image in zip(files.images, images):
        if image.affine is None:
            continue
        if any(not v > 0 for v in image.pixdim):
            problems.append(f"image {path} has voxel size {list(image.pixdim)} in its header (must be > 0); "
                            "fix the header or give spacing in a dataset card")
        elif image.spacing_problem is not None:
            problems.append(f"image {path}: {image.spacing_problem}")
        elif label.affine is not None and not _same_grid(image, label):
            problems.append(f"label {files.label} is not on the grid of image {path} (their affines differ: "
                            "voxel size, orientation or origin); resample or reorient the label to the image "
                            "(or, if they are aligned, state the grid with spacing in a dataset card)")
    return problems


def _same_grid(image: Probe, label: Probe) -> bool:
    """Whether a NIfTI label lies on its image's voxel grid: the same affine (rtol 1e-4, atol 1e-3 mm);
    a label whose header places nothing in the world (sform and qform codes 0, as some tools write
    masks) only needs the same voxel size."""
    if not label.oriented:
        return np.allclose(image.pixdim, label.pixdim, rtol=1e-4, atol=1e-3)
    return bool(np.allclose(image.affine, label.affine, rtol=1e-4, atol=1e-3))
