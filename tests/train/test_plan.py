"""The automatic plan (patch, strides) for data with thin or single-slice axes."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.case import Case
from harness.datasets.base import Dataset
from harness.datasets.phantom import phantom_dataset
from harness.train import TrainConfig, train
from harness.train.plan import make_plan


def test_an_axis_too_short_to_pool_does_not_stop_the_others() -> None:
    """The finest spacing was taken over every axis, so an 8-voxel slab stopped pooling after two
    levels (a 40 x 40 bottleneck); nnU-Net v2 looks only at axes that can still be pooled."""
    assert make_plan([(160, 160, 8)], [(1.0, 1.0, 1.0)]).strides == ((2, 2, 2), (2, 2, 1), (2, 2, 1))
    assert make_plan([(32, 64, 64)], [(2.0, 1.0, 1.0)]).strides == ((1, 2, 2), (2, 2, 2), (2, 2, 2))  # unchanged


def test_single_slice_volumes_are_not_padded_along_their_thin_axis() -> None:
    plan = make_plan([(128, 128, 1)] * 3, [(1.0, 1.0, 1.0)] * 3)
    assert plan.patch == (128, 128, 1)  # was (128, 128, 4): three quarters padding
    assert plan.strides == ((2, 2, 1),) * 3  # was one level


class Slices(Dataset):
    """The 2D phantoms stored as (H, W, 1) volumes, as 2D images saved as NIfTI."""

    def __init__(self) -> None:
        self.parent = phantom_dataset(2, n=4, seed=3)
        self.name, self.modality, self.label_names = "slices", "mri", dict(self.parent.label_names)

    @property
    def case_ids(self) -> list[str]:
        return self.parent.case_ids

    @property
    def metadata(self):
        return self.parent.metadata

    def load(self, case_id: str) -> Case:
        case = self.parent.load(case_id)
        return case.with_(image=np.ascontiguousarray(case.image[..., None]),
                          label=np.ascontiguousarray(case.label[..., None]), spacing=(*case.spacing, 3.0))


def test_single_slice_volumes_train_with_their_own_patch(tmp_path: Path) -> None:
    """--patch 32,32,1 crashed in TorchIO's flip along the one-voxel axis (negative strides)."""
    cfg = TrainConfig(seed=4, epochs=1, iters_per_epoch=2, features=(4, 8), patch=(32, 32, 1), batch_size=2,
                      progress=False, max_val=1, folds="test=1")
    result = train(Slices(), tmp_path, cfg)
    assert list(result.record["plan"]["flip_axes"]) == [0, 1]
    assert np.isfinite(result.record["test_dice"]["mean"])
