"""The trainer's options (:class:`TrainConfig`, the defaults of ``harness train``) and their checks:
each bad value fails before any data is read, with a one-line :class:`~harness.errors.ConfigError`
that names the flag and what it accepts.

``train()`` runs :func:`check_config`, so the CLI, the benchmarks and direct callers get the same
messages. Checks that need the data (``--patch`` length, ``--window`` on non-CT data, mask classes)
run once it is read (:mod:`harness.train.trainer`, :mod:`harness.train.loop`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.errors import ConfigError
from harness.options import must_be_one_of

if TYPE_CHECKING:
    from harness.train.augment import AugmentConfig

DICE_MODES = ("batch", "case")
PRECISIONS = ("fp32", "bf16")
# --postprocess-by: which connected component per class the card's postprocessing keeps
POSTPROCESS_BY = {"size": "largest_component", "confidence": "most_confident_component"}

# the U-Net's building blocks (harness.train.unet: Norm, Down, Up)
NORMS = ("instance", "batch")
DOWNSAMPLES = ("conv", "maxpool")  # strided convolution, or max-pooling then convolution
UPSAMPLES = ("transpose", "interpolate")  # transposed convolution, or (bi/tri)linear interpolation + 1x1 conv

LATER_OPTIONS = {"ensemble": 1, "dice": "batch", "split_seed": None,  # options added after checkpoints were
                 "downsample": "conv", "upsample": "transpose"}  # first written


@dataclass(frozen=True)
class TrainConfig:
    """Training options (all have CPU-friendly defaults). ``time_budget`` is in minutes."""

    dims: int | None = None
    seed: int = 0
    split_seed: int | None = None  # seed of the train/val/test split (None: seed), so runs can
    # vary the training seed over one fixed split
    epochs: int | None = None
    iters_per_epoch: int = 50
    time_budget: float | None = None
    alpha: float = 1.0
    beta: float = 1.0
    lr: float = 3e-3
    weight_decay: float = 1e-4
    features: tuple[int, ...] | None = None
    patch: tuple[int, ...] | None = None
    batch_size: int | None = None
    deep_supervision: bool = True
    norm: str = "instance"
    downsample: str = "conv"
    upsample: str = "transpose"
    folds: str | None = None
    val_fraction: float = 0.1
    max_val: int = 40
    val_every: int = 1
    fg_fraction: float = 0.33
    augment: bool = True
    augment_config: AugmentConfig | None = None
    flip_axes: tuple[int, ...] | None = None
    window: tuple[float, float] | None = None
    spacing: str | tuple[float, ...] = "auto"  # "auto", "native" or mm per axis (see plan.target_spacing)
    tta: bool = False
    tta_shifts: bool = False  # test-time placements of the image in its padding ([input] tta_shifts)
    postprocess: bool = False
    postprocess_by: str = "size"  # a key of POSTPROCESS_BY: keep the largest or the most confident component
    threads: int = 1
    ema: float = 0.0  # decay of the weight EMA that is validated and saved (0: the raw weights)
    precision: str = "fp32"  # "fp32", or "bf16": bfloat16 autocast of the training forward pass
    ensemble: int = 1  # networks trained with seeds seed, seed+1, ... (equal shares of the budget), averaged
    dice: str = "batch"  # Dice term pooled over the "batch" (nnU-Net) or averaged per "case" (MONAI)
    resume: bool = True
    progress: bool = True
    name: str | None = None

    def result_options(self) -> dict[str, Any]:
        """The options that change results (not budget, progress or resume), as JSON-ready values."""
        d = dataclasses.asdict(self)
        for k in ("time_budget", "progress", "resume", "tta", "tta_shifts", "postprocess", "postprocess_by", "name"):
            d.pop(k)
        for k, default in LATER_OPTIONS.items():  # at their defaults, runs keep the fingerprint they had
            if d[k] == default:
                d.pop(k)
        return json.loads(json.dumps(d, sort_keys=True, default=str))

    def fingerprint(self) -> str:
        """Hash of :meth:`result_options`."""
        return hashlib.sha256(json.dumps(self.result_options(), sort_keys=True).encode()).hexdigest()[:16]


def _finite(value: object) -> bool:
    """A finite real number (Python or NumPy; not a bool)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _integer(value: object) -> bool:
    """An integer (Python or NumPy; not a bool)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _count(value: object) -> bool:
    """An integer ≥ 1."""
    return _integer(value) and value >= 1  # type: ignore[operator]


def _check_numbers(cfg: TrainConfig) -> None:
    if cfg.epochs is None and cfg.time_budget is None:
        raise ConfigError("give --epochs N or --time-budget MINUTES (or both)")
    if cfg.epochs is not None and not _count(cfg.epochs):
        raise ConfigError(f"--epochs must be an integer ≥ 1, got {cfg.epochs}")
    if cfg.time_budget is not None and not (_finite(cfg.time_budget) and cfg.time_budget > 0):
        raise ConfigError(f"--time-budget must be a finite number of minutes > 0, got {cfg.time_budget}")
    for flag, value in (("--iters", cfg.iters_per_epoch), ("--threads", cfg.threads), ("val_every", cfg.val_every),
                        ("max_val", cfg.max_val)):
        if not _count(value):
            raise ConfigError(f"{flag} must be an integer ≥ 1, got {value}")
    if cfg.batch_size is not None and not _count(cfg.batch_size):
        raise ConfigError(f"--batch-size must be an integer ≥ 1, got {cfg.batch_size}")
    for flag, seed, used in (("--seed", cfg.seed, cfg.ensemble if _count(cfg.ensemble) else 1),
                             ("--split-seed", cfg.split_seed, 1)):
        if seed is not None and not (_integer(seed) and 0 <= seed and seed + used - 1 < 2**63):
            raise ConfigError(f"{flag} must be an integer in [0, 2**63"
                              + (f" - {used - 1}" if used > 1 else "") + f"), got {seed}"
                              + (f" (--ensemble {used} uses seeds {flag[2:]} … {flag[2:]} + {used - 1})"
                                 if used > 1 else ""))
    if not (_finite(cfg.alpha) and _finite(cfg.beta) and cfg.alpha >= 0 and cfg.beta >= 0
            and cfg.alpha + cfg.beta > 0):
        raise ConfigError(f"--alpha/--beta must be finite, ≥ 0 and not both 0, got {cfg.alpha}, {cfg.beta}")
    if not (_finite(cfg.lr) and cfg.lr > 0):
        raise ConfigError(f"--lr must be a finite number > 0, got {cfg.lr}")
    if not (_finite(cfg.weight_decay) and cfg.weight_decay >= 0):
        raise ConfigError(f"--weight-decay must be a finite number ≥ 0, got {cfg.weight_decay}")
    if not (_finite(cfg.ema) and 0.0 <= cfg.ema < 1.0):
        raise ConfigError(f"--ema {cfg.ema}: the decay must be in [0, 1) (0 = off; e.g. 0.999)")
    if not _count(cfg.ensemble):
        raise ConfigError(f"--ensemble {cfg.ensemble}: the number of networks must be an integer ≥ 1")
    if not (_finite(cfg.val_fraction) and 0 <= cfg.val_fraction < 1):
        raise ConfigError(f"--val-fraction {cfg.val_fraction}: expected a fraction in [0, 1)")
    if not (_finite(cfg.fg_fraction) and 0 <= cfg.fg_fraction <= 1):
        raise ConfigError(f"fg_fraction {cfg.fg_fraction}: expected a fraction in [0, 1]")


def _check_grid(cfg: TrainConfig) -> None:
    if cfg.window is not None:
        lo, hi = cfg.window
        if not (_finite(lo) and _finite(hi) and lo < hi):
            raise ConfigError(f"--window {lo},{hi}: expected finite LO,HI with LO < HI, e.g. -160,240")
    if not isinstance(cfg.spacing, str) and not all(_finite(s) and s > 0 for s in cfg.spacing):
        raise ConfigError(f"--spacing {','.join(map(str, cfg.spacing))}: spacings must be finite and > 0 (mm)")
    for flag, values in (("--patch", cfg.patch), ("--features", cfg.features)):
        if values is not None and not all(_count(v) for v in values):
            raise ConfigError(f"{flag} {list(values)}: values must be positive integers")
    if cfg.features is not None and len(cfg.features) < 2:
        raise ConfigError(f"--features {list(cfg.features)}: give at least two levels, e.g. 16,32,64,128")


def _check_choices(cfg: TrainConfig) -> None:
    if cfg.dims not in (None, 2, 3):
        raise ConfigError(f"--dims must be 2 or 3, got {cfg.dims}")
    for flag, value, allowed in (("--norm", cfg.norm, NORMS), ("--downsample", cfg.downsample, DOWNSAMPLES),
                                 ("--upsample", cfg.upsample, UPSAMPLES)):
        if value not in allowed:
            raise ConfigError(f"{flag} {must_be_one_of(allowed, value)}")
    if cfg.dice not in DICE_MODES:
        raise ConfigError(f"--dice {must_be_one_of(DICE_MODES, cfg.dice)}")
    if cfg.precision not in PRECISIONS:
        raise ConfigError(f"--precision {must_be_one_of(PRECISIONS, cfg.precision)}")
    if cfg.postprocess_by not in POSTPROCESS_BY:
        raise ConfigError(f"--postprocess-by {must_be_one_of(POSTPROCESS_BY, cfg.postprocess_by)}")
    if cfg.postprocess_by != "size" and not cfg.postprocess:
        raise ConfigError(f"--postprocess-by {cfg.postprocess_by} picks the component --postprocess keeps: "
                          "add --postprocess")
    if cfg.tta and cfg.flip_axes == ():
        raise ConfigError("--tta averages over the mirrors of --flip-axes, and --flip-axes none has none: "
                          "drop --tta or give axes, e.g. --flip-axes 0")


def check_config(cfg: TrainConfig) -> None:
    """Raise :class:`ConfigError` for the first option of ``cfg`` out of its range; None when all pass."""
    _check_numbers(cfg)
    _check_grid(cfg)
    _check_choices(cfg)


__all__ = ["DICE_MODES", "DOWNSAMPLES", "LATER_OPTIONS", "NORMS", "POSTPROCESS_BY", "PRECISIONS", "UPSAMPLES",
           "TrainConfig", "check_config"]
