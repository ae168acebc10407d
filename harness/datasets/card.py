"""Dataset cards (TOML): any folder layout, one ``[dataset]`` table or several ``[[sources]]``.

Keys of ``[dataset]`` (and of each ``[[sources]]`` table):
``images`` glob relative to the card; ``labels`` path template with ``{key}``; ``key_regex`` regex with
a named group ``key`` applied to the image file name; ``metadata`` a CSV or a list of CSVs (their
columns joined per case; a column they share must agree); ``metadata_key`` the CSV column holding the
case key or image file stem (first column by default); ``label_values`` raw mask value -> class; ``spacing`` mm;
``modality`` mri|ct|us|other; ``channel`` for RGB(A) rasters; ``label_names`` class -> name; ``name``.
A source also takes ``site`` (required with several sources) and ``scanner``: both become metadata and
case ids become ``site/key``.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from harness.datasets.folder import CaseFiles, FileDataset
from harness.datasets.io import strip_suffix
from harness.datasets.metadata import (
    MetadataTable,
    MissingKeyColumn,
    coerce_cell,
    read_metadata_csv,
    some_of,
    unused_rows,
)
from harness.errors import ConfigError
from harness.options import did_you_mean, must_be_one_of
from harness.tomlread import tomllib

CARD_KEYS = {"name", "images", "labels", "key_regex", "metadata", "metadata_key", "label_values",
             "spacing", "modality", "channel", "label_names", "site", "scanner"}
MODALITIES = ("mri", "ct", "us", "other")
# case key from an image file name: nnU-Net's "_0000" channel suffix dropped; suffixes of any case
DEFAULT_KEY_REGEX = r"(?i)(?P<key>.+?)(_0000)?\.(nii\.gz|nii|png|jpe?g|tiff?|bmp)$"


def _fail(card: Path, where: str, message: str) -> ConfigError:
    return ConfigError(f"dataset card {card}: {where}: {message}")


def _label_names(card: Path, where: str, table: dict[str, Any]) -> dict[int, str]:
    """``label_names`` as class -> name for the classes 1, 2, ... (background 0 is never scored, so
    a name given for it is dropped); {} when absent."""
    raw = table.get("label_names")
    if raw is None:
        return {}
    example = 'e.g. label_names = { 1 = "lesion" }'
    if not isinstance(raw, dict):
        raise _fail(card, f"{where}.label_names", f"expected a table of class names, {example}")
    names: dict[int, str] = {}
    zero_seen = False
    for key, name in raw.items():
        try:
            value = int(key)
        except ValueError:
            raise _fail(card, f"{where}.label_names", f"class key {key!r} is not an integer; {example}") from None
        if value < 0 or not isinstance(name, str):
            raise _fail(card, f"{where}.label_names", f"class {key!r} = {name!r}: keys must be integers ≥ 0 "
                                                      f"and names strings; {example}")
        if value in names or (value == 0 and zero_seen):
            raise _fail(card, f"{where}.label_names", f"class {value} is named twice; {example}")
        zero_seen = zero_seen or value == 0
        if value > 0:
            names[value] = name
    return dict(sorted(names.items()))


def _read_metadata(card: Path, where: str, table: dict[str, Any]) -> list[MetadataTable]:
    """The card's metadata CSVs: ``metadata`` is one path or a list of paths (joined per case)."""
    if "metadata" not in table:
        return []
    paths = table["metadata"]
    if isinstance(paths, str):
        paths = [paths]
    if not isinstance(paths, list) or not paths or not all(isinstance(p, str) for p in paths):
        raise _fail(card, f"{where}.metadata", "expected a CSV path or a list of CSV paths")
    tables = []
    for path in paths:
        try:
            tables.append(read_metadata_csv((card.parent / path).resolve(), table.get("metadata_key"),
                                            missing_key_hint="set metadata_key to the column holding the case keys"))
        except MissingKeyColumn as exc:
            raise _fail(card, f"{where}.metadata_key", str(exc)) from exc
        except ConfigError as exc:
            raise _fail(card, f"{where}.metadata", str(exc)) from exc
    return tables


