"""JPEG-like compression: 8x8 block-DCT quantisation with the IJG luminance table.

Each in-plane slice is mapped linearly onto the 0..255 range of an 8-bit grey image (the channel's
min..max), level-shifted, transformed with the orthonormal 8x8 DCT-II (the JPEG transform),
quantised with the standard luminance table scaled to a JPEG ``quality``, dequantised and mapped
back. Pixel values are *not* rounded to 8 bits, so the only loss is the coefficient quantisation;
no chroma, no entropy coding (lossless in JPEG). 3D volumes are compressed slice by slice in the
plane orthogonal to the slice axis. Deterministic (no random draws).
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.fft import dctn, idctn

from harness.case import Case
from harness.perturbations import register
from harness.perturbations._util import ladder, slice_axis
from harness.perturbations.base import Perturbation

QUALITY = (40, 25, 15, 10, 6)

# ITU-T T.81 Annex K, Table K.1 (luminance).
JPEG_LUMA = np.array([
    [16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55],
    [14, 13, 16, 24, 40, 57, 69, 56], [14, 17, 22, 29, 51, 87, 80, 62],
    [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99],
], dtype=np.float64)


def quant_table(quality: int) -> np.ndarray:
    """IJG (libjpeg) scaling of the luminance table to ``quality`` in 1..100."""
    q = int(np.clip(quality, 1, 100))
    scale = 5000 / q if q < 50 else 200 - 2 * q
    return np.clip(np.floor((JPEG_LUMA * scale + 50) / 100), 1, 255)


def jpeg_planes(planes: np.ndarray, quality: int) -> np.ndarray:
    """Block-DCT quantise a stack of 2D planes ``(N, H, W)`` holding 0..255 values."""
    n, h, w = planes.shape
    ph, pw = -h % 8, -w % 8
    padded = np.pad(planes, ((0, 0), (0, ph), (0, pw)), mode="edge") - 128.0
    hb, wb = padded.shape[1] // 8, padded.shape[2] // 8
    blocks = padded.reshape(n, hb, 8, wb, 8).transpose(0, 1, 3, 2, 4)
    table = quant_table(quality)
    coeffs = np.round(dctn(blocks, axes=(-2, -1), norm="ortho") / table) * table
    rec = idctn(coeffs, axes=(-2, -1), norm="ortho").transpose(0, 1, 3, 2, 4)
    return rec.reshape(n, hb * 8, wb * 8)[:, :h, :w] + 128.0


@register
class Quantization(Perturbation):
    """JPEG-like lossy compression. Params: ``quality`` (JPEG quality factor, 100 = best)."""

    name = "quantization"
    options_doc = {}
    parameter_doc = "JPEG quality {40, 25, 15, 10, 6} (8x8 DCT, IJG luminance table; min..max -> 0..255)"

    def draw(self, case: Case, severity: int, rng: np.random.Generator) -> dict[str, Any]:
        return {"quality": int(ladder(QUALITY, severity))}

    def apply(self, case: Case, params: dict[str, Any]) -> Case:
        out = np.empty_like(case.image)
        axis = slice_axis(case.spacing) if case.ndim == 3 else None
        for c, x in enumerate(case.image.astype(np.float64)):
            lo, hi = float(x.min()), float(x.max())
            if hi == lo:  # a flat channel has nothing to compress
                out[c] = case.image[c]
                continue
            scale = (hi - lo) / 255.0
            planes = (x - lo) / scale
            planes = planes[None] if axis is None else np.moveaxis(planes, axis, 0)
            rec = np.clip(jpeg_planes(planes, params["quality"]), 0.0, 255.0)  # a decoder clamps to 8 bits
            rec = rec[0] if axis is None else np.moveaxis(rec, 0, axis)
            out[c] = (rec * scale + lo).astype(np.float32)
        return case.with_(image=out)
