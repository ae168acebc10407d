"""The training loop behind :func:`harness.train.train` (see trainer.py for the guarantees)."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness import atomic
from harness.datasets.base import Dataset
from harness.datasets.label_values import check_named_classes
from harness.errors import ConfigError, ModelError
from harness.provenance import code_revision, versions
from harness.train import data as tdata
from harness.train.augment import AugmentConfig, augment_patch, build_transform
from harness.train.card import model_card, write_card
from harness.train.ema import weight_ema
from harness.train.ensemble import build_unet_ensemble, ensemble_state
from harness.train.plan import Plan
from harness.train.losses import DiceCELoss
from harness import training_overlap as overlap
from harness.train.record import write_curves
from harness.train.sampling import sample_batch
from harness.analysis.clusters import cluster_of
from harness.train.trainer import (
    BEST,
    LAST,
    POSTPROCESS_BY,
    TEST_DICE_CSV,
    TrainConfig,
    TrainResult,
    _lr,
    _plan,
    _test_table,
    _validate,
    check_axes,
    deterministic,
    forward_train,
    patients_of,
    prepare_net,
    resolve_spacing,
    summarise_test,
)
from harness.train.unet import build_unet

HALF_ABOVE_VOXELS = 50_000_000  # cache normalised images as float16 above this total size
SPACING_SAMPLE = 100  # training cases whose shapes and spacings decide --spacing auto


def _progress(enabled: bool) -> Any:
    """The training progress bar: epoch (of ``--epochs``, or of the time budget), loss, validation Dice."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("[bold]epoch {task.completed}{task.fields[of]}"), BarColumn(),
                    TextColumn("loss {task.fields[loss]:.4f}  val Dice {task.fields[dice]}"),
                    TimeElapsedColumn(), disable=not enabled, transient=False)


def _dice_text(row: dict[str, Any]) -> str:
    """The progress bar's validation Dice: 4 decimals, or "-" without validation this epoch."""
    return f"{row['val_dice_mean']:.4f}" if "val_dice_mean" in row else "-"


def _rng_state(rng: np.random.Generator) -> str:
    return json.dumps(rng.bit_generator.state)


