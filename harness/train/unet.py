"""A plain 2D/3D U-Net (Ronneberger et al. 2015; nnU-Net's conv–norm–LeakyReLU variant).

Encoder stage ``i`` has ``features[i]`` channels; stage 0 keeps the input resolution and each
further stage downsamples by ``strides[i]`` (per axis, so anisotropic 3D data can skip the
through-plane axis at first, as nnU-Net does). The decoder upsamples, **concatenates the encoder
features of the matching resolution** (the skip connection) and refines with a conv block.

The network pads its input internally (zeros, at the end of each axis) to a multiple of
:attr:`UNet.pad_multiple` per axis, and to at least twice that multiple, and crops the logits back, so any input size works; adapters may still pad to the card's
``pad_multiple`` themselves (the internal padding is then a no-op).

>>> import torch
>>> net = build_unet(spatial_dims=2, in_channels=1, out_channels=3, features=(4, 8))
>>> net.eval()(torch.zeros(1, 1, 37, 21)).shape
torch.Size([1, 3, 37, 21])
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Norm = Literal["instance", "batch"]
Down = Literal["conv", "maxpool"]
Up = Literal["transpose", "interpolate"]

_CONV = {2: nn.Conv2d, 3: nn.Conv3d}
_TCONV = {2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}


class _KeepsLayout:
    """Instance norm whose output keeps a channels-last input channels-last.

    torch normalises a ``(1, N·C, *S)`` view and returns a contiguous tensor, so in a channels-last
    network (the bf16 training path) the following convolutions ran on mixed layouts; keeping the
    layout made a bf16 training step 0.89× (3D) and 0.90× (2D) as long (``benchmarks/train_step.py``,
    2 threads). Values are identical; contiguous inputs are returned as before.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)  # type: ignore[misc]
        fmt = torch.channels_last_3d if x.ndim == 5 else torch.channels_last
        if x.ndim in (4, 5) and not x.is_contiguous() and x.is_contiguous(memory_format=fmt):
            return y.contiguous(memory_format=fmt)
        return y


class InstanceNorm2d(_KeepsLayout, nn.InstanceNorm2d):
    """:class:`torch.nn.InstanceNorm2d` that keeps a channels-last input's layout."""


class InstanceNorm3d(_KeepsLayout, nn.InstanceNorm3d):
    """:class:`torch.nn.InstanceNorm3d` that keeps a channels-last input's layout."""


