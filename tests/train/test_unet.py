"""U-Net shapes, skip connections, deep supervision and the model-card factory."""
from __future__ import annotations

import pytest
import torch

from harness.train.unet import UNet, build_unet


@pytest.mark.parametrize("shape", [(37, 21), (1, 1), (64, 65)])
def test_2d_odd_sizes_keep_shape(shape: tuple[int, int]) -> None:
    net = build_unet(spatial_dims=2, in_channels=2, out_channels=3, features=(4, 8, 16)).eval()
    with torch.no_grad():
        out = net(torch.randn(2, 2, *shape))
    assert out.shape == (2, 3, *shape)


def test_3d_odd_size_and_anisotropic_strides() -> None:
    net = build_unet(spatial_dims=3, in_channels=1, out_channels=2, features=(4, 8, 16),
                     strides=[(1, 2, 2), 2]).eval()
    assert net.pad_multiple == (2, 4, 4)
    with torch.no_grad():
        assert net(torch.randn(1, 1, 7, 13, 10)).shape == (1, 2, 7, 13, 10)


def test_skips_concatenate_encoder_features() -> None:
    feats = (4, 8, 16, 32)
    net = build_unet(spatial_dims=2, in_channels=1, out_channels=2, features=feats)
    # decoder blocks take [upsampled, encoder skip] of the same level: 2 * features[level] channels
    in_channels = [block[0].in_channels for block in net.decoder]
    assert in_channels == [2 * f for f in reversed(feats[:-1])]
    seen: list[tuple[int, ...]] = []
    hooks = [b.register_forward_hook(lambda m, i, o: seen.append(tuple(i[0].shape))) for b in net.decoder]
    net.eval()(torch.randn(1, 1, 32, 32))
    for h in hooks:
        h.remove()
    assert seen == [(1, 32, 8, 8), (1, 16, 16, 16), (1, 8, 32, 32)]


def test_skip_carries_encoder_information() -> None:
    """Each decoder block's input is [upsampled deeper features, that level's encoder output]: the
    skip half equals the encoder stage's output exactly (not zeros, not the upsampled half twice)."""
    net = build_unet(spatial_dims=2, in_channels=1, out_channels=2, features=(4, 8, 16)).eval()
    encoded: list[torch.Tensor] = []
    decoded: list[torch.Tensor] = []
    hooks = [stage.register_forward_hook(lambda m, i, o: encoded.append(o)) for stage in net.encoder]
    hooks += [block.register_forward_hook(lambda m, i, o: decoded.append(i[0])) for block in net.decoder]
    with torch.no_grad():
        net(torch.randn(1, 1, 16, 16))
    for h in hooks:
        h.remove()
    for block_input, skip in zip(decoded, reversed(encoded[:-1])):  # deepest decoder level first
        half = skip.shape[1]
        assert torch.equal(block_input[:, half:], skip)
        assert not torch.equal(block_input[:, :half], skip)


@pytest.mark.parametrize("norm,down,up", [("instance", "conv", "transpose"), ("batch", "maxpool", "interpolate")])
def test_deep_supervision_train_vs_eval(norm: str, down: str, up: str) -> None:
    net = build_unet(spatial_dims=2, in_channels=1, out_channels=3, features=(4, 8, 16), norm=norm,
                     downsample=down, upsample=up, deep_supervision=True)
    outs = net.train()(torch.randn(2, 1, 20, 24))
    assert isinstance(outs, list) and [o.shape[2:] for o in outs] == [(20, 24), (10, 12)]
    assert net.eval()(torch.randn(2, 1, 20, 24)).shape == (2, 3, 20, 24)


def test_state_dict_independent_of_deep_supervision() -> None:
    a = build_unet(spatial_dims=2, in_channels=1, out_channels=3, features=(4, 8), deep_supervision=True)
    b = build_unet(spatial_dims=2, in_channels=1, out_channels=3, features=(4, 8))
    b.load_state_dict(a.state_dict())


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        UNet(spatial_dims=4, in_channels=1, out_channels=2)
    with pytest.raises(ValueError):
        UNet(spatial_dims=2, in_channels=1, out_channels=2, features=(8,))
    with pytest.raises(ValueError):
        UNet(spatial_dims=2, in_channels=1, out_channels=2, features=(4, 8), strides=[2, 2])


@pytest.mark.parametrize("dims", [2, 3])
def test_instance_norm_keeps_channels_last_layout(dims: int) -> None:
    """The layout-keeping instance norm returns torch's values; a channels-last input stays
    channels-last (the bf16 training path), a contiguous one is returned exactly as torch's."""
    from harness.train.unet import InstanceNorm2d, InstanceNorm3d

    ours = (InstanceNorm2d if dims == 2 else InstanceNorm3d)(4, affine=True)
    torchs = (torch.nn.InstanceNorm2d if dims == 2 else torch.nn.InstanceNorm3d)(4, affine=True)
    with torch.no_grad():
        for norm in (ours, torchs):
            norm.weight.copy_(torch.tensor([0.5, 1.0, 2.0, -1.0]))
            norm.bias.copy_(torch.tensor([0.1, 0.0, -0.3, 2.0]))
    fmt = torch.channels_last if dims == 2 else torch.channels_last_3d
    x = torch.randn((2, 4) + (5, 6, 7)[:dims], generator=torch.Generator().manual_seed(0))
    assert torch.equal(ours(x), torchs(x)) and ours(x).is_contiguous()
    x_cl = x.contiguous(memory_format=fmt)
    y = ours(x_cl)
    assert y.is_contiguous(memory_format=fmt)
    torch.testing.assert_close(y, torchs(x))
    net = build_unet(spatial_dims=dims, in_channels=1, out_channels=2, features=(4, 8))
    assert isinstance(net.encoder[0][1], InstanceNorm2d if dims == 2 else InstanceNorm3d)
