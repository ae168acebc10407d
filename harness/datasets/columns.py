"""Well-known metadata columns, found by name whatever their spelling (``Patient ID``, ``patient_id``)."""
from __future__ import annotations

import re
from collections.abc import Sequence

import pandas as pd

# the column that groups cases by patient (BUS-BRA: "Case", one patient, up to several images)
PATIENT_COLUMNS = ("Case", "patient", "patient_id", "subject", "subject_id", "participant", "participant_id")


def _plain(name: object) -> str:
    return re.sub(r"[\s_-]", "", str(name)).lower()


def is_patient_column(name: object) -> bool:
    """True when ``name`` is one of :data:`PATIENT_COLUMNS`, spelt any way :func:`column` accepts."""
    return _plain(name) in {_plain(c) for c in PATIENT_COLUMNS}


def ids_of(values: pd.Series) -> pd.Series:
    """Identifier values (a patient column's) as text, stripped; missing and blank ones as NA: a case
    without an id."""
    text = values.astype(str).str.strip()
    return text.where(values.notna() & text.ne(""))


def column(metadata: pd.DataFrame, candidates: Sequence[str]) -> str | None:
    """The column of ``metadata`` that is the first of ``candidates``, compared ignoring case, spaces,
    ``_`` and ``-`` (``Patient``, ``PatientID`` and ``patient_id`` all match ``patient_id``/``patient``);
    None when none is."""
    by_name: dict[str, str] = {}
    for name in metadata.columns:
        by_name.setdefault(_plain(name), str(name))
    return next((by_name[_plain(c)] for c in candidates if _plain(c) in by_name), None)
