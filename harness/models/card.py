"""Model cards: parse and validate a model's TOML card into frozen dataclasses.

A card has three tables (see ``docs/models.md`` for every key and its default)::

    [model]   name, path, format, entry, weights, command, intended_use   (+ kwargs table, extensions)
    [input]   channels, normalize, window, pad_multiple, patch_size, overlap, spacing, tta_flip_axes, tta_shifts
    [output]  kind, labels, postprocess

Paths in a card are relative to the card file. A bare model file (``.ts``/``.pt``/``.pth``/
``.onnx``) gets a default card (:func:`default_card`). Every problem raises a one-line
:class:`~harness.errors.ConfigError` naming the card file and key, and saying what to do.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, NoReturn

from harness.errors import ConfigError
from harness.options import closest, did_you_mean

from harness.tomlread import tomllib

BUILTIN_FORMATS = ("torch", "torchscript", "onnx", "callable", "command")
NORMALIZE = ("none", "zscore", "zscore_nonzero", "minmax", "window")
KINDS = ("logits", "probabilities", "labels")
POSTPROCESS = ("none", "largest_component", "most_confident_component")  # harness.models.postprocess
FILE_FORMATS = ("nifti", "png")
SUFFIX_FORMATS = {".ts": "torchscript", ".pt": "torchscript", ".pth": "torchscript", ".onnx": "onnx"}

Normalize = Literal["none", "zscore", "zscore_nonzero", "minmax", "window"]
Kind = Literal["logits", "probabilities", "labels"]

_MODEL_KEYS = {"name", "path", "format", "entry", "weights", "command", "intended_use",  # contract
               "kwargs", "options", "device", "providers", "timeout", "batch_size", "batched",
               "file_format"}  # extensions
_INPUT_KEYS = {"channels", "normalize", "window", "pad_multiple", "patch_size", "overlap",
               "spacing", "ndim", "tta_flip_axes", "tta_shifts"}
_OUTPUT_KEYS = {"kind", "labels", "postprocess"}
_SECTIONS = {"model": _MODEL_KEYS, "input": _INPUT_KEYS, "output": _OUTPUT_KEYS}


class FrozenDict(dict):  # type: ignore[type-arg]
    """A read-only dict (picklable, unlike ``types.MappingProxyType``) for card tables."""

    def _readonly(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("model card tables are read-only")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _readonly  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self),))


@dataclass(frozen=True)
class ModelSection:
    """``[model]``: what the model is and how to run it."""

    name: str
    format: str
    path: Path | None = None          # model file (torchscript, onnx) or folder (command; hashed)
    entry: str | None = None          # "pkg.module:factory" (torch) / "pkg.module:function" (callable)
    weights: Path | None = None       # state_dict for the torch format
    command: tuple[str, ...] = ()     # argv for the command format
    intended_use: str = ""
    kwargs: Mapping[str, Any] = field(default_factory=lambda: FrozenDict({}))
    options: Mapping[str, Any] = field(default_factory=lambda: FrozenDict({}))
    device: str = "cpu"
    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    timeout: float | None = None      # seconds per call (command format)
    batch_size: int = 4               # patches / images per forward call
    batched: bool = False             # callable takes (N, C, *spatial)
    file_format: str = "nifti"        # command format: files written for the program


@dataclass(frozen=True)
class InputSection:
    """``[input]``: what the model expects and how the harness prepares it."""

    channels: int | None = None
    normalize: str = "none"
    window: tuple[float, float] | None = None
    pad_multiple: tuple[int, ...] | int = 1
    patch_size: tuple[int, ...] | None = None
    overlap: float = 0.5
    spacing: tuple[float, ...] | None = None
    ndim: int | None = None
    tta_flip_axes: tuple[int, ...] = ()  # spatial axes (0-based) mirrored for test-time augmentation
    tta_shifts: bool = False  # also average over the image's placements in its padded canvas


@dataclass(frozen=True)
class OutputSection:
    """``[output]``: what the model returns."""

    kind: str = "logits"
    labels: Mapping[int, str] | None = None  # foreground classes; None = discover from the output
    postprocess: str = "none"  # or keep one connected component per class: "largest_component" (by size),
    # "most_confident_component" (the one holding the class's most probable voxel; score outputs only)


@dataclass(frozen=True)
class ModelCard:
    """A parsed card. ``source`` is the card file (None for a bare model file)."""

    model: ModelSection
    input: InputSection
    output: OutputSection
    source: Path | None
    base_dir: Path
    extra: Mapping[str, Any] = field(default_factory=lambda: FrozenDict({}))

    @property
    def where(self) -> str:
        """How error messages name this card."""
        return str(self.source) if self.source else f"model {self.model.path or self.model.name}"

    @property
    def ndim(self) -> int | None:
        """Spatial dimensionality the card declares (explicitly or through its shapes), else None."""
        if self.input.ndim:
            return self.input.ndim
        for value in (self.input.patch_size, self.input.spacing):
            if value is not None:
                return len(value)
        if isinstance(self.input.pad_multiple, tuple):
            return len(self.input.pad_multiple)
        dims = self.model.kwargs.get("spatial_dims")
        return int(dims) if isinstance(dims, int) and dims in (2, 3) else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict of the card (for reports and ``Model.card``)."""
        def plain(value: Any) -> Any:
            if isinstance(value, Path):
                return str(value)
            if isinstance(value, Mapping):
                return {str(k): plain(v) for k, v in value.items()}
            if isinstance(value, (tuple, list)):
                return [plain(v) for v in value]
            return value

        sections = {name: {k: plain(getattr(sec, k)) for k in sec.__dataclass_fields__}
                    for name, sec in (("model", self.model), ("input", self.input), ("output", self.output))}
        return {**sections, "source": str(self.source) if self.source else None,
                **{k: plain(v) for k, v in self.extra.items()}}


