"""Reference training: a 2D/3D U-Net, α·CE + β·Dice loss, augmentation and a reproducible trainer.

Public API: :class:`UNet`, :func:`build_unet` (model-card entry), :class:`DiceCELoss`,
:class:`TrainConfig`, :func:`train`, :func:`train_command` (what ``harness train`` calls),
:func:`predict_labels` (sliding-window inference).
"""
from __future__ import annotations

from harness.train.losses import DiceCELoss, soft_dice_loss
from harness.train.unet import UNet, build_unet

__all__ = [
    "DiceCELoss",
    "TrainConfig",
    "TrainResult",
    "UNet",
    "build_unet",
    "predict_labels",
    "soft_dice_loss",
    "train",
    "train_command",
]


def __getattr__(name: str) -> object:
    # Lazy: the model adapter imports build_unet without pulling in torchio, pandas or rich.
    if name == "TrainConfig":
        from harness.train.config import TrainConfig

        return TrainConfig
    if name in ("TrainResult", "train"):
        from harness.train import trainer

        return getattr(trainer, name)
    if name == "train_command":
        from harness.train.command import train_command

        return train_command
    if name == "predict_labels":
        from harness.train.inference import predict_labels

        return predict_labels
    raise AttributeError(f"module 'harness.train' has no attribute {name!r}")
