"""``harness validate-model --model CARD [--data ...]``: run one case and show what the model does.

:func:`validate_model` prints a table (input and output shapes and dtypes, declared and predicted
classes, Dice against the case's own mask, time per case, whether gradients flow) and returns it; a model
failure is printed as an ERROR row, then re-raised as :class:`~harness.errors.ModelError`.
:func:`validate_model_command` is the typer command the CLI registers: same output, and it returns
the exit code (0 OK, 2 the model failed); a bad card or dataset raises ConfigError (exit 3).
"""
from __future__ import annotations

import time
from typing import Annotated, Any, Optional

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.datasets.label_values import class_name_conflicts, classes_the_model_lacks
from harness.errors import ConfigError, ModelError
from harness.terminal import make_console
from harness.models import Model, load_card, load_model

WARM_RERUN_S = 5.0  # cases faster than this are run a second time for a warm timing


def _open_data(data: str | None, ndim: int) -> Any:
    """The dataset to draw the case from: ``open_dataset(data)`` when available, else a phantom."""
    try:
        from harness.datasets import open_dataset  # type: ignore[attr-defined]
    except ImportError:
        open_dataset = None
    if data is not None and open_dataset is not None:
        return open_dataset(data)
    from harness.datasets.phantom import phantom_dataset

    if data is None:
        return phantom_dataset(ndim, n=1)
    if data in ("phantom2d", "phantom3d"):
        return phantom_dataset(int(data[-2]), n=1)
    raise ConfigError(f"--data {data!r}: dataset readers are not available in this build; use "
                      "phantom2d or phantom3d")


def _gradient_check(model: Model, image: np.ndarray) -> str:
    if not model.differentiable or not hasattr(model, "torch_logits"):
        return "no (not a differentiable adapter)"
    import torch

    x = torch.from_numpy(np.ascontiguousarray(image[None], dtype=np.float32)).requires_grad_(True)
    try:
        logits = model.torch_logits(x)
        logits[:, 1:].sum().backward()
    except Exception as exc:  # report, do not fail: gradients are optional
        return f"no ({type(exc).__name__}: {exc})"
    grad = x.grad
    if grad is None or not torch.isfinite(grad).all():
        return "no (gradient missing or not finite)"
    return f"yes (|∂logits/∂image| = {float(grad.norm()):.3g}, logits {tuple(logits.shape)})"


def _dice(pred: np.ndarray, ref: np.ndarray, label: int) -> float:
    a, b = pred == label, ref == label
    total = int(a.sum() + b.sum())
    return 1.0 if total == 0 else 2.0 * float((a & b).sum()) / total


