"""Gallery: one PNG per family showing a case at severities 0-5, for eyeballing the ladders.

Uses the same per-item seeds as the runner (:func:`harness.seeds.item_seed`), so the gallery shows
what an evaluation with suite seed ``seed`` applies. Renders with Matplotlib's Agg canvas
directly (no pyplot, no global backend change). 3D cases show the middle plane orthogonal to the
slice axis; multi-channel cases show channel 0. The clean image's p0.5-p99.5 range is the grey
scale of every panel (CT datasets: the soft-tissue window W400/L40), and the label outline
(moved with geometric families) is drawn on top.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness.case import Case
from harness.errors import FOREIGN_FAILURES, ConfigError, describe_failure
from harness.perturbations import available, get
from harness.perturbations._util import slice_axis
from harness.perturbations.base import MAX_SEVERITY
from harness.seeds import item_seed

CT_WINDOW = (-160.0, 240.0)  # soft-tissue window W400 / L40, HU


def mid_plane(case: Case) -> tuple[np.ndarray, np.ndarray, float]:
    """(image plane, label plane, pixel aspect) shown for a case."""
    image, label, spacing = case.image[0], case.label, list(case.spacing)
    if case.ndim == 3:
        axis = slice_axis(case.spacing)
        mid = case.spatial_shape[axis] // 2
        image, label = np.take(image, mid, axis=axis), np.take(label, mid, axis=axis)
        spacing.pop(axis)
    return image, label, spacing[0] / spacing[1]


def _summary(params: dict[str, Any], limit: int = 2) -> str:
    """A short ``key=value`` line of the first scalar params (seeds left out)."""
    parts = []
    for key, value in params.items():
        if key.endswith("seed"):
            continue
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            parts.append(f"{key}={value:.3g}")
        elif isinstance(value, str):
            parts.append(f"{key}={value}")
        if len(parts) == limit:
            break
    return "\n".join(parts)


def render(case: Case, family: str, *, seed: int = 0, out: Path, options: dict[str, Any] | None = None,
           window: tuple[float, float] | None = None) -> Path:
    """Write ``out`` (PNG): ``case`` under ``family`` at severities 0..5, grey scale ``window``
    (default: the clean plane's p0.5-p99.5)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fam = get(family, **(options or {}))
    clean_plane, _, aspect = mid_plane(case)
    vmin, vmax = window or tuple(float(v) for v in np.percentile(clean_plane, [0.5, 99.5]))
    fig = Figure(figsize=(2.6 * (MAX_SEVERITY + 1), 3.3), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, MAX_SEVERITY + 1)
    for severity, ax in enumerate(axes):
        perturbed, params = fam(case, severity, item_seed(seed, case.case_id, family))
        image, label, _ = mid_plane(perturbed)
        ax.imshow(image, cmap="gray", vmin=vmin, vmax=vmax if vmax > vmin else vmin + 1,
                  aspect=aspect, interpolation="nearest")
        if label.any() and label.min() != label.max():
            ax.contour(label > 0, levels=[0.5], colors=["#ff5a36"], linewidths=0.6)
        title = "clean" if severity == 0 else f"severity {severity}"
        ax.set_title(f"{title}\n{_summary(params)}", fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{family} — {case.case_id}", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    return out


def _check_previewable(names: Sequence[str], modality: str) -> None:
    """Refuse families that need a model (attacks) or do not apply to the data's modality, as
    ``harness run`` would."""
    problems = []
    for name in names:
        family = get(name)
        if getattr(family, "requires_model", False):
            problems.append(f"{name} attacks a model, so it has no preview of its own; see its effect in "
                            "a run's report (failure overlays)")
        elif not family.applies_to(modality):
            problems.append(f"{name} applies to {', '.join(sorted(family.modalities))} images, but the data's "
                            f"modality is {modality!r}")
    if problems:
        raise ConfigError("preview: these families cannot be previewed on this data:", problems=problems)


def preview(dataset: Any, out_dir: str | Path, *, families: Sequence[str] | None = None,
            case_id: str | None = None, seed: int = 0) -> list[Path]:
    """One PNG grid per family (severity 0-5) of one case of ``dataset``; returns the paths.

    ``families`` None means every registered family that applies to ``dataset.modality`` (model-
    dependent families such as adversarial attacks are left out: they need a model);
    ``case_id`` None means the dataset's first case. Unknown names raise ``ConfigError``.
    """
    out_dir = Path(out_dir)
    modality = getattr(dataset, "modality", "other")
    if families is None:
        names = [n for n, cls in sorted(available().items())
                 if not getattr(cls, "requires_model", False) and cls().applies_to(modality)]
    else:
        known = available()
        unknown = [n for n in families if n not in known and ":" not in n]
        if unknown:
            raise ConfigError(f"unknown perturbation(s) {', '.join(unknown)}; "
                              f"available: {', '.join(sorted(known))}")
        names = list(families)
        _check_previewable(names, modality)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out {out_dir}: cannot create the folder ({exc.strerror or exc}); give a "
                          "writable folder") from exc
    ids = list(dataset.case_ids)
    if not ids:
        raise ConfigError("preview: the dataset has no cases")
    if case_id is not None and case_id not in ids:
        raise ConfigError(f"preview: case {case_id!r} is not in the dataset")
    case = dataset.load(case_id or ids[0])
    window = CT_WINDOW if modality == "ct" else None
    written, failed = [], []
    for name in names:  # a family that fails (a plugin's bug) is named; the others are still drawn
        try:
            written.append(render(case, name, seed=seed, out=out_dir / f"{name.replace(':', '_')}.png", window=window))
        except ConfigError:
            raise
        except FOREIGN_FAILURES as exc:
            failed.append(f"{name}: {describe_failure(exc)}")
    if failed:
        raise ConfigError(f"preview: {len(failed)} of {len(names)} families failed on case {case.case_id} "
                          f"({len(written)} written to {out_dir}):", problems=failed)
    return written
