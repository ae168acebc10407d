"""``harness train``: the CLI-facing function (typer-compatible) and ``python -m harness.train``.

The integrator registers :func:`train_command` as the ``train`` command; it validates the
options (``ConfigError`` → exit 3), runs :func:`harness.train.train` and prints where the
checkpoint, card, curves and record went.
"""
from __future__ import annotations

import math
import shlex
import sys
from pathlib import Path

import typer

from harness.errors import ConfigError


def parse_ints(text: str | None, option: str) -> tuple[int, ...] | None:
    """Comma- (or x-) separated positive integers for ``option`` (``--features``, ``--patch``); None when empty."""
    if not text:
        return None
    try:
        values = tuple(int(v) for v in text.replace("x", ",").split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"{option} {text!r}: expected comma-separated integers, e.g. 16,32,64,128") from None
    if not values or min(values) < 1:
        raise ConfigError(f"{option} {text!r}: values must be positive integers")
    return values


def parse_spacing(text: str) -> str | tuple[float, ...]:
    """``--spacing``: ``"auto"``, ``"native"`` or positive mm per axis (``"0.8,0.8"``)."""
    if text in ("auto", "native"):
        return text
    try:
        grid = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"--spacing {text!r}: expected 'auto', 'native' or mm per axis, e.g. 0.8,0.8") from None
    if not grid or min(grid) <= 0:
        raise ConfigError(f"--spacing {text!r}: spacings must be positive (mm)")
    return grid


def parse_flip_axes(text: str) -> tuple[int, ...] | None:
    """``--flip-axes``: ``"auto"`` (None: planned), ``"none"`` (no mirroring) or axes ``"0,2"``."""
    if text == "auto":
        return None
    if text == "none":
        return ()
    try:
        axes = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"--flip-axes {text!r}: expected 'auto', 'none' or 0-based axes, e.g. 0 or 0,2") from None
    if min(axes) < 0 or len(set(axes)) != len(axes):
        raise ConfigError(f"--flip-axes {text!r}: axes must be distinct and ≥ 0")
    return axes


