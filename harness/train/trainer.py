"""The reference trainer: patch sampling → augmentation → U-Net → α·CE + β·Dice, with validation,
best-checkpoint selection, a time budget, resumption and reproducible outputs.

Reproducibility: with a fixed seed and ``epochs`` (not a time budget) the run is bit-for-bit
reproducible on CPU: single thread, ``torch.use_deterministic_algorithms``, a seeded numpy
generator for data order and patches, torch's RNG (TorchIO's source) seeded inside
``torch.random.fork_rng`` and both RNG states stored in every checkpoint, so a resumed run
continues exactly where it stopped. Global torch settings are restored on exit.
"""
from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from harness.case import Case
from harness.datasets.base import Dataset
from harness.errors import ConfigError
from harness.train import data as tdata
from harness.train.config import DICE_MODES, POSTPROCESS_BY, PRECISIONS, TrainConfig, check_config
from harness.train.inference import predict_labels
from harness.train.plan import Plan, make_plan
from harness.train.record import dice_per_class
from harness.train.unet import UNet

LAST, BEST = "checkpoint_last.pt", "checkpoint_best.pt"


@dataclass
class TrainResult:
    """What :func:`train` wrote and measured."""

    out: Path
    weights: Path
    card: Path
    record: dict[str, Any]
    best_val_dice: float
    test_dice: dict[str, float] = field(default_factory=dict)


@contextlib.contextmanager
def deterministic(seed: int, threads: int) -> Iterator[None]:
    """Single-threaded deterministic torch with a seeded RNG; global state restored afterwards."""
    prev_threads = torch.get_num_threads()
    prev_det = torch.are_deterministic_algorithms_enabled()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.set_num_threads(max(1, threads))
        torch.use_deterministic_algorithms(True)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(prev_det)
            torch.set_num_threads(prev_threads)


TRAIN_OUTPUTS = ("model.pt", "model.toml", "curves.csv", "curves.png", "test_dice.csv")  # (re)written by a run
TRAIN_MARKERS = ("training.json", LAST, BEST, f"member0/{LAST}")  # a training folder: resumed or retrained


def _refuse_foreign_outputs(out: Path) -> None:
    """ConfigError when ``out`` holds files a training run would overwrite or delete (a model card,
    weights) without being a training folder: someone else's model must not be replaced silently."""
    clobbered = [name for name in TRAIN_OUTPUTS if (out / name).exists()]
    if clobbered and not any((out / marker).exists() for marker in TRAIN_MARKERS):
        raise ConfigError(f"--out {out} holds {', '.join(clobbered)} but no training run (training.json or "
                          f"{LAST}); training would overwrite them: choose an empty or new folder")


def check_axes(cfg: TrainConfig, ndim: int) -> None:
    """Refuse ``--flip-axes``, ``--patch`` and ``--spacing`` that do not fit ``ndim``-D data (run on
    the first case, before the data is loaded)."""
    if cfg.flip_axes is not None and any(not 0 <= a < ndim for a in cfg.flip_axes):
        raise ConfigError(f"--flip-axes {','.join(map(str, cfg.flip_axes))}: axes must be 0..{ndim - 1} "
                          f"for {ndim}D data")
    if cfg.patch is not None and len(cfg.patch) != ndim:
        raise ConfigError(f"--patch {','.join(map(str, cfg.patch))}: give one size per spatial axis of the "
                          f"{ndim}D data, e.g. {','.join(['64'] * ndim)}")
    if not isinstance(cfg.spacing, str) and len(cfg.spacing) != ndim:
        raise ConfigError(f"--spacing {list(cfg.spacing)}: give one value per spatial axis ({ndim})")


def _plan(cases: Sequence[tdata.CachedCase], cfg: TrainConfig, modality: str) -> Plan:
    ndim = cases[0].label.ndim
    flips = cfg.flip_axes
    if flips is None:  # ultrasound: mirror left-right only (depth has a physical direction)
        flips = (ndim - 1,) if modality == "us" else tuple(range(ndim))
    kw: dict[str, Any] = {}
    if cfg.features:
        kw = {"max_levels": len(cfg.features), "base_features": cfg.features[0],
              "max_features": max(cfg.features)}
    plan = make_plan([c.label.shape for c in cases], [c.spacing for c in cases], flip_axes=flips,
                     patch=cfg.patch, batch_size=cfg.batch_size, **kw)
    if cfg.features:
        if len(plan.strides) + 1 != len(cfg.features):
            raise ConfigError(f"--features {list(cfg.features)}: the patch {plan.patch} allows only "
                              f"{len(plan.strides) + 1} levels")
        plan = dataclasses.replace(plan, features=tuple(cfg.features))
    return plan


