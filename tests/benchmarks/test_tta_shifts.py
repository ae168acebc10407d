"""benchmarks/tta_shifts.py: the shifted card is the run's card plus [input] tta_shifts, and loads."""
from __future__ import annotations

import sys
from pathlib import Path

from harness.datasets.phantom import phantom_dataset
from harness.models import load_model
from harness.tomlread import tomllib
from harness.train import TrainConfig, train

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.tta_shifts import shifted_card  # noqa: E402


def test_the_shifted_card_differs_only_by_tta_shifts(tmp_path: Path) -> None:
    data = phantom_dataset(2, n=4, seed=3)
    cfg = TrainConfig(seed=4, epochs=1, iters_per_epoch=2, features=(4, 8), patch=(32, 32), batch_size=2,
                      progress=False, max_val=1, folds="test=1", tta=True, postprocess=True)
    result = train(data, tmp_path, cfg)
    path = shifted_card(tmp_path)
    card, shifted = tomllib.loads(result.card.read_text()), tomllib.loads(path.read_text())
    assert shifted["input"].pop("tta_shifts") is True and "tta_shifts" not in card["input"]
    assert shifted == card
    model = load_model(path, ndim=2)
    assert model.model_card.input.tta_shifts and model.model_card.input.tta_flip_axes == (0, 1)
    case = data.load(result.record["split"]["test"][0])
    assert model.predict(case.image, case.spacing).labels.shape == case.label.shape