_INORM = {2: InstanceNorm2d, 3: InstanceNorm3d}
_BNORM = {2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
_POOL = {2: nn.MaxPool2d, 3: nn.MaxPool3d}


def _norm(kind: Norm, dims: int, channels: int) -> nn.Module:
    if kind == "instance":
        return _INORM[dims](channels, affine=True, eps=1e-5)
    if kind == "batch":
        return _BNORM[dims](channels)
    raise ValueError(f"norm must be 'instance' or 'batch', got {kind!r}")


class ConvBlock(nn.Sequential):
    """Two ``conv(3) → norm → LeakyReLU(0.01)`` layers; the first conv may be strided."""

    def __init__(self, dims: int, in_ch: int, out_ch: int, *, stride: Sequence[int] | int = 1,
                 norm: Norm = "instance") -> None:
        conv = _CONV[dims]
        super().__init__(
            conv(in_ch, out_ch, 3, stride=stride, padding=1, bias=False),
            _norm(norm, dims, out_ch),
            nn.LeakyReLU(0.01, inplace=True),
            conv(out_ch, out_ch, 3, padding=1, bias=False),
            _norm(norm, dims, out_ch),
            nn.LeakyReLU(0.01, inplace=True),
        )


class _Up(nn.Module):
    """Upsample ``in_ch → out_ch`` by ``stride``: transposed conv, or interpolation + 1×1 conv."""

    def __init__(self, dims: int, in_ch: int, out_ch: int, stride: tuple[int, ...], mode: Up) -> None:
        super().__init__()
        self.mode, self.stride = mode, stride
        if mode == "transpose":
            self.op: nn.Module = _TCONV[dims](in_ch, out_ch, kernel_size=stride, stride=stride, bias=False)
        elif mode == "interpolate":
            self.op = _CONV[dims](in_ch, out_ch, 1, bias=False)
        else:
            raise ValueError(f"upsample must be 'transpose' or 'interpolate', got {mode!r}")

    def forward(self, x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
        if self.mode == "transpose":
            return self.op(x)
        interp = "bilinear" if x.ndim == 4 else "trilinear"
        return self.op(F.interpolate(x, size=tuple(size), mode=interp, align_corners=False))


class UNet(nn.Module):
    """U-Net with skip connections, optional deep supervision and internal padding.

    Args:
        spatial_dims: 2 or 3.
        in_channels: image channels.
        out_channels: classes including background (logits are returned).
        features: channels per resolution level; ``len(features) - 1`` downsamplings.
        strides: per level after the first, the downsampling factor (int or per-axis tuple);
            default 2 everywhere.
        norm: ``"instance"`` or ``"batch"``.
        downsample: ``"conv"`` (strided first conv of the stage) or ``"maxpool"``.
        upsample: ``"transpose"`` or ``"interpolate"`` (+1×1 conv).
        deep_supervision: in training mode ``forward`` returns a list of logits, full resolution
            first, then one per coarser decoder level; in eval mode always the full-resolution
            logits.
    """

    def __init__(self, *, spatial_dims: int, in_channels: int, out_channels: int,
                 features: Sequence[int] = (16, 32, 64, 128),
                 strides: Sequence[int | Sequence[int]] | None = None, norm: Norm = "instance",
                 downsample: Down = "conv", upsample: Up = "transpose",
                 deep_supervision: bool = False) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        features = [int(f) for f in features]
        if len(features) < 2 or min(features) < 1:
            raise ValueError(f"features needs at least two positive levels, got {features}")
        if strides is None:
            strides = [2] * (len(features) - 1)
        if len(strides) != len(features) - 1:
            raise ValueError(f"need {len(features) - 1} strides for features {features}, got {len(strides)}")
        self.spatial_dims = spatial_dims
        self.strides = [_as_tuple(s, spatial_dims) for s in strides]
        self.deep_supervision = deep_supervision
        self.pad_multiple = tuple(math.prod(s[a] for s in self.strides) for a in range(spatial_dims))

        self.encoder = nn.ModuleList()
        prev = in_channels
        for level, ch in enumerate(features):
            if level == 0:
                self.encoder.append(ConvBlock(spatial_dims, prev, ch, norm=norm))
            elif downsample == "conv":
                self.encoder.append(ConvBlock(spatial_dims, prev, ch, stride=self.strides[level - 1], norm=norm))
            elif downsample == "maxpool":
                s = self.strides[level - 1]
                self.encoder.append(nn.Sequential(_POOL[spatial_dims](s, s),
                                                  ConvBlock(spatial_dims, prev, ch, norm=norm)))
            else:
                raise ValueError(f"downsample must be 'conv' or 'maxpool', got {downsample!r}")
            prev = ch

        # Decoder level i (from deepest-1 down to 0) upsamples features[i+1] -> features[i].
        self.ups = nn.ModuleList()
        self.decoder = nn.ModuleList()
        self.heads = nn.ModuleList()
        for level in reversed(range(len(features) - 1)):
            self.ups.append(_Up(spatial_dims, features[level + 1], features[level],
                                self.strides[level], upsample))
            self.decoder.append(ConvBlock(spatial_dims, 2 * features[level], features[level], norm=norm))
            self.heads.append(_CONV[spatial_dims](features[level], out_channels, 1))
        # heads[-1] is the full-resolution output; earlier heads serve deep supervision only.

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        if x.ndim != self.spatial_dims + 2:
            raise ValueError(f"expected (N, C, *spatial) with {self.spatial_dims} spatial axes, got {tuple(x.shape)}")
        size = x.shape[2:]
        pad: list[int] = []
        for n, m in zip(reversed(size), reversed(self.pad_multiple)):
            # round up to the multiple; at least 2 multiples, so the deepest (instance-normalised)
            # feature map never collapses to a single voxel
            pad += [0, max((-n) % m, 2 * m - n if m > 1 else 0)]
        if any(pad):
            x = F.pad(x, pad)

        skips = []
        for stage in self.encoder:
            x = stage(x)
            skips.append(x)
        x = skips.pop()  # the bottleneck is not a skip
        outputs = []
        for up, block, head in zip(self.ups, self.decoder, self.heads):
            skip = skips.pop()
            x = block(torch.cat([up(x, skip.shape[2:]), skip], dim=1))
            if self.deep_supervision and self.training:
                outputs.append(head(x))
        if not (self.deep_supervision and self.training):
            return self._crop(self.heads[-1](x), size)
        outputs.reverse()  # full resolution first
        outputs[0] = self._crop(outputs[0], size)
        return outputs

    @staticmethod
    def _crop(t: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
        return t[(slice(None), slice(None)) + tuple(slice(0, n) for n in size)]


def _as_tuple(s: int | Sequence[int], dims: int) -> tuple[int, ...]:
    t = (int(s),) * dims if isinstance(s, int) else tuple(int(v) for v in s)
    if len(t) != dims or min(t) < 1:
        raise ValueError(f"stride {s!r} must be a positive int or {dims} positive ints")
    return t


def build_unet(*, spatial_dims: int, in_channels: int, out_channels: int,
               features: Sequence[int] = (16, 32, 64, 128), norm: Norm = "instance",
               deep_supervision: bool = False, strides: Sequence[int | Sequence[int]] | None = None,
               downsample: Down = "conv", upsample: Up = "transpose") -> UNet:
    """Model-card entry point (``harness.train.unet:build_unet``); ``[model.kwargs]`` are passed here."""
    return UNet(spatial_dims=spatial_dims, in_channels=in_channels, out_channels=out_channels,
                features=tuple(features), strides=strides, norm=norm, downsample=downsample,
                upsample=upsample, deep_supervision=deep_supervision)