def _mean_dice(pairs: Iterable[tuple[np.ndarray, np.ndarray]], labels: Sequence[int]) -> dict[int, float]:
    """Mean Dice per class over ``(prediction, reference)`` label-map pairs (NaN for no pairs)."""
    scores: dict[int, list[float]] = {k: [] for k in labels}
    for pred, ref in pairs:
        for k, v in dice_per_class(pred, ref, labels).items():
            scores[k].append(v)
    return {k: float(np.mean(v)) if v else float("nan") for k, v in scores.items()}


def _validate(net: UNet, cases: Sequence[tdata.CachedCase], plan: Plan, labels: Sequence[int], *,
              precision: str = "fp32") -> dict[int, float]:
    """Mean Dice per class over ``cases`` on the training grid (sliding window, overlap 0.25); under
    bfloat16 autocast when the network trains in ``bf16`` (a third of the float32 time; the test
    Dice and every adapter still predict in float32)."""
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        return _mean_dice(((predict_labels(net, c.image.astype(np.float32), patch=plan.patch, overlap=0.25), c.label)
                           for c in cases), labels)


TEST_DICE_CSV = "test_dice.csv"
TEST_CI_BOOT = 2000  # bootstrap replicates of the test-set CIs


def _test_table(card: Path, dataset: Dataset, ids: Sequence[str], labels: Sequence[int], ndim: int) -> pd.DataFrame:
    """Dice per test case on the cases' own grids, predicted through the written model card (the
    adapter ``harness run`` uses: resampling, sliding window, TTA and postprocessing as the card says).

    Columns: ``case_id``, ``dice_<k>`` per class (1.0 when prediction and reference are both empty)
    and ``dice_mean`` (the case's mean over the classes); one row per id, in ``ids`` order."""
    from harness.models import load_model

    model = load_model(card, ndim=ndim)
    rows = []
    for cid in ids:
        case = dataset.load(cid)
        dice = dice_per_class(model.predict(case.image, case.spacing, case_id=case.case_id).labels, case.label, labels)
        rows.append({"case_id": cid, **{f"dice_{k}": v for k, v in dice.items()},
                     "dice_mean": float(np.mean(list(dice.values())))})
    return pd.DataFrame(rows, columns=["case_id", *(f"dice_{k}" for k in labels), "dice_mean"])


def patients_of(dataset: Dataset, group_col: str | None) -> pd.Series | None:
    """``case_id -> patient`` from the split's patient column (a case without an id is its own
    patient); None without such a column or without any id in it (the test CI then resamples cases)."""
    from harness.analysis.clusters import cluster_ids

    if not group_col:
        return None
    try:
        return cluster_ids(dataset.metadata.reset_index(), group_col)
    except ConfigError:  # no case has an id: every case is its own patient
        return None


def summarise_test(table: pd.DataFrame, labels: Sequence[int], *, seed: int,
                   patients: pd.Series | None = None) -> tuple[dict[str, float], dict[str, list[float | None]]]:
    """The record's ``test_dice`` (mean Dice per class over the cases, and ``mean``: the mean of the
    class means, which equals the mean of the cases' ``dice_mean``) and ``test_dice_ci95`` (95 %
    bootstrap-t CIs of those means, seeded; ``[null, null]`` for fewer than two cases): how much the
    test Dice would move on another draw of test patients. ``patients`` (``case_id -> patient``):
    whole patients are resampled, so a patient's two images are not two independent draws;
    without it, cases."""
    from harness.analysis.clusters import cluster_of
    from harness.analysis.robustness import bootstrap_mean_ci

    ids = None if patients is None else cluster_of(table["case_id"], patients).to_numpy()

    def ci(column: str) -> list[float | None]:
        bounds = bootstrap_mean_ci(table[column].to_numpy(), n_boot=TEST_CI_BOOT, seed=seed, clusters=ids)
        return [None if np.isnan(b) else b for b in bounds]

    scores = {str(k): float(np.mean(table[f"dice_{k}"].to_numpy())) for k in labels}
    scores["mean"] = float(np.mean([scores[str(k)] for k in labels]))
    return scores, {**{str(k): ci(f"dice_{k}") for k in labels}, "mean": ci("dice_mean")}


