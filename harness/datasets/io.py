"""Image readers: NIfTI (nibabel) and PNG/JPEG/TIFF (Pillow), with header-only shape probes.

Every failure raises ConfigError naming the file, so bad inputs are reported before any model call.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.errors import ConfigError

NIFTI_SUFFIXES = (".nii", ".nii.gz")
RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def is_nifti(path: Path) -> bool:
    return path.name.lower().endswith(NIFTI_SUFFIXES)


def strip_suffix(name: str) -> str:
    """File name without its image suffix (``case.nii.gz`` -> ``case``)."""
    lower = name.lower()
    for suffix in NIFTI_SUFFIXES + RASTER_SUFFIXES:
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def probe_shape(path: Path, *, channel: int | None = None) -> tuple[tuple[int, ...], int]:
    """(spatial shape, channels) from the header only. ConfigError if unreadable."""
    try:
        if is_nifti(path):
            import nibabel as nib

            shape = tuple(int(s) for s in nib.load(str(path)).shape)
            return (shape[:3], shape[3] if len(shape) == 4 else 1) if len(shape) >= 3 else (shape, 1)
        from PIL import Image

        with Image.open(path) as img:
            width, height = img.size
            bands = 1 if channel is not None else len(img.getbands())
            return (height, width), bands
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found") from exc
    except Exception as exc:  # corrupt headers raise many types
        raise ConfigError(f"{path}: unreadable image header ({type(exc).__name__}: {exc}); "
                          "replace or remove the file") from exc


def read_image(path: Path, *, channel: int | None = None) -> tuple[np.ndarray, tuple[float, ...] | None]:
    """Read an image as float32 ``(C, *spatial)`` and its spacing in mm (None when the file has none).

    PNG axes are (rows, columns); NIfTI axes are the file's voxel axes. ``channel`` picks one channel
    of an RGB/RGBA raster image.
    """
    try:
        if is_nifti(path):
            import nibabel as nib

            img = nib.load(str(path))
            data = np.asarray(img.dataobj, dtype=np.float32)
            zooms = tuple(float(z) for z in img.header.get_zooms()[:3])
            data = np.moveaxis(data, 3, 0) if data.ndim == 4 else data[None]
            return np.ascontiguousarray(data), zooms
        from PIL import Image

        with Image.open(path) as img:
            arr = np.asarray(img)
        if arr.dtype == bool:
            arr = arr.astype(np.uint8)
        if arr.ndim == 2:
            arr = arr[None]
        else:
            arr = np.moveaxis(arr, -1, 0)
            if channel is not None:
                if channel >= arr.shape[0]:
                    raise ConfigError(f"{path}: channel {channel} requested but the image has "
                                      f"{arr.shape[0]} channels")
                arr = arr[channel: channel + 1]
        return arr.astype(np.float32), None
    except ConfigError:
        raise
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found") from exc
    except Exception as exc:
        raise ConfigError(f"{path}: unreadable image ({type(exc).__name__}: {exc}); "
                          "replace or remove the file") from exc


def read_label(path: Path, *, label_values: dict[int, int] | None = None) -> np.ndarray:
    """Read a label map as int64 ``(*spatial)``; ``label_values`` maps raw values to classes.

    1-bit PNG masks read as 0/1. With ``label_values``, raw values other than 0 and the listed ones
    raise ConfigError naming the file.
    """
    data, _ = read_image(path, channel=0)
    if is_nifti(path) and data.shape[0] > 1:
        raise ConfigError(f"{path}: label map has {data.shape[0]} volumes (4D); give one 3D label map per case")
    raw = data[0]
    if not np.all(np.isfinite(raw)) or np.any(raw != np.round(raw)):
        raise ConfigError(f"{path}: label map has non-integer values; labels must be integer classes")
    raw = raw.astype(np.int64)
    if not label_values:
        if raw.size and raw.min() < 0:
            raise ConfigError(f"{path}: label map has negative values (min {int(raw.min())}); classes are 0 "
                              "(background), 1, 2, …: map raw values with label_values in a dataset card")
        return raw
    out = np.zeros_like(raw)
    for value in np.unique(raw):
        if value == 0:
            continue
        if int(value) not in label_values:
            raise ConfigError(f"{path}: label value {int(value)} is not listed in the card's "
                              f"label_values {label_values}; add it (e.g. {{\"{int(value)}\" = 1}})")
        out[raw == value] = label_values[int(value)]
    return out
