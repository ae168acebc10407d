"""A phantom dataset whose cases are edited on load: the trainer's bad-input and layout tests."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.case import Case
from harness.datasets.base import Dataset
from harness.datasets.phantom import phantom_dataset


class Edited(Dataset):
    """``phantom_dataset(2, n=4, seed=3)`` with each case's image, label or spacing replaced by a
    function of the case, and optional label names/modality."""

    def __init__(self, *, image: Callable[[Case], Any] | None = None, label: Callable[[Case], Any] | None = None,
                 spacing: Callable[[Case], Any] | None = None, label_names: dict | None = None,
                 modality: str | None = None) -> None:
        self.parent = phantom_dataset(2, n=4, seed=3)
        self.name = "edited"
        self.modality = modality or self.parent.modality
        self.label_names = dict(self.parent.label_names if label_names is None else label_names)
        self.edit = {"image": image, "label": label, "spacing": spacing}

    @property
    def case_ids(self) -> list[str]:
        return self.parent.case_ids

    @property
    def metadata(self):
        return self.parent.metadata

    def load(self, case_id: str) -> Case:
        case = self.parent.load(case_id)
        changes = {k: f(case) for k, f in self.edit.items() if f is not None}
        return case.with_(**changes) if changes else case
