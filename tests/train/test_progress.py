"""The training progress bar: epochs done of --epochs (or of the time budget), loss, validation Dice."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from harness.datasets.phantom import phantom_dataset
from harness.train import TrainConfig, train

TINY = TrainConfig(seed=4, epochs=1, iters_per_epoch=2, features=(4, 8), patch=(32, 32), batch_size=2,
                   progress=False, max_val=1, folds="test=1")


@pytest.mark.parametrize(("changes", "shown"), [
    ({"epochs": 2}, r"epoch 2/2 .*val Dice (0|1)\.\d{4}"),
    ({"epochs": None, "time_budget": 1e-4, "val_fraction": 0.0}, r"epoch 1 \(budget 0\.0 min\) .*val Dice -"),
])
def test_progress_bar_shows_epochs_of_the_budget(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                 changes: dict, shown: str) -> None:
    train(phantom_dataset(2, n=4, seed=1), tmp_path, dataclasses.replace(TINY, progress=True, **changes))
    out = capsys.readouterr()
    assert re.search(shown, out.out + out.err), out.out + out.err
