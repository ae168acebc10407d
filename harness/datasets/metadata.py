"""Case metadata CSVs: one row per case, found by a key column; the reader shared by dataset cards
(``metadata``) and MSD folders (``metadata.csv``)."""
from __future__ import annotations

import csv as _csv
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harness.errors import ConfigError


class MissingKeyColumn(ConfigError):
    """The metadata CSV has no column of the requested key name."""


@dataclass(frozen=True)
class MetadataTable:
    """One metadata CSV with text cells, indexed by its key column (which stays a column too)."""

    csv: Path
    key: str
    frame: pd.DataFrame

    def row(self, key: str) -> dict[str, str] | None:
        """The row of ``key``; None when the CSV has none."""
        return dict(self.frame.loc[key].items()) if key in self.frame.index else None

    def find(self, *keys: str) -> str | None:
        """The first of ``keys`` that names a row; None when none does."""
        return next((k for k in keys if k in self.frame.index), None)


def some_of(names: list[str], shown: int = 3) -> str:
    """The first ``shown`` of ``names``, comma-joined, with " ..." when there are more."""
    return ", ".join(names[:shown]) + (" ..." if len(names) > shown else "")


def unused_rows(table: MetadataTable, used: set[str]) -> str | None:
    """``2 row(s) of meta.csv name no case: 'z1', 'z2'`` for the rows whose key is not in ``used``."""
    unused = [k for k in table.frame.index if k not in used]
    if not unused:
        return None
    return f"{len(unused)} row(s) of {table.csv.name} name no case: {some_of([repr(k) for k in unused])}"


def read_metadata_csv(csv: Path, key: str | None = None, *, missing_key_hint: str = "") -> MetadataTable:
    """Read ``csv`` as text (empty cells stay ``""``) keyed by column ``key`` (the first column when None).

    Raises a one-line :class:`ConfigError` naming the file when it cannot be read or is empty, lacks
    the key column (:class:`MissingKeyColumn`; ``missing_key_hint`` says what to do) or repeats a key.
    """
    try:
        frame = pd.read_csv(csv, dtype=str, keep_default_na=False)
    except UnicodeDecodeError as exc:
        raise ConfigError(f"cannot read CSV {csv}: it is not UTF-8 text ({exc.reason} at byte {exc.start}); save it "
                          "as UTF-8 (in Excel: CSV UTF-8)") from exc
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ConfigError(f"cannot read CSV {csv} ({exc}); fix or remove it") from exc
    header = _header(csv)
    if len(header) == 1 and (separator := next((c for c in ";\t|" if c in header[0]), None)):
        raise ConfigError(f"{csv} has a single column {header[0]!r}: it looks separated by {separator!r}, and the "
                          "metadata CSV must be comma-separated; save it with commas")
    twice = sorted({name for name in header if name.strip() and header.count(name) > 1})  # blank: "Unnamed: N"
    if twice:
        raise ConfigError(f"column(s) {twice} appear more than once in the header of {csv}; rename or remove "
                          "the repeats")
    key = frame.columns[0] if key is None else key
    if key not in frame.columns:
        raise MissingKeyColumn(f"column {key!r} is not in {csv} (columns: {', '.join(frame.columns)})"
                          + (f"; {missing_key_hint}" if missing_key_hint else ""))
    frame[key] = frame[key].str.strip()  # as every other cell (coerce_cell): "c0 " is case c0
    repeated = frame[key][frame[key].duplicated()].unique().tolist()
    if repeated:
        raise ConfigError(f"key {repeated[0]!r} appears more than once in column {key!r} of {csv} "
                          f"({len(repeated)} repeated key(s)); make the keys unique")
    return MetadataTable(csv, key, frame.set_index(key, drop=False))


def _header(csv: Path) -> list[str]:
    """The CSV's column names as written (pandas renames a repeated ``sex`` to ``sex.1``)."""
    with open(csv, encoding="utf-8-sig", newline="") as handle:
        return next(_csv.reader(handle), [])


MISSING_CELLS = ("", "na", "n/a", "nan", "null")
_NUMBER = re.compile(r"[+-]?(0|[1-9][0-9]*)(\.[0-9]*)?([eE][+-]?[0-9]+)?|[+-]?\.[0-9]+([eE][+-]?[0-9]+)?")


def coerce_cell(value: str) -> str | int | float | None:
    """CSV cell -> int, float, str or None (missing), so numeric attributes stay numeric for binning.

    Surrounding spaces are dropped (``" F"`` is ``"F"``); an empty cell, ``NA``, ``N/A``, ``NaN`` or
    ``NULL`` (any case) is missing ("none" stays a value: it is a category in many tables); codes
    with a leading zero (``"007"``, ``"01"``) or other digits-and-letters stay text.
    """
    text = value.strip()
    if text.lower() in MISSING_CELLS:
        return None
    if not _NUMBER.fullmatch(text):
        return text
    number = float(text)
    return int(text) if number.is_integer() and "." not in text and "e" not in text.lower() else number