# [model] keys a built-in format would silently ignore, with why.
_ARCHIVE = "the file holds the network and its weights"
_NOT_FOR_FORMAT: dict[str, dict[str, str]] = {
    "torchscript": {"entry": _ARCHIVE, "kwargs": _ARCHIVE, "weights": _ARCHIVE,
                    "providers": "providers choose onnxruntime back-ends; use device"},
    "onnx": {"entry": _ARCHIVE, "kwargs": _ARCHIVE, "weights": _ARCHIVE,
             "device": 'onnxruntime runs where its providers say: use providers = ["CUDAExecutionProvider", '
                       '"CPUExecutionProvider"]'},
}


# [model] keys that built-in formats other than these would silently ignore
_ONLY_FOR_FORMATS: dict[str, tuple[str, ...]] = {
    "entry": ("torch", "callable"), "kwargs": ("torch",), "weights": ("torch",), "device": ("torch", "torchscript"),
    "providers": ("onnx",), "timeout": ("command",), "batched": ("callable",), "file_format": ("command",),
    "command": ("command",)}
_TIMEOUT_HINT = "; an in-process model is timed out by `harness run --item-timeout`"


class _Reader:
    """Typed access to one card table, raising ConfigError that names the card and key."""

    def __init__(self, where: str, section: str, table: Mapping[str, Any], base_dir: Path) -> None:
        self.where, self.section, self.table, self.base_dir = where, section, table, base_dir

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.where}: [{self.section}] {key}: {problem}")

    def get(self, key: str, types: type | tuple[type, ...], default: Any = None) -> Any:
        value = self.table.get(key, default)
        allowed = types if isinstance(types, tuple) else (types,)
        if value is None or (isinstance(value, allowed) and (bool in allowed or not isinstance(value, bool))):
            return value
        names = " or ".join(t.__name__ for t in allowed)
        raise self.fail(key, f"expected {names}, got {value!r}; fix the value in the card")

    def choice(self, key: str, options: tuple[str, ...], default: str) -> str:
        value = self.get(key, str, default)
        if value not in options:
            raise self.fail(key, f"unknown value {value!r}; use one of {', '.join(options)}"
                                 + did_you_mean(value, options))
        return value

    def path(self, key: str) -> Path | None:
        value = self.get(key, str)
        if value is None:
            return None
        try:
            return (self.base_dir / Path(value).expanduser()).resolve()
        except RuntimeError as exc:  # "~someone" whose home directory is unknown
            raise self.fail(key, f"cannot expand {value!r} ({exc}); give the path relative to the card "
                                 "or absolute") from exc

    def positive_int(self, key: str, default: int | None) -> int | None:
        value = self.get(key, int, default)
        if value is not None and value < 1:
            raise self.fail(key, f"must be a positive integer, got {value}")
        return value

    def ints(self, key: str, default: Any = None, *, allow_scalar: bool = True) -> Any:
        value = self.table.get(key, default)
        if value is None or (allow_scalar and isinstance(value, int) and not isinstance(value, bool)):
            if isinstance(value, int) and value < 1:
                raise self.fail(key, f"must be positive, got {value}")
            return value
        if (not isinstance(value, list) or not value
                or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)):
            raise self.fail(key, f"expected {'an integer or ' if allow_scalar else ''}a list of positive "
                                 f"integers (one per spatial axis), got {value!r}")
        return tuple(value)

    def floats(self, key: str, length: int | None = None) -> tuple[float, ...] | None:
        value = self.table.get(key)
        if value is None:
            return None
        if (not isinstance(value, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                   for v in value)
                or (length is not None and len(value) != length) or not value):
            what = f"a list of {length} numbers" if length else "a list of numbers (one per spatial axis)"
            raise self.fail(key, f"expected {what}, got {value!r}")
        if not all(math.isfinite(v) for v in value):
            raise self.fail(key, f"must be finite numbers (no inf or nan), got {value!r}")
        return tuple(float(v) for v in value)


