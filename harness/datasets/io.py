"""Image readers: NIfTI (nibabel) and PNG/JPEG/TIFF (Pillow), with header-only shape probes.

Every failure raises ConfigError naming the file, so bad inputs are reported before any model call.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import ConfigError

NIFTI_SUFFIXES = (".nii", ".nii.gz")
RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
IMAGE_SUFFIXES = NIFTI_SUFFIXES + RASTER_SUFFIXES


def is_nifti(path: Path) -> bool:
    return path.name.lower().endswith(NIFTI_SUFFIXES)


def strip_suffix(name: str) -> str:
    """File name without its image suffix (``case.nii.gz`` -> ``case``)."""
    lower = name.lower()
    for suffix in IMAGE_SUFFIXES:
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


@dataclass(frozen=True)
class Probe:
    """What an image's header says: spatial shape, channels and (NIfTI) its affine and raw pixdims."""

    shape: tuple[int, ...]
    channels: int
    affine: np.ndarray | None = None  # voxel -> world (mm), NIfTI only
    pixdim: tuple[float, ...] = ()  # the header's raw spacing per spatial axis (0 or < 0 when broken)
    oriented: bool = False  # the header places the voxels in the world (sform or qform code > 0)
    spacing_problem: str | None = None  # why the header's voxel size is ambiguous (NIfTI), see nifti_spacing


UNIT_TO_MM = {"mm": 1.0, "meter": 1000.0, "micron": 0.001, "unknown": 1.0}  # NIfTI xyzt spatial units
RASTER_EXIF_ORIENTATION = 0x0112  # the EXIF tag a camera or scanner sets when it stores pixels rotated
LOSSY_MASK_SUFFIXES = (".jpg", ".jpeg")


def nifti_spacing(img: Any, ndim: int) -> tuple[tuple[float, ...], str | None]:
    """A NIfTI image's voxel size in mm and why it is ambiguous (None when it is not).

    ``pixdim`` is scaled by the header's spatial unit (metres and microns converted; "unknown" read
    as mm, as ITK and nnU-Net do). When the header orients the voxels by an affine (sform, else
    qform) whose column lengths differ from ``pixdim``, the voxel size is ambiguous: the grid checks
    use the affine, the metrics would use ``pixdim``."""
    unit = str(img.header.get_xyzt_units()[0])
    factor = UNIT_TO_MM.get(unit)
    zooms = np.asarray(img.header.get_zooms()[:ndim], dtype=float)
    if factor is None:
        return tuple(float(z) for z in zooms), (f"its header's spatial unit is {unit!r} (not mm, m or µm); fix the "
                                                "header or give spacing in a dataset card")
    problem = None
    if (int(img.header["sform_code"]) > 0 or int(img.header["qform_code"]) > 0) and np.all(zooms > 0):
        columns = np.linalg.norm(np.asarray(img.affine, dtype=float)[:3, :ndim], axis=0)
        if not np.allclose(columns, zooms, rtol=1e-3, atol=1e-6):
            source = "sform" if int(img.header["sform_code"]) > 0 else "qform"
            problem = (f"its header's voxel size (pixdim {_mm(zooms)}) differs from its {source} affine's "
                       f"({_mm(columns)}); fix the header so both agree, or give spacing in a dataset card")
    return tuple(float(z * factor) for z in zooms), problem


def _mm(values: np.ndarray) -> str:
    return " x ".join(f"{float(v):g}" for v in values)


QUARTER_TURNS = (5, 6, 7, 8)  # EXIF orientations whose upright image swaps height and width


def exif_orientation(img: Any) -> int:
    """A raster image's EXIF orientation: 1 when its pixels are stored upright (or there is no EXIF,
    or a broken block: read the pixels as stored), 2..8 when stored rotated or mirrored."""
    try:
        return int(img.getexif().get(RASTER_EXIF_ORIENTATION, 1) or 1)
    except Exception:  # noqa: BLE001 - a broken EXIF block
        return 1


DEFLATE_MAX_RATIO = 1032  # deflate expands at most ~1032:1, so a .gz file holds at most this × its size


