"""The trainer end to end on tiny phantom configs: overfit, bit-for-bit reproducibility, resume,
outputs (card, record, curves) and option validation."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from harness.datasets.phantom import phantom_dataset
from harness.errors import ConfigError
from harness.train import TrainConfig, train
from harness.train.command import main, train_command
from harness.train.data import normalize_image
from harness.train.inference import predict_labels
from harness.train.record import dice_per_class
from harness.train.trainer import BEST
from harness.train.unet import build_unet

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

TINY = TrainConfig(seed=4, epochs=2, iters_per_epoch=3, features=(4, 8), patch=(32, 32), batch_size=2,
                   progress=False, max_val=2)


def _weights(out: Path) -> dict[str, torch.Tensor]:
    return torch.load(out / "model.pt", weights_only=True)


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_overfit_one_phantom_case(tmp_path: Path) -> None:
    data = phantom_dataset(2, n=1, seed=12)
    case = data.load(data.case_ids[0])
    assert (case.label == 2).any()
    cfg = TrainConfig(seed=0, epochs=20, iters_per_epoch=10, features=(8, 16, 32), batch_size=2,
                      augment=False, lr=1e-2, fg_fraction=0.5, progress=False)
    result = train(data, tmp_path, cfg)
    net = build_unet(spatial_dims=2, in_channels=1, out_channels=3, features=(8, 16, 32))
    net.load_state_dict(_weights(tmp_path))
    pred = predict_labels(net, normalize_image(case.image))
    dice = dice_per_class(pred, case.label, [1, 2])
    assert dice[1] > 0.95 and dice[2] > 0.95, dice
    assert result.record["split"]["val"] == []  # one patient: nothing to validate on


def test_bit_for_bit_reproducible(tmp_path: Path) -> None:
    data = phantom_dataset(2, n=4, seed=21)
    a = train(data, tmp_path / "a", TINY)
    b = train(data, tmp_path / "b", TINY)
    assert _same(_weights(a.out), _weights(b.out))
    assert (a.out / "curves.csv").read_text().split("elapsed")[0] == (b.out / "curves.csv").read_text().split("elapsed")[0]
    c = train(data, tmp_path / "c", TrainConfig(**{**TINY.__dict__, "seed": 5}))
    assert not _same(_weights(a.out), _weights(c.out))


def test_bf16_mixed_precision_trains_reproducibly(tmp_path: Path) -> None:
    data = phantom_dataset(2, n=4, seed=21)
    cfg = TrainConfig(**{**TINY.__dict__, "precision": "bf16"})
    a = train(data, tmp_path / "a", cfg)
    b = train(data, tmp_path / "b", cfg)
    fp32 = train(data, tmp_path / "fp32", TINY)
    assert _same(_weights(a.out), _weights(b.out))
    assert not _same(_weights(a.out), _weights(fp32.out))  # the forward pass really ran in bfloat16
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() and v.is_contiguous()
               for v in _weights(a.out).values())
    assert a.record["config"]["precision"] == "bf16" and np.isfinite(a.best_val_dice)
    with pytest.raises(ConfigError, match="--precision"):
        train(data, tmp_path / "c", TrainConfig(**{**TINY.__dict__, "precision": "fp16"}))


@pytest.mark.parametrize("ndim", [2, 3])
def test_bf16_trains_channels_last_with_the_same_function(ndim: int) -> None:
    from harness.train.trainer import forward_train, prepare_net

    torch.manual_seed(0)
    net = build_unet(spatial_dims=ndim, in_channels=1, out_channels=3, features=(4, 8)).eval()
    x = torch.randn(2, 1, *(12,) * ndim)
    with torch.no_grad():
        ref = net(x)
        fast = prepare_net(net, "bf16")
        fmt = torch.channels_last_3d if ndim == 3 else torch.channels_last
        weight = fast.encoder[0][3].weight  # 4 -> 4 channels (with one channel both layouts coincide)
        assert weight.is_contiguous(memory_format=fmt) and not weight.is_contiguous()
        assert torch.allclose(fast(x.contiguous(memory_format=fmt)), ref, atol=1e-5)  # only the layout differs
        assert forward_train(fast, x, "bf16").shape == ref.shape
    assert prepare_net(net, "fp32") is net


def test_bf16_validation_agrees_with_float32() -> None:
    from harness.train.data import cache_case
    from harness.train.plan import make_plan
    from harness.train.trainer import _validate

    card = tomllib.loads((Path(__file__).parents[2] / "harness/resources/reference2d.toml").read_text())
    net = build_unet(**card["model"]["kwargs"])
    net.load_state_dict(torch.load(Path(__file__).parents[2] / "harness/resources/reference2d.pt", weights_only=True))
    data = phantom_dataset(2, n=4, seed=0)
    cases = [cache_case(data.load(cid)) for cid in data.case_ids]
    plan = make_plan([c.label.shape for c in cases], [c.spacing for c in cases])
    dtypes: list[torch.dtype] = []
    hook = net.encoder[0].register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))
    fp32 = _validate(net, cases, plan, [1, 2])
    seen_fp32, dtypes[:] = set(dtypes), []
    bf16 = _validate(net, cases, plan, [1, 2], precision="bf16")
    hook.remove()
    assert seen_fp32 == {torch.float32} and set(dtypes) == {torch.bfloat16}  # bf16 validation really ran in bf16
    assert min(fp32.values()) > 0.9
    assert all(abs(fp32[k] - bf16[k]) < 0.01 for k in fp32), (fp32, bf16)


def test_per_case_dice_option_trains_differently_and_is_checked(tmp_path: Path) -> None:
    data = phantom_dataset(2, n=4, seed=21)
    batch = train(data, tmp_path / "batch", TINY)
    case = train(data, tmp_path / "case", TrainConfig(**{**TINY.__dict__, "dice": "case"}))
    assert not _same(_weights(batch.out), _weights(case.out)) and case.record["config"]["dice"] == "case"
    assert TINY.fingerprint() != TrainConfig(**{**TINY.__dict__, "dice": "case"}).fingerprint()
    with pytest.raises(ConfigError, match="--dice"):
        train(data, tmp_path / "bad", TrainConfig(**{**TINY.__dict__, "dice": "sample"}))


def test_forward_train_outputs_float32_under_autocast() -> None:
    from harness.train.trainer import forward_train

    net = build_unet(spatial_dims=2, in_channels=1, out_channels=3, features=(4, 8), deep_supervision=True)
    outs = forward_train(net.train(), torch.randn(2, 1, 16, 16), "bf16")
    assert isinstance(outs, list) and all(o.dtype == torch.float32 for o in outs)
    ref = forward_train(net, torch.randn(2, 1, 16, 16), "fp32")
    assert ref[0].shape == outs[0].shape == (2, 3, 16, 16)


def test_resume_continues_exactly(tmp_path: Path) -> None:
    data = phantom_dataset(2, n=4, seed=21)
    cfg = TrainConfig(**{**TINY.__dict__, "epochs": 3})
    full = train(data, tmp_path / "full", cfg)
    stopped = train(data, tmp_path / "part", cfg, callback=lambda row: row["epoch"] == 1)
    assert stopped.record["epochs_run"] == 1
    resumed = train(data, tmp_path / "part", cfg)
    assert resumed.record["epochs_run"] == 3
    assert _same(_weights(full.out), _weights(resumed.out))
    assert len(resumed.record["split"]["train"]) == len(full.record["split"]["train"])
    # the record says the run was resumed and which epoch's weights model.pt holds
    assert (full.record["resumes"], stopped.record["resumes"], resumed.record["resumes"]) == (0, 0, 1)
    assert resumed.record["best_epoch"] == full.record["best_epoch"]
    curves = pd.read_csv(full.out / "curves.csv")
    assert full.record["best_epoch"] == int(curves.loc[curves["val_dice_mean"].idxmax(), "epoch"])
    assert tomllib.loads(full.card.read_text())["training"]["best_epoch"] == full.record["best_epoch"]
    # a refused resume names the option that differs, with both values
    with pytest.raises(ConfigError, match=r"different training options \(lr [0-9.e-]+ then, 0\.0001 now\)"):
        train(data, tmp_path / "part", TrainConfig(**{**cfg.__dict__, "lr": 1e-4}))


def test_a_kill_while_saving_leaves_the_last_checkpoint_intact(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.train.trainer import LAST

    data = phantom_dataset(2, n=4, seed=21)
    cfg = TrainConfig(**{**TINY.__dict__, "epochs": 3})
    full = train(data, tmp_path / "full", cfg)
    real_save = torch.save
    saves = {"last": 0}

    def dying_save(obj: object, target: Any) -> None:
        if isinstance(obj, dict) and "optimizer" in obj:  # checkpoint_last.pt (the best one has weights only)
            saves["last"] += 1
            if saves["last"] == 2:  # the second epoch's checkpoint: half written, then the process dies
                target.write(b"PK\x03\x04 cut")
                raise KeyboardInterrupt
        real_save(obj, target)

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        train(data, tmp_path / "part", cfg)
    monkeypatch.setattr(torch, "save", real_save)
    assert torch.load(tmp_path / "part" / LAST, weights_only=True)["epoch"] == 1  # the previous one
    assert not list((tmp_path / "part").glob(".*.tmp"))  # the half-written file is gone
    resumed = train(data, tmp_path / "part", cfg)
    assert _same(_weights(full.out), _weights(resumed.out))


def test_outputs_card_record_curves(tmp_path: Path) -> None:
    data = phantom_dataset(2, n=6, seed=3)
    result = train(data, tmp_path, TrainConfig(**{**TINY.__dict__, "folds": "test=2", "epochs": 1,
                                                  "time_budget": 10.0}), command="harness train ...")
    card = tomllib.loads(result.card.read_text())
    assert card["model"]["entry"] == "harness.train.unet:build_unet"
    assert card["output"] == {"kind": "logits", "labels": {"1": "organ", "2": "lesion"}}
    assert card["input"]["normalize"] == "zscore" and card["input"]["pad_multiple"] == 2
    net = build_unet(**card["model"]["kwargs"])
    net.load_state_dict(torch.load(tmp_path / card["model"]["weights"], weights_only=True))
    record = json.loads((tmp_path / "training.json").read_text())
    for key in ("manifest_sha256", "split", "seed", "versions", "git", "plan", "test_dice", "command"):
        assert key in record
    assert len(record["split"]["test"]) == 2 and set(result.test_dice) == {"1", "2", "mean"}
    assert (tmp_path / "curves.png").stat().st_size > 0 and (tmp_path / "curves.csv").is_file()
    per_case = pd.read_csv(tmp_path / "test_dice.csv", dtype={"case_id": str})
    assert list(per_case.columns) == ["case_id", "dice_1", "dice_2", "dice_mean"]
    assert per_case["case_id"].tolist() == record["split"]["test"]
    for key in ("1", "2", "mean"):  # the record's means are the table's; the CI brackets them
        assert result.test_dice[key] == pytest.approx(per_case[f"dice_{key}"].mean())
        lo, hi = record["test_dice_ci95"][key]
        assert min(per_case[f"dice_{key}"]) <= lo <= result.test_dice[key] <= hi <= max(per_case[f"dice_{key}"])


def test_without_validation_the_last_weights_are_kept(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = phantom_dataset(2, n=5, seed=3)
    cfg = TrainConfig(**{**TINY.__dict__, "folds": "test=1", "epochs": 3, "val_fraction": 0.0, "ema": 0.5})
    seen: list[bool] = []  # after each epoch: is there a checkpoint_best.pt yet?
    result = train(data, tmp_path, cfg, callback=lambda row: seen.append((tmp_path / BEST).exists()) or False)
    assert seen == [False, False, False]  # nothing to select by: written once, after the last epoch
    assert result.record["split"]["val"] == [] and len(result.record["split"]["train"]) == 4
    last = torch.load(tmp_path / "checkpoint_last.pt", weights_only=True)
    ema = {k.removeprefix("module."): v for k, v in last["ema"].items() if k.startswith("module.")}
    assert _same(_weights(tmp_path), ema)  # the last epoch's averaged weights, not a train-loss pick
    assert result.record["best_val_dice_mean"] is None and np.isnan(result.best_val_dice)
    assert "best_val_dice_mean" not in tomllib.loads(result.card.read_text())["training"]
    assert set(result.test_dice) == {"1", "2", "mean"}
    assert main(["--data", "phantom2d:n=3", "--out", str(tmp_path / "cli"), "--epochs", "1", "--iters", "1",
                 "--features", "4,8", "--patch", "32,32", "--no-progress", "--val-fraction", "0"]) == 0
    assert "no validation set" in capsys.readouterr().err
    assert main(["--data", "phantom2d:n=3", "--out", str(tmp_path / "bad"), "--epochs", "1",
                 "--val-fraction", "1"]) == 3


def test_split_seed_fixes_the_split_while_the_seed_varies(tmp_path: Path) -> None:
    data = phantom_dataset(2, n=8, seed=5)
    base = {**TINY.__dict__, "folds": "test=2", "epochs": 1}
    a = train(data, tmp_path / "a", TrainConfig(**{**base, "seed": 0}))
    b = train(data, tmp_path / "b", TrainConfig(**{**base, "seed": 1, "split_seed": 0}))
    c = train(data, tmp_path / "c", TrainConfig(**{**base, "seed": 1}))
    assert a.record["split"] == b.record["split"] and b.record["split_seed"] == 0
    assert a.record["split"]["test"] != c.record["split"]["test"]  # --seed alone still moves the split
    assert not _same(_weights(a.out), _weights(b.out))  # but not the training: init and patches differ
    assert TrainConfig(seed=3).fingerprint() == TrainConfig(seed=3, split_seed=None).fingerprint()
    assert TrainConfig(seed=3).fingerprint() != TrainConfig(seed=3, split_seed=3).fingerprint()


def test_time_budget_stops_after_first_epoch(tmp_path: Path) -> None:
    data = phantom_dataset(2, n=3, seed=1)
    cfg = TrainConfig(**{**TINY.__dict__, "epochs": None, "time_budget": 1e-4})
    assert train(data, tmp_path, cfg).record["epochs_run"] == 1


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"dims": 4, "epochs": 1}, "--dims"), ({"epochs": None}, "--epochs N or --time-budget"),
    ({"epochs": 1, "features": "4,x"}, "--features"), ({"epochs": 1, "window": "5"}, "--window"),
    ({"epochs": 1, "alpha": 0.0, "beta": 0.0}, "--alpha/--beta"), ({"epochs": 0}, "--epochs"),
    ({"epochs": 1, "dims": 3}, "--dims 3 but the data is 2D"), ({"epochs": 1, "spacing": "fine"}, "--spacing"),
    ({"epochs": 1, "spacing": "0.5,0"}, "--spacing"), ({"epochs": 1, "precision": "fp16"}, "--precision"),
    ({"epochs": 1, "ema": 1.0}, "--ema"), ({"epochs": 1, "flip_axes": "x"}, "--flip-axes"),
    ({"epochs": 1, "flip_axes": "2"}, "--flip-axes 2: axes must be 0..1"), ({"epochs": 1, "flip_axes": "0,0"}, "--flip-axes"),
    ({"epochs": 1, "val_fraction": -0.5}, "--val-fraction"),
    ({"epochs": 1, "postprocess": True, "postprocess_by": "area"}, "--postprocess-by"),
    ({"epochs": 1, "postprocess_by": "confidence"}, "add --postprocess"),
    ({"epochs": 1, "weight_decay": -1e-4}, "--weight-decay"), ({"epochs": 1, "weight_decay": float("nan")}, "--weight-decay"),
    ({"epochs": 1, "patch": "32,32,32"}, "--patch 32,32,32"), ({"epochs": 1, "spacing": "1,1,1"}, "--spacing"),
])
def test_command_rejects_bad_options(tmp_path: Path, kwargs: dict, fragment: str) -> None:
    base = {"data": "phantom2d:n=3", "out": tmp_path, "dims": None, "folds": None, "time_budget": None,
            "seed": 0, "epochs": 1, "alpha": 1.0, "beta": 1.0, "iters": 1, "features": "4,8",
            "patch": "32,32", "batch_size": 2, "lr": 1e-3, "deep_supervision": True, "augment": True,
            "tta": False, "postprocess": False, "window": None, "threads": 1, "flip_axes": "auto", "ema": 0.0, "precision": "fp32", "resume": True,
            "name": None, "progress": False, "val_fraction": 0.1, "split_seed": None}
    with pytest.raises(ConfigError) as info:
        train_command(**{**base, **kwargs})
    assert fragment in str(info.value)


@pytest.mark.parametrize(("text", "axes"), [("auto", None), ("none", ()), ("1", (1,)), ("0,1", (0, 1))])
def test_flip_axes_option_reaches_augmentation_and_tta(tmp_path: Path, text: str, axes: tuple | None) -> None:
    from harness.train.command import parse_flip_axes

    assert parse_flip_axes(text) == axes
    cfg = TrainConfig(**{**TINY.__dict__, "folds": "test=1", "epochs": 1, "flip_axes": axes, "tta": axes != ()})
    result = train(phantom_dataset(2, n=4, seed=2), tmp_path, cfg)
    expected = [0, 1] if axes is None else list(axes)  # auto: all axes for non-ultrasound data
    assert list(result.record["augment"]["flip_axes"]) == expected
    card = tomllib.loads(result.card.read_text())
    assert card["input"].get("tta_flip_axes", []) == expected


def test_module_entry_point_exit_codes(tmp_path: Path) -> None:
    assert main(["--data", "phantom2d", "--out", str(tmp_path), "--dims", "5", "--epochs", "1"]) == 3
    assert main(["--data", "nowhere/at/all", "--out", str(tmp_path), "--epochs", "1"]) == 3
    assert main(["--bogus"]) == 3
    assert main(["--data", "phantom2d:n=3", "--out", str(tmp_path), "--epochs", "1", "--iters", "1",
                 "--features", "4,8", "--patch", "32,32", "--no-progress"]) == 0
    card = tomllib.loads((tmp_path / "model.toml").read_text())
    assert card["training"]["command"].startswith("python -m harness.train --data phantom2d:n=3")
    assert np.isfinite(card["training"]["best_val_dice_mean"])


def test_module_entry_point_reports_ctrl_c_as_interrupted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture) -> None:
    """`python -m harness.train` returned 0 with no message on Ctrl-C (typer hands it back as 130)."""
    import harness.train.trainer as trainer

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "train", interrupted)
    assert main(["--data", "phantom2d:n=3", "--out", str(tmp_path), "--epochs", "1", "--no-progress"]) == 2
    assert "interrupted (resume with the same command)" in capsys.readouterr().err


def test_cli_prints_the_test_dice_with_its_ci(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["--data", "phantom2d:n=6", "--out", str(tmp_path), "--epochs", "1", "--iters", "1",
                 "--features", "4,8", "--patch", "32,32", "--no-progress", "--folds", "test=3"]) == 0
    record = json.loads((tmp_path / "training.json").read_text())
    lo, hi = record["test_dice_ci95"]["mean"]
    line = next(ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("test Dice"))
    assert f"mean={record['test_dice']['mean']:.4f}" in line and f"95 % CI {lo:.4f}-{hi:.4f}" in line
    assert f"1 organ={record['test_dice']['1']:.4f}" in line and f"2 lesion={record['test_dice']['2']:.4f}" in line


def test_postprocess_by_confidence_writes_its_rule_to_the_card(tmp_path: Path) -> None:
    assert main(["--data", "phantom2d:n=4", "--out", str(tmp_path), "--epochs", "1", "--iters", "1",
                 "--features", "4,8", "--patch", "32,32", "--no-progress", "--folds", "test=1",
                 "--postprocess", "--postprocess-by", "confidence"]) == 0
    card = tomllib.loads((tmp_path / "model.toml").read_text())
    assert card["output"]["postprocess"] == "most_confident_component"
    assert TINY.fingerprint() == TrainConfig(**{**TINY.__dict__, "postprocess": True,
                                                "postprocess_by": "confidence"}).fingerprint()


def test_resampled_grid_tta_and_postprocess_travel_in_the_card(tmp_path: Path) -> None:
    """--spacing trains on a coarser grid; the card carries the grid, TTA and postprocessing, and
    the recorded test Dice is what the card's adapter gives on the cases' own grids."""
    from harness.models import load_model

    data = phantom_dataset(2, n=6, seed=3)  # 128x128 px at 0.8 mm
    cfg = TrainConfig(**{**TINY.__dict__, "folds": "test=2", "epochs": 1, "patch": None,
                         "spacing": (1.6, 1.6), "tta": True, "tta_shifts": True, "postprocess": True})
    result = train(data, tmp_path, cfg)
    card = tomllib.loads(result.card.read_text())
    assert card["input"]["spacing"] == [1.6, 1.6] and result.record["spacing"] == [1.6, 1.6]
    assert card["input"]["tta_flip_axes"] == [0, 1] and card["output"]["postprocess"] == "largest_component"
    assert card["input"]["tta_shifts"] is True  # inference only: the training fingerprint is unchanged
    assert cfg.fingerprint() == TrainConfig(**{**cfg.__dict__, "tta_shifts": False}).fingerprint()
    assert tuple(result.record["plan"]["median_shape"]) == (64, 64)
    model = load_model(result.card)
    dice: dict[int, list[float]] = {1: [], 2: []}
    for cid in result.record["split"]["test"]:
        case = data.load(cid)
        pred = model.predict(case.image, case.spacing).labels
        assert pred.shape == case.label.shape
        for k, v in dice_per_class(pred, case.label, [1, 2]).items():
            dice[k].append(v)
    assert result.test_dice["1"] == pytest.approx(float(np.mean(dice[1])))
    assert result.test_dice["2"] == pytest.approx(float(np.mean(dice[2])))


def test_auto_spacing_keeps_small_images_native(tmp_path: Path) -> None:
    data = phantom_dataset(2, n=3, seed=1)
    result = train(data, tmp_path, TINY)
    assert result.record["spacing"] is None
    assert "spacing" not in tomllib.loads(result.card.read_text())["input"]


def test_native_spacing_augments_at_the_median_voxel_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--spacing native keeps each case's grid; augmentation magnitudes (mm) follow the median
    voxel size of the training cases, not whichever case happens to come first."""
    import dataclasses

    import harness.train.loop as loop
    from harness.datasets.phantom import PhantomDataset

    class Mixed(PhantomDataset):
        def load(self, case_id: str):  # type: ignore[no-untyped-def]
            case = super().load(case_id)
            return dataclasses.replace(case, spacing=(0.5, 0.5) if self._index(case_id) == 0 else (1.0, 1.0))

    seen: list[tuple[float, ...]] = []
    build = loop.build_transform
    monkeypatch.setattr(loop, "build_transform", lambda ndim, spacing, *a, **k: (seen.append(tuple(spacing)),
                                                                                  build(ndim, spacing, *a, **k))[1])
    data = Mixed(phantom_dataset(2, n=5, seed=1).spec)
    result = train(data, tmp_path, TrainConfig(**{**TINY.__dict__, "epochs": 1, "spacing": "native",
                                                  "folds": "test=1", "val_fraction": 0.0}))
    assert result.record["spacing"] is None and "phantom2d_000" in result.record["split"]["train"]
    assert seen == [(1.0, 1.0)]