def _case_metadata(card: Path, where: str, tables: list[MetadataTable], keys: list[str],
                   found: dict[Path, set[str]]) -> dict[str, Any]:
    """A case's attributes from every metadata CSV, its row found by the first of ``keys`` (case id,
    key, image file stem) the CSV has; a column several CSVs share must agree. ``found`` collects,
    per CSV, the row keys used."""
    meta: dict[str, str] = {}
    source: dict[str, Path] = {}
    key = keys[0]
    for t in tables:
        hit = t.find(*keys)
        if hit is None:
            tried = " (nor " + ", ".join(repr(k) for k in keys[1:]) + ")" if keys[1:] else ""
            raise _fail(card, f"{where}.metadata", f"no row for case {key!r}{tried} in column "
                        f"{t.key!r} of {t.csv}")
        found.setdefault(t.csv, set()).add(hit)  # resolved when read (_read_metadata)
        row = t.row(hit) or {}
        for column, value in row.items():
            if (column in meta and coerce_cell(meta[column]) != coerce_cell(value)  # " F" is "F"
                    and column != t.key):  # key columns may differ in form
                raise _fail(card, f"{where}.metadata", f"column {column!r} disagrees for case {key!r}: "
                            f"{meta[column]!r} in {source[column]}, {value!r} in {t.csv}; rename or drop it in one CSV")
            meta.setdefault(column, value)
            source.setdefault(column, t.csv)
    return {c: coerce_cell(v) for c, v in meta.items()}


_STRING_KEYS = ("images", "labels", "key_regex", "metadata_key", "name", "site", "scanner")


def _check_field_types(card: Path, where: str, table: dict[str, Any]) -> None:
    """String fields are strings; ``spacing`` a list of finite mm > 0; ``channel`` an integer ≥ 0."""
    for key in _STRING_KEYS:
        if key in table and (not isinstance(table[key], str)
                             or (key in ("images", "labels", "site", "scanner") and not table[key].strip())):
            raise _fail(card, f"{where}.{key}", f"expected a non-empty string, got {table[key]!r}")
        if key in ("site", "scanner") and key in table and table[key] != table[key].strip():
            raise _fail(card, f"{where}.{key}", f"{table[key]!r} has leading or trailing spaces (another site "
                        "name to the analysis); remove them")
    if "spacing" in table:
        spacing = table["spacing"]
        if not (isinstance(spacing, list) and spacing
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < float("inf")
                        for v in spacing)):
            raise _fail(card, f"{where}.spacing", f"expected a list of positive numbers in mm, one per axis, "
                        f"e.g. spacing = [0.5, 0.5]; got {spacing!r}")
    if "channel" in table:
        channel = table["channel"]
        if not isinstance(channel, int) or isinstance(channel, bool) or channel < 0:
            raise _fail(card, f"{where}.channel", f"expected an integer ≥ 0 (0 = R, 1 = G, 2 = B, 3 = A); "
                        f"got {channel!r}")


def _glob(root: Path, pattern: str) -> list[Path]:
    """Files matching ``pattern``, relative to the card's folder ``root`` or absolute; sorted."""
    if Path(pattern).is_absolute():
        anchor = Path(Path(pattern).anchor)
        return sorted(anchor.glob(str(Path(pattern).relative_to(anchor))))
    return sorted(root.glob(pattern))


def _label_path(card: Path, where: str, template: str, key: str) -> str:
    """The ``labels`` template filled in for case ``key``."""
    try:
        return template.format(key=key)
    except (KeyError, IndexError, ValueError) as exc:
        raise _fail(card, f"{where}.labels", f"only {{key}} may appear in braces in {template!r} ({exc!r}); "
                    "write literal braces as {{ and }}") from exc