def _check_keys(where: str, data: Mapping[str, Any]) -> None:
    for name, table in data.items():
        if name in _SECTIONS:
            if not isinstance(table, dict):
                raise ConfigError(f"{where}: [{name}] must be a table")
            for key in table:
                if key not in _SECTIONS[name]:
                    hint = closest(key, _SECTIONS[name])
                    raise ConfigError(f"{where}: [{name}] {key}: unknown key"
                                      + (f"; did you mean {hint!r}?" if hint else
                                         f"; known keys: {', '.join(sorted(_SECTIONS[name]))}"))
        else:
            hint = closest(name, _SECTIONS, cutoff=0.75)
            if hint:
                raise ConfigError(f"{where}: [{name}]: unknown table; did you mean [{hint}]?")


def _flip_axes(reader: _Reader) -> tuple[int, ...]:
    value = reader.table.get("tta_flip_axes", [])
    if (not isinstance(value, list) or len(set(value)) != len(value)
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)):
        raise reader.fail("tta_flip_axes", f"expected a list of distinct spatial axes (0-based), e.g. [1], "
                                           f"got {value!r}")
    return tuple(sorted(value))


def _labels(reader: _Reader) -> dict[int, str] | None:
    raw = reader.table.get("labels")
    if raw is None:
        return None
    if not isinstance(raw, dict) or not raw:
        raise reader.fail("labels", 'expected a table of class names, e.g. {1 = "organ", 2 = "lesion"}')
    labels: dict[int, str] = {}
    for key, name in raw.items():
        try:
            value = int(key)
        except ValueError:
            raise reader.fail("labels", f"class key {key!r} is not an integer; "
                                        'write e.g. {1 = "organ"}') from None
        if value < 0 or not isinstance(name, str):
            raise reader.fail("labels", f"class {key!r} = {name!r}: keys must be integers >= 0 and "
                                        "names strings")
        if value in labels:  # "1" and "01"
            raise reader.fail("labels", f"class {value} is named twice ({labels[value]!r} and {name!r}); "
                                        "keep one key per class")
        if value > 0:  # background (0) is implicit
            labels[value] = name
    return dict(sorted(labels.items())) or None


