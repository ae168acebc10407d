"""Does a run score a model on cases it was trained on?

``harness train`` records, in its ``training.json``, the first 16 hex digits of the image sha256 of
every training and validation case (``seen_images``: ``{"train": [...], "val": [...]}``), the same
hashes a run writes to ``cases.csv``. A run whose model card points to such a record (``[training]
record``) counts its cases whose image is among them and says so in a run note: scores on cases the
model has seen overstate its performance. Matching by image content, not case id, so renamed files
are caught and another dataset that reuses ids (``phantom2d_000``) is not flagged.

Records written before ``seen_images`` existed are matched by case id when their data manifest
hash equals the run's (the same data); otherwise they are not checked.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

DIGITS = 16  # hex digits of sha256 kept per image (collisions are negligible at any dataset size)


def image_digests(manifest: pd.DataFrame, case_ids: Iterable[str]) -> list[str]:
    """The ``DIGITS``-long image hash prefixes of ``case_ids`` (rows of a dataset manifest)."""
    return [str(manifest.loc[cid, "image_sha256"])[:DIGITS] for cid in case_ids]


def manifest_sha256(manifest: pd.DataFrame) -> str:
    """sha256 of a dataset manifest as the trainer records it (sorted by case id, as CSV)."""
    return hashlib.sha256(manifest.sort_index().to_csv().encode("utf-8")).hexdigest()


def _record(model: Any) -> tuple[dict[str, Any] | None, Path | None]:
    card = getattr(model, "model_card", None)
    training = (getattr(card, "extra", None) or {}).get("training") or {}
    name = training.get("record") if isinstance(training, dict) else None
    if not isinstance(name, str) or not name:
        return None, None
    path = Path(card.base_dir) / name
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, path
    return (record if isinstance(record, dict) else None), path


def seen_cases(model: Any, manifest: pd.DataFrame) -> dict[str, list[str]]:
    """``{"train": [case ids], "val": [...]}``: this run's cases (``manifest``, indexed by case id)
    the model was trained or validated on, per its training record; empty lists when it has none."""
    record, _ = _record(model)
    out: dict[str, list[str]] = {"train": [], "val": []}
    if record is None or "image_sha256" not in manifest.columns:
        return out
    digests = manifest["image_sha256"].astype(str).str[:DIGITS]
    seen = record.get("seen_images")
    split = record.get("split") or {}
    same_data = None  # computed once, only for a record without seen_images
    for role in out:
        if isinstance(seen, dict) and isinstance(seen.get(role), list):
            known = set(seen[role])
            out[role] = [str(cid) for cid, d in digests.items() if d in known]
            continue
        if same_data is None:
            same_data = record.get("manifest_sha256") == manifest_sha256(manifest)
        if same_data and isinstance(split.get(role), list):
            known = {str(c) for c in split[role]}
            out[role] = [str(cid) for cid in manifest.index if str(cid) in known]
    return out


def first_unseen(dataset: Any, model: Any) -> tuple[str, str]:
    """The case ``validate-model`` should show: the first the model's training record does not name
    (its first case when there is no record), and a line saying how that case was chosen ("" without
    a record). Only the cases up to that one are hashed."""
    from harness.errors import ConfigError

    first = dataset.case_ids[0]
    if _record(model)[0] is None:
        return first, ""
    try:
        chosen = held_out(dataset, model, limit=1)[0].case_ids[0]
    except ConfigError as exc:  # every case seen, or a record that cannot tell them apart
        return first, str(exc).removeprefix("--held-out: ")
    skipped = dataset.case_ids.index(chosen)
    if not skipped:
        return chosen, "not in the model's training record"
    return chosen, (f"the first {skipped} case(s) were seen in training or validation; this is the first one "
                    "that was not")


def held_out(dataset: Any, model: Any, *, limit: int | None = None) -> tuple[Any, list[str]]:
    """``harness run --held-out``: ``dataset`` without the cases the model's training record says it
    was trained or validated on (at most ``limit`` cases, scanned in order: only as many files are
    hashed as it takes), and a run note saying how many were left out. ConfigError when the model
    has no such record or nothing is left."""
    from harness.errors import ConfigError

    record, path = _record(model)
    seen = record.get("seen_images") if record is not None else None
    if record is None or not (isinstance(seen, dict) or isinstance(record.get("split"), dict)):
        where = f" ({path} is missing or unreadable)" if path is not None else ""
        raise ConfigError(f"--held-out: model {getattr(model, 'name', '')!r} has no training record{where}; it needs "
                          "the [training] record (training.json) that `harness train` writes beside its card")
    keep: list[str] = []
    hashes: dict[str, dict[str, str]] = {}
    n_gone = 0
    if isinstance(seen, dict):
        known = {str(d) for role in ("train", "val") for d in (seen.get(role) or [])}
        for cid in dataset.case_ids:
            try:
                found = dataset.file_hashes(cid)
            except (OSError, ValueError) as exc:
                raise ConfigError(f"--held-out: cannot read case {cid}: {exc}") from exc
            if str(found["image_sha256"])[:DIGITS] in known:
                n_gone += 1
                continue
            keep.append(cid)
            hashes[cid] = found
            if limit is not None and len(keep) >= limit:
                break
    else:  # a record from before seen_images: case ids, on the very data it was made on
        manifest = dataset.manifest()
        if record.get("manifest_sha256") != manifest_sha256(manifest):
            raise ConfigError(f"--held-out: {path} predates per-image hashes (seen_images) and was made on other data "
                              "(its manifest hash differs), so the cases the model saw cannot be told apart; "
                              "retrain, or evaluate a card of its test split")
        gone = {cid for ids in seen_cases(model, manifest).values() for cid in ids}
        n_gone = len(gone)
        keep = [cid for cid in dataset.case_ids if cid not in gone][:limit]
    if not keep:
        raise ConfigError(f"--held-out: all {len(dataset.case_ids)} cases of the data were seen by the model in "
                          f"training (per {path}): give data with cases it was not trained on")
    return dataset.select(keep, hashes=hashes), [
        f"--held-out: {n_gone} case(s) seen by the model in training (per {path}) were left out; {len(keep)} of the "
        f"data's {len(dataset.case_ids)} cases evaluated"]


def independence(model: Any, manifest: pd.DataFrame) -> dict[str, Any]:
    """What a run can say of its cases' independence from the model's training, for summary.json:
    ``{"record": file name or None, "training_images": n, "validation_images": n, "seen_train": n,
    "seen_val": n}`` (sizes None where the record does not give them); ``"unchecked": why`` instead of
    the counts when the record cannot tell the cases apart; only ``record: None`` without a record."""
    record, path = _record(model)
    if record is None:
        return {"record": path.name if path is not None else None, "readable": path is None}
    seen = record.get("seen_images") if isinstance(record.get("seen_images"), dict) else {}
    split = record.get("split") if isinstance(record.get("split"), dict) else {}

    def size(role: str) -> int | None:
        values = seen.get(role) if isinstance(seen.get(role), list) else split.get(role)
        return len(values) if isinstance(values, list) else None

    name = path.name if path is not None else None
    if "image_sha256" not in manifest.columns:
        return {"record": name, "readable": True, "unchecked": "the evaluated cases have no image hashes"}
    if not seen and not (split and record.get("manifest_sha256") == manifest_sha256(manifest)):
        return {"record": name, "readable": True,
                "unchecked": ("the record names no image hashes (seen_images), and its case ids belong to other data"
                              if split else "the record names neither image hashes nor a split")}
    found = seen_cases(model, manifest)
    return {"record": name, "readable": True, "training_images": size("train"), "validation_images": size("val"),
            "seen_train": len(found["train"]), "seen_val": len(found["val"])}


def overlap_note(model: Any, manifest: pd.DataFrame) -> list[str]:
    """A run note when the run scores cases the model was trained or validated on ([] otherwise)."""
    seen = seen_cases(model, manifest)
    if not seen["train"] and not seen["val"]:
        return []
    _, path = _record(model)
    parts = [f"{len(ids)} in its {'training' if role == 'train' else 'validation'} split"
             for role, ids in seen.items() if ids]
    example = (seen["train"] or seen["val"])[0]
    return [f"{len(seen['train']) + len(seen['val'])} of the {len(manifest)} evaluated cases were seen by the "
            f"model in training ({', '.join(parts)}; e.g. {example}; per {path}): their scores overstate how it "
            "performs on new patients; evaluate on held-out cases (e.g. a card of the test split)"]


__all__ = ["DIGITS", "first_unseen", "held_out", "independence", "image_digests", "manifest_sha256", "overlap_note", "seen_cases"]
