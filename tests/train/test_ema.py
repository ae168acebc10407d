"""Weight EMA: the warm-up formula, buffers, and its use by the trainer (validated, saved, resumed)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harness.datasets.phantom import phantom_dataset
from harness.errors import ConfigError
from harness.train import TrainConfig, train
from harness.train.ema import weight_ema
from harness.train.trainer import BEST, LAST


def test_ema_follows_the_warmup_formula() -> None:
    net = torch.nn.Linear(3, 1)
    ema = weight_ema(net, 0.9)
    expected = net.weight.detach().clone()
    for n in range(30):
        with torch.no_grad():
            net.weight.add_(torch.randn_like(net.weight))
        ema.update_parameters(net)
        d = 0.0 if n == 0 else min(0.9, (1 + n) / (10 + n))  # the first update copies
        expected = d * expected + (1 - d) * net.weight.detach()
        assert torch.allclose(ema.module.weight, expected, atol=1e-6)
    assert not ema.module.weight.requires_grad


def test_ema_averages_batch_norm_buffers() -> None:
    net = torch.nn.BatchNorm1d(2)
    ema = weight_ema(net, 0.5)
    net.train()(torch.randn(8, 2) + 5)
    ema.update_parameters(net)  # first update copies
    assert torch.allclose(ema.module.running_mean, net.running_mean)


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.1])
def test_ema_rejects_decay_outside_open_interval(decay: float) -> None:
    with pytest.raises(ValueError):
        weight_ema(torch.nn.Linear(1, 1), decay)


TINY = TrainConfig(seed=4, epochs=3, iters_per_epoch=3, features=(4, 8), patch=(32, 32), batch_size=2,
                   progress=False, max_val=2, ema=0.9)


def test_trainer_saves_validated_ema_weights_and_resumes_exactly(tmp_path: Path) -> None:
    data = phantom_dataset(2, n=4, seed=21)
    full = train(data, tmp_path / "full", TINY)
    last = torch.load(tmp_path / "full" / LAST, weights_only=True)
    raw = last["model"]
    averaged = {k.removeprefix("module."): v for k, v in last["ema"].items() if k.startswith("module.")}
    assert averaged.keys() == raw.keys()
    assert any(not torch.equal(averaged[k], raw[k]) for k in raw)  # the EMA is not the raw weights
    best = torch.load(tmp_path / "full" / BEST, weights_only=True)
    model = torch.load(full.weights, weights_only=True)
    assert all(torch.equal(model[k], best[k]) for k in model)
    # the best checkpoint holds EMA weights: a run without EMA saves different ones
    plain = train(data, tmp_path / "plain", TrainConfig(**{**TINY.__dict__, "ema": 0.0}))
    assert any(not torch.equal(model[k], torch.load(plain.weights, weights_only=True)[k]) for k in model)
    stopped = train(data, tmp_path / "part", TINY, callback=lambda row: row["epoch"] == 1)
    assert stopped.record["epochs_run"] == 1
    resumed = train(data, tmp_path / "part", TINY)
    resumed_last = torch.load(tmp_path / "part" / LAST, weights_only=True)
    assert all(torch.equal(resumed_last["ema"][k], last["ema"][k]) for k in last["ema"])
    assert resumed.best_val_dice == full.best_val_dice


def test_trainer_rejects_bad_decay(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--ema"):
        train(phantom_dataset(2, n=3, seed=1), tmp_path, TrainConfig(**{**TINY.__dict__, "ema": 1.0}))