def train_command(
    data: str = typer.Option(..., "--data", help="phantom2d | phantom3d[:n=N,seed=S] | MSD/nnU-Net folder | dataset card (.toml)"),
    out: Path = typer.Option(..., "--out", help="output folder (checkpoint, card, curves, record)"),
    dims: int | None = typer.Option(None, "--dims", help="2 or 3; checked against the data"),
    folds: str | None = typer.Option(None, "--folds", help="test set: official fold(s) 'K[,L]', 'test=N' (seeded hold-out of N patients) or 'none'; default: official fold 1 when the data has folds"),
    time_budget: float | None = typer.Option(None, "--time-budget", help="minutes; stop early, keeping the best checkpoint"),
    seed: int = typer.Option(0, "--seed", help="seed for split, data order, augmentation and init"),
    split_seed: int | None = typer.Option(None, "--split-seed", help="seed of the train/validation/test split only (default: --seed), to vary --seed over one fixed split"),
    epochs: int | None = typer.Option(None, "--epochs", help="epochs (of --iters iterations); reproducible bit-for-bit"),
    alpha: float = typer.Option(1.0, "--alpha", help="weight of cross-entropy in L = α·CE + β·Dice"),
    beta: float = typer.Option(1.0, "--beta", help="weight of soft Dice in L = α·CE + β·Dice"),
    iters: int = typer.Option(50, "--iters", help="iterations per epoch"),
    features: str | None = typer.Option(None, "--features", help="channels per level, e.g. 16,32,64,128 (default: planned)"),
    patch: str | None = typer.Option(None, "--patch", help="patch size, e.g. 128,128 (default: planned)"),
    batch_size: int | None = typer.Option(None, "--batch-size", help="default: planned from the patch size"),
    lr: float = typer.Option(3e-3, "--lr", help="AdamW learning rate (poly decay)"),
    weight_decay: float = typer.Option(1e-4, "--weight-decay", help="AdamW decoupled weight decay (0 = off)"),
    deep_supervision: bool = typer.Option(True, "--deep-supervision/--no-deep-supervision", help="add the loss of the lower decoder levels, weighted 1/2^k"),
    augment: bool = typer.Option(True, "--augment/--no-augment", help="TorchIO spatial and intensity augmentation of the training patches"),
    flip_axes: str = typer.Option("auto", "--flip-axes", help="spatial axes mirrored in augmentation and TTA: 'auto' (all; ultrasound left-right only), 'none', or 0-based axes, e.g. 0 (left-right only, when labels depend on anterior/posterior or superior/inferior position)"),
    tta: bool = typer.Option(False, "--tta", help="flip test-time augmentation, written to the card and used for the test Dice"),
    postprocess: bool = typer.Option(False, "--postprocess", help="keep one connected component per class (see --postprocess-by), written to the card"),
    postprocess_by: str = typer.Option("size", "--postprocess-by", help="which component --postprocess keeps: 'size' (the largest) or 'confidence' (the one holding the class's most probable pixel/voxel; better where a large false region can outweigh the true one, as on BUS-BRA)"),
    window: str | None = typer.Option(None, "--window", help="CT intensity window LO,HI in HU (default: 0.5-99.5 percentiles of the training foreground)"),
    spacing: str = typer.Option("auto", "--spacing", help="grid to train on: 'auto' (median spacing when cases differ; large 2D images coarsened to about 160x160 px), 'native', or mm per axis, e.g. 0.8,0.8"),
    threads: int = typer.Option(1, "--threads", help="torch threads (1 = bit-for-bit reproducible)"),
    ema: float = typer.Option(0.0, "--ema", help="validate and save an exponential moving average of the weights with this per-step decay, e.g. 0.999 (0 = off)"),
    precision: str = typer.Option("fp32", "--precision", help="fp32, or bf16: bfloat16 mixed precision for the training forward pass (about 1.7x faster on CPUs with AVX512-BF16/AMX, slower elsewhere)"),
    dice: str = typer.Option("batch", "--dice", help="Dice term of the loss: 'batch' (pooled over the batch, nnU-Net) or 'case' (mean of per-image Dice, as the per-case mean Dice is reported)"),
    val_fraction: float = typer.Option(0.1, "--val-fraction", help="share of the non-test patients held out for validation and checkpoint selection (at most 40 cases); 0: train on all of them and keep the last epoch's weights"),
    ensemble: int = typer.Option(1, "--ensemble", help="train N networks (seeds SEED..SEED+N-1, each an equal share of --time-budget) and average their probabilities; one card and weights file"),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="continue from OUT/checkpoint_last.pt (OUT/memberK/ for ensembles)"),
    name: str | None = typer.Option(None, "--name", help="model name written to the card"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="progress bar with loss and validation Dice"),
) -> None:
    """Train the reference U-Net and write a checkpoint, a model card usable by `harness run
    --model`, training curves (PNG + CSV) and a training record (training.json)."""
    from harness.train.trainer import TrainConfig, train

    if dims not in (None, 2, 3):
        raise ConfigError(f"--dims must be 2 or 3, got {dims}")
    if epochs is None and time_budget is None:
        raise ConfigError("give --epochs N or --time-budget MINUTES (or both)")
    if iters < 1 or threads < 1 or (batch_size is not None and batch_size < 1):
        raise ConfigError("--iters, --threads and --batch-size must be ≥ 1")
    win = None
    if window:
        parts = window.split(",")
        try:
            win = (float(parts[0]), float(parts[1]))
        except (ValueError, IndexError):
            raise ConfigError(f"--window {window!r}: expected LO,HI, e.g. -160,240") from None
        if len(parts) != 2 or win[0] >= win[1]:
            raise ConfigError(f"--window {window!r}: expected LO,HI with LO < HI")
    grid = parse_spacing(spacing if isinstance(spacing, str) else "auto")  # function call: typer defaults
    flips = parse_flip_axes(flip_axes if isinstance(flip_axes, str) else "auto")
    precision = precision if isinstance(precision, str) else "fp32"
    ema = ema if isinstance(ema, (int, float)) else 0.0  # ema, precision, ensemble, dice: checked by train()
    ensemble = ensemble if isinstance(ensemble, int) else 1
    dice = dice if isinstance(dice, str) else "batch"
    if alpha < 0 or beta < 0 or alpha + beta == 0:
        raise ConfigError(f"--alpha/--beta must be ≥ 0 and not both 0, got {alpha}, {beta}")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a folder")
    cfg = TrainConfig(dims=dims, seed=seed, epochs=epochs, iters_per_epoch=iters, time_budget=time_budget,
                      alpha=alpha, beta=beta, lr=lr, weight_decay=weight_decay if isinstance(weight_decay, (int, float)) else TrainConfig.weight_decay,
                      features=parse_ints(features, "--features"),
                      patch=parse_ints(patch, "--patch"), batch_size=batch_size, deep_supervision=deep_supervision,
                      folds=folds, augment=augment, flip_axes=flips, tta=tta, postprocess=postprocess,
                      postprocess_by=postprocess_by if isinstance(postprocess_by, str) else "size", window=win, spacing=grid,
                      threads=threads, ema=ema, precision=precision, ensemble=ensemble, dice=dice, val_fraction=val_fraction, split_seed=split_seed, resume=resume, progress=progress, name=name)
    command = _MODULE_COMMAND or ("harness train " + " ".join(shlex.quote(a) for a in sys.argv[2:])
                                  if len(sys.argv) > 1 and sys.argv[1] == "train" else None)
    result = train(data, out, cfg, command=command)
    from rich.console import Console

    console = Console(stderr=True)
    console.print(f"weights   {result.weights}\ncard      {result.card}\ncurves    {out / 'curves.png'}\n"
                  f"record    {out / 'training.json'}\n"
                  + (f"best validation Dice (mean) {result.best_val_dice:.4f}" if not math.isnan(result.best_val_dice)
                     else "no validation set (--val-fraction 0): the last epoch's weights were kept"))
    if result.test_dice:
        lo, hi = result.record["test_dice_ci95"]["mean"]  # both None with a single test case
        ci = f"  (mean: 95 % CI {lo:.4f}-{hi:.4f} over the test cases)" if lo is not None else ""
        console.print("test Dice " + "  ".join(f"{k}={v:.4f}" for k, v in result.test_dice.items()) + ci)


_MODULE_COMMAND: str | None = None


def _usage_error() -> type[Exception]:
    """Click's UsageError as typer ships it (typer may vendor click; BadParameter subclasses it)."""
    return next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


def main(argv: list[str] | None = None) -> int:
    """``python -m harness.train …``: the same options without the integrator's CLI."""
    global _MODULE_COMMAND
    args = sys.argv[1:] if argv is None else list(argv)
    _MODULE_COMMAND = "python -m harness.train " + " ".join(shlex.quote(a) for a in args)
    app = typer.Typer(add_completion=False)
    app.command()(train_command)
    try:
        app(args=args, prog_name="python -m harness.train", standalone_mode=False)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except typer.Exit as exc:  # --help
        return int(exc.exit_code or 0)
    except _usage_error() as exc:  # unknown option, missing value...: exit 3 as DESIGN.md says
        print(f"error: {exc.format_message()}", file=sys.stderr)
        return 3
    return 0
