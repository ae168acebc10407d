"""The post-run artifacts stage: everything the report shows that needs the model or the pixels.

Called by :func:`harness.pipeline.run` after the gates, never by ``harness report``. It writes
``<out>/artifacts/``:

* ``manifest.json`` — what is there and how it was made (methods, timings, notes);
* ``worst/NN.npz`` — for the k = ``[suite] worst_cases`` worst case × perturbation pairs (lowest
  primary metric, each pair at its worst severity): the clean and perturbed image plane, the
  reference and predicted label planes, a TTA-entropy uncertainty map and, for differentiable
  models, a SmoothGrad saliency map (2D planes; 3D volumes keep the slice with the most errors);
* ``gallery/NN.png`` — each family of the suite at severities 0–5 on a typical case;
* ``model_card.json`` — the parsed model card (intended use, identity) for the dossier.

A failure here never changes the run's outcome or exit code: it becomes a note in the manifest.
"""
from __future__ import annotations

import json
import shutil
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.analysis.robustness import higher_is_better
from harness.perturbations.base import plain_params
from harness.records import CLEAN
from harness.report import interpret

SMOOTHGRAD_SAMPLES = {2: 8, 3: 2}  # 3D backward passes are costly on CPU


def primary_metric(metrics: list[str] | tuple[str, ...]) -> str:
    """The metric worst cases are ranked by: dice when computed, else the first higher-is-better one."""
    metrics = list(metrics)
    if "dice" in metrics:
        return "dice"
    return next((m for m in metrics if higher_is_better(m)), metrics[0])


def worst_items(records: pd.DataFrame, metric: str, k: int) -> pd.DataFrame:
    """The ``k`` worst OK perturbed items, one per (case, perturbation), label-averaged ``metric``; ties
    by id. Clean items only when the run perturbed nothing (a clean image is not a perturbation pair,
    and its "perturbed" panel would repeat the clean one)."""
    ok = records[records["status"] == "OK"]
    if (ok["perturbation"] != CLEAN).any():
        ok = ok[ok["perturbation"] != CLEAN]
    if ok.empty or k <= 0:
        return pd.DataFrame(columns=["case_id", "perturbation", "severity", "repeat", "seed", "value"])
    keys = ["case_id", "perturbation", "severity", "repeat", "seed"]
    items = ok.groupby(keys, sort=True)[metric].mean().rename("value").reset_index()
    ascending = higher_is_better(metric)
    items = items.sort_values(["value", "case_id", "perturbation", "severity", "repeat"],
                              ascending=[ascending, True, True, True, True], kind="mergesort")
    return items.drop_duplicates(["case_id", "perturbation"]).head(k).reset_index(drop=True)


def _plane(case: Any, prediction: np.ndarray) -> tuple[tuple[slice | int, ...], str, float]:
    """Index of the 2D plane shown, its description and the pixel aspect (row / column spacing)."""
    spacing = list(case.spacing)
    if case.ndim == 2:
        return (slice(None), slice(None)), "", spacing[0] / spacing[1]
    from harness.perturbations._util import slice_axis

    axis = slice_axis(case.spacing)
    wrong = (prediction != case.label) | (case.label > 0)
    others = tuple(a for a in range(3) if a != axis)
    errors = (prediction != case.label).sum(axis=others)
    score = errors if errors.any() else wrong.sum(axis=others)
    index = int(np.argmax(score)) if score.any() else case.spatial_shape[axis] // 2
    where: list[slice | int] = [slice(None)] * 3
    where[axis] = index
    spacing.pop(axis)
    return tuple(where), f"axis {axis}, slice {index}", spacing[0] / spacing[1]


def _families(suite: Any, modality: str, model: Any) -> dict[str, Any]:
    from harness.perturbations import get
    from harness.runner import resolve_families

    families, _ = resolve_families(suite, modality)
    out = {}
    for label, (family, options) in families.items():
        instance = get(family, **options)
        if getattr(instance, "requires_model", False):
            instance.bind_model(model)
        out[label] = instance
    return out


