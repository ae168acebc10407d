"""Cohorts: which subgroup each case belongs to, from its metadata.

A *cohort attribute* is a metadata column (``sex``), a numeric column cut into bins (``age`` →
``"<40"``, ``"[40, 65)"``, ``"≥65"``), or an intersection of attributes (``device×pathology``).
:func:`resolve_cohorts` turns a suite's ``cohorts`` list (or ``"auto"``) into one group label per
case and attribute. Cases whose value is missing get no group (``NaN``) and are left out of that
attribute's comparison only.

Policy (documented in ``docs/statistics.md``):

* Numeric columns with more than :data:`NUMERIC_CATEGORICAL_MAX` distinct values are binned: by the
  suite's ``bins`` (edges, left-closed ``[a, b)``; use ``-inf``/``inf`` for open ends), or into
  quartiles when no bins are given. Numeric columns with fewer distinct values are categorical.
* ``"auto"`` takes every metadata column with 2–20 levels (identifier and hash columns excluded);
  numeric columns are binned into quartiles.
* A listed attribute missing from the metadata, bins for a non-numeric column, or edges that leave
  cases outside are configuration errors (:class:`harness.errors.ConfigError`, exit 3).
"""
from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from harness.datasets.columns import is_patient_column
from harness.errors import ConfigError

INTERSECTION = "×"
NUMERIC_CATEGORICAL_MAX = 4  # ≤ 4 distinct numeric values cannot be split into quartiles: categorical
AUTO_MIN_LEVELS, AUTO_MAX_LEVELS = 2, 20
# never analysed by "auto": case identifiers and files, nor patient columns (is_patient_column: the
# trainer's and the cluster bootstrap's, spelt any way they find them: "Patient ID", "participant_id")
NOT_ATTRIBUTES = frozenset({"case_id", "image_sha256", "label_sha256", "image", "label", "path"})
# nor data-split bookkeeping (BUS-BRA's 5-fold-cv.csv: kFold, valid_1 .. valid_5): which fold a case
# fell in says nothing about the patient, and each such test dilutes the correction of the real ones
SPLIT_COLUMN = re.compile(r"k_?folds?|folds?(_?\d+)?|cv_?folds?|split|partition|(valid|validation|val|train|test)"
                          r"(_?(set|fold))?_?\d*|is_(train|test|val|valid|validation)", re.IGNORECASE)

BinSpec = Sequence[float] | int | str


def case_index(cases: pd.DataFrame) -> pd.DataFrame:
    """``cases`` indexed by ``case_id`` (taken from a column or the index), ids as strings."""
    if "case_id" in cases.columns:
        frame = cases.set_index("case_id")
    elif cases.index.name == "case_id":
        frame = cases
    else:
        raise ConfigError("case table has no 'case_id' column or index; columns: "
                          + ", ".join(map(str, cases.columns)))
    frame = frame.copy()
    frame.index = frame.index.astype(str)
    if frame.index.has_duplicates:
        dup = frame.index[frame.index.duplicated()].unique()[:5]
        raise ConfigError(f"case table lists case_id(s) more than once: {', '.join(dup)}")
    return frame


def parse_cohorts(spec: str | Sequence[str | Sequence[str]]) -> list[tuple[str, ...]] | str:
    """``"sex,age"`` / ``["sex", "device×site"]`` / ``[["device", "site"]]`` → attribute tuples.

    ``"auto"`` is returned unchanged. Intersections are written ``a×b`` (or ``a*b``).
    """
    if isinstance(spec, str):
        if spec.strip() == "auto":
            return "auto"
        spec = [spec]
    items: list[str | Sequence[str]] = []
    for item in spec:  # "sex,age" inside a list (a CLI option passed through) splits too
        items += [s for s in item.split(",") if s.strip()] if isinstance(item, str) else [item]
    if [i.strip() for i in items if isinstance(i, str)] == ["auto"] and len(items) == 1:
        return "auto"
    out: list[tuple[str, ...]] = []
    for item in items:
        raw = item.replace("*", INTERSECTION).split(INTERSECTION) if isinstance(item, str) else list(item)
        parts = tuple(str(p).strip() for p in raw if str(p).strip())
        if not parts:
            raise ConfigError(f"cohorts: empty attribute in {spec!r}")
        if parts not in out:
            out.append(parts)
    return out


def _is_numeric(col: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)


def _not_numbers(col: pd.Series) -> str:
    """``2 distinct value(s) are not numbers: '72,5', 'unknown'``: the cells that keep a column from being numeric."""
    text = [v for v in col.dropna().unique()
            if isinstance(v, bool) or (isinstance(v, str) and pd.isna(pd.to_numeric(v, errors="coerce")))]
    shown = ", ".join(repr(v) for v in text[:3]) + (", ..." if len(text) > 3 else "")
    return f"{len(text)} distinct value(s) are not numbers: {shown}" if text else f"dtype {col.dtype}"


def _fmt(x: float) -> str:
    """An edge as written (the shortest text that reads back as the same number, no exponent):
    quantile edges may keep more than 6 digits to stay distinct (dates such as 20150103)."""
    return np.format_float_positional(float(x), trim="-")


