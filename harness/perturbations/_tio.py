"""Bridge between :class:`~harness.case.Case` and TorchIO transforms.

TorchIO works on 4D tensors ``(C, W, H, D)`` with an affine; 2D cases are lifted to 3D with a
singleton axis. ``layout="last"`` appends it (``(C, H, W, 1)``: TorchIO's own 2D convention);
``layout="first"`` prepends it (``(C, 1, H, W)``), which TorchIO's motion needs because it
segments k-space along the last axis. Transforms run inside ``torch.random.fork_rng`` seeded
from the drawn params, so TorchIO never advances the caller's global torch RNG, and with one
torch thread (restored afterwards).

Torch's RNG and thread count are process-wide: :data:`TORCH_GLOBAL_STATE` serialises these
sections so items evaluated concurrently in one process (a threaded Dask worker) each draw from
their own seed instead of from a stream another thread has just re-seeded.
"""
from __future__ import annotations

import threading
from typing import Any, Literal

import numpy as np
import torch

from harness.case import Case
from harness.threads import single_thread

Layout = Literal["last", "first"]
TORCH_GLOBAL_STATE = threading.RLock()  # held while a section seeds or relies on torch's global RNG


def lift(array: np.ndarray, ndim: int, layout: Layout) -> np.ndarray:
    """``(C, *spatial)`` -> ``(C, W, H, D)``: unchanged for 3D, singleton axis added for 2D."""
    if ndim == 3:
        return array
    return array[..., None] if layout == "last" else array[:, None]


def drop(array: np.ndarray, ndim: int, layout: Layout) -> np.ndarray:
    """Inverse of :func:`lift`."""
    if ndim == 3:
        return array
    return array[..., 0] if layout == "last" else array[:, 0]


def lifted_spacing(spacing: tuple[float, ...], layout: Layout) -> tuple[float, float, float]:
    """Spacing of the lifted volume (the singleton axis gets 1 mm)."""
    if len(spacing) == 3:
        return (float(spacing[0]), float(spacing[1]), float(spacing[2]))
    a, b = (float(s) for s in spacing)
    return (a, b, 1.0) if layout == "last" else (1.0, a, b)


def spatial_axes(ndim: int, layout: Layout) -> list[int]:
    """TorchIO axis index (0..2) of each case spatial axis."""
    if ndim == 3:
        return [0, 1, 2]
    return [0, 1] if layout == "last" else [1, 2]


def run(case: Case, transform: Any, *, seed: int = 0, layout: Layout = "last",
        with_label: bool = False) -> Case:
    """Apply a deterministic TorchIO transform to ``case`` and return the new case.

    The label map travels as a ``LabelMap`` (nearest-neighbour) only when ``with_label``.
    """
    import torchio as tio

    spacing = lifted_spacing(case.spacing, layout)
    affine = np.diag([*spacing, 1.0])
    image = torch.from_numpy(np.ascontiguousarray(lift(case.image, case.ndim, layout), dtype=np.float32))
    items: dict[str, Any] = {"image": tio.ScalarImage(tensor=image, affine=affine)}
    if with_label:
        lab = lift(case.label[None], case.ndim, layout)
        items["label"] = tio.LabelMap(tensor=torch.from_numpy(np.ascontiguousarray(lab, dtype=np.int64)),
                                      affine=affine)
    subject = tio.Subject(**items)
    with TORCH_GLOBAL_STATE, torch.random.fork_rng(devices=[]), single_thread():
        torch.manual_seed(int(seed))
        out = transform(subject)
    new_image = drop(out["image"].data.numpy(), case.ndim, layout).astype(np.float32)
    changes: dict[str, Any] = {"image": np.ascontiguousarray(new_image)}
    if with_label:
        new_label = drop(out["label"].data.numpy(), case.ndim, layout)[0]
        changes["label"] = np.ascontiguousarray(np.rint(new_label).astype(case.label.dtype))
    return case.with_(**changes)


def run_on_magnitude(case: Case, transform: Any, **kwargs: Any) -> Case:
    """:func:`run` on the magnitude image: a channel with negative values (z-scored MRI) is taken
    as magnitude above its minimum, which is added back afterwards; a non-negative channel is the
    magnitude as it is. Multiplicative and k-space artefacts (bias field, spikes) then act alike on
    a raw and a z-scored image, instead of scaling the negative background and sizing the spike by
    a mean near 0."""
    low = np.minimum(case.image.reshape(case.image.shape[0], -1).min(axis=1), 0.0)
    low = low.reshape((-1,) + (1,) * case.ndim)
    out = run(case.with_(image=(case.image - low).astype(np.float32)), transform, **kwargs)
    return out.with_(image=(out.image + low).astype(np.float32))