def nifti_size_problem(path: Path, img: Any) -> str | None:
    """Why the voxel data ``img``'s header promises cannot be in ``path`` (None when it can): a tiny
    file whose header claims a huge shape would otherwise make nibabel allocate that much first."""
    header = img.header
    need = (int(np.prod(img.shape, dtype=np.int64)) * header.get_data_dtype().itemsize
            + int(header.get_data_offset()))
    have = Path(path).stat().st_size
    limit = have * DEFLATE_MAX_RATIO + 4096 if str(path).lower().endswith(".gz") else have
    if need > limit:
        return (f"its header promises {need:,} bytes of voxel data (shape {tuple(img.shape)}), more than the "
                f"{have:,}-byte file can hold; the file is truncated or its header is wrong")
    return None


def probe(path: Path, *, channel: int | None = None) -> Probe:
    """Read the header only. ConfigError naming the file if unreadable (or 5D+, or multi-page)."""
    try:
        if is_nifti(path):
            import nibabel as nib

            img = nib.load(str(path))
            shape = tuple(int(s) for s in img.shape)
            if len(shape) > 4:
                raise ConfigError(f"{path}: {len(shape)}D NIfTI {shape}; give 2D/3D volumes, with channels "
                                  "on a 4th axis or in separate files")
            spatial, channels = (shape[:3], shape[3] if len(shape) == 4 else 1) if len(shape) >= 3 else (shape, 1)
            if 0 in shape:
                raise ConfigError(f"{path}: empty NIfTI (shape {shape}); replace or remove the file")
            if (problem := nifti_size_problem(path, img)) is not None:
                raise ConfigError(f"{path}: {problem}; replace or remove it")
            if channel is not None:  # read_image would ignore it
                raise ConfigError(f"{path}: channel = {channel} picks a band of an RGB/RGBA raster image, not of "
                                  "a NIfTI volume; remove channel from the card")
            oriented = int(img.header["sform_code"]) > 0 or int(img.header["qform_code"]) > 0
            _, spacing_problem = nifti_spacing(img, len(spatial))
            return Probe(spatial, channels, np.asarray(img.affine, dtype=float), _raw_pixdim(path, img, len(spatial)),
                         oriented, spacing_problem)
        from PIL import Image

        with Image.open(path) as img:
            _single_frame(img, path)
            width, height = img.size
            if exif_orientation(img) in QUARTER_TURNS:
                width, height = height, width  # read upright: a quarter turn swaps the axes
            bands = Image.getmodebands(_image_mode(img))  # "I;16": 1 band
            if channel is not None:  # checked here, before the run, not first when the case loads
                if bands == 1:
                    raise ConfigError(f"{path}: channel = {channel} is set but the image has one band (grey); "
                                      "remove channel from the card")
                if channel >= bands:
                    raise ConfigError(f"{path}: channel {channel} requested but the image has {bands} channels; "
                                      f"use 0..{bands - 1}")
                bands = 1
            return Probe((height, width), bands)
    except ConfigError:
        raise
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found") from exc
    except Exception as exc:  # corrupt headers raise many types
        raise ConfigError(f"{path}: unreadable image header ({type(exc).__name__}: {exc}); "
                          "replace or remove the file") from exc


def _raw_pixdim(path: Path, img: Any, ndim: int) -> tuple[float, ...]:
    """The header's voxel sizes as stored (nibabel's loaded header has 0 already replaced by 1)."""
    from nibabel.openers import ImageOpener

    with ImageOpener(str(path)) as stream:
        raw = type(img.header).from_fileobj(stream, check=False)
    return tuple(float(v) for v in raw["pixdim"][1:1 + ndim])


def probe_shape(path: Path, *, channel: int | None = None) -> tuple[tuple[int, ...], int]:
    """(spatial shape, channels) from the header only. ConfigError if unreadable."""
    found = probe(path, channel=channel)
    return found.shape, found.channels


def _single_frame(img: object, path: Path) -> None:
    """Refuse a multi-page TIFF (only its first page would be read)."""
    frames = getattr(img, "n_frames", 1)
    if frames > 1:
        raise ConfigError(f"{path}: multi-page image ({frames} pages); only single images are read: "
                          "save a 3D stack as NIfTI")


def _image_mode(img: object) -> str:
    """The mode an image is read in: a palette ("P") image becomes its colours — grey ("L") when the
    palette is grey, else "RGB" — so pixels are intensities, not palette indices."""
    mode = str(getattr(img, "mode"))
    if mode != "P":
        return mode
    palette = np.asarray(getattr(img, "getpalette")() or [0, 0, 0], dtype=np.int64).reshape(-1, 3)
    return "L" if (palette == palette[:, :1]).all() else "RGB"


