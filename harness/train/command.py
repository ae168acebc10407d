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
from typer.models import OptionInfo

from harness.errors import ConfigError
from harness.train.config import TrainConfig


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


def parse_window(text: str | None) -> tuple[float, float] | None:
    """``--window LO,HI`` in HU (range checked by ``train()``); None when not given."""
    if not text:
        return None
    parts = text.split(",")
    try:
        lo, hi = (float(v) for v in parts)
    except ValueError:
        raise ConfigError(f"--window {text!r}: expected LO,HI, e.g. -160,240") from None
    return lo, hi


def _values(given: dict[str, object]) -> dict[str, object]:
    """The command's arguments, with typer's ``OptionInfo`` placeholders (left when
    :func:`train_command` is called as a plain function) replaced by their defaults."""
    return {k: (v.default if isinstance(v, OptionInfo) else v) for k, v in given.items()}


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
    time_budget: float | None = typer.Option(None, "--time-budget", help="minutes; stops before an epoch would overrun it, keeping the best checkpoint (the last weights with --val-fraction 0)"),
    seed: int = typer.Option(TrainConfig.seed, "--seed", min=0, help="seed for split, data order, augmentation and init"),
    split_seed: int | None = typer.Option(None, "--split-seed", min=0, help="seed of the train/validation/test split only (default: --seed), to vary --seed over one fixed split"),
    epochs: int | None = typer.Option(None, "--epochs", help="epochs (of --iters iterations); reproducible bit-for-bit"),
    alpha: float = typer.Option(TrainConfig.alpha, "--alpha", help="weight of cross-entropy in L = α·CE + β·Dice"),
    beta: float = typer.Option(TrainConfig.beta, "--beta", help="weight of soft Dice in L = α·CE + β·Dice"),
    iters: int = typer.Option(TrainConfig.iters_per_epoch, "--iters", help="iterations per epoch"),
    features: str | None = typer.Option(None, "--features", help="channels per level, e.g. 16,32,64,128 (default: planned)"),
    patch: str | None = typer.Option(None, "--patch", help="patch size, e.g. 128,128 (default: planned)"),
    batch_size: int | None = typer.Option(None, "--batch-size", help="default: planned from the patch size"),
    lr: float = typer.Option(TrainConfig.lr, "--lr", help="AdamW learning rate (poly decay)"),
    weight_decay: float = typer.Option(TrainConfig.weight_decay, "--weight-decay", help="AdamW decoupled weight decay (0 = off)"),
    deep_supervision: bool = typer.Option(TrainConfig.deep_supervision, "--deep-supervision/--no-deep-supervision", help="add the loss of the lower decoder levels, weighted 1/2^k"),
    norm: str = typer.Option(TrainConfig.norm, "--norm", help="normalisation layer: 'instance' (nnU-Net) or 'batch'"),
    downsample: str = typer.Option(TrainConfig.downsample, "--downsample", help="encoder downsampling: 'conv' (strided convolution, nnU-Net) or 'maxpool' (max-pooling, the original U-Net)"),
    upsample: str = typer.Option(TrainConfig.upsample, "--upsample", help="decoder upsampling: 'transpose' (transposed convolution) or 'interpolate' (linear interpolation + 1x1 convolution)"),
    augment: bool = typer.Option(TrainConfig.augment, "--augment/--no-augment", help="TorchIO spatial and intensity augmentation of the training patches"),
    flip_axes: str = typer.Option("auto", "--flip-axes", help="spatial axes mirrored in augmentation and TTA: 'auto' (all; ultrasound left-right only), 'none', or 0-based axes, e.g. 0 (the first array axis only; left-right for volumes stored x-first, as NIfTI; use it when labels depend on anterior/posterior or superior/inferior position)"),
    tta: bool = typer.Option(TrainConfig.tta, "--tta", help="flip test-time augmentation, written to the card and used for the test Dice"),
    tta_shifts: bool = typer.Option(TrainConfig.tta_shifts, "--tta-shifts", help="shift test-time augmentation: also average over the image's placements at the start, middle and end of its padding along each axis (up to 3 per axis: up to 27x the forward passes in 3D), written to the card and used for the test Dice"),
    postprocess: bool = typer.Option(TrainConfig.postprocess, "--postprocess", help="keep one connected component per class (see --postprocess-by), written to the card"),
    postprocess_by: str = typer.Option(TrainConfig.postprocess_by, "--postprocess-by", help="which component --postprocess keeps: 'size' (the largest) or 'confidence' (the one holding the class's most probable pixel/voxel; better where a large false region can outweigh the true one, as on BUS-BRA)"),
    window: str | None = typer.Option(None, "--window", help="CT intensity window LO,HI in HU (default: 0.5-99.5 percentiles of the training foreground)"),
    spacing: str = typer.Option("auto", "--spacing", help="grid to train on: 'auto' (median spacing when cases differ; large 2D images coarsened to about 160x160 px), 'native', or mm per axis, e.g. 0.8,0.8"),
    threads: int = typer.Option(TrainConfig.threads, "--threads", help="torch threads (1 = bit-for-bit reproducible)"),
    ema: float = typer.Option(TrainConfig.ema, "--ema", help="validate and save an exponential moving average of the weights with this per-step decay, e.g. 0.999 (0 = off)"),
    precision: str = typer.Option(TrainConfig.precision, "--precision", help="fp32, or bf16: bfloat16 mixed precision for the training forward pass (about 1.7x faster on CPUs with AVX512-BF16/AMX, slower elsewhere)"),
    dice: str = typer.Option(TrainConfig.dice, "--dice", help="Dice term of the loss: 'batch' (pooled over the batch, nnU-Net) or 'case' (mean of per-image Dice, as the per-case mean Dice is reported)"),
    val_fraction: float = typer.Option(TrainConfig.val_fraction, "--val-fraction", help="share of the non-test patients held out for validation and checkpoint selection (at most 40 cases); 0: train on all of them and keep the last epoch's weights"),
    ensemble: int = typer.Option(TrainConfig.ensemble, "--ensemble", help="train N networks (seeds SEED..SEED+N-1, each an equal share of --time-budget) and average their probabilities; one card and weights file"),
    resume: bool = typer.Option(TrainConfig.resume, "--resume/--no-resume", help="continue from OUT/checkpoint_last.pt (OUT/memberK/ for ensembles)"),
    name: str | None = typer.Option(None, "--name", help="model name written to the card"),
    progress: bool = typer.Option(TrainConfig.progress, "--progress/--no-progress", help="progress bar with loss and validation Dice"),
) -> None:
    """Train the reference U-Net and write a checkpoint, a model card usable by `harness run
    --model`, training curves (PNG + CSV) and a training record (training.json)."""
    from harness.train.trainer import train

    o = _values(locals())  # as typer parsed them, or the defaults when called as a function
    out = Path(o["out"])
    cfg = TrainConfig(dims=o["dims"], seed=o["seed"], split_seed=o["split_seed"], epochs=o["epochs"],
                      iters_per_epoch=o["iters"], time_budget=o["time_budget"], alpha=o["alpha"], beta=o["beta"],
                      lr=o["lr"], weight_decay=o["weight_decay"], features=parse_ints(o["features"], "--features"),
                      patch=parse_ints(o["patch"], "--patch"), batch_size=o["batch_size"],
                      deep_supervision=o["deep_supervision"], norm=o["norm"], downsample=o["downsample"],
                      upsample=o["upsample"], folds=o["folds"], augment=o["augment"],
                      flip_axes=parse_flip_axes(o["flip_axes"]), tta=o["tta"], tta_shifts=o["tta_shifts"],
                      postprocess=o["postprocess"],
                      postprocess_by=o["postprocess_by"], window=parse_window(o["window"]),
                      spacing=parse_spacing(o["spacing"]), threads=o["threads"], ema=o["ema"],
                      precision=o["precision"], ensemble=o["ensemble"], dice=o["dice"],
                      val_fraction=o["val_fraction"], resume=o["resume"], progress=o["progress"], name=o["name"])
    command = _MODULE_COMMAND or _cli_command(sys.argv)
    result = train(o["data"], out, cfg, command=command)
    from harness.terminal import make_console

    console = make_console(stderr=True)
    console.print(f"weights   {result.weights}\ncard      {result.card}\ncurves    {out / 'curves.png'}\n"
                  f"record    {out / 'training.json'}\n"
                  + (f"best validation Dice (mean) {result.best_val_dice:.4f}" if not math.isnan(result.best_val_dice)
                     else "no validation set (" + ("--val-fraction 0" if not result.record["config"]["val_fraction"]
                                                   else "a single patient to train on") + "): the last epoch's "
                          "weights were kept"))
    if result.test_dice:
        lo, hi = result.record["test_dice_ci95"]["mean"]  # both None with a single test case
        patients = result.record.get("test_patients")
        over = f"{patients} test patients" if patients is not None else "the test cases"
        ci = f"  (mean: 95 % CI {lo:.4f}-{hi:.4f} over {over})" if lo is not None else ""
        from harness.models.card import read_card

        names = {str(k): v for k, v in (read_card(result.card).output.labels or {}).items()}
        console.print("test Dice " + "  ".join(f"{k}{' ' + names[k] if k in names else ''}={v:.4f}"
                                               for k, v in result.test_dice.items()) + ci, soft_wrap=True)


_MODULE_COMMAND: str | None = None  # set by main() while `python -m harness.train` runs


def _cli_command(argv: list[str]) -> str | None:
    """``harness [--debug] train …`` as typed, for the card's ``[training] command``; None when
    ``argv`` is not a ``harness train`` call (a direct function call, a test)."""
    words = [a for a in argv[1:] if not a.startswith("-")]
    if not words or words[0] != "train":
        return None
    return "harness " + " ".join(shlex.quote(a) for a in argv[1:])


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
        code = app(args=args, prog_name="python -m harness.train", standalone_mode=False)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except typer.Exit as exc:  # --help
        return int(exc.exit_code or 0)
    except _usage_error() as exc:  # unknown option, missing value...: exit 3 as DESIGN.md says
        print(f"error: {exc.format_message()}", file=sys.stderr)
        return 3
    except (KeyboardInterrupt, typer.Abort):
        code = 130
    finally:
        _MODULE_COMMAND = None
    if code == 130:  # typer returns Ctrl-C as 130 when not standalone: exit 2 as `harness train` does
        print("interrupted (resume with the same command)", file=sys.stderr)
        return 2
    return int(code or 0)