def _worst_case(index: int, row: pd.Series, *, dataset: Any, model: Any, families: dict[str, Any],
                records: pd.DataFrame, metric: str, art: Path) -> dict[str, Any]:
    from harness.metrics import evaluate

    clean = dataset.load(row["case_id"])
    case, params = clean, {}
    if row["perturbation"] != CLEAN:
        case, params = families[row["perturbation"]](clean, int(row["severity"]),
                                                     np.random.default_rng(int(row["seed"])))
        params = plain_params(params, family=str(row["perturbation"]))
    prediction = model.predict(case.image, case.spacing)
    labels = np.asarray(prediction.labels)
    rows = records[(records["case_id"] == row["case_id"]) & (records["perturbation"] == row["perturbation"])
                   & (records["severity"] == row["severity"]) & (records["repeat"] == row["repeat"])
                   & (records["status"] == "OK")]
    per_label = {str(r.label_name): float(getattr(r, metric)) for r in rows.itertuples()}
    worst = rows.sort_values(metric, ascending=higher_is_better(metric), kind="mergesort").iloc[0]
    label = int(worst["label"])
    scores = evaluate(labels, case.label, spacing=case.spacing, labels=[int(v) for v in rows["label"]],
                      metrics=[metric])
    recomputed = float(np.mean([s[metric] for s in scores]))
    clean_rows = records[(records["case_id"] == row["case_id"]) & (records["perturbation"] == CLEAN)
                         & (records["status"] == "OK")]
    where, plane, aspect = _plane(case, labels)
    arrays = {"image_clean": clean.image[0][where] if clean.spatial_shape == case.spatial_shape
              else _plane_of(clean),
              "image_perturbed": case.image[0][where], "label_reference": case.label[where].astype(np.int16),
              "label_prediction": labels[where].astype(np.int16),
              "uncertainty": interpret.tta_entropy(model, case.image, case.spacing,
                                                   first=prediction)[where].astype(np.float16)}
    entry: dict[str, Any] = {
        "file": f"worst/{index:02d}.npz", "case_id": str(row["case_id"]), "perturbation": str(row["perturbation"]),
        "severity": int(row["severity"]), "repeat": int(row["repeat"]), "seed": int(row["seed"]),
        "metric": metric, "value": float(row["value"]), "per_label": per_label,
        "clean_value": float(clean_rows[metric].mean()) if len(clean_rows) else None,
        "label": label, "label_name": str(worst["label_name"]), "plane": plane, "aspect": aspect,
        "params": json.dumps(params, sort_keys=True, default=float), "recomputed": recomputed,
        "metadata": {str(k): str(v) for k, v in dict(clean.metadata).items()}}
    reason = interpret.saliency_unavailable(model)
    if reason is None:
        mask = labels == label if np.any(labels == label) else case.label == label
        n = SMOOTHGRAD_SAMPLES.get(case.ndim, 2)
        try:
            arrays["saliency"] = interpret.smoothgrad(model, case.image, mask, label, n=n,
                                                      seed=int(row["seed"]))[where].astype(np.float16)
            entry["saliency"] = f"class {label} ({entry['label_name']}), SmoothGrad n={n}"
        except Exception as exc:  # noqa: BLE001 - a model whose graph cannot be differentiated here
            entry["saliency_note"] = f"saliency failed: {type(exc).__name__}: {exc}"
    else:
        entry["saliency_note"] = reason
    if abs(recomputed - float(row["value"])) > 1e-6:
        entry["note"] = (f"re-running the model gave {metric} {recomputed:.4g}, the run recorded "
                         f"{float(row['value']):.4g}: the model or perturbation is not deterministic")
    np.savez_compressed(art / entry["file"], **arrays)
    return entry


