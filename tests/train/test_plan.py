"""The automatic plan (patch, strides) for data with thin or single-slice axes."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.train import TrainConfig, train
from harness.train.plan import make_plan
from tests.train.edited import Edited


def test_an_axis_too_short_to_pool_does_not_stop_the_others() -> None:
    """The finest spacing was taken over every axis, so an 8-voxel slab stopped pooling after two
    levels (a 40 x 40 bottleneck); nnU-Net v2 looks only at axes that can still be pooled."""
    assert make_plan([(160, 160, 8)], [(1.0, 1.0, 1.0)]).strides == ((2, 2, 2), (2, 2, 1), (2, 2, 1))
    assert make_plan([(32, 64, 64)], [(2.0, 1.0, 1.0)]).strides == ((1, 2, 2), (2, 2, 2), (2, 2, 2))  # unchanged


def test_single_slice_volumes_are_not_padded_along_their_thin_axis() -> None:
    plan = make_plan([(128, 128, 1)] * 3, [(1.0, 1.0, 1.0)] * 3)
    assert plan.patch == (128, 128, 1)  # was (128, 128, 4): three quarters padding
    assert plan.strides == ((2, 2, 1),) * 3  # was one level


def _slices() -> Edited:
    """The 2D phantoms stored as (H, W, 1) volumes, as 2D images saved as NIfTI."""
    return Edited(image=lambda c: np.ascontiguousarray(c.image[..., None]),
                  label=lambda c: np.ascontiguousarray(c.label[..., None]), spacing=lambda c: (*c.spacing, 3.0),
                  modality="mri")


def test_single_slice_volumes_train_with_their_own_patch(tmp_path: Path) -> None:
    """--patch 32,32,1 crashed in TorchIO's flip along the one-voxel axis (negative strides)."""
    cfg = TrainConfig(seed=4, epochs=1, iters_per_epoch=2, features=(4, 8), patch=(32, 32, 1), batch_size=2,
                      progress=False, max_val=1, folds="test=1")
    result = train(_slices(), tmp_path, cfg)
    assert list(result.record["plan"]["flip_axes"]) == [0, 1]
    assert np.isfinite(result.record["test_dice"]["mean"])
