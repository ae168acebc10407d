"""Records: the schema of one result row, and the durable journal a run appends to as it goes.

A record's identity is (case_id, perturbation, severity, repeat, label). The journal holds one JSON
line per finished work item (all its label rows), fsync'd, so a killed run loses at most the items in
flight and ``--resume`` skips what is already there.
"""
from __future__ import annotations

import json
import math
import os
import threading
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from harness import atomic
from harness.errors import ConfigError

ID_COLUMNS = ["case_id", "perturbation", "severity", "repeat", "seed"]
BASE_COLUMNS = ID_COLUMNS + ["label", "label_name", "status", "error", "empty"]
TAIL_COLUMNS = ["params", "inference_s"]
CLEAN = "clean"
ITEM_COLUMNS = ["case_id", "perturbation", "severity", "repeat"]  # one work item: one row per label


def failed_items(records: pd.DataFrame) -> pd.DataFrame:
    """One row per failed work item (status ERROR): the first of its rows, which repeat per label."""
    errors = records[records["status"] == "ERROR"]
    return errors.drop_duplicates([c for c in ITEM_COLUMNS if c in errors.columns])


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


def json_safe(value: Any) -> Any:
    """``value`` with non-finite floats as None and numpy scalars as Python ones (strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return json_safe(value.item())
    return value


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class _Writer:
    """The journal's writer thread for :meth:`Journal.group_commit`: write + fsync in batches."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.queue: list[bytes] = []
        self.cond = threading.Condition()
        self.stop = False
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._loop, name="harness-journal-writer", daemon=True)
        self.thread.start()

    def put(self, data: bytes) -> None:
        if self.error is not None:  # the disk failed: stop the run rather than compute for nothing
            raise self.error
        with self.cond:
            self.queue.append(data)
            self.cond.notify()

    def _loop(self) -> None:
        while True:
            with self.cond:
                while not self.queue and not self.stop:
                    self.cond.wait()
                batch, self.queue = self.queue, []
                stop = self.stop
            if batch:
                try:
                    _write_all(self.fd, b"".join(batch))
                    os.fsync(self.fd)
                except OSError as exc:
                    self.error = exc
            if stop and not batch:
                return

    def close(self) -> None:
        with self.cond:
            self.stop = True
            self.cond.notify()
        self.thread.join()
        os.close(self.fd)
        if self.error is not None:
            raise self.error


