"""Fixtures: a tiny MONAI U-Net per dimensionality, saved as state_dict, TorchScript and ONNX."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.case import Case
from harness.datasets.phantom import phantom_dataset

UNET_KWARGS = {"in_channels": 1, "out_channels": 3, "channels": [4, 8], "strides": [2],
               "num_res_units": 0, "norm": "batch"}


@dataclass(frozen=True)
class Exported:
    ndim: int
    network: torch.nn.Module
    folder: Path

    @property
    def torch_card(self) -> Path:
        return self.folder / "torch.toml"

    @property
    def ts(self) -> Path:
        return self.folder / "unet.ts"

    @property
    def onnx(self) -> Path:
        return self.folder / "unet.onnx"


def _kwargs_toml(ndim: int) -> str:
    lines = [f"spatial_dims = {ndim}"]
    for key, value in UNET_KWARGS.items():
        lines.append(f"{key} = {value!r}".replace("'", '"'))
    return "\n".join(lines)


def export_unet(ndim: int, folder: Path) -> Exported:
    """Build (seeded, without touching the global RNG), save and export a tiny MONAI U-Net."""
    from monai.networks.nets import UNet

    with torch.random.fork_rng():
        torch.manual_seed(ndim)
        net = UNet(spatial_dims=ndim, **UNET_KWARGS).eval()
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), folder / "unet.pt")
    example = torch.zeros(1, 1, *(16,) * ndim)
    with warnings.catch_warnings():
        # Exporting is test set-up, not code under test: torch >= 2.10 deprecates TorchScript
        # tracing and the TorchScript-based ONNX exporter (the dynamo exporter needs onnxscript,
        # which is not a dependency); torch 2.14 raises the tracing notice to a FutureWarning.
        # Only these deprecation notices are silenced.
        for category in (DeprecationWarning, FutureWarning):
            warnings.filterwarnings("ignore", message=r"`torch\.jit\.trace", category=category)
            warnings.filterwarnings("ignore", message=r"You are using the legacy TorchScript-based ONNX export",
                                    category=category)
            warnings.filterwarnings("ignore", message=r"The feature will be removed", category=category)
        torch.jit.trace(net, example).save(str(folder / "unet.ts"))
        axes = {0: "n", **{2 + k: f"s{k}" for k in range(ndim)}}
        torch.onnx.export(net, (example,), str(folder / "unet.onnx"), dynamo=False, input_names=["image"],
                          output_names=["logits"], dynamic_axes={"image": axes, "logits": axes})
    (folder / "torch.toml").write_text(f'''
[model]
name = "tiny-unet-{ndim}d"
format = "torch"
entry = "monai.networks.nets:UNet"
weights = "unet.pt"
intended_use = "tests only"
[model.kwargs]
{_kwargs_toml(ndim)}
[input]
channels = 1
normalize = "zscore"
pad_multiple = 2
[output]
kind = "logits"
labels = {{1 = "organ", 2 = "lesion"}}
''')
    return Exported(ndim=ndim, network=net, folder=folder)


@pytest.fixture(scope="session")
def unet2d(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    return export_unet(2, tmp_path_factory.mktemp("unet2d"))


@pytest.fixture(scope="session")
def unet3d(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    return export_unet(3, tmp_path_factory.mktemp("unet3d"))


@pytest.fixture(scope="session")
def case2d() -> Case:
    ds = phantom_dataset(2, n=1)
    return ds.load(ds.case_ids[0])


@pytest.fixture(scope="session")
def case3d() -> Case:
    ds = phantom_dataset(3, n=1)
    return ds.load(ds.case_ids[0])


def card(folder: Path, text: str, name: str = "card.toml") -> Path:
    """Write a card file and return its path."""
    path = folder / name
    path.write_text(text)
    return path


def rng_image(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(100.0, 20.0, shape).astype(np.float32)