def validate_model(model: str, data: str | None = None, *, console: Console | None = None) -> Table:
    """Load ``model``, predict one case of ``data`` (default: a phantom of the model's
    dimensionality), print and return a table of what was found."""
    console = console or make_console()
    if data is None:  # a phantom of the model's dimensionality: the card's, else the model's own
        declared = load_card(model, ndim=2).ndim
        try:
            loaded = load_model(model, ndim=declared or 2)
        except ConfigError as first:
            if declared:
                raise
            try:
                loaded = load_model(model, ndim=3)  # a bare 3D file whose 2D probe failed
            except ConfigError:
                raise first from None  # not 3D either: the 2D probe's error says what is wrong
        dataset = _open_data(None, loaded.ndim or declared or 2)
    else:
        dataset = _open_data(data, 2)
        loaded = load_model(model, ndim=dataset.ndim)
    from harness.training_overlap import first_unseen

    case_id, chosen = first_unseen(dataset, loaded)  # not a case the model trained on, where its record tells
    case = dataset.load(case_id)

    table = Table(title=f"validate-model: {loaded.name}", show_header=True)
    table.add_column("check")
    table.add_column("found")
    card = loaded.card
    table.add_row("format", str(card["model"]["format"]))
    table.add_row("card", escape(str(card.get("source") or "(bare model file: defaults)")))
    table.add_row("sha256", loaded.sha256)
    if getattr(loaded, "runs_on", ""):
        table.add_row("runs on", loaded.runs_on)
    table.add_row("intended use", escape(str(card["model"].get("intended_use") or "(not stated)")))
    table.add_row("declared classes", escape(", ".join(f"{k} {v}" for k, v in loaded.labels.items())))
    # the patch size in effect, e.g. a fixed-size ONNX graph's
    effective = {**card["input"], "patch_size": getattr(loaded, "patch_size", card["input"]["patch_size"])}
    table.add_row("preprocessing", ", ".join(f"{k}={effective[k]}" for k in
                                             ("normalize", "pad_multiple", "patch_size", "spacing")))
    table.add_row("case", escape(f"{getattr(dataset, 'name', 'data')}/{case.case_id}" + (f" ({chosen})" if chosen else "")))
    spacing = " × ".join(f"{float(s):.6g}" for s in case.spacing)  # float32 headers: 0.8, not 0.800000011920929
    table.add_row("input", f"{case.image.dtype} {case.image.shape}, spacing {spacing} mm")
    problems = loaded.check_input(channels=case.image.shape[0], ndim=case.ndim)
    try:
        if problems:
            raise ModelError("; ".join(problems))
        start = time.perf_counter()
        pred = loaded.predict(case.image, case.spacing, case_id=case.case_id)
        elapsed = f"{time.perf_counter() - start:.3f} s"
        if time.perf_counter() - start < WARM_RERUN_S:  # the first call pays for warm-up; time a second
            start = time.perf_counter()
            loaded.predict(case.image, case.spacing, case_id=case.case_id)
            elapsed += f" first call, {time.perf_counter() - start:.3f} s warm"
    except ModelError as exc:
        table.add_row("result", f"[red]ERROR[/red] {escape(str(exc))}")
        console.print(table)
        raise
    table.add_row("output labels", f"{pred.labels.dtype} {pred.labels.shape}")
    table.add_row("output probabilities", "none (label map)" if pred.probabilities is None
                  else f"{pred.probabilities.dtype} {pred.probabilities.shape}")
    values, counts = np.unique(pred.labels, return_counts=True)
    table.add_row("predicted classes", ", ".join(f"{v}: {c} voxels" for v, c in zip(values, counts)))
    # the data's classes (what a run scores), else the model's; the model's name where it differs
    names = {int(k): str(v) for k, v in (dataset.label_names or loaded.labels).items() if int(k) != 0}
    table.add_row("Dice vs the case's mask", escape(", ".join(
        f"{name}{'' if str(loaded.labels.get(k, name)).lower() == name.lower() else f' (model: {loaded.labels[k]})'} "
        f"{_dice(pred.labels, case.label, k):.3f}" for k, name in names.items())))
    lacking = classes_the_model_lacks(names, loaded.labels)
    if lacking:
        table.add_row("missing classes", f"[yellow]WARNING[/yellow] {escape(', '.join(lacking))}: not among the "
                                         "model's declared classes; a run scores them as never predicted "
                                         "([suite].labels)")
    conflicts = class_name_conflicts(dataset.label_names or {}, loaded.labels)
    if conflicts:
        table.add_row("class names", f"[yellow]WARNING[/yellow] {escape('; '.join(conflicts))}: a run scores the data's class "
                                     "k against the model's output k")
    table.add_row("time per case", elapsed)
    table.add_row("gradients", escape(_gradient_check(loaded, case.image)))
    table.add_row("result", "[green]OK[/green]")
    console.print(table)
    return table


def validate_model_command(
    model: Annotated[str, typer.Option("--model", "-m", help="Model card (.toml), a .ts/.pt/.onnx file, "
                                                             "or 'reference'.")] = "reference",
    data: Annotated[Optional[str], typer.Option("--data", "-d", help="Data spec as for `harness run` "
                                                                     "(default: a phantom).")] = None,
) -> int:
    """Run a model on one case and print what was found. Returns the exit code (0 OK, 2 failed)."""
    try:
        validate_model(model, data)
    except ModelError:
        return 2  # the reason is in the printed table
    return 0