def parse_card(data: Mapping[str, Any], *, source: Path | None, base_dir: Path,
               default_name: str = "model") -> ModelCard:
    """Validate an already-decoded card table. ``source`` names the card in error messages."""
    where = str(source) if source else "model card"
    _check_keys(where, data)
    m = _Reader(where, "model", data.get("model", {}), base_dir)
    i = _Reader(where, "input", data.get("input", {}), base_dir)
    o = _Reader(where, "output", data.get("output", {}), base_dir)

    fmt = m.get("format", str)
    if fmt is None:
        raise m.fail("format", f"missing; set format to one of {', '.join(BUILTIN_FORMATS)} "
                               "(or an installed adapter plugin)")
    for key, why in _NOT_FOR_FORMAT.get(fmt, {}).items():
        if key in m.table:
            raise m.fail(key, f'does not apply to format = "{fmt}" ({why}); remove it')
    if fmt in BUILTIN_FORMATS:
        for key, formats in _ONLY_FOR_FORMATS.items():
            if key in m.table and fmt not in formats:
                hint = _TIMEOUT_HINT if key == "timeout" else ""
                raise m.fail(key, f'does not apply to format = "{fmt}" (only to '
                                  f'{" / ".join(formats)}{hint}); remove it')
    command = m.table.get("command", [])
    if isinstance(command, str):
        raise m.fail("command", "must be a list of arguments (argv), e.g. "
                                '["nnUNetv2_predict", "-i", "{input}", "-o", "{output}"]; '
                                "the harness never runs a shell")
    if not isinstance(command, list) or not all(isinstance(a, str) for a in command):
        raise m.fail("command", f"expected a list of strings, got {command!r}")
    for key in ("kwargs", "options"):
        if not isinstance(m.table.get(key, {}), dict):
            raise m.fail(key, f"must be a table ([model.{key}])")
    providers = m.table.get("providers", ["CPUExecutionProvider"])
    if not isinstance(providers, list) or not providers or not all(isinstance(p, str) for p in providers):
        raise m.fail("providers", f"expected a list of onnxruntime provider names, got {providers!r}")
    timeout = m.get("timeout", (int, float))
    if timeout is not None and not (math.isfinite(timeout) and timeout > 0):
        raise m.fail("timeout", f"must be a positive, finite number of seconds, got {timeout}")
    model = ModelSection(
        name=m.get("name", str, default_name), format=fmt, path=m.path("path"),
        entry=m.get("entry", str), weights=m.path("weights"), command=tuple(command),
        intended_use=m.get("intended_use", str, ""),
        kwargs=FrozenDict(dict(m.table.get("kwargs", {}))),
        options=FrozenDict(dict(m.table.get("options", {}))),
        device=m.get("device", str, "cpu"), providers=tuple(providers),
        timeout=None if timeout is None else float(timeout),
        batch_size=m.positive_int("batch_size", 4) or 4, batched=m.get("batched", bool, False),
        file_format=m.choice("file_format", FILE_FORMATS, "nifti"),
    )

    normalize = i.choice("normalize", NORMALIZE, "none")
    window = i.floats("window", 2)
    if normalize == "window" and window is None:
        raise i.fail("window", 'normalize = "window" needs window = [lo, hi] (e.g. [-160, 240] for CT)')
    if window is not None and not window[0] < window[1]:
        raise i.fail("window", f"needs lo < hi, got {list(window)}")
    if window is not None and normalize != "window":
        raise i.fail("window", f'is read only with normalize = "window" (this card: normalize = "{normalize}"); '
                               'set normalize = "window" or remove window')
    overlap = i.get("overlap", (int, float), 0.5)
    if not 0 <= overlap < 1:  # False for nan too
        raise i.fail("overlap", f"must be in [0, 1), got {overlap}")
    ndim = i.get("ndim", int)
    if ndim is not None and ndim not in (2, 3):
        raise i.fail("ndim", f"must be 2 or 3, got {ndim}")
    inp = InputSection(
        channels=i.positive_int("channels", None), normalize=normalize, window=window,
        pad_multiple=i.ints("pad_multiple", 1), patch_size=i.ints("patch_size", None, allow_scalar=False),
        overlap=float(overlap), spacing=i.floats("spacing"), ndim=ndim,
        tta_flip_axes=_flip_axes(i), tta_shifts=i.get("tta_shifts", bool, False),
    )
    if inp.spacing is not None and min(inp.spacing) <= 0:
        raise i.fail("spacing", f"must be positive (mm), got {list(inp.spacing)}")
    lengths = {name: len(v) for name, v in (("patch_size", inp.patch_size), ("spacing", inp.spacing),
                                            ("pad_multiple", inp.pad_multiple))
               if isinstance(v, tuple)}
    if ndim is not None:
        lengths["ndim"] = ndim
    if len(set(lengths.values())) > 1:
        raise i.fail(next(iter(lengths)), f"axis counts disagree: {lengths}; give one value per "
                                          "spatial axis everywhere")
    axes = next(iter(lengths.values()), 3)
    if inp.tta_flip_axes and max(inp.tta_flip_axes) >= axes:
        raise i.fail("tta_flip_axes", f"{list(inp.tta_flip_axes)}: the spatial axes are 0..{axes - 1}")
    if inp.patch_size is not None:
        multiple = inp.pad_multiple if isinstance(inp.pad_multiple, tuple) else \
            (inp.pad_multiple,) * len(inp.patch_size)
        if any(p % k for p, k in zip(inp.patch_size, multiple)):
            raise i.fail("patch_size", f"{list(inp.patch_size)} must be a multiple of pad_multiple "
                                       f"{inp.pad_multiple} on every axis")

    default_kind = "labels" if fmt in ("callable", "command") else "logits"
    out = OutputSection(kind=o.choice("kind", KINDS, default_kind), labels=_labels(o),
                        postprocess=o.choice("postprocess", POSTPROCESS, "none"))
    if out.kind == "labels" and out.labels is None:
        raise o.fail("labels", 'kind = "labels" needs the class names, e.g. labels = {1 = "organ"}, '
                               "so the harness knows which classes to score")
    if out.postprocess == "most_confident_component" and out.kind == "labels":
        raise o.fail("postprocess", '"most_confident_component" reads class scores, which kind = "labels" '
                                    'does not give: use "largest_component"')
    if fmt == "command" and out.kind != "labels":
        raise o.fail("kind", 'the command format reads label files back: use kind = "labels"')
    if model.file_format == "png" and (ndim == 3 or lengths.get("spacing") == 3):
        raise m.fail("file_format", 'PNG holds 2D images only; use file_format = "nifti" for 3D')
    if model.file_format == "png" and inp.normalize.startswith("zscore"):
        raise m.fail("file_format", 'PNG holds integers 0..65535, so z-scored input would be rounded to a few '
                                    'levels; use [input] normalize = "minmax" or "window", or file_format = "nifti"')
    extra = {k: v for k, v in data.items() if k not in _SECTIONS}
    return ModelCard(model=model, input=inp, output=OutputSection(out.kind, None if out.labels is None
                                                                  else FrozenDict(out.labels), out.postprocess),
                     source=source, base_dir=base_dir, extra=FrozenDict(extra))