def _source_cases(card: Path, where: str, table: dict[str, Any], *, prefix: str,
                  unmatched: list[str] | None = None,
                  used: dict[Path, tuple[MetadataTable, set[str]]] | None = None) -> list[CaseFiles]:
    """The cases of one source (``[dataset]`` or one ``[[sources]]`` table). ``unmatched`` collects the
    image files ``key_regex`` does not match; ``used`` (per metadata CSV, shared by sources that name
    the same file) the keys this source's cases looked up, so rows no source used can be listed."""
    for key in table:
        if key not in CARD_KEYS:
            raise _fail(card, where, f"unknown key {key!r}{did_you_mean(key, sorted(CARD_KEYS))}")
    for key in ("images", "labels"):
        if key not in table:
            raise _fail(card, where, f"missing {key!r}")
    _check_field_types(card, where, table)
    if "{key}" not in table["labels"]:
        raise _fail(card, f"{where}.labels", "the template must contain {key}, e.g. 'masks/mask_{key}.png'")
    try:
        pattern = re.compile(table.get("key_regex", DEFAULT_KEY_REGEX))
    except re.error as exc:
        raise _fail(card, f"{where}.key_regex", f"invalid regex ({exc})") from exc
    if "key" not in pattern.groupindex:
        raise _fail(card, f"{where}.key_regex", "needs a named group 'key', e.g. 'bus_(?P<key>.+)\\.png'")
    root = card.parent
    images = _glob(root, table["images"])
    if not images:
        raise _fail(card, f"{where}.images", f"no file matches {table['images']!r} under {root.resolve()}")
    label_values = None
    if "label_values" in table:
        try:
            raw_values = [(int(k), k) for k in table["label_values"]]
            label_values = {int(k): v for k, v in table["label_values"].items()}
        except (ValueError, AttributeError, TypeError) as exc:
            raise _fail(card, f"{where}.label_values", "must map raw values to classes, e.g. {\"255\" = 1}") from exc
        if len(label_values) < len(raw_values):  # "1" and "01" are one raw value: the last entry would win
            twice = sorted({k for k, _ in raw_values if sum(v == k for v, _ in raw_values) > 1})
            raise _fail(card, f"{where}.label_values", f"raw value(s) {twice} given more than once "
                        f"({', '.join(repr(key) for value, key in raw_values if value in twice)}); keep one entry each")
        if any(type(v) is not int for v in label_values.values()):
            raise _fail(card, f"{where}.label_values", "classes must be integers, e.g. {\"255\" = 1}, got "
                        f"{table['label_values']}")
        if any(v < 0 for v in label_values.values()):
            raise _fail(card, f"{where}.label_values", f"classes must be ≥ 0 (0 = background), got {label_values}")
        if 0 in label_values:
            raise _fail(card, f"{where}.label_values", "raw value 0 is always background; remove the \"0\" entry")
    spacing = tuple(float(s) for s in table["spacing"]) if "spacing" in table else None  # checked above
    channel = table.get("channel")
    metadata = _read_metadata(card, where, table)
    extra = {k: table[k] for k in ("site", "scanner") if k in table}
    cases, skipped = [], []
    seen: dict[Path, set[str]] = {}
    for image in images:
        match = pattern.search(image.name)
        if not match:
            skipped.append(image.name)
            continue
        key = match.group("key")
        if not key:
            raise _fail(card, f"{where}.key_regex", f"{pattern.pattern!r} matches {image.name!r} but its group "
                        "'key' captures nothing; make the group required and non-empty, e.g. (?P<key>.+)")
        keys = list(dict.fromkeys([f"{prefix}{key}", key, strip_suffix(image.name)]))  # case id first
        meta = _case_metadata(card, where, metadata, keys, seen)
        for column, value in extra.items():  # a source's site/scanner must not silently overwrite the CSV's
            if column in meta and meta[column] is not None and str(meta[column]) != str(value):  # None: a blank cell
                raise _fail(card, f"{where}.{column}", f"{value!r} disagrees with the metadata column {column!r} "
                            f"({meta[column]!r} for case {key!r}); rename the column or drop the key")
        meta.update(extra)
        label = root / _label_path(card, where, table["labels"], key)
        cases.append(CaseFiles(case_id=f"{prefix}{key}", images=(image,), label=label, spacing=spacing,
                               channel=channel, label_values=label_values, metadata=meta))
    if not cases:
        raise _fail(card, f"{where}.key_regex", f"no image name under {table['images']!r} matches "
                    f"{pattern.pattern!r}")
    if unmatched is not None and skipped:
        unmatched.append(f"{where}: {len(skipped)} file(s) under {table['images']!r} match no key_regex: "
                         f"{some_of(skipped)}")
    if used is not None:
        for t in metadata:
            used.setdefault(t.csv, (t, set()))[1].update(seen.get(t.csv, set()))
    return cases


