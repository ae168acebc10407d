"""Records: the schema of one result row, and the durable journal a run appends to as it goes.

A record's identity is (case_id, perturbation, severity, repeat, label). The journal holds one JSON
line per finished work item (all its label rows), fsync'd, so a killed run loses at most the item in
flight and ``--resume`` skips what is already there.
"""
from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

ID_COLUMNS = ["case_id", "perturbation", "severity", "repeat", "seed"]
BASE_COLUMNS = ID_COLUMNS + ["label", "label_name", "status", "error", "empty"]
TAIL_COLUMNS = ["params", "inference_s"]
CLEAN = "clean"


@dataclass(frozen=True)
class WorkItem:
    """One model call: a case under one perturbation at one severity (``clean``/0 for the clean run)."""

    case_id: str
    perturbation: str  # the suite's label for the family (``clean`` for clean rows)
    family: str
    severity: int
    repeat: int
    seed: int

    @property
    def key(self) -> str:
        return f"{self.case_id}|{self.perturbation}|{self.severity}|{self.repeat}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _clean_json(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean_json(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return _clean_json(value.item())
    return value


class Journal:
    """Append-only JSONL of finished work items: ``{"key": ..., "rows": [...]}`` per line."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> dict[str, list[dict[str, Any]]]:
        """Finished items by key. A corrupt line (a write cut by a kill) is dropped with a warning."""
        done: dict[str, list[dict[str, Any]]] = {}
        if not self.path.exists():
            return done
        with self.path.open("r", encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    entry = json.loads(line)
                    done[entry["key"]] = entry["rows"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    warnings.warn(f"{self.path}:{number}: corrupt journal line dropped "
                                  "(a write interrupted by a kill); that item will run again",
                                  RuntimeWarning, stacklevel=2)
        return done

    def truncate_corrupt_tail(self) -> None:
        """Rewrite the journal without corrupt lines, so appends start on a clean line."""
        if not self.path.exists():
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            done = self.read()
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            for key, rows in done.items():
                fh.write(json.dumps({"key": key, "rows": rows}) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def append(self, key: str, rows: list[dict[str, Any]]) -> None:
        line = json.dumps({"key": key, "rows": _clean_json(rows)}, allow_nan=False) + "\n"
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())


def records_frame(rows: Iterable[dict[str, Any]], metrics: Iterable[str]) -> pd.DataFrame:
    """Rows -> DataFrame with the documented column order, sorted by record identity."""
    metrics = list(metrics)
    frame = pd.DataFrame(list(rows))
    columns = BASE_COLUMNS + metrics + TAIL_COLUMNS
    for col in columns:
        if col not in frame.columns:
            frame[col] = pd.Series(dtype=float if col in metrics else object)
    extra = [c for c in frame.columns if c not in columns]
    frame = frame[columns + extra]
    if len(frame):
        frame = frame.sort_values(["case_id", "perturbation", "severity", "repeat", "label"],
                                  kind="mergesort").reset_index(drop=True)
    return frame


def read_records(path: Path) -> pd.DataFrame:
    """Read a run's records.csv back (error/params as strings, empty strings for missing)."""
    frame = pd.read_csv(path, dtype={"case_id": str, "error": str, "params": str, "empty": str,
                                     "label_name": str, "perturbation": str})
    for col in ("error", "params", "empty", "label_name"):
        frame[col] = frame[col].fillna("")
    return frame