class Journal:
    """Append-only JSONL of finished work items: ``{"key": ..., "rows": [...]}`` per line.

    Every append is one ``write(2)`` of whole lines on an ``O_APPEND`` descriptor followed by
    ``fsync`` (inside :meth:`group_commit`, by a writer thread), so a killed process leaves at most
    one cut line at the end (detected, dropped with a
    warning, rewritten away by :meth:`truncate_corrupt_tail`). An optional first line
    ``{"meta": {...}}`` records what run the journal belongs to (see :meth:`write_meta`).
    A key that appears twice counts once (the last line wins).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.dropped: list[int] = []  # line numbers that truncate_corrupt_tail removed
        self._writer: _Writer | None = None  # set inside group_commit()
        self._locks = 0  # how deep this object holds lock() (the run holds it around the evaluation's own)

    def scan(self) -> tuple[dict[str, list[dict[str, Any]]], list[int]]:
        """(finished items by key, numbers of corrupt lines), without warning."""
        done: dict[str, list[dict[str, Any]]] = {}
        corrupt: list[int] = []
        if not self.path.exists():
            return done, corrupt
        with self.path.open("r", encoding="utf-8", errors="replace") as fh:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    entry = json.loads(line)
                    if isinstance(entry, dict) and "meta" in entry and "key" not in entry:
                        continue
                    done[entry["key"]] = entry["rows"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    corrupt.append(number)
        return done, corrupt

    def read(self) -> dict[str, list[dict[str, Any]]]:
        """Finished items by key. A corrupt line (a write cut by a kill) is dropped with a warning."""
        done, corrupt = self.scan()
        for number in corrupt:
            warnings.warn(f"{self.path}:{number}: corrupt journal line dropped "
                          "(a write interrupted by a kill); that item will run again",
                          RuntimeWarning, stacklevel=2)
        return done

    def meta(self) -> dict[str, Any] | None:
        """The ``{"meta": ...}`` header of the journal, or None."""
        if not self.path.exists():
            return None
        with self.path.open("r", encoding="utf-8", errors="replace") as fh:
            first = fh.readline()
        try:
            entry = json.loads(first)
        except json.JSONDecodeError:
            return None
        return entry["meta"] if isinstance(entry, dict) and isinstance(entry.get("meta"), dict) else None

    def ends_cleanly(self) -> bool:
        """True when the file is absent, empty or ends with a newline (appends start a fresh line)."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return True
        with self.path.open("rb") as fh:
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) == b"\n"

    def needs_repair(self) -> bool:
        """True when the file holds corrupt lines or does not end with a newline."""
        return not self.ends_cleanly() or bool(self.scan()[1])

    def truncate_corrupt_tail(self) -> None:
        """Rewrite the journal without corrupt lines, so appends start on a clean line.

        Silent; the dropped line numbers are kept in :attr:`dropped` for the caller to report.
        """
        if not self.needs_repair():
            return
        meta = self.meta()
        done, corrupt = self.scan()
        self.dropped.extend(corrupt)
        with atomic.replacing(self.path) as fh:
            if meta is not None:
                fh.write(json.dumps({"meta": meta}) + "\n")
            for key, rows in done.items():
                fh.write(json.dumps({"key": key, "rows": rows}) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def write_meta(self, meta: dict[str, Any]) -> None:
        """Start an empty journal with a header naming the run it belongs to."""
        self._write([json.dumps({"meta": json_safe(meta)}, allow_nan=False, sort_keys=True)])

    def append(self, key: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Append one finished item durably; returns its rows as stored (NaN -> None)."""
        return self.append_many([(key, rows)])[0]

    def append_many(self, entries: list[tuple[str, list[dict[str, Any]]]]) -> list[list[dict[str, Any]]]:
        """Append several finished items with one write and one fsync; returns the stored rows."""
        stored = [json_safe(rows) for _, rows in entries]
        self._write([json.dumps({"key": key, "rows": rows}, allow_nan=False)
                     for (key, _), rows in zip(entries, stored)])
        return stored

    def _write(self, lines: list[str]) -> None:
        if not lines:
            return
        data = ("\n".join(lines) + "\n").encode("utf-8")
        if self._writer is not None:
            self._writer.put(data)
            return
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

    @contextmanager
    def group_commit(self) -> Iterator[None]:
        """Within: appends go to a writer thread that writes and fsyncs whatever has queued up
        meanwhile (group commit), so the run never waits on the disk per item. Leaving the block
        (normally, or by an exception such as KeyboardInterrupt) writes and fsyncs everything.
        A process killed inside loses at most the appends of the last few milliseconds: those
        items are not in the journal, so ``--resume`` runs them again."""
        writer = _Writer(self.path)
        self._writer = writer
        try:
            yield
        finally:
            self._writer = None
            writer.close()

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive advisory lock (``<journal>.lock``): one run writes to a journal at a time."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not on POSIX: no locking
            yield
            return
        if self._locks:  # held already by this run (the evaluation inside the run's writing): nested
            self._locks += 1
            try:
                yield
            finally:
                self._locks -= 1
            return
        try:
            handle = self.path.with_name(self.path.name + ".lock").open("a")
        except OSError as exc:
            raise ConfigError(f"{self.path.parent}: cannot write the run's lock file ({exc.strerror or exc}); "
                              "choose a writable --out") from exc
        try:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise ConfigError(f"{self.path.parent}: another harness run is writing to this folder "
                                  "(its journal is locked); wait for it or choose another --out") from None
            self._locks = 1
            try:
                yield
            finally:
                self._locks = 0
        finally:
            handle.close()


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


REQUIRED_COLUMNS = ("case_id", "perturbation", "severity", "label", "status")


def read_records(path: Path) -> pd.DataFrame:
    """Read a run's records.csv back (error/params as strings, empty strings for missing; case ids
    such as ``NA`` or ``None`` stay text). ConfigError naming the file when it is not one."""
    text = {"case_id": str, "error": str, "params": str, "empty": str, "label_name": str, "perturbation": str}
    try:  # only an empty cell is missing: "NA" or "None" are case ids, not NaN
        frame = pd.read_csv(path, dtype=text, keep_default_na=False, na_values=[""])
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ConfigError(f"{path}: cannot read records ({exc}); is this a harness run folder?") from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ConfigError(f"{path}: not a harness records file (no column(s) {', '.join(missing)})")
    for col in ("error", "params", "empty", "label_name"):
        frame[col] = frame[col].fillna("") if col in frame.columns else ""
    return frame