def load_card(card: Path) -> FileDataset:
    """Parse a dataset card into a lazily loading :class:`FileDataset`."""
    try:
        doc = tomllib.loads(card.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"dataset card {card}: cannot read ({exc})") from exc
    except (tomllib.TOMLDecodeError, RecursionError) as exc:  # RecursionError: nesting thousands deep
        raise ConfigError(f"dataset card {card}: invalid TOML: {exc}") from exc
    if "dataset" in doc and "sources" in doc:
        raise ConfigError(f"dataset card {card}: use either [dataset] or [[sources]], not both")
    head = doc.get("dataset", {})
    sources = doc.get("sources") or [head]
    if not isinstance(sources, list) or not all(isinstance(s, dict) for s in sources) or not sources[0]:
        raise ConfigError(f"dataset card {card}: needs a [dataset] table (or [[sources]] tables) "
                          "with at least 'images' and 'labels'")
    several = "sources" in doc
    cases: list[CaseFiles] = []
    unmatched: list[str] = []
    used: dict[Path, tuple[MetadataTable, set[str]]] = {}
    modalities, label_maps = set(), []
    for i, table in enumerate(sources):
        where = f"[[sources]] #{i + 1}" if several else "[dataset]"
        if several and "site" not in table:
            raise _fail(card, where, "missing 'site' (each source needs a site name)")
        prefix = f"{table['site']}/" if several else ""
        cases.extend(_source_cases(card, where, table, prefix=prefix, unmatched=unmatched, used=used))
        modality = table.get("modality", "other")
        if modality not in MODALITIES:
            raise _fail(card, f"{where}.modality", must_be_one_of(MODALITIES, modality))
        modalities.add(modality)
        label_maps.append(table.get("label_values"))
    if len(modalities) > 1:
        raise ConfigError(f"dataset card {card}: sources disagree on modality {sorted(modalities)}")
    if several and any(label_maps) and not all(label_maps):
        bare = [i + 1 for i, m in enumerate(label_maps) if not m]
        verb = "has" if len(bare) == 1 else "have"
        raise ConfigError(f"dataset card {card}: [[sources]] #{', #'.join(map(str, bare))} {verb} no label_values "
                          "while other sources map raw mask values; give every source label_values (e.g. "
                          "{ \"1\" = 1 } for masks already 0/1), so no source's masks are read unmapped")
    classes = {frozenset((v for v in (m or {}).values())) for m in label_maps if m}
    if len(classes) > 1:
        raise ConfigError(f"dataset card {card}: sources map labels to different class sets "
                          f"{[sorted(c) for c in classes]}; make label_values consistent")
    all_names = [_label_names(card, f"[[sources]] #{i + 1}" if several else "[dataset]", t)
                 for i, t in enumerate(sources)]
    given = [n for n in all_names if n]
    if any(n != given[0] for n in given):
        raise ConfigError(f"dataset card {card}: sources name the classes differently "
                          f"{[dict(n) for n in given]}; give every source the same label_names")
    names = given[0] if given else {}
    name = str(sources[0].get("name") or card.stem)
    return FileDataset(name, cases, modality=modalities.pop(), label_names=names,
                       unmatched=unmatched + [r for table, seen in used.values() if (r := unused_rows(table, seen))])
