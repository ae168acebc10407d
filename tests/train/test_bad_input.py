"""Bad data and bad runs under `harness train`: a one-line ConfigError naming the case, option or
file, and no loss of what was already written."""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import harness.train.loop as loop
from harness.case import Case
from harness.datasets.phantom import phantom_dataset
from harness.errors import ConfigError
from harness.train import TrainConfig, train
from harness.train.trainer import LAST
from tests.train.edited import Edited

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

TINY = TrainConfig(seed=4, epochs=1, iters_per_epoch=2, features=(4, 8), patch=(32, 32), batch_size=2,
                   progress=False, max_val=1, folds="test=1")


def _nan_image(case: Case) -> np.ndarray:
    image = case.image.copy()
    image[0, 3, 4] = np.nan
    return image


def test_nan_image_names_the_case(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"case phantom2d_00\d: the image has NaN"):
        train(Edited(image=_nan_image), tmp_path, TINY)


def test_unnamed_mask_class_names_the_case(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"case phantom2d_00\d: label values \[2\] are not classes"):
        train(Edited(label_names={1: "organ"}), tmp_path, TINY)  # the phantoms' masks hold 1 and 2


def test_mask_values_beyond_uint8_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"label values 0\.\.300"):
        train(Edited(label=lambda c: np.where(c.label == 2, 300, c.label)), tmp_path, TINY)


def test_background_name_is_not_a_class(tmp_path: Path) -> None:
    names = {0: "background", 1: "organ", 2: "lesion"}
    result = train(Edited(label_names=names), tmp_path, TINY)
    card = tomllib.loads(result.card.read_text())
    assert card["output"]["labels"] == {"1": "organ", "2": "lesion"}
    assert set(result.test_dice) == {"1", "2", "mean"}  # background is not scored


