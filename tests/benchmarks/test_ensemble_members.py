"""benchmarks/ensemble_members.py: each member's card holds that member's weights and the run
card's input/output options, and the members' probabilities average to the ensemble's."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.datasets.phantom import phantom_dataset
from harness.models import load_model
from harness.train import TrainConfig, train
from harness.train.trainer import BEST

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.ensemble_members import member_cards  # noqa: E402
from benchmarks.train_reference import load_card_model  # noqa: E402

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

TINY = TrainConfig(seed=4, epochs=1, iters_per_epoch=2, features=(4, 8), patch=(32, 32), batch_size=2,
                   progress=False, max_val=2, folds="test=2", tta=True, postprocess=True)


def test_member_cards_are_the_members(tmp_path: Path) -> None:
    data = phantom_dataset(2, n=6, seed=3)
    result = train(data, tmp_path, TrainConfig(**{**TINY.__dict__, "ensemble": 2}))
    cards = member_cards(tmp_path)
    assert [c.parent.name for c in cards] == ["member0", "member1"]
    run_card = tomllib.loads(result.card.read_text())
    case = data.load(result.record["split"]["test"][0])
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 1, 32, 32)).astype(np.float32))
    probs = []
    for k, card_path in enumerate(cards):
        card = tomllib.loads(card_path.read_text())
        assert card["model"]["entry"] == "harness.train.unet:build_unet" and "members" not in card["model"]["kwargs"]
        assert card["input"] == run_card["input"] and card["output"] == run_card["output"]  # TTA, postprocess kept
        weights = torch.load(card_path.parent / "model.pt", weights_only=True)
        best = torch.load(tmp_path / f"member{k}" / BEST, weights_only=True)
        assert weights.keys() == best.keys() and all(torch.equal(weights[n], best[n]) for n in best)
        with torch.no_grad():
            probs.append(torch.softmax(load_card_model(card_path)[0](x), dim=1))
        pred = load_model(card_path, ndim=2).predict(case.image, case.spacing, case_id=case.case_id)
        assert pred.labels.shape == case.label.shape  # what the script scores
    with torch.no_grad():
        ensemble = torch.softmax(load_card_model(result.card)[0](x), dim=1)
    assert not torch.allclose(probs[0], probs[1])
    assert torch.allclose(torch.stack(probs).mean(0), ensemble, atol=1e-6)


def test_a_single_network_run_is_refused(tmp_path: Path) -> None:
    train(phantom_dataset(2, n=4, seed=3), tmp_path, TINY)
    with pytest.raises(SystemExit, match="not an ensemble"):
        member_cards(tmp_path)
