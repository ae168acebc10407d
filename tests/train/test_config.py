"""The trainer's option checks (harness.train.config): every bad value is a one-line ConfigError
naming its flag, before any data is read; the CLI's defaults are TrainConfig's."""
from __future__ import annotations

import dataclasses
import inspect

import numpy as np
import pytest
from typer.models import OptionInfo

from harness.errors import ConfigError
from harness.train.command import _cli_command, train_command
from harness.train.config import TrainConfig, check_config

NAN, INF = float("nan"), float("inf")
OK = TrainConfig(epochs=1)


@pytest.mark.parametrize(("changes", "flag"), [
    ({"epochs": None}, "--epochs"), ({"epochs": 0}, "--epochs"), ({"epochs": True}, "--epochs"),
    ({"time_budget": NAN}, "--time-budget"), ({"time_budget": INF}, "--time-budget"),
    ({"time_budget": 0.0}, "--time-budget"), ({"iters_per_epoch": 0}, "--iters"), ({"threads": 0}, "--threads"),
    ({"batch_size": 0}, "--batch-size"), ({"seed": -1}, "--seed"), ({"split_seed": -2}, "--split-seed"),
    ({"alpha": NAN}, "--alpha"), ({"beta": -1.0}, "--alpha/--beta"), ({"alpha": 0.0, "beta": 0.0}, "--alpha"),
    ({"lr": 0.0}, "--lr"), ({"lr": NAN}, "--lr"), ({"lr": -1e-3}, "--lr"),
    ({"weight_decay": INF}, "--weight-decay"), ({"weight_decay": -1e-4}, "--weight-decay"),
    ({"ema": 1.0}, "--ema"), ({"ema": NAN}, "--ema"), ({"ensemble": 0}, "--ensemble"),
    ({"val_fraction": 1.0}, "--val-fraction"), ({"val_fraction": NAN}, "--val-fraction"),
    ({"fg_fraction": 1.5}, "fg_fraction"), ({"window": (NAN, 1.0)}, "--window"), ({"window": (5.0, 5.0)}, "--window"),
    ({"spacing": (0.5, NAN)}, "--spacing"), ({"spacing": (INF, 1.0)}, "--spacing"), ({"patch": (32, 0)}, "--patch"),
    ({"features": (16,)}, "--features"), ({"dims": 4}, "--dims"), ({"dice": "voxel"}, "--dice"),
    ({"precision": "fp16"}, "--precision"), ({"postprocess": True, "postprocess_by": "area"}, "--postprocess-by"),
    ({"postprocess_by": "confidence"}, "add --postprocess"), ({"tta": True, "flip_axes": ()}, "--tta"),
    ({"norm": "group"}, "--norm"), ({"downsample": "avgpool"}, "--downsample"), ({"upsample": "nearest"}, "--upsample"),
])
def test_bad_option_names_its_flag(changes: dict, flag: str) -> None:
    with pytest.raises(ConfigError) as info:
        check_config(dataclasses.replace(OK, **changes))
    assert flag in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("changes", [
    {}, {"epochs": None, "time_budget": 0.5}, {"split_seed": 0}, {"beta": 0.0}, {"lr": 1e-2, "weight_decay": 0.0},
    {"window": (-160.0, 240.0)}, {"spacing": (0.8, 0.8)}, {"tta": True, "flip_axes": (0,)}, {"batch_size": 1},
    {"postprocess": True, "postprocess_by": "confidence"}, {"features": (4, 8), "patch": (32, 32)},
    {"norm": "batch", "downsample": "maxpool", "upsample": "interpolate"},
    {"epochs": np.int64(2), "seed": np.int64(1), "lr": np.float32(1e-3), "time_budget": 5},  # sweeps, pandas rows
])
def test_good_options_pass(changes: dict) -> None:
    assert check_config(dataclasses.replace(OK, **changes)) is None


# train_command's parameters that are TrainConfig fields under another name, or parsed from text
RENAMED = {"iters": "iters_per_epoch"}
PARSED = {"flip_axes": ("auto", None), "spacing": ("auto", "auto")}


def test_cli_defaults_are_train_config_defaults() -> None:
    fields = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    checked = 0
    for name, param in inspect.signature(train_command).parameters.items():
        option = param.default
        assert isinstance(option, OptionInfo)
        field = RENAMED.get(name, name)
        if field not in fields:  # --data, --out
            continue
        text, parsed = PARSED.get(name, (option.default, option.default))
        assert option.default == text and parsed == fields[field], name
        checked += 1
    assert checked >= 25


@pytest.mark.parametrize(("argv", "expected"), [
    (["/usr/bin/harness", "train", "--data", "phantom2d", "--out", "a b"], "harness train --data phantom2d --out 'a b'"),
    (["/usr/bin/harness", "--debug", "train", "--epochs", "1"], "harness --debug train --epochs 1"),
    (["/usr/bin/harness", "run", "--out", "train"], None), (["pytest", "-q"], None), (["x"], None),
])
def test_recorded_cli_command(argv: list[str], expected: str | None) -> None:
    assert _cli_command(argv) == expected
