"""Training augmentation: TorchIO spatial and intensity transforms plus gamma/contrast.

Applied to normalised patches. Spatial: small affine (scale ±15 %, rotation ±15°), elastic
deformation, flips on the axes where anatomy allows. Intensity: Gaussian noise, Gaussian blur,
bias field (MRI), gamma (on the patch rescaled to [0, 1], as nnU-Net) and contrast/brightness.

TorchIO draws from torch's global RNG: the trainer seeds it inside ``torch.random.fork_rng``
and checkpoints its state, so augmentation is reproducible and resumable; the gamma/contrast
draws use the same stream.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torchio as tio


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges; ``flip_axes`` are spatial axes (0-based) that may be mirrored."""

    p_affine: float = 0.3
    scales: tuple[float, float] = (0.85, 1.15)
    degrees: float = 15.0
    p_elastic: float = 0.1
    elastic_mm: float = 4.0
    flip_axes: tuple[int, ...] = ()
    p_noise: float = 0.25
    noise_std: tuple[float, float] = (0.0, 0.35)
    p_blur: float = 0.2
    blur_std: tuple[float, float] = (0.5, 1.5)  # voxels
    p_bias: float = 0.2
    bias_coefficients: float = 0.4
    p_gamma: float = 0.3
    gamma: tuple[float, float] = (0.7, 1.5)
    p_contrast: float = 0.3
    contrast: tuple[float, float] = (0.75, 1.25)
    brightness: float = 0.15


ELASTIC_CONTROL_POINTS = 7


def build_transform(ndim: int, spacing: Sequence[float], cfg: AugmentConfig, *,
                    patch: Sequence[int] | None = None, bias: bool = True) -> tio.Compose:
    """The TorchIO part of the pipeline for ``ndim``-D patches of voxel size ``spacing``.

    With ``patch`` given, the elastic displacement is capped below half the B-spline grid
    spacing of that patch, so the deformation cannot fold (and TorchIO does not warn).
    """
    blur_mm = tuple(float(s) for s in cfg.blur_std)
    transforms: list[tio.Transform] = []
    if cfg.p_affine > 0:
        degrees = (0, 0, 0, 0, -cfg.degrees, cfg.degrees) if ndim == 2 else cfg.degrees
        transforms.append(tio.RandomAffine(scales=cfg.scales, degrees=degrees, translation=0,
                                           default_pad_value="minimum", p=cfg.p_affine))
    if cfg.p_elastic > 0:
        disp = [cfg.elastic_mm] * ndim
        if patch is not None:  # B-spline mesh of (control points - order 3) cells per axis
            cells = ELASTIC_CONTROL_POINTS - 3
            disp = [min(d, 0.45 * n * sp / cells) for d, n, sp in zip(disp, patch, spacing)]
        disp3 = tuple(disp) + ((0.0,) if ndim == 2 else ())
        transforms.append(tio.RandomElasticDeformation(num_control_points=ELASTIC_CONTROL_POINTS,
                                                       max_displacement=disp3, locked_borders=2,
                                                       p=cfg.p_elastic))
    if cfg.flip_axes:
        transforms.append(tio.RandomFlip(axes=tuple(cfg.flip_axes), flip_probability=0.5))
    if cfg.p_noise > 0:
        transforms.append(tio.RandomNoise(std=cfg.noise_std, p=cfg.p_noise))
    if cfg.p_blur > 0:
        mean_spacing = float(np.mean(spacing))
        std = (blur_mm[0] * mean_spacing, blur_mm[1] * mean_spacing)
        std6 = std * 2 + ((0.0, 0.0) if ndim == 2 else std)
        transforms.append(tio.RandomBlur(std=std6, p=cfg.p_blur))
    if bias and cfg.p_bias > 0:
        transforms.append(tio.RandomBiasField(coefficients=cfg.bias_coefficients, order=3, p=cfg.p_bias))
    return tio.Compose(transforms)


def _gamma_contrast(image: torch.Tensor, cfg: AugmentConfig) -> torch.Tensor:
    """Gamma on the patch rescaled to [0, 1] (range restored), then contrast and brightness."""
    if float(torch.rand(())) < cfg.p_gamma:
        lo, hi = image.min(), image.max()
        if hi - lo > 1e-6:
            g = float(torch.empty(()).uniform_(*cfg.gamma))
            image = ((image - lo) / (hi - lo)).clamp_min(0) ** g * (hi - lo) + lo
    if float(torch.rand(())) < cfg.p_contrast:
        c = float(torch.empty(()).uniform_(*cfg.contrast))
        b = float(torch.empty(()).uniform_(-cfg.brightness, cfg.brightness))
        mean = image.mean()
        image = (image - mean) * c + mean + b
    return image


def augment_patch(image: np.ndarray, label: np.ndarray, transform: tio.Compose, cfg: AugmentConfig,
                  spacing: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Augment one ``(C, *S)`` image / ``(*S)`` label patch; shapes are preserved."""
    ndim = label.ndim
    img_t = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))
    lab_t = torch.from_numpy(np.ascontiguousarray(label, dtype=np.int64))[None]
    sp = [float(s) for s in spacing] + ([1.0] if ndim == 2 else [])
    if ndim == 2:
        img_t, lab_t = img_t[..., None], lab_t[..., None]
    affine = np.diag(sp + [1.0])
    subject = tio.Subject(image=tio.ScalarImage(tensor=img_t, affine=affine),
                          label=tio.LabelMap(tensor=lab_t, affine=affine))
    out = transform(subject)
    img = out["image"].data
    lab = out["label"].data
    if ndim == 2:
        img, lab = img[..., 0], lab[..., 0]
    img = _gamma_contrast(img.float(), cfg)
    return img.numpy().astype(np.float32, copy=False), lab[0].numpy().astype(np.int64, copy=False)
