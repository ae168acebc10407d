"""Perturbation gallery: one PNG per family showing a case at severities 0–5 (run-time artifact).

Families that need no model and whose suite label is their registry name are drawn by
:func:`harness.perturbations.preview.render` (the seeds it uses are then the runner's). Others
(renamed families, adversarial attacks bound to the model under evaluation) are drawn here with
the runner's per-item seeds, in the same layout.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from harness.perturbations.preview import CT_WINDOW, mid_plane
from harness.seeds import item_seed

def ladder_png(case: Any, label: str, family: Any, *, seed: int, out: Path, modality: str = "other") -> Path:
    """Write ``out``: ``case`` under ``family`` (suite label ``label``) at severities 0..5."""
    window = CT_WINDOW if modality == "ct" else None
    if not getattr(family, "requires_model", False) and label == family.name:
        try:
            from harness.perturbations.preview import render
        except ImportError:  # pragma: no cover - drawn below instead
            pass
        else:
            return render(case, family.name, seed=seed, out=out, options=dict(getattr(family, "options", {})),
                          window=window)
    import matplotlib

    from harness.report.plots import RC, new_figure

    clean, _, aspect = mid_plane(case)
    vmin, vmax = window or tuple(float(v) for v in np.percentile(clean, [0.5, 99.5]))
    with matplotlib.rc_context(RC):
        fig = new_figure(2.6 * 6, 3.3)
        for severity, ax in enumerate(fig.subplots(1, 6)):
            perturbed, _ = family(case, severity, np.random.default_rng(item_seed(seed, case.case_id, label)))
            image, mask, _ = mid_plane(perturbed)
            ax.imshow(image, cmap="gray", vmin=vmin, vmax=vmax if vmax > vmin else vmin + 1, aspect=aspect)
            if mask.any() and mask.min() != mask.max():
                ax.contour(mask > 0, levels=[0.5], colors=["#ff5a36"], linewidths=0.6)
            ax.set_title("clean" if severity == 0 else f"severity {severity}", fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
        fig.suptitle(f"{label} — {case.case_id}", fontsize=9)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, format="png", metadata={"Software": None})
    return out