def run_training(dataset: Dataset, data_spec: str, labels: Sequence[int] | None, out: Path, cfg: TrainConfig,
                 *, command: str | None, callback: Callable[[dict[str, Any]], bool] | None) -> TrainResult:
    t_start = time.perf_counter()
    split_seed = cfg.seed if cfg.split_seed is None else cfg.split_seed
    split = tdata.make_split(dataset.metadata, folds=cfg.folds, seed=split_seed,
                             val_fraction=cfg.val_fraction, max_val=cfg.max_val)
    if split.group_column is None and len(split.train) + len(split.val) + len(split.test) > 1:
        print(f"note: the metadata has no patient column ({', '.join(tdata.GROUP_COLUMNS)}; any case): each case "
              "counts as its own patient. If a patient has several cases, add such a column, or they may land "
              "in both training and test and the test Dice is optimistic", file=sys.stderr)
    modality = getattr(dataset, "modality", "other")
    normalize = "window" if modality == "ct" else "zscore"
    if cfg.window is not None and normalize != "window":
        raise ConfigError(f"--window applies to CT data, and this data's modality is {modality!r}: drop --window, "
                          "or declare modality = \"ct\" in the dataset card")
    if normalize == "window" and cfg.window is None:  # CT: window from the training foreground
        cfg = dataclasses.replace(cfg, window=tdata.foreground_window(dataset, split.train))
    elif normalize == "window":  # a given window must cover the structures to learn
        tdata.check_window(tuple(cfg.window), dataset, split.train)
    # a sample of training cases decides the grid ("auto": up to SPACING_SAMPLE) and the cache precision
    sample = [dataset.load(i) for i in split.train[:SPACING_SAMPLE if cfg.spacing == "auto" else 5]]
    first = sample[0]
    if cfg.dims is not None and first.ndim != cfg.dims:
        thin = first.ndim == 3 and 1 in first.spatial_shape
        raise ConfigError(f"--dims {cfg.dims} but the data is {first.ndim}D (shape {first.spatial_shape})"
                          + ("; single-slice volumes train as 3D with a one-voxel axis: drop --dims" if thin else
                             "; drop --dims to train on the data's own dimensions"))
    check_axes(cfg, first.ndim)
    total = sum(int(np.prod(c.image.shape)) for c in sample[:5]) / len(sample[:5])
    spacing = resolve_spacing(sample, cfg)
    del sample
    if spacing is not None:  # budgets and the half-precision decision follow the resampled size
        total *= float(np.prod(np.asarray(first.spacing) / np.asarray(spacing)))
    half = total * (len(split.train) + len(split.val)) > HALF_ABOVE_VOXELS
    train_cases = tdata.load_cases(dataset, split.train, normalize=normalize, window=cfg.window, half=half,
                                   spacing=spacing)
    val_cases = tdata.load_cases(dataset, split.val, normalize=normalize, window=cfg.window, half=half,
                                 spacing=spacing)
    named_by = "the data (its label_names)" if labels is not None else "the training and validation masks"
    if labels is None:  # no label names given: the classes present in the training and validation labels
        labels = _unnamed_classes(train_cases + val_cases, data_spec)
    else:
        _check_classes(train_cases + val_cases, labels)
    for cid in split.test:  # before training: a class the test masks alone hold would score as background
        check_named_classes(cid, np.unique(dataset.load(cid).label).tolist(), labels, named_by=named_by)
    if not any(c.class_locations for c in train_cases):
        raise ConfigError(f"data {data_spec}: no training label holds a foreground class (every mask is "
                          "background 0), so there is nothing to learn; check the label files or the card's "
                          "label_values")
    plan = _plan(train_cases, cfg, modality)
    ndim, in_ch = first.ndim, first.image.shape[0]
    kwargs: dict[str, Any] = {"spatial_dims": ndim, "in_channels": in_ch, "out_channels": max(labels) + 1,
                              "features": list(plan.features)}
    for key, default in (("norm", "instance"), ("downsample", "conv"), ("upsample", "transpose")):
        if getattr(cfg, key) != default:  # the card's kwargs name only what differs from build_unet's defaults
            kwargs[key] = getattr(cfg, key)
    if any(s != (2,) * ndim for s in plan.strides):
        kwargs["strides"] = [list(s) for s in plan.strides]
    aug_cfg = cfg.augment_config or AugmentConfig(flip_axes=plan.flip_axes)
    # augmentation magnitudes in mm: the training grid, or (--spacing native) the median voxel size
    grid = spacing or tuple(float(v) for v in np.median([c.spacing for c in train_cases], axis=0))
    transform = build_transform(ndim, grid, aug_cfg, patch=plan.patch, bias=modality == "mri")

    budget_s = 60 * cfg.time_budget if cfg.time_budget else float("inf")
    table = dataset.manifest()  # reads every file: before training, so bad files stop it early
    manifest = overlap.manifest_sha256(table)
    seen_images = {role: overlap.image_digests(table, ids) for role, ids in (("train", split.train), ("val", split.val))}
    trained_on = _data_fingerprint(manifest, split.as_dict(), kwargs, labels)
    fit = _MemberFit(kwargs=kwargs, train_cases=train_cases, val_cases=val_cases, plan=plan, labels=labels,
                     cfg=cfg, transform=transform, aug_cfg=aug_cfg, grid=grid, callback=callback,
                     trained_on=trained_on)
    folders = [out] if cfg.ensemble == 1 else [out / f"member{k}" for k in range(cfg.ensemble)]
    members: list[dict[str, Any]] = []
    for k, folder in enumerate(folders):  # each member gets an equal share of the budget still left
        spent = sum(m["elapsed"] for m in members)
        members.append(fit.run(folder, member=k, seed=cfg.seed + k, budget_s=(budget_s - spent) / (len(folders) - k)))
        if members[-1]["interrupted"]:
            break
    bests = [_load_weights(folders[k] / BEST) for k in range(len(members))]
    if cfg.ensemble == 1:
        weights_state, entry, card_kwargs = bests[0], "harness.train.unet:build_unet", kwargs
        best, history = float(members[0]["best"]), members[0]["history"]
    else:  # one state_dict and one card for the members trained (all of them unless interrupted)
        weights_state, entry = ensemble_state(bests), "harness.train.ensemble:build_unet_ensemble"
        card_kwargs = {"members": len(members), **kwargs}
        history = [{"member": m["member"], **row} for m in members for row in m["history"]]
        ensemble = build_unet_ensemble(**card_kwargs)
        ensemble.load_state_dict(weights_state)
        with deterministic(cfg.seed, cfg.threads):  # the ensemble's own validation Dice
            scores = _validate(ensemble.eval(), val_cases, plan, labels, precision=cfg.precision) if val_cases else {}
        best = float(np.mean(list(scores.values()))) if scores else max(float(m["best"]) for m in members)
    if not val_cases or best < 0:  # no validation set (--val-fraction 0), or stopped before validating
        best = float("nan")
    weights = out / "model.pt"
    torch.save({k: v.contiguous().clone() for k, v in weights_state.items()}, weights)
    epochs_run = sum(int(m["epoch"]) for m in members)
    train_seconds = sum(float(m["elapsed"]) for m in members)
    label_names = {k: dataset.label_names.get(k, f"class{k}") for k in labels}
    weights_sha = _sha256(weights)
    # images larger than the patch: the card asks the adapter for sliding-window inference
    sliding = any(any(n > p for n, p in zip(c.label.shape, plan.patch)) for c in train_cases + val_cases)
    record = {
        "data": data_spec, "dataset": getattr(dataset, "name", "dataset"), "modality": modality,
        "manifest_sha256": manifest, "split": split.as_dict(), "seen_images": seen_images,
        "seed": cfg.seed, "split_seed": split_seed,
        "config": {k: (list(v) if isinstance(v, tuple) else v)
                   for k, v in cfg.__dict__.items() if k != "augment_config"},
        "augment": aug_cfg.__dict__, "plan": plan.as_dict(),
        "spacing": list(spacing) if spacing is not None else None, "model_kwargs": kwargs,
        "epochs_run": epochs_run, "best_epoch": members[0]["best_epoch"] if cfg.ensemble == 1 else None,
        "resumes": max(int(m["resumes"]) for m in members), "train_seconds": train_seconds,
        "wall_seconds": time.perf_counter() - t_start, "best_val_dice_mean": None if np.isnan(best) else best,
        "versions": versions(), "git": (revision := code_revision() or {}).get("commit"),
        "git_dirty": revision.get("dirty"), "command": command, "weights_sha256": weights_sha,
    }
    if cfg.ensemble > 1:  # per member: seed, epochs, seconds, best validation Dice (mean)
        record["members"] = [{"member": m["member"], "seed": m["seed"], "epochs_run": m["epoch"],
                              "best_epoch": m["best_epoch"], "train_seconds": m["elapsed"],
                              "best_val_dice_mean": m["best"] if val_cases and m["best"] >= 0 else None} for m in members]
    card = model_card(
        name=cfg.name or f"unet-{ndim}d-{record['dataset']}", weights=weights.name, kwargs=card_kwargs, entry=entry,
        labels=label_names, normalize=normalize,
        pad_multiple=plan.pad_multiple if len(set(plan.axis_multiples)) == 1 else list(plan.axis_multiples),
        patch_size=list(plan.patch) if sliding else None,
        window=list(cfg.window) if normalize == "window" and cfg.window else None,
        spacing=list(spacing) if spacing is not None else None,
        tta_flip_axes=list(plan.flip_axes) if cfg.tta else None, tta_shifts=cfg.tta_shifts,
        postprocess=POSTPROCESS_BY[cfg.postprocess_by] if cfg.postprocess else None,
        intended_use=f"U-Net trained by `harness train` on {record['dataset']} ({modality}); "
                     "research and evaluation of the harness only, not for clinical use.",
        training={"command": command or "", "seed": cfg.seed, "epochs": epochs_run,
                  **({"best_epoch": members[0]["best_epoch"]}
                     if cfg.ensemble == 1 and members[0]["best_epoch"] else {}),
                  "data": data_spec, "manifest_sha256": record["manifest_sha256"],
                  **({} if np.isnan(best) else {"best_val_dice_mean": best}),
                  "versions": versions(), "record": "training.json"})
    write_card(out / "model.toml", card)
    write_curves(history, out, class_names=label_names)
    record["test_dice"], record["test_dice_ci95"] = {}, {}
    _write_record(record, out)  # complete but for the test Dice: kept if a test case cannot be read
    (out / TEST_DICE_CSV).unlink(missing_ok=True)  # an earlier run's, in this folder
    test_scores: dict[str, float] = {}
    if split.test:  # measured through the card, as `harness run --model OUT/model.toml` predicts
        try:
            with deterministic(cfg.seed, cfg.threads):
                table = _test_table(out / "model.toml", dataset, split.test, labels, ndim)
        except (ConfigError, ModelError) as exc:
            raise ConfigError(f"test set: {exc} (the weights, card, curves and training.json are written in "
                              f"{out}; the test Dice was not measured)") from exc
        table.to_csv(out / TEST_DICE_CSV, index=False)
        patients = patients_of(dataset, split.group_column)
        test_scores, record["test_dice_ci95"] = summarise_test(table, labels, seed=cfg.seed, patients=patients)
        record["test_patients"] = (int(cluster_of(table["case_id"], patients).nunique()) if patients is not None
                                   else None)
        record["test_dice"] = test_scores
        _write_record(record, out)
    return TrainResult(out=out, weights=weights, card=out / "model.toml", record=record,
                       best_val_dice=best, test_dice=test_scores)