def test_summarise_test_means_and_bootstrap_ci() -> None:
    from harness.train.trainer import summarise_test

    table = pd.DataFrame({"case_id": ["a", "b", "c", "d"], "dice_1": [0.9, 0.8, 0.7, 1.0],
                          "dice_2": [0.5, 0.6, 0.7, 0.6]})
    table["dice_mean"] = (table["dice_1"] + table["dice_2"]) / 2
    scores, ci = summarise_test(table, [1, 2], seed=0)
    assert scores == pytest.approx({"1": 0.85, "2": 0.6, "mean": 0.725})
    for key, (lo, hi) in ci.items():
        assert table[f"dice_{key}"].min() <= lo < scores[key] < hi <= table[f"dice_{key}"].max()
    assert summarise_test(table, [1, 2], seed=0)[1] == ci  # seeded
    one = summarise_test(table.iloc[:1], [1, 2], seed=0)
    assert one[0]["1"] == 0.9 and one[1] == {"1": [None, None], "2": [None, None], "mean": [None, None]}


def test_weight_decay_option_reaches_the_optimiser(tmp_path: Path) -> None:
    args = ["--data", "phantom2d:n=3", "--epochs", "1", "--iters", "2", "--features", "4,8",
            "--patch", "32,32", "--no-progress", "--lr", "0.01"]
    assert main([*args, "--out", str(tmp_path / "default")]) == 0
    assert main([*args, "--out", str(tmp_path / "strong"), "--weight-decay", "0.5"]) == 0
    record = json.loads((tmp_path / "strong" / "training.json").read_text())
    assert record["config"]["weight_decay"] == 0.5
    default, strong = _weights(tmp_path / "default"), _weights(tmp_path / "strong")
    conv = next(k for k in default if k.endswith("weight") and default[k].ndim == 4)
    # decoupled decay shrinks each step by lr·wd on top of the same Adam update
    assert strong[conv].norm() < default[conv].norm()
    assert TINY.fingerprint() != TrainConfig(**{**TINY.__dict__, "weight_decay": 0.5}).fingerprint()  # no silent resume


