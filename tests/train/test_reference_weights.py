"""The bundled reference models: card layout, weights load, size, and quality on held-out phantoms."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import harness
from harness.datasets.phantom import phantom_dataset
from harness.train.data import normalize_image
from harness.train.record import dice_per_class
from harness.train.unet import build_unet

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

RESOURCES = Path(harness.__file__).parent / "resources"


@pytest.mark.parametrize("ndim", [2, 3])
def test_reference_model(ndim: int) -> None:
    card_path = RESOURCES / f"reference{ndim}d.toml"
    card = tomllib.loads(card_path.read_text())
    assert card["model"]["name"] == f"reference-unet-{ndim}d" and card["model"]["format"] == "torch"
    assert card["model"]["entry"] == "harness.train.unet:build_unet"
    assert card["input"] == {"channels": 1, "normalize": "zscore", "pad_multiple": 16}
    assert card["output"] == {"kind": "logits", "labels": {"1": "organ", "2": "lesion"}}
    kwargs = card["model"]["kwargs"]
    assert (kwargs["spatial_dims"], kwargs["in_channels"], kwargs["out_channels"]) == (ndim, 1, 3)
    weights = card_path.parent / card["model"]["weights"]
    assert weights.stat().st_size < 2_000_000
    net = build_unet(**kwargs)
    net.load_state_dict(torch.load(weights, weights_only=True))  # strict
    net.eval()
    assert all(s % 16 == 0 for s in phantom_dataset(ndim).spec.shape)
    scores = []
    data = phantom_dataset(ndim, n=3, seed=0)  # evaluation phantoms; training used seed 1000
    for case in data:
        with torch.no_grad():
            pred = net(torch.from_numpy(normalize_image(case.image)[None]))[0].argmax(0).numpy()
        scores.append(dice_per_class(pred, case.label, [1, 2]))
    assert np.mean([s[1] for s in scores]) > 0.93
    assert card["training"]["seed"] == 1000 and "seed=1000" in card["training"]["command"]