def _interval_labels(edges: np.ndarray) -> list[str]:
    labels = []
    for lo, hi in itertools.pairwise(edges):
        if math.isinf(lo) and math.isinf(hi):
            labels.append("all")
        elif math.isinf(lo):
            labels.append(f"<{_fmt(hi)}")
        elif math.isinf(hi):
            labels.append(f"≥{_fmt(lo)}")
        else:
            labels.append(f"[{_fmt(lo)}, {_fmt(hi)})")
    return labels


def _quantile_edges(values: pd.Series, n_bins: int) -> np.ndarray:
    """Quantile edges, rounded for reading to the fewest significant digits (3 at least) that still
    cut the data as the exact quantiles do (2010…2018 at 3 digits would round 2012 and 2014 to 2010)."""
    data = values.dropna().to_numpy(float)
    exact = np.unique(np.quantile(data, np.linspace(0, 1, n_bins + 1)[1:-1]))
    cut = np.searchsorted(exact, data, side="right")
    for digits in range(3, 18):
        inner = np.unique([float(f"{q:.{digits}g}") for q in exact])
        if len(inner) == len(exact) and np.array_equal(np.searchsorted(inner, data, side="right"), cut):
            break
    return np.concatenate([[-np.inf], inner, [np.inf]])


def bin_spec_problem(spec: Any, *, name: str) -> str | None:
    """What is wrong with a ``bins`` entry on its own, before any data (None when it is valid)."""
    if spec is None or spec == "quartiles":
        return None
    if isinstance(spec, int) and not isinstance(spec, bool):
        return None if spec >= 2 else f"bins.{name}: need at least 2 quantile bins, got {spec}"
    if isinstance(spec, Sequence) and not isinstance(spec, str):
        try:  # numbers, or text that reads as one ("inf")
            if any(isinstance(e, bool) for e in spec):
                raise ValueError
            edges = np.asarray([float(e) for e in spec])
        except (TypeError, ValueError):
            return f"bins.{name}: edges must be numbers, got {list(spec)}"
        if len(edges) < 2 or np.any(np.isnan(edges)) or np.any(np.diff(edges) <= 0):
            return f"bins.{name}: edges must be at least 2 strictly increasing numbers, got {list(spec)}"
        return None
    return (f"bins.{name}: expected a list of edges, a number of quantile bins or 'quartiles', "
            f"got {spec!r}")


def bin_numeric(values: pd.Series, spec: BinSpec | None, *, name: str) -> pd.Series:
    """Cut a numeric column into labelled, ordered bins (categorical Series, NaN stays NaN)."""
    problem = bin_spec_problem(spec, name=name)
    if problem:
        raise ConfigError(problem)
    if values.isna().all():  # no value in these cases (e.g. a --limit subset): no group, as _categorical
        return pd.Series(pd.Categorical([None] * len(values), categories=[], ordered=True), index=values.index,
                         name=name)
    if spec is None or spec == "quartiles":
        edges = _quantile_edges(values, 4)
    elif isinstance(spec, int) and not isinstance(spec, bool):
        edges = _quantile_edges(values, spec)
    else:
        edges = np.asarray([float(e) for e in spec])
        present = values.dropna()
        outside = present[(present < edges[0]) | (present >= edges[-1])]
        if len(outside):
            raise ConfigError(f"bins.{name}: {len(outside)} case(s) fall outside [{_fmt(edges[0])}, "
                              f"{_fmt(edges[-1])}) (e.g. {outside.iloc[0]!r}); widen the edges or use "
                              "-inf / inf for open ends")
    labels = _interval_labels(edges)
    codes = pd.cut(values.astype(float), bins=edges, right=False, labels=False)
    cat = pd.Categorical.from_codes(codes.fillna(-1).astype(int), categories=labels, ordered=True)
    used = [c for c in labels if c in set(cat[cat.notna()])]
    return pd.Series(cat, index=values.index, name=name).cat.set_categories(used, ordered=True)


def _categorical(values: pd.Series, name: str) -> pd.Series:
    present = values.dropna()
    if _is_numeric(values):
        levels = sorted(present.unique())
        labels = [_fmt(v) if isinstance(v, float) else str(v) for v in levels]
        mapping = dict(zip(levels, labels))
        out = values.map(lambda v: mapping.get(v) if pd.notna(v) else None)
    else:
        labels = sorted({str(v) for v in present})
        out = values.map(lambda v: str(v) if pd.notna(v) else None)
    return pd.Series(pd.Categorical(out, categories=labels, ordered=True), index=values.index, name=name)


def _single(frame: pd.DataFrame, name: str, bins: Mapping[str, BinSpec]) -> pd.Series:
    col = frame[name]
    if name in bins:
        if not _is_numeric(col):
            raise ConfigError(f"bins.{name}: column {name!r} is not numeric: {_not_numbers(col)}; only numeric "
                              "attributes can be binned (write numbers with a decimal point; leave unknown "
                              "cells empty)")
        return bin_numeric(col, bins[name], name=name)
    if _is_numeric(col) and col.dropna().nunique() > NUMERIC_CATEGORICAL_MAX:
        return bin_numeric(col, None, name=name)
    return _categorical(col, name)