def _plane_of(clean: Any) -> np.ndarray:
    """A plane of the clean image when a geometric perturbation changed the grid (middle slice)."""
    if clean.ndim == 2:
        return clean.image[0]
    from harness.perturbations._util import slice_axis

    axis = slice_axis(clean.spacing)
    return np.take(clean.image[0], clean.spatial_shape[axis] // 2, axis=axis)


def _gallery(art: Path, *, suite: Any, dataset: Any, records: pd.DataFrame, metric: str,
             families: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """One severity-ladder PNG per family on the case with the median clean ``metric``."""
    from harness.report.gallery import ladder_png

    clean = records[(records["status"] == "OK") & (records["perturbation"] == CLEAN)]
    per_case = clean.groupby("case_id")[metric].mean().sort_values(kind="mergesort")
    case_id = str(per_case.index[len(per_case) // 2]) if len(per_case) else str(dataset.case_ids[0])
    chosen_by = "the case with the median clean score" if len(per_case) else "the first case: no clean case was scored"
    case = dataset.load(case_id)
    entries, notes = [], []
    (art / "gallery").mkdir(exist_ok=True)
    for i, (label, family) in enumerate(families.items()):
        out = art / "gallery" / f"{i:02d}.png"
        try:
            ladder_png(case, label, family, seed=suite.seed, out=out, modality=dataset.modality)
            entries.append({"perturbation": label, "family": family.name, "case_id": case_id, "chosen_by": chosen_by,
                            "file": f"gallery/{i:02d}.png", "parameter_doc": getattr(family, "parameter_doc", "")})
        except Exception as exc:  # noqa: BLE001 - becomes a note in the report
            notes.append(f"gallery for {label}: {type(exc).__name__}: {exc}")
    return entries, notes


def write_artifacts(out: Path, *, suite: Any, dataset: Any, model: Any, records: pd.DataFrame) -> dict[str, Any]:
    """Write ``<out>/artifacts/`` (see module docstring); returns the manifest.

    Torch runs single-threaded here, as in the runner's workers (intra-op threads contend badly on
    shared machines); the previous setting is restored.
    """
    from harness.threads import single_thread

    try:
        with single_thread(native_pools=True):  # the model predicts as it did for the records
            return _write_artifacts(Path(out), suite=suite, dataset=dataset, model=model, records=records)
    except Exception as exc:  # noqa: BLE001 - the run's outcome must not depend on its illustrations
        return write_failure_manifest(out, f"{type(exc).__name__}: {exc}")


def write_failure_manifest(out: Path, reason: str) -> dict[str, Any]:
    """The manifest of an artifacts step that failed: no figures, a note saying why."""
    manifest = {"worst_cases": [], "gallery": [], "notes": [f"artifacts failed: {reason}"]}
    (Path(out) / "artifacts").mkdir(parents=True, exist_ok=True)
    (Path(out) / "artifacts" / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return manifest


def _write_artifacts(out: Path, *, suite: Any, dataset: Any, model: Any, records: pd.DataFrame) -> dict[str, Any]:
    start = time.perf_counter()
    art = Path(out) / "artifacts"
    if art.exists():
        shutil.rmtree(art)
    (art / "worst").mkdir(parents=True)
    metric = primary_metric(suite.metrics)
    manifest: dict[str, Any] = {"metric": metric, "k": int(suite.worst_cases), "worst_cases": [], "gallery": [],
                                "notes": [], "uncertainty_method": interpret.UNCERTAINTY_DOC,
                                "saliency_method": interpret.SALIENCY_DOC.format(
                                    n=SMOOTHGRAD_SAMPLES.get(dataset.ndim, 2))}
    try:
        card = getattr(model, "card", {}) or {}
        (art / "model_card.json").write_text(json.dumps(card, indent=2, sort_keys=True, default=str), encoding="utf-8")
        families = _families(suite, dataset.modality, model)
    except Exception as exc:  # noqa: BLE001 - becomes a note in the report
        manifest["notes"].append(f"artifacts unavailable: {type(exc).__name__}: {exc}")
        families = None
    if families is not None:
        for index, row in worst_items(records, metric, int(suite.worst_cases)).iterrows():
            try:
                manifest["worst_cases"].append(_worst_case(int(index), row, dataset=dataset, model=model,
                                                           families=families, records=records, metric=metric, art=art))
            except Exception as exc:  # noqa: BLE001 - becomes a note in the report
                manifest["notes"].append(f"worst case {row['case_id']} / {row['perturbation']}: "
                                         f"{type(exc).__name__}: {exc} "
                                         f"({traceback.format_exc(limit=1).splitlines()[-1]})")
        try:
            manifest["gallery"], notes = _gallery(art, suite=suite, dataset=dataset, records=records,
                                                  metric=metric, families=families)
            manifest["notes"] += notes
        except Exception as exc:  # noqa: BLE001 - becomes a note in the report
            manifest["notes"].append(f"gallery unavailable: {type(exc).__name__}: {exc}")
    manifest["seconds"] = round(time.perf_counter() - start, 3)
    (art / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
    return manifest
