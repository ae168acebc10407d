"""Ensembles: the averaging module, its state_dict layout, and ``train(..., ensemble=N)`` end to end
(members = the single-network runs of their seeds, one card usable by the adapters, exact resume)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.datasets.phantom import phantom_dataset
from harness.errors import ConfigError
from harness.models import load_model
from harness.train import TrainConfig, train
from harness.train.command import main
from harness.train.ensemble import UNetEnsemble, build_unet_ensemble, ensemble_state
from harness.train.trainer import BEST, LAST
from harness.train.unet import build_unet

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

KW = {"spatial_dims": 2, "in_channels": 1, "out_channels": 3, "features": (4, 8)}
TINY = TrainConfig(seed=4, epochs=2, iters_per_epoch=3, features=(4, 8), patch=(32, 32), batch_size=2,
                   progress=False, max_val=2)


class _Fixed(torch.nn.Module):
    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4), st.floats(0.1, 500.0), st.integers(0, 2**16))
def test_softmax_of_output_is_mean_member_probability(members: int, scale: float, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    logits = [scale * torch.randn(1, 3, 5, 4, generator=gen) for _ in range(members)]
    out = UNetEnsemble([_Fixed(z) for z in logits])(torch.zeros(1, 1, 5, 4))
    mean = torch.stack([torch.softmax(z, 1) for z in logits]).mean(0)
    assert torch.isfinite(out).all()  # extreme logits: log-sum-exp, no log(0)
    assert torch.allclose(torch.softmax(out, 1), mean, atol=1e-6)


def test_one_member_ensemble_predicts_like_the_member() -> None:
    torch.manual_seed(0)
    net = build_unet(**KW).eval()
    ens = build_unet_ensemble(members=1, **KW)
    ens.load_state_dict(ensemble_state([net.state_dict()]))
    x = torch.randn(2, 1, 19, 23)
    with torch.no_grad():
        assert torch.allclose(ens.eval()(x), torch.log_softmax(net(x), 1), atol=1e-5)


def test_ensemble_state_layout_and_member_count() -> None:
    a, b = build_unet(**KW), build_unet(**KW)
    state = ensemble_state([a.state_dict(), b.state_dict()])
    assert all(k.startswith(("members.0.", "members.1.")) for k in state)
    build_unet_ensemble(members=2, **KW).load_state_dict(state, strict=True)
    with pytest.raises(RuntimeError):  # a 3-member network does not take 2 members' weights
        build_unet_ensemble(members=3, **KW).load_state_dict(state, strict=True)
    with pytest.raises(ValueError, match="members"):
        build_unet_ensemble(members=0, **KW)


def test_trained_ensemble_is_its_members_and_one_card(tmp_path: Path) -> None:
    data = phantom_dataset(2, n=6, seed=3)
    cfg = TrainConfig(**{**TINY.__dict__, "ensemble": 2, "folds": "test=2"})
    result = train(data, tmp_path / "ens", cfg)
    # member 0 is exactly the single network of the same options; member 1 trains with seed + 1
    single = train(data, tmp_path / "single", TrainConfig(**{**TINY.__dict__, "folds": "test=2"}))
    expected = torch.load(single.weights, weights_only=True)
    weights = torch.load(result.weights, weights_only=True)
    assert all(torch.equal(weights[f"members.0.{name}"], v) for name, v in expected.items())
    for k in range(2):
        best = torch.load(tmp_path / "ens" / f"member{k}" / BEST, weights_only=True)
        assert all(torch.equal(weights[f"members.{k}.{name}"], v) for name, v in best.items())
    assert not torch.equal(weights["members.0.heads.0.weight"], weights["members.1.heads.0.weight"])
    assert [m["seed"] for m in result.record["members"]] == [4, 5]
    assert result.record["epochs_run"] == 4 and np.isfinite(result.best_val_dice)
    card = tomllib.loads(result.card.read_text())
    assert card["model"]["entry"] == "harness.train.ensemble:build_unet_ensemble"
    assert card["model"]["kwargs"]["members"] == 2
    model = load_model(result.card, ndim=2)  # what `harness run --model` loads
    case = data.load(result.record["split"]["test"][0])
    pred = model.predict(case.image, case.spacing, case_id=case.case_id)
    assert pred.labels.shape == case.label.shape and np.allclose(pred.probabilities.sum(0), 1, atol=1e-4)
    assert set(result.test_dice) == {"1", "2", "mean"}
    curves = (tmp_path / "ens" / "curves.csv").read_text().splitlines()
    assert curves[0].startswith("member,epoch") and len(curves) == 1 + 4


def test_card_with_no_members_is_a_config_error(tmp_path: Path) -> None:
    card = tmp_path / "model.toml"
    card.write_text('[model]\nname = "e"\nformat = "torch"\nentry = "harness.train.ensemble:build_unet_ensemble"\n'
                    '[model.kwargs]\nmembers = 0\nspatial_dims = 2\nin_channels = 1\nout_channels = 3\n'
                    '[output]\nlabels = {1 = "organ", 2 = "lesion"}\n')
    with pytest.raises(ConfigError, match=r"\[model.kwargs\].*members must be ≥ 1"):
        load_model(card, ndim=2)


def test_interrupted_ensemble_resumes_exactly(tmp_path: Path) -> None:
    data = phantom_dataset(2, n=4, seed=21)
    cfg = TrainConfig(**{**TINY.__dict__, "ensemble": 2})
    full = train(data, tmp_path / "full", cfg)
    calls = iter(range(100))
    stopped = train(data, tmp_path / "part", cfg, callback=lambda row: next(calls) == 2)  # member 1, epoch 1
    assert [m["epochs_run"] for m in stopped.record["members"]] == [2, 1]
    resumed = train(data, tmp_path / "part", cfg)
    a, b = (torch.load(r.weights, weights_only=True) for r in (full, resumed))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert torch.load(tmp_path / "part" / "member1" / LAST, weights_only=True)["epoch"] == 2
    again = train(data, tmp_path / "part", cfg)  # finished: resuming trains nothing more
    assert again.record["epochs_run"] == 4


def test_time_budget_is_shared_between_members(tmp_path: Path) -> None:
    data = phantom_dataset(2, n=4, seed=21)
    cfg = TrainConfig(**{**TINY.__dict__, "epochs": None, "time_budget": 0.05, "ensemble": 2})
    result = train(data, tmp_path, cfg)
    members = result.record["members"]
    assert len(members) == 2 and all(m["epochs_run"] >= 1 for m in members)
    assert result.record["train_seconds"] < 60 * 0.05 + sum(m["train_seconds"] / m["epochs_run"] for m in members)


@pytest.mark.parametrize("n", [0, -1])
def test_bad_ensemble_size_is_a_config_error(tmp_path: Path, n: int, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigError, match="--ensemble"):
        train(phantom_dataset(2, n=2, seed=0), tmp_path, TrainConfig(**{**TINY.__dict__, "ensemble": n}))
    assert main(["--data", "phantom2d:n=2", "--out", str(tmp_path / "cli"), "--epochs", "1",
                 "--ensemble", str(n), "--no-progress"]) == 3
    assert "--ensemble" in capsys.readouterr().err