def test_network_building_blocks_are_chosen_on_the_command_line(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture) -> None:
    """--norm, --downsample and --upsample reach the network and its card (unet.py had them; the
    trainer could only choose the norm, and only from Python); curves name the classes."""
    from harness.models import load_model

    assert main(["--data", "phantom2d:n=3", "--out", str(tmp_path), "--epochs", "1", "--iters", "1",
                 "--features", "4,8", "--patch", "32,32", "--no-progress", "--norm", "batch",
                 "--downsample", "maxpool", "--upsample", "interpolate"]) == 0
    card = tomllib.loads((tmp_path / "model.toml").read_text())
    kwargs = card["model"]["kwargs"]
    assert (kwargs["norm"], kwargs["downsample"], kwargs["upsample"]) == ("batch", "maxpool", "interpolate")
    net = build_unet(**kwargs)
    assert any(isinstance(m, torch.nn.MaxPool2d) for m in net.modules())
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in net.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    load_model(str(tmp_path / "model.toml"))  # the card loads its weights into that network
    assert "no patient column" in capsys.readouterr().err  # phantoms: each case its own patient
    record = json.loads((tmp_path / "training.json").read_text())
    assert "git_dirty" in record and (record["git_dirty"] is None or isinstance(record["git_dirty"], bool))
    assert main(["--data", "phantom2d:n=3", "--out", str(tmp_path / "bad"), "--epochs", "1",
                 "--upsample", "nearest"]) == 3