def _intersect(parts: list[pd.Series], name: str) -> pd.Series:
    missing = np.zeros(len(parts[0]), dtype=bool)
    for p in parts:
        missing |= p.isna().to_numpy()
    text = parts[0].astype(str)
    for p in parts[1:]:
        text = text + INTERSECTION + p.astype(str)
    text = text.where(~missing)
    # Order levels by the components' own orders (e.g. age bands ascending within each sex).
    import itertools

    levels = [INTERSECTION.join(c) for c in itertools.product(*[list(p.cat.categories) for p in parts])]
    present = set(text.dropna())
    levels = [lvl for lvl in levels if lvl in present]
    return pd.Series(pd.Categorical(text, categories=levels, ordered=True), index=parts[0].index, name=name)


def auto_attributes(frame: pd.DataFrame) -> list[str]:
    """Metadata columns usable as cohorts: 2–20 levels (numeric columns: any, they get quartiles).

    Identifier-like columns are skipped: ``case_id``, ``*_sha256``, paths, patient columns, data-split
    columns (``kFold``, ``fold``, ``valid_1``, ``split``, ``is_test`` ...) and text columns whose every
    value is distinct.
    """
    return [name for name, why in _auto_verdicts(frame) if why is None]


def auto_skipped(cases: pd.DataFrame) -> list[str]:
    """What ``cohorts = "auto"`` left out of a case table and why (``"sex (one value)"``), for a note;
    identifier, hash and data-split columns are not listed."""
    return [f"{name} ({why})" for name, why in _auto_verdicts(_blanks_as_missing(case_index(cases))) if why]


def _auto_verdicts(frame: pd.DataFrame) -> list[tuple[str, str | None]]:
    """Per candidate column: None when ``auto`` takes it, else why not (identifier-like columns skipped)."""
    out: list[tuple[str, str | None]] = []
    for name in frame.columns:
        if (str(name) in NOT_ATTRIBUTES or is_patient_column(name) or str(name).endswith("_sha256")
                or SPLIT_COLUMN.fullmatch(str(name))):
            continue
        col = frame[name]
        n_levels = col.dropna().nunique()
        # numeric: binned into quartiles; text: 2–20 levels, not all distinct (an identifier)
        if n_levels < AUTO_MIN_LEVELS:
            out.append((str(name), "no value" if n_levels == 0 else "one value"))
        elif _is_numeric(col) or (n_levels <= AUTO_MAX_LEVELS and n_levels < col.notna().sum()):
            out.append((str(name), None))
        elif n_levels > AUTO_MAX_LEVELS:
            out.append((str(name), f"{n_levels} values, more than {AUTO_MAX_LEVELS}"))
        else:
            out.append((str(name), "a different value for every case, like an identifier"))
    return out


def _blanks_as_missing(frame: pd.DataFrame) -> pd.DataFrame:
    """Blank text cells ("" or spaces) as no value, as for patient ids and sites: such a case is left
    out of that attribute (and noted) instead of forming a group of its own."""
    out = frame.copy()
    for name in out.columns:
        if not _is_numeric(out[name]):
            out[name] = out[name].map(lambda v: np.nan if isinstance(v, str) and not v.strip() else v)
    return out


def resolve_cohorts(cases: pd.DataFrame, cohorts: Sequence[str | Sequence[str]] | str, *,
                    bins: Mapping[str, BinSpec] | None = None) -> dict[str, pd.Series]:
    """Group label per case for every cohort attribute.

    Returns ``{attribute: Series}`` indexed by ``case_id`` with ordered categorical labels (NaN where
    the case has no value). Intersections are named ``"a×b"`` with labels ``"F×Alpha 1.5T"``.

    >>> cases = pd.DataFrame({"case_id": ["a", "b", "c"], "sex": ["F", "M", "F"], "age": [30, 50, 70]})
    >>> groups = resolve_cohorts(cases, ["sex", "age"], bins={"age": [0, 40, 65, 120]})
    >>> list(groups["age"])
    ['[0, 40)', '[40, 65)', '[65, 120)']
    """
    frame = _blanks_as_missing(case_index(cases))
    bins = dict(bins or {})
    parsed = parse_cohorts(cohorts)
    if parsed == "auto":
        parsed = [(name,) for name in auto_attributes(frame)]
    available = [str(c) for c in frame.columns if str(c) not in NOT_ATTRIBUTES and not str(c).endswith("_sha256")]
    missing = sorted({p for parts in parsed for p in parts if p not in frame.columns})
    if missing:
        raise ConfigError(f"cohort attribute(s) {', '.join(map(repr, missing))} not in the case metadata; "
                          f"available columns: {', '.join(available) or '(none)'}")
    out: dict[str, pd.Series] = {}
    singles: dict[str, pd.Series] = {}
    for parts in parsed:
        for p in parts:
            if p not in singles:
                singles[p] = _single(frame, p, bins)
        name = INTERSECTION.join(parts)
        out[name] = singles[parts[0]].rename(name) if len(parts) == 1 else _intersect([singles[p] for p in parts], name)
    return out
