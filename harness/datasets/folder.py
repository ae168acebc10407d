"""File-backed datasets: image/label path pairs with metadata, read lazily per case."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from harness.case import Case
from harness.datasets.base import Dataset
from harness.datasets.io import probe_shape, read_image, read_label
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
                 label_names: dict[int, str] | None = None) -> None:
        self.name, self.modality = name, modality
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

    @property
    def ndim(self) -> int:
        first = next(iter(self._cases.values()))
        return len(probe_shape(first.label)[0])

    def validate(self) -> list[str]:
        """Files exist, headers are readable, image and label shapes agree (no pixel data read)."""
        problems: list[str] = [] if self._cases else [f"dataset {self.name}: no cases found"]
        for cid, files in self._cases.items():
            try:
                shapes = [probe_shape(p, channel=files.channel)[0] for p in files.images]
                label_shape = probe_shape(files.label)[0]
            except ConfigError as exc:
                problems.append(f"case {cid}: {exc}")
                continue
            odd = [(p, s) for p, s in zip(files.images, shapes) if s != label_shape]
            if odd:
                problems.append(f"case {cid}: image {odd[0][0]} has shape {odd[0][1]} but label {files.label} "
                                f"has {label_shape}")
            if files.spacing is not None and len(files.spacing) != len(label_shape):
                problems.append(f"case {cid}: the card's spacing {list(files.spacing)} needs one value per "
                                f"spatial axis ({len(label_shape)})")
        return problems

    def file_hashes(self, case_id: str) -> dict[str, str]:
        files = self._cases[case_id]
        return {"image_sha256": ",".join(file_sha256(str(p)) for p in files.images),
                "label_sha256": file_sha256(str(files.label))}