def read_image(path: Path, *, channel: int | None = None,
               label: bool = False) -> tuple[np.ndarray, tuple[float, ...] | None]:
    """Read an image as float32 ``(C, *spatial)`` and its spacing in mm (None when the file has none);
    with ``label``, in the file's own dtype (a float32 copy rounds class values above 2**24).

    PNG axes are (rows, columns); NIfTI axes are the file's voxel axes. ``channel`` picks one channel
    of an RGB/RGBA raster image. Palette images read as their colours (grey or RGB), except with
    ``label`` (masks: the palette indices are the classes). Multi-page images are refused.
    """
    try:
        if is_nifti(path):
            import nibabel as nib

            img = nib.load(str(path))
            if (problem := nifti_size_problem(path, img)) is not None:
                raise ConfigError(f"{path}: {problem}; replace or remove it")
            data = np.asarray(img.dataobj) if label else np.asarray(img.dataobj, dtype=np.float32)
            zooms, _ = nifti_spacing(img, min(img.ndim, 3))  # mm; an ambiguous header is refused by validate()
            data = np.moveaxis(data, 3, 0) if data.ndim == 4 else data[None]
            return np.ascontiguousarray(data), zooms
        from PIL import Image

        with Image.open(path) as img:
            _single_frame(img, path)
            if exif_orientation(img) != 1:  # stored rotated: read as displayed (masks are drawn on that)
                from PIL import ImageOps

                img = ImageOps.exif_transpose(img)
            mode = "P" if label and img.mode == "P" else _image_mode(img)
            arr = np.asarray(img if mode == img.mode else img.convert(mode))
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
        return (arr if label else arr.astype(np.float32)), None
    except ConfigError:
        raise
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found") from exc
    except Exception as exc:
        raise ConfigError(f"{path}: unreadable image ({type(exc).__name__}: {exc}); "
                          "replace or remove the file") from exc


def label_volumes_problem(volumes: int) -> str:
    """Why a NIfTI label map of ``volumes`` > 1 volumes is refused (checked up front and on read)."""
    return f"label map has {volumes} volumes (4D); give one 3D label map per case"


def read_label(path: Path, *, label_values: dict[int, int] | None = None) -> np.ndarray:
    """Read a label map as int64 ``(*spatial)``; ``label_values`` maps raw values to classes.

    1-bit PNG masks read as 0/1. With ``label_values``, raw values other than 0 and the listed ones
    raise ConfigError naming the file.
    """
    if path.name.lower().endswith(LOSSY_MASK_SUFFIXES):
        raise ConfigError(f"{path}: a JPEG mask; JPEG compression invents values along every edge, so masks must "
                          "be lossless: save them as PNG (or NIfTI)")
    data, _ = read_image(path, label=True)
    if is_nifti(path) and data.shape[0] > 1:
        raise ConfigError(f"{path}: {label_volumes_problem(data.shape[0])}")
    colours = data[:3] if data.shape[0] >= 3 else data[:1]  # RGB(A): grey (equal channels) reads as one
    if not (colours == colours[:1]).all():
        raise ConfigError(f"{path}: colour mask (its colour channels differ); save masks as single-channel "
                          "(greyscale or indexed) images holding the class values")
    alpha = data[3] if data.shape[0] == 4 else data[1] if data.shape[0] == 2 and not is_nifti(path) else None
    if alpha is not None and np.ptp(alpha) > 0 and np.ptp(data[0]) == 0:
        raise ConfigError(f"{path}: the mask's classes are in its alpha (transparency) channel and its grey or colour "
                          "channels are flat; save the classes as grey values of a single-channel image")
    raw = data[0]
    if raw.dtype.kind == "f" and (not np.all(np.isfinite(raw)) or np.any(raw != np.round(raw))):
        raise ConfigError(f"{path}: label map has non-integer values; labels must be integer classes")
    if raw.dtype.kind == "u" and raw.size and int(raw.max()) > np.iinfo(np.int64).max:
        raise ConfigError(f"{path}: label value {int(raw.max())} does not fit a class number")
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