def test_curve_legends_name_the_classes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib.axes

    from harness.train.record import write_curves

    legends: list[list[str]] = []
    real = matplotlib.axes.Axes.legend

    def spy(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        out = real(self, *args, **kwargs)
        legends.append([t.get_text() for t in out.get_texts()])
        return out

    monkeypatch.setattr(matplotlib.axes.Axes, "legend", spy)
    history = [{"epoch": e, "train_loss": 1.0 / e, "lr": 1e-3 / e, "val_dice_1": 0.5, "val_dice_mean": 0.5}
               for e in (1, 2)]
    write_curves(history, tmp_path, class_names={1: "organ"})
    assert legends == [["train loss", "learning rate"], ["organ (1)", "mean"]]


def test_test_ci_resamples_patients() -> None:
    """A patient's two test images are one draw: the CI over 24 images of 12 patients, each imaged
    twice alike, is the CI over the 12 patients' own values (the mean is unchanged)."""
    from harness.train.trainer import summarise_test

    rng = np.random.default_rng(0)
    one = pd.DataFrame({"case_id": [f"c{i}" for i in range(12)], "dice_1": rng.uniform(0.6, 1, 12),
                        "dice_2": rng.uniform(0.4, 0.9, 12)})
    one["dice_mean"] = (one["dice_1"] + one["dice_2"]) / 2
    twice = pd.concat([one, one.assign(case_id=one["case_id"] + "b")], ignore_index=True)
    patients = pd.Series([f"p{i:02d}" for i in range(12)] * 2, index=twice["case_id"])  # sorted as the rows
    scores, by_patient = summarise_test(twice, [1, 2], seed=0, patients=patients)
    assert scores == pytest.approx(summarise_test(one, [1, 2], seed=0)[0])
    for key, bounds in summarise_test(one, [1, 2], seed=0)[1].items():
        assert by_patient[key] == pytest.approx(bounds)
    per_image = summarise_test(twice, [1, 2], seed=0)[1]
    assert per_image["mean"][1] - per_image["mean"][0] < 0.8 * (by_patient["mean"][1] - by_patient["mean"][0])