def _write_record(record: dict[str, Any], out: Path) -> None:
    (out / "training.json").write_text(json.dumps(record, indent=2, default=str), encoding="utf-8")


def _data_fingerprint(manifest: str, split: dict[str, Any], kwargs: dict[str, Any], labels: Sequence[int]) -> str:
    """Hash of what a checkpoint was trained on beyond the options: the data (its manifest), the
    split and the network's shape; a resume on other data is refused."""
    text = json.dumps({"manifest": manifest, "split": split, "network": kwargs, "labels": list(labels)},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _unnamed_classes(cases: Sequence[tdata.CachedCase], data_spec: str) -> list[int]:
    """The classes of data that names none: those its masks hold, which must be 1..K (the network
    has ``max + 1`` outputs: a 0/255 PNG mask would make 256 of them and train class 255)."""
    found = sorted({k for c in cases for k in c.class_locations}) or [1]
    if found != list(range(1, len(found) + 1)):
        case = next(c.case_id for c in cases if set(c.class_locations) - set(range(1, len(found) + 1)))
        hint = (f'label_values = {{"{found[-1]}" = 1}}' if len(found) == 1 else
                "label_names = {1 = \"...\", ...} or label_values")
        raise ConfigError(f"data {data_spec}: the masks hold classes {found[:8]}{' ...' if len(found) > 8 else ''} "
                          f"(case {case}) and the data names none; unnamed classes must be 1..K: map or name them "
                          f"in the dataset card, e.g. {hint}")
    return found


def _check_classes(cases: Sequence[tdata.CachedCase], labels: Sequence[int]) -> None:
    """Refuse masks holding classes the data does not name (the network has ``max(labels) + 1`` outputs)."""
    for case in cases:
        check_named_classes(case.case_id, case.class_locations, labels, named_by="the data (its label_names)")


@dataclasses.dataclass
class _MemberFit:
    """Trains one network (one ensemble member) on the loaded data; see :meth:`run`."""

    kwargs: dict[str, Any]
    train_cases: list[tdata.CachedCase]
    val_cases: list[tdata.CachedCase]
    plan: Plan
    labels: Sequence[int]
    cfg: TrainConfig
    transform: Any
    aug_cfg: AugmentConfig
    grid: Sequence[float]
    callback: Callable[[dict[str, Any]], bool] | None
    trained_on: str  # see _data_fingerprint

    def run(self, folder: Path, *, member: int, seed: int, budget_s: float) -> dict[str, Any]:
        """Train with ``seed`` for at most ``cfg.epochs`` epochs and ``budget_s`` seconds, keeping
        ``folder/checkpoint_best.pt`` (best validation Dice; the final weights, written once at the
        end, when there is no validation set) and resuming from ``folder/checkpoint_last.pt``.
        Returns the final state: epoch, history, best (validation Dice; -1 without validation),
        elapsed (s), member, seed, interrupted."""
        cfg, plan = self.cfg, self.plan
        folder.mkdir(parents=True, exist_ok=True)
        with deterministic(seed, cfg.threads):
            net = prepare_net(build_unet(**self.kwargs, deep_supervision=cfg.deep_supervision), cfg.precision)
            opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
            loss_fn = DiceCELoss(cfg.alpha, cfg.beta, batch_dice=cfg.dice == "batch")
            ema = weight_ema(net, cfg.ema) if cfg.ema else None
            evaluated = ema.module if ema is not None else net  # the weights validated and saved
            rng = np.random.default_rng([seed, 31337])
            # epoch_s: the last epoch's duration, so that a resumed run stops where the first one did
            state: dict[str, Any] = {"epoch": 0, "history": [], "best": -1.0, "elapsed": 0.0, "epoch_s": 0.0,
                                     "best_epoch": 0, "resumes": 0}
            last = folder / LAST
            if cfg.resume and last.is_file():
                ckpt = _load_checkpoint(last, ema=ema is not None)
                if ckpt["fingerprint"] != cfg.fingerprint():
                    raise ConfigError(f"{last}: a checkpoint from different training options"
                                      f"{_differing(ckpt.get('options'), cfg.result_options())}; use a new "
                                      "--out, the same options, or --no-resume")
                if ckpt.get("trained_on", self.trained_on) != self.trained_on:  # older checkpoints lack it
                    raise ConfigError(f"{last}: a checkpoint trained on other data (files, split or network "
                                      "differ); use a new --out, the same data, or --no-resume")
                try:
                    net.load_state_dict(ckpt["model"])
                    opt.load_state_dict(ckpt["optimizer"])
                    if ema is not None:
                        ema.load_state_dict(ckpt["ema"])
                    torch.set_rng_state(ckpt["torch_rng"])
                    rng.bit_generator.state = json.loads(ckpt["numpy_rng"])
                except (RuntimeError, KeyError, ValueError, TypeError) as exc:
                    raise ConfigError(f"cannot resume from {last}: it does not fit this network "
                                      f"({str(exc).splitlines()[0]}); use a new --out or --no-resume") from exc
                state = {k: ckpt[k] for k in ("epoch", "history", "best", "elapsed")}
                state["epoch_s"] = float(ckpt.get("epoch_s", 0.0))
                state["best_epoch"] = int(ckpt.get("best_epoch", 0))  # 0: unknown (an older checkpoint)
                state["resumes"] = int(ckpt.get("resumes", 0)) + 1
            max_epochs = cfg.epochs or 10**9
            run_start = time.perf_counter() - state["elapsed"]
            interrupted = False
            with _progress(cfg.progress) as bar:
                of = f"/{cfg.epochs}" if cfg.epochs else f" (budget {budget_s / 60:.1f} min)"
                task = bar.add_task("train", total=cfg.epochs or None, completed=state["epoch"], loss=0.0, dice="-", of=of)
                while state["epoch"] < max_epochs:
                    elapsed = time.perf_counter() - run_start
                    if state["epoch"] > 0 and elapsed + state["epoch_s"] > budget_s:
                        break
                    t0 = time.perf_counter()
                    lr = _lr(cfg, state["epoch"], elapsed, budget_s)
                    for group in opt.param_groups:
                        group["lr"] = lr
                    net.train()
                    losses = []
                    for _ in range(cfg.iters_per_epoch):
                        batch = sample_batch(self.train_cases, plan.patch, plan.batch_size, rng,
                                             fg_fraction=cfg.fg_fraction)
                        if cfg.augment:
                            batch = [augment_patch(im, lb, self.transform, self.aug_cfg, self.grid) for im, lb in batch]
                        x = torch.from_numpy(np.stack([b[0] for b in batch]))
                        y = torch.from_numpy(np.stack([b[1] for b in batch]))
                        loss = loss_fn(forward_train(net, x, cfg.precision), y)
                        if not torch.isfinite(loss):
                            raise ConfigError(_diverged(float(loss.detach()), state["epoch"], cfg.lr, last))
                        opt.zero_grad(set_to_none=True)
                        loss.backward()
                        torch.nn.utils.clip_grad_norm_(net.parameters(), 12.0)
                        opt.step()
                        if ema is not None:
                            ema.update_parameters(net)
                        losses.append(float(loss.detach()))
                    state["epoch"] += 1
                    row: dict[str, Any] = {"epoch": state["epoch"], "train_loss": float(np.mean(losses)), "lr": lr}
                    if self.val_cases and (state["epoch"] % cfg.val_every == 0 or state["epoch"] == max_epochs):
                        scores = _validate(evaluated, self.val_cases, plan, self.labels, precision=cfg.precision)
                        row.update({f"val_dice_{k}": v for k, v in scores.items()})
                        row["val_dice_mean"] = float(np.mean(list(scores.values())))
                    row["elapsed_s"] = time.perf_counter() - run_start
                    state["history"].append(row)
                    state["elapsed"] = row["elapsed_s"]
                    state["epoch_s"] = time.perf_counter() - t0
                    if "val_dice_mean" in row and row["val_dice_mean"] > state["best"]:  # validated epochs compete
                        state["best"], state["best_epoch"] = row["val_dice_mean"], state["epoch"]
                        _save(evaluated.state_dict(), folder / BEST)
                    _save({"model": net.state_dict(), "optimizer": opt.state_dict(),
                           **({"ema": ema.state_dict()} if ema is not None else {}),
                           "torch_rng": torch.get_rng_state(), "numpy_rng": _rng_state(rng),
                           "fingerprint": cfg.fingerprint(), "options": cfg.result_options(),
                           "trained_on": self.trained_on, **state}, last)
                    bar.update(task, completed=state["epoch"], loss=row["train_loss"], dice=_dice_text(row))
                    if self.callback is not None and self.callback(row):
                        interrupted = True
                        break
            if state["best"] < 0:  # no epoch validated (--val-fraction 0, or stopped first): keep the
                _save(evaluated.state_dict(), folder / BEST)  # final weights (nnU-Net's final)
                state["best_epoch"] = state["epoch"]
        return {**state, "member": member, "seed": seed, "interrupted": interrupted}


def _differing(saved: Any, now: dict[str, Any]) -> str:
    """`` (--lr 0.001 then, 0.0003 now; ...)``: the result-changing options that differ from a
    checkpoint's (empty for checkpoints that did not store them)."""
    if not isinstance(saved, dict):
        return ""
    keys = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))
    if not keys:
        return ""
    said = [f"{k.replace('_', '-')} {saved.get(k)!r} then, {now.get(k)!r} now" for k in keys[:4]]
    return f" ({'; '.join(said)}{'; ...' if len(keys) > 4 else ''})"


