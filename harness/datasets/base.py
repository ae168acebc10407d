"""The dataset protocol every reader implements: ids, metadata, lazy case loading, validation."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Iterator, Sequence

import pandas as pd

from harness.case import Case
from harness.hashing import array_sha256


class Dataset(ABC):
    """A collection of cases whose pixel data is loaded lazily, one case at a time.

    Subclasses must be picklable (process-pool and Dask workers receive the dataset, not arrays).
    """

    name: str = "dataset"
    modality: str = "other"  # one of mri, ct, us, other
    label_names: dict[int, str] = {}

    @property
    @abstractmethod
    def case_ids(self) -> list[str]:
        """Stable, unique case identifiers in a deterministic order."""

    @abstractmethod
    def load(self, case_id: str) -> Case:
        """Read one case's pixel data. Raises ``ConfigError`` naming the file when unreadable."""

    @property
    def metadata(self) -> pd.DataFrame:
        """One row per case (index ``case_id``), one column per metadata attribute."""
        return pd.DataFrame(index=pd.Index(self.case_ids, name="case_id"))

    @property
    def ndim(self) -> int:
        """Spatial dimensionality of the cases (2 or 3)."""
        return self.load(self.case_ids[0]).ndim

    def validate(self, case_ids: Sequence[str] | None = None) -> list[str]:
        """Cheap up-front checks (files exist, headers readable, shapes agree) of ``case_ids`` (all
        cases when None). Problems, or []."""
        return [] if self.case_ids else [f"{self.name}: no cases found"]

    def assumed_spacing(self, case_ids: Sequence[str] | None = None) -> list[str]:
        """The cases among ``case_ids`` (all when None) whose spacing neither their files nor the
        card give, so that 1 mm per pixel was assumed (their distances are in pixels)."""
        return []

    def file_hashes(self, case_id: str) -> dict[str, str]:
        """sha256 of what identifies a case (its files, or its pixel data for generated cases)."""
        case = self.load(case_id)
        return {"image_sha256": array_sha256(case.image), "label_sha256": array_sha256(case.label)}

    def manifest(self) -> pd.DataFrame:
        """Data manifest: case id, hashes and metadata, one row per case."""
        rows = [{"case_id": cid, **self.file_hashes(cid)} for cid in self.case_ids]
        table = pd.DataFrame(rows).set_index("case_id")
        return table.join(self.metadata)

    @staticmethod
    def manifest_csv(table: pd.DataFrame) -> str:
        """``table`` (a :meth:`manifest`) as the CSV text of a run's ``cases.csv``. A float column of
        whole numbers (codes with gaps are floats in memory: 2.0, NaN) is written as 2 and an empty
        cell, the names the analyses give those values, so the report reads back the same site or group."""
        out = table.copy()
        for col in out.columns:
            values = out[col]
            if values.dtype.kind == "f" and values.notna().any() and values.dropna().map(float.is_integer).all():
                out[col] = values.map(lambda v: "" if pd.isna(v) else str(int(v)))
        return out.to_csv()

    def subset(self, limit: int | None) -> "Dataset":
        """The first ``limit`` cases (all when None)."""
        if limit is None or limit >= len(self.case_ids):
            return self
        return _Subset(self, self.case_ids[:limit])

    def select(self, case_ids: Sequence[str], *, hashes: dict[str, dict[str, str]] | None = None) -> "Dataset":
        """These cases (in the order given; ids must be among :attr:`case_ids`); ``hashes``: their
        :meth:`file_hashes` when already computed (not read again)."""
        return _Subset(self, list(case_ids), hashes=hashes)

    def __iter__(self) -> Iterator[Case]:
        for cid in self.case_ids:
            yield self.load(cid)

    def __len__(self) -> int:
        return len(self.case_ids)


class _Subset(Dataset):
    def __init__(self, parent: Dataset, ids: list[str], *, hashes: dict[str, dict[str, str]] | None = None) -> None:
        self.parent, self._ids, self._hashes = parent, list(ids), dict(hashes or {})
        self.name, self.modality, self.label_names = parent.name, parent.modality, parent.label_names

    @property
    def case_ids(self) -> list[str]:
        return self._ids

    def load(self, case_id: str) -> Case:
        return self.parent.load(case_id)

    @property
    def metadata(self) -> pd.DataFrame:
        return self.parent.metadata.loc[self._ids]

    def validate(self, case_ids: Sequence[str] | None = None) -> list[str]:
        return self.parent.validate(self._ids if case_ids is None else case_ids)  # --limit N: only those N

    def assumed_spacing(self, case_ids: Sequence[str] | None = None) -> list[str]:
        return self.parent.assumed_spacing(self._ids if case_ids is None else case_ids)

    def file_hashes(self, case_id: str) -> dict[str, str]:
        if case_id in self._hashes:
            return self._hashes[case_id]
        return self.parent.file_hashes(case_id)