def resolve_spacing(sample: Sequence[Case], cfg: TrainConfig) -> tuple[float, ...] | None:
    """The training grid (mm per axis) for ``cfg.spacing``, decided on ``sample`` (training cases)
    when it is "auto"; None keeps the data's own grid."""
    from harness.train.plan import target_spacing

    if cfg.spacing == "native":
        return None
    if cfg.spacing != "auto":
        return tuple(float(v) for v in cfg.spacing)
    return target_spacing([c.label.shape for c in sample], [c.spacing for c in sample])


def bf16_native() -> bool:
    """True when this CPU has native bfloat16 arithmetic (AVX512-BF16/AMX), where ``--precision bf16``
    speeds training up; elsewhere torch emulates it and it is slower than float32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # pragma: no cover - torch built without oneDNN
        return False


def channels_last(tensor_or_net: Any, ndim: int) -> Any:
    """``tensor_or_net`` in the channels-last memory layout of ``ndim`` spatial axes (oneDNN's fast
    path for bfloat16 convolutions on CPU: with the network's layout-keeping instance norm a 3D
    training step took 0.89x, a 2D one 0.92x of its time in the default layout, 2 threads;
    ``benchmarks/train_step.py``). Values are unchanged; only strides differ."""
    fmt = torch.channels_last_3d if ndim == 3 else torch.channels_last
    if isinstance(tensor_or_net, torch.Tensor):
        return tensor_or_net.contiguous(memory_format=fmt)
    return tensor_or_net.to(memory_format=fmt)


def prepare_net(net: UNet, precision: str) -> UNet:
    """The network as :func:`forward_train` expects it: channels-last under ``bf16``, unchanged for
    ``fp32`` (whose results, the bundled weights' included, stay bit-for-bit as they were)."""
    return channels_last(net, net.spatial_dims) if precision == "bf16" else net


def forward_train(net: UNet, x: torch.Tensor, precision: str) -> torch.Tensor | list[torch.Tensor]:
    """The training forward pass, in float32 or under bfloat16 autocast (mixed precision: weights,
    gradients and optimiser state stay float32; input and network channels-last, see
    :func:`prepare_net`); outputs are float32 either way, so the loss is computed in float32."""
    if precision == "bf16":
        x = channels_last(x, x.ndim - 2)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        out = net(x)
    if isinstance(out, torch.Tensor):
        return out.float()
    return [o.float() for o in out]


def _lr(cfg: TrainConfig, epoch: int, elapsed: float, budget_s: float) -> float:
    """Poly decay over ``cfg.epochs`` epochs or ``budget_s`` seconds (one member's budget), whichever
    ends training first: with both, a budget that runs out early still anneals the rate."""
    by_epochs = epoch / cfg.epochs if cfg.epochs else 0.0
    by_time = min(elapsed / budget_s, 0.99) if np.isfinite(budget_s) else 0.0
    return cfg.lr * (1 - max(by_epochs, by_time)) ** 0.9


def train(data: str | Path | Dataset, out: Path, config: TrainConfig = TrainConfig(), *,
          command: str | None = None, callback: Callable[[dict[str, Any]], bool] | None = None) -> TrainResult:
    """Train a U-Net on ``data`` (spec for ``open_dataset`` or a Dataset) and write to ``out``:
    ``model.pt`` (best state_dict), ``model.toml`` (card), ``curves.csv/png``, ``training.json``,
    and ``checkpoint_last.pt``/``checkpoint_best.pt`` for resumption.

    Stops after ``config.epochs`` epochs, or when the next epoch would exceed
    ``config.time_budget`` minutes; at least one epoch runs. ``callback(history_row)`` is called
    after each epoch; returning True stops training (used by tests to simulate interruption).
    """
    check_config(config)
    if not str(out).strip():
        raise ConfigError("--out is empty; give a folder path")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a folder; give a folder path")
    if isinstance(data, Dataset):
        dataset, data_spec = data, getattr(data, "name", "dataset")
    else:
        from harness.datasets import open_dataset

        dataset, data_spec = open_dataset(data), str(data)
    # classes from the data's names (background 0 is never a class); None: found in the labels
    labels = sorted(int(k) for k in dataset.label_names if int(k) != 0) or None
    _refuse_foreign_outputs(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a parent that is a file, no permission, ...
        raise ConfigError(f"--out {out}: cannot create the folder ({exc.strerror or exc})") from exc
    from harness.train.loop import run_training

    return run_training(dataset, data_spec, labels, out, config, command=command, callback=callback)


__all__ = ["BEST", "DICE_MODES", "LAST", "POSTPROCESS_BY", "PRECISIONS", "TrainConfig", "TrainResult", "bf16_native",
           "check_axes", "deterministic", "forward_train", "prepare_net", "train"]