def _diverged(loss: float, epochs_done: int, lr: float, last: Path) -> str:
    """The one-line error for a non-finite training loss in epoch ``epochs_done + 1``."""
    kept = (f"{last} keeps the {epochs_done} epoch(s) done before" if epochs_done
            else "no checkpoint was written")
    return (f"the training loss became {loss} in epoch {epochs_done + 1}: train afresh with a lower --lr "
            f"(now {lr}), or check the images for extreme values; {kept}")


CHECKPOINT_KEYS = ("fingerprint", "model", "optimizer", "torch_rng", "numpy_rng", "epoch", "history", "best",
                   "elapsed")


def _load_checkpoint(path: Path, *, ema: bool = False) -> dict[str, Any]:
    """``checkpoint_last.pt`` to resume from; a ConfigError naming it when it cannot be read or
    lacks what a resume needs."""
    ckpt = _torch_file(path, "cannot resume from")
    missing = [k for k in CHECKPOINT_KEYS + (("ema",) if ema else ()) if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise ConfigError(f"cannot resume from {path}: not a complete checkpoint of this trainer (no "
                          f"{', '.join(missing[:3])}); delete it, or start afresh with --no-resume")
    return ckpt


def _load_weights(path: Path) -> dict[str, Any]:
    """``checkpoint_best.pt`` (a state_dict); a ConfigError naming it when missing or unreadable."""
    if not path.is_file():
        raise ConfigError(f"{path} is missing (deleted?); train afresh with --no-resume")
    weights = _torch_file(path, "cannot read")
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise ConfigError(f"{path}: not a state_dict of weights; train afresh with --no-resume")
    return weights


def _torch_file(path: Path, failure: str) -> Any:
    try:
        return torch.load(path, weights_only=True)
    except Exception as exc:  # truncated, not a torch file, or objects weights_only refuses
        raise ConfigError(f"{failure} {path} ({type(exc).__name__}): delete it, or start afresh "
                          "with --no-resume") from exc


def _save(obj: Any, path: Path) -> None:
    """``torch.save`` atomically: a kill while writing leaves the previous checkpoint intact."""
    with atomic.replacing(path, "wb") as handle:
        torch.save(obj, handle)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