def read_card(path: str | Path) -> ModelCard:
    """Read and validate the TOML card at ``path``."""
    path = Path(path).expanduser().resolve()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"model card {path} does not exist; check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"model card {path} cannot be read: {exc}") from exc
    except (tomllib.TOMLDecodeError, RecursionError) as exc:  # RecursionError: nesting thousands deep
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the syntax") from exc
    return parse_card(data, source=path, base_dir=path.parent, default_name=path.stem)


def default_card(path: str | Path) -> ModelCard:
    """The card a bare model file gets: format from the suffix, everything else at its default."""
    path = Path(path).expanduser().resolve()
    fmt = SUFFIX_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ConfigError(f"{path}: unknown model file suffix {path.suffix!r}; pass a .toml card, "
                          f"or a {'/'.join(SUFFIX_FORMATS)} file")
    return parse_card({"model": {"format": fmt, "path": str(path)}}, source=None,
                      base_dir=path.parent, default_name=path.name)


def per_axis(value: int | tuple[int, ...], ndim: int) -> tuple[int, ...]:
    """Broadcast a scalar-or-per-axis card value to ``ndim`` axes."""
    return (value,) * ndim if isinstance(value, int) else tuple(value)


def expected_classes(labels: Mapping[int, str]) -> int:
    """Number of score channels (background included) a model with these labels returns."""
    return max(labels) + 1 if labels else 0

