"""Benchmark: one training step of the reference U-Net under the memory layouts the trainer can use.

Run: ``python benchmarks/train_step.py`` (``--threads 2 --rounds 6 --steps 8 --precision bf16``).
The networks and patches are the ones ``harness train`` plans for the issue-E benchmarks
(3D MSD hippocampus: median 36 × 50 × 35 voxels at 1 mm; 2D BUS-BRA at 144 × 192 px), on random
input, with deep supervision, ``α·CE + β·Dice`` and AdamW, as ``harness.train.loop`` steps (less its
gradient clipping and EMA, which do not depend on the layout):

* ``default``: the default (contiguous) layout,
* ``cl-torch-norm``: network and input channels-last, torch's own instance norm (which returns a
  contiguous tensor, so the convolutions after every norm see mixed layouts),
* ``cl`` (the trainer's bf16 path): channels-last with ``harness.train.unet``'s instance norm, which
  keeps a channels-last input channels-last.

The variants run interleaved (rounds of ``--steps`` steps each, the order reversed every other
round) so that machine-speed drift hits all of them alike; the ratios are medians of round times
against ``cl-torch-norm``, the peer measured in the same run.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from harness.train import unet as unet_module
from harness.train.losses import DiceCELoss
from harness.train.plan import make_plan
from harness.train.trainer import bf16_native, channels_last

NETWORKS = {  # name: (median shape, spacing, flip axes)
    "3d-hippocampus": ((36, 50, 35), (1.0, 1.0, 1.0), (0,)),
    "2d-busbra": ((144, 192), (1.0, 1.0), (1,)),
}
VARIANTS = ("default", "cl-torch-norm", "cl")
PEER = "cl-torch-norm"


def build(network: str, variant: str, precision: str) -> tuple[nn.Module, torch.optim.Optimizer, Any]:
    """The planned network for ``variant`` (same initial weights for all), its optimiser and plan."""
    shape, spacing, flips = NETWORKS[network]
    plan = make_plan([shape] * 10, [spacing] * 10, flip_axes=flips)
    ndim = len(shape)
    kwargs: dict[str, Any] = {"spatial_dims": ndim, "in_channels": 1, "out_channels": 3,
                              "features": list(plan.features), "deep_supervision": True}
    if any(s != (2,) * ndim for s in plan.strides):
        kwargs["strides"] = [list(s) for s in plan.strides]
    ours = dict(unet_module._INORM)
    if variant == "cl-torch-norm":  # torch's instance norm, for this build only
        unet_module._INORM.update({2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d})
    try:
        torch.manual_seed(0)
        net = unet_module.build_unet(**kwargs)
    finally:
        unet_module._INORM.update(ours)
    if variant != "default":
        net = channels_last(net, ndim)
    return net, torch.optim.AdamW(net.parameters(), lr=1e-3), plan


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=8, help="training steps per variant and round")
    parser.add_argument("--precision", choices=("bf16", "fp32"), default="bf16")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    loss_fn = DiceCELoss(1.0, 1.0, batch_dice=True)
    print(f"torch {torch.__version__}, {args.threads} threads, {args.precision}"
          f"{'' if bf16_native() or args.precision == 'fp32' else ' (emulated: no native bfloat16)'}")
    results: dict[str, dict[str, float]] = {}
    for network in NETWORKS:
        built = {v: build(network, v, args.precision) for v in VARIANTS}
        plan = built[VARIANTS[0]][2]
        gen = torch.Generator().manual_seed(0)
        x = torch.randn((plan.batch_size, 1, *plan.patch), generator=gen)
        y = torch.randint(0, 3, (plan.batch_size, *plan.patch), generator=gen)

        inputs = {v: x if v == "default" else channels_last(x, x.ndim - 2) for v in VARIANTS}

        def step(variant: str) -> None:  # harness.train.loop's step, the layout set per variant
            net, opt, _ = built[variant]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16"):
                out = net(inputs[variant])
            loss = loss_fn([o.float() for o in out], y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        for v in VARIANTS:  # warm-up (oneDNN primitive caches)
            for _ in range(3):
                step(v)
        times: dict[str, list[float]] = {v: [] for v in VARIANTS}
        for r in range(args.rounds):
            for v in VARIANTS if r % 2 == 0 else VARIANTS[::-1]:
                t0 = time.perf_counter()
                for _ in range(args.steps):
                    step(v)
                times[v].append((time.perf_counter() - t0) / args.steps)
        med = {v: float(np.median(times[v])) for v in VARIANTS}
        results[network] = {f"{v}_ms": 1e3 * med[v] for v in VARIANTS}
        results[network].update({f"{v}_vs_{PEER}": med[v] / med[PEER] for v in VARIANTS})
        print(f"{network}: patch {'x'.join(map(str, plan.patch))}, batch {plan.batch_size}")
        for v in VARIANTS:
            print(f"  {v:14s} {1e3 * med[v]:7.1f} ms/step   x{med[v] / med[PEER]:.3f} of {PEER}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