def test_patch_with_the_wrong_number_of_axes(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--patch 32,32,32: give one size per spatial axis of the 2D data"):
        train(phantom_dataset(2, n=3, seed=1), tmp_path, dataclasses.replace(TINY, patch=(32, 32, 32)))


def test_window_on_non_ct_data(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--window applies to CT data.*'mri'"):
        train(Edited(modality="mri"), tmp_path, dataclasses.replace(TINY, window=(-100.0, 200.0)))


def test_out_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match="exists and is not a folder"):
        train(phantom_dataset(2, n=3, seed=1), tmp_path / "f", TINY)


@pytest.mark.parametrize("content", [b"not a checkpoint", None])
def test_unreadable_checkpoint_says_no_resume(tmp_path: Path, content: bytes | None) -> None:
    if content is None:  # a readable torch file that is not this trainer's checkpoint
        torch.save({"weights": torch.zeros(2)}, tmp_path / LAST)
    else:
        (tmp_path / LAST).write_bytes(content)
    with pytest.raises(ConfigError, match=r"cannot resume from .*checkpoint_last\.pt.*--no-resume"):
        train(phantom_dataset(2, n=3, seed=1), tmp_path, TINY)
    train(phantom_dataset(2, n=3, seed=1), tmp_path, dataclasses.replace(TINY, resume=False))
    assert torch.load(tmp_path / LAST, weights_only=True)["epoch"] == 1


def test_diverging_loss_stops_with_the_epochs_done_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = loop.DiceCELoss

    class DivergesInEpochTwo(real):  # type: ignore[misc, valid-type]
        calls = 0

        def forward(self, logits, target):  # noqa: ANN001, ANN201
            DivergesInEpochTwo.calls += 1
            loss = super().forward(logits, target)
            return loss * float("nan") if DivergesInEpochTwo.calls > TINY.iters_per_epoch else loss

    monkeypatch.setattr(loop, "DiceCELoss", DivergesInEpochTwo)
    with pytest.raises(ConfigError, match=r"training loss became nan in epoch 2: .*lower --lr .*keeps the 1 epoch"):
        train(phantom_dataset(2, n=3, seed=1), tmp_path, dataclasses.replace(TINY, epochs=3))
    assert torch.load(tmp_path / LAST, weights_only=True)["epoch"] == 1
    DivergesInEpochTwo.calls = TINY.iters_per_epoch  # now from the first step
    with pytest.raises(ConfigError, match=r"in epoch 1: .*; no checkpoint was written$"):
        train(phantom_dataset(2, n=3, seed=1), tmp_path / "new", TINY)



def test_only_validated_epochs_are_selected(tmp_path: Path) -> None:
    """With validation every 2nd epoch, the best checkpoint is a validated one; a run stopped
    before its first validation keeps its final weights and reports no validation Dice."""
    result = train(phantom_dataset(2, n=4, seed=1), tmp_path / "a", dataclasses.replace(TINY, epochs=3, val_every=2))
    curves = pd.read_csv(tmp_path / "a" / "curves.csv")
    assert curves["val_dice_mean"].notna().tolist() == [False, True, True]  # epoch 3: the last is validated
    assert result.best_val_dice == pytest.approx(curves["val_dice_mean"].max())
    assert result.record["best_val_dice_mean"] == pytest.approx(result.best_val_dice)
    early = train(phantom_dataset(2, n=4, seed=1), tmp_path / "b",
                  dataclasses.replace(TINY, epochs=None, time_budget=1e-4, val_every=5))
    assert early.record["epochs_run"] == 1 and early.record["best_val_dice_mean"] is None
    assert (tmp_path / "b" / "model.pt").is_file()


def test_a_stale_best_checkpoint_is_not_shipped(tmp_path: Path) -> None:
    """--no-resume into a folder holding an older run's checkpoint_best.pt: a run that never
    validates ships its own final weights, not the older run's best."""
    data = phantom_dataset(2, n=4, seed=1)
    train(data, tmp_path, dataclasses.replace(TINY, seed=7))
    old = torch.load(tmp_path / "model.pt", weights_only=True)
    cfg = dataclasses.replace(TINY, epochs=None, time_budget=1e-4, val_every=5, resume=False)
    train(data, tmp_path, cfg)
    new, final = torch.load(tmp_path / "model.pt", weights_only=True), torch.load(tmp_path / LAST, weights_only=True)["model"]
    assert all(torch.equal(new[k], final[k]) for k in new)
    assert not all(torch.equal(new[k], old[k]) for k in new)


def test_resume_on_other_data_is_refused(tmp_path: Path) -> None:
    """The options matched, so the old checkpoint was resumed (no epoch trained) and the card credited
    its weights to the new data."""
    train(phantom_dataset(2, n=4, seed=1), tmp_path, TINY)
    with pytest.raises(ConfigError, match=r"checkpoint_last\.pt: a checkpoint trained on other data .*--no-resume"):
        train(phantom_dataset(2, n=4, seed=2), tmp_path, TINY)
    train(phantom_dataset(2, n=4, seed=1), tmp_path, TINY)  # the same data: resumes


def test_incomplete_checkpoint_and_missing_best_are_named(tmp_path: Path) -> None:
    data = phantom_dataset(2, n=4, seed=1)
    train(data, tmp_path, TINY)
    ckpt = torch.load(tmp_path / LAST, weights_only=True)
    del ckpt["optimizer"]
    torch.save(ckpt, tmp_path / LAST)
    with pytest.raises(ConfigError, match=r"cannot resume from .*checkpoint_last\.pt: not a complete checkpoint "
                                          r"of this trainer \(no optimizer\)"):
        train(data, tmp_path, TINY)
    train(data, tmp_path, dataclasses.replace(TINY, resume=False))
    (tmp_path / "checkpoint_best.pt").unlink()
    with pytest.raises(ConfigError, match=r"checkpoint_best\.pt is missing .*--no-resume"):
        train(data, tmp_path, TINY)  # resumes a finished run: only the best weights are read
    (tmp_path / "checkpoint_best.pt").write_bytes(b"garbage")
    with pytest.raises(ConfigError, match=r"cannot read .*checkpoint_best\.pt \(UnpicklingError\)"):
        train(data, tmp_path, TINY)


def test_checkpoint_of_another_network_is_named(tmp_path: Path) -> None:
    data = phantom_dataset(2, n=4, seed=1)
    train(data, tmp_path, TINY)
    ckpt = torch.load(tmp_path / LAST, weights_only=True)
    ckpt["model"] = {k: torch.zeros(1) for k in ckpt["model"]}
    ckpt.pop("trained_on")  # as written before checkpoints recorded their data
    torch.save(ckpt, tmp_path / LAST)
    with pytest.raises(ConfigError, match=r"cannot resume from .*: it does not fit this network \(.*\); "
                                          "use a new --out or --no-resume"):
        train(data, tmp_path, TINY)


@pytest.mark.parametrize(("change", "fragment"), [
    ({"seed": 2**63}, r"--seed must be an integer in \[0, 2\*\*63\)"),
    ({"seed": 2**63 - 1, "ensemble": 2}, r"--seed must be an integer in \[0, 2\*\*63 - 1\), .*--ensemble 2"),
    ({"split_seed": 2**64}, r"--split-seed must be an integer in \[0, 2\*\*63\)"),
])
def test_seeds_too_large_are_refused_before_training(tmp_path: Path, change: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        train(phantom_dataset(2, n=4, seed=1), tmp_path, dataclasses.replace(TINY, **change))


def test_empty_out_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="--out is empty; give a folder path"):
        train(phantom_dataset(2, n=4, seed=1), "", TINY)
    assert not list(tmp_path.iterdir())


def test_a_run_without_test_set_removes_an_earlier_test_table(tmp_path: Path) -> None:
    data = phantom_dataset(2, n=4, seed=1)
    train(data, tmp_path, TINY)
    assert (tmp_path / "test_dice.csv").is_file()
    train(data, tmp_path, dataclasses.replace(TINY, folds="none", resume=False))
    assert not (tmp_path / "test_dice.csv").exists()


def test_an_unreadable_test_case_keeps_what_training_wrote(tmp_path: Path) -> None:
    """It was found only after training, and then no card, curves or record were written."""
    from harness.train.data import make_split

    data = phantom_dataset(2, n=4, seed=1)
    (test_id,) = make_split(data.metadata, folds=TINY.folds, seed=TINY.seed, val_fraction=TINY.val_fraction,
                            max_val=TINY.max_val).test

    class BrokenAfterTraining(Edited):
        broken = False

        def __init__(self) -> None:
            super().__init__()
            self.parent = data

        def load(self, case_id: str) -> Case:
            if case_id == test_id and self.broken:
                raise ConfigError(f"case {case_id}: cannot read the image")
            return super().load(case_id)

    dataset = BrokenAfterTraining()

    def break_it(row: dict) -> bool:
        dataset.broken = True
        return False

    with pytest.raises(ConfigError, match=rf"test set: .*case {test_id}: cannot read the image \(the weights, "
                                          r"card, curves and training.json are written in"):
        train(dataset, tmp_path, TINY, callback=break_it)
    assert {"model.pt", "model.toml", "curves.csv", "training.json"} <= {p.name for p in tmp_path.iterdir()}


def test_a_folder_holding_someone_else_s_model_is_not_overwritten(tmp_path: Path) -> None:
    """--out was created with exist_ok: a user's model.toml and model.pt were replaced and their
    test_dice.csv deleted, silently."""
    (tmp_path / "model.toml").write_text("# my card\n")
    (tmp_path / "model.pt").write_bytes(b"weights")
    with pytest.raises(ConfigError, match=r"holds model\.pt, model\.toml but no training run \(training\.json or "
                                          r"checkpoint_last\.pt\); .*choose an empty or new folder"):
        train(phantom_dataset(2, n=4, seed=1), tmp_path, TINY)
    assert (tmp_path / "model.toml").read_text() == "# my card\n"


def test_unnamed_classes_must_be_one_to_k(tmp_path: Path) -> None:
    """A 0/255 PNG mask read without label_values made a 256-output network training class 255."""
    binary = Edited(label=lambda c: np.where(c.label > 0, 255, 0), label_names={})
    with pytest.raises(ConfigError, match=r"the masks hold classes \[255\] \(case phantom2d_00\d\) and the data names "
                                          r'none; .*label_values = \{"255" = 1\}'):
        train(binary, tmp_path, TINY)


def test_masks_without_any_foreground_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no training label holds a foreground class"):
        train(Edited(label=lambda c: np.zeros_like(c.label)), tmp_path, TINY)


def test_a_test_case_with_an_unnamed_class_is_refused_before_training(tmp_path: Path) -> None:
    """Training and validation masks were checked, test masks not: the unnamed class scored as
    background (Dice 0) in test_dice.csv."""
    data = Edited(label_names={1: "organ", 2: "lesion"})
    test_id = train(data, tmp_path / "probe", TINY).record["split"]["test"][0]

    def recode(case: Case) -> np.ndarray:
        label = case.label.copy()
        if case.case_id == test_id:
            label[:4, :4] = 5
        return label

    recoded = Edited(label_names={1: "organ", 2: "lesion"}, label=recode)
    with pytest.raises(ConfigError, match=rf"case {test_id}: label values \[5\] are not classes"):
        train(recoded, tmp_path / "run", TINY)
    assert not (tmp_path / "run" / "model.pt").exists()


def test_a_window_that_misses_the_foreground_is_refused(tmp_path: Path) -> None:
    """--window 2000,3000 (or an HU window on data scaled to 0..1) clipped every labelled voxel to one
    value, as background, and training ended normally with a validation Dice near 0."""
    ct = Edited(modality="ct")  # phantom intensities lie in 0..1
    with pytest.raises(ConfigError, match=r"--window 2000,3000: only 0\.0 % of the training foreground lies inside it "
                                          r"\(the foreground runs"):
        train(ct, tmp_path / "a", dataclasses.replace(TINY, window=(2000.0, 3000.0)))
    with pytest.raises(ConfigError, match=r"--window -160,240: the training foreground runs .* of the window's width, "
                                          r"so its contrast would be squeezed away"):
        train(ct, tmp_path / "a", dataclasses.replace(TINY, window=(-160.0, 240.0)))
    train(ct, tmp_path / "b", dataclasses.replace(TINY, window=(0.0, 1.0)))  # a window over the structures
