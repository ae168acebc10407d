"""The model protocol: ``predict(image, spacing) -> Prediction``, one pipeline for every adapter.

An adapter subclasses :class:`Model` and implements only :meth:`Model._forward` (a batch of
prepared arrays in, raw outputs out). The shared pipeline does the rest, identically for all:

1. check the input (``(C, *spatial)`` float, channels and axes as the card says),
2. normalise (``[input] normalize``), then resample to ``[input] spacing`` when given,
3. pad to ``[input] pad_multiple`` — or, with ``[input] patch_size``, run Gaussian-blended sliding
   windows (images smaller than a patch are padded up to it),
4. validate the raw output (shape, NaN/Inf, probabilities in [0, 1], labels among the declared
   classes) → :class:`~harness.errors.ModelError` with a one-line reason,
5. crop, resample back to the image grid, and return labels (+ probabilities for score outputs).

With ``[input] tta_shifts`` the padded image is also moved to the start, middle and end of its
padding along each axis (:func:`~harness.models.preprocessing.placements`), steps 3-4 run for every
placement (and flip) and the probabilities, moved back, are averaged.
With ``[input] tta_flip_axes`` steps 3-4 run once per combination of mirrored axes and the class
probabilities (one-hot votes for label maps, decided on the model's grid and returned by nearest
neighbour) are averaged; ``[output] postprocess`` then cleans
the label map (the probabilities stay the network's). Adversarial attacks differentiate this
pipeline, test-time flips included, up to the postprocessing
(:class:`harness.perturbations.adversarial._torch.LogitFn`).
"""
from __future__ import annotations

import hashlib
import itertools
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np

from harness.errors import FOREIGN_FAILURES, ConfigError, ModelError, describe_failure, one_line
from harness.hashing import files_sha256
from harness.models import preprocessing as pp
from harness.models.card import ModelCard, expected_classes, per_axis
from harness.models.postprocess import apply_postprocess


@dataclass(frozen=True, eq=False)
class Prediction:
    """A model's answer for one image: ``labels`` int64 ``(*spatial)``; ``probabilities`` float32
    ``(K, *spatial)`` (background first) for score outputs, None for label-map outputs."""

    labels: np.ndarray
    probabilities: np.ndarray | None = None


def missing_file(path: Path) -> str:
    """Why ``path`` is not a readable file, for a one-line error: a folder, or absent."""
    return f"{path} is a folder, not a file" if path.is_dir() else f"file {path} does not exist"


SIGMOID_CHECK_MIN_VOXELS = 64  # a one-channel "logits" output this large, all in [0, 1], is refused as probabilities


def flip_combinations(axes: Sequence[int]) -> list[tuple[int, ...]]:
    """Every combination of the mirrored ``axes`` for test-time augmentation, the identity first."""
    return [c for r in range(len(axes) + 1) for c in itertools.combinations(tuple(axes), r)]


def softmax(scores: np.ndarray, axis: int = 0) -> np.ndarray:
    """Numerically stable softmax (float32)."""
    shifted = np.exp(scores - scores.max(axis=axis, keepdims=True))
    return (shifted / shifted.sum(axis=axis, keepdims=True)).astype(np.float32)


def _spacing(spacing: Any) -> tuple[float, ...]:
    """``spacing`` as positive, finite mm per spatial axis, else a ModelError saying what it got."""
    try:
        values = tuple(float(v) for v in spacing)
    except (TypeError, ValueError):
        raise ModelError(f"spacing must be a sequence of numbers (mm per spatial axis), got {spacing!r}") from None
    if not all(np.isfinite(v) and v > 0 for v in values):
        raise ModelError(f"spacing must be positive, finite mm per spatial axis, got {values}")
    return values


def _mirror(array: np.ndarray, axes: Sequence[int], *, lead: int) -> np.ndarray:
    """``array`` flipped along spatial ``axes`` (after ``lead`` leading axes); a copy."""
    return np.ascontiguousarray(np.flip(array, tuple(a + lead for a in axes))) if axes else array


class Model(ABC):
    """Base class of every adapter (bundled or plugin). See the module docstring for the pipeline.

    Attributes: ``name``, ``sha256``, ``labels`` (foreground classes), ``differentiable``,
    ``card`` (the parsed card as a dict), ``model_card`` (the :class:`ModelCard`), ``timeout_s``
    (per-call limit where the adapter enforces one), ``patch_size``.
    """

    format: ClassVar[str] = "?"
    differentiable: ClassVar[bool] = False
    batching: bool = True  # whether _forward accepts N > 1
    # what to do about a label map with fractional values, for this format
    non_integer_labels_hint: ClassVar[str] = 'use kind = "logits" or "probabilities" for scores'

    def __init__(self, card: ModelCard, *, ndim_hint: int = 2) -> None:
        self.model_card = card
        self.name = card.model.name
        self.timeout_s = card.model.timeout
        self.patch_size = card.input.patch_size
        self._ndim_hint = ndim_hint
        self._labels = dict(card.output.labels) if card.output.labels else None

    # -- description ---------------------------------------------------------------------------
    @property
    def card(self) -> dict[str, Any]:
        """The parsed card (JSON-able), including ``model.intended_use``."""
        return self.model_card.to_dict()

    @property
    def ndim(self) -> int | None:
        """Spatial axes the model declares (None: any)."""
        return self.model_card.ndim

    def files(self) -> list[Path]:
        """The files that make up the model (hashed into :attr:`sha256`)."""
        return []

    def identity(self) -> bytes:
        """What identifies a model without files (e.g. a callable's source)."""
        return repr(self.model_card.to_dict()["model"]).encode()

    @cached_property
    def sha256(self) -> str:
        """sha256 of the model file(s), or of :meth:`identity` for models without files."""
        files = self.files()
        return files_sha256(files) if files else hashlib.sha256(self.identity()).hexdigest()

    @property
    def labels(self) -> dict[int, str]:
        """Foreground classes ``{1: "organ", ...}`` (declared, or discovered by a probe run)."""
        if self._labels is None:
            self._labels = self._probe_labels()
        return dict(self._labels)

    def check_input(self, *, channels: int, ndim: int) -> list[str]:
        """Problems feeding images with ``channels`` and ``ndim`` spatial axes would cause ([] if none)."""
        problems = []
        want = self.model_card.input.channels
        if want is not None and want != channels:
            problems.append(f"model {self.name!r} expects {want} channel(s) ([input] channels), data has {channels}")
        if self.ndim is not None and self.ndim != ndim:
            problems.append(f"model {self.name!r} is {self.ndim}D, data is {ndim}D")
        axes = self.model_card.input.tta_flip_axes
        if axes and max(axes) >= ndim:
            problems.append(f"model {self.name!r}: [input] tta_flip_axes {list(axes)} names an axis the "
                            f"{ndim}D data does not have (axes 0..{ndim - 1})")
        return problems

    # -- adapter hooks -------------------------------------------------------------------------
    @abstractmethod
    def _forward(self, batch: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
        """Run the model on prepared ``(N, C, *spatial)`` float32 input. Returns ``(N, K, *spatial)``
        scores (kind logits/probabilities) or ``(N, *spatial)`` integer labels (kind labels)."""

    def _normalise(self, image: np.ndarray) -> np.ndarray:
        inp = self.model_card.input
        return pp.normalize(image, inp.normalize, inp.window)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as "rebuild from the card" (workers reload weights; sessions are not picklable)."""
        from harness.models import _rebuild

        return (_rebuild, (self.model_card, self._ndim_hint))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} format={self.format}>"

    # -- pipeline ------------------------------------------------------------------------------
    def predict(self, image: np.ndarray, spacing: Sequence[float], *, case_id: str | None = None) -> Prediction:
        """Segment one ``(C, *spatial)`` image of raw intensities with voxel ``spacing`` (mm)."""
        return self.predict_batch([image], [spacing], case_ids=[case_id])[0]

    def predict_batch(self, images: Sequence[np.ndarray], spacings: Sequence[Sequence[float]], *,
                      case_ids: Sequence[str | None] | None = None) -> list[Prediction]:
        """Segment several images; equal-shaped ones share a forward call where the backend allows."""
        names = [c for c in (case_ids or []) if c]
        where = f"case {', '.join(names)}: " if names else ""
        try:
            return self._predict_batch(images, spacings)
        except ModelError as exc:
            raise ModelError(where + one_line(str(exc))) from exc
        except ConfigError:
            raise
        except FOREIGN_FAILURES as exc:  # any model failure (sys.exit too) is one ERROR record
            raise ModelError(f"{where}model {self.name!r} raised {describe_failure(exc)}") from exc

    def _predict_batch(self, images: Sequence[np.ndarray], spacings: Sequence[Sequence[float]]) -> list[Prediction]:
        prepared = [self._prepare(np.asarray(im), _spacing(sp)) for im, sp in zip(images, spacings)]
        flips = self._tta_flips() if prepared else [()]
        kind = self.model_card.output.kind
        if self.model_card.input.tta_shifts and prepared:
            outputs = [self._shifted_mean(item, flips) for item in prepared]
            kind = "labels" if kind == "labels" else "probabilities"
        elif len(flips) == 1:
            outputs = self._raw_outputs(prepared)
        else:  # test-time augmentation: mean class probabilities over the mirrored copies
            total: list[np.ndarray] | None = None
            for flip in flips:
                mirrored = [(_mirror(x, flip, lead=1), spacing, info) for x, spacing, info in prepared]
                probs = [self._as_probabilities(_mirror(o, flip, lead=o.ndim - len(info["shape"])))
                         for o, (_, _, info) in zip(self._raw_outputs(mirrored), prepared)]
                total = probs if total is None else [t + p for t, p in zip(total, probs)]
            assert total is not None
            outputs = [t / len(flips) for t in total]
            kind = "labels" if kind == "labels" else "probabilities"  # averaged votes / probabilities
        return [self._finish(out, info, kind) for out, (_, _, info) in zip(outputs, prepared)]

    def _shifted_mean(self, item: tuple[np.ndarray, tuple[float, ...], dict[str, Any]],
                      flips: list[tuple[int, ...]]) -> np.ndarray:
        """``[input] tta_shifts``: class probabilities (one-hot votes for label maps) averaged over the
        image's placements in its padded canvas (:func:`~harness.models.preprocessing.placements`)
        and the flips, on the canvas with the image where :meth:`_prepare` put it."""
        x, spacing, info = item
        home = tuple(c.start for c in info["crop"])
        size = tuple(c.stop - c.start for c in info["crop"])
        total: np.ndarray | None = None
        n = 0
        for offset in pp.placements(x.shape[1:], size):
            placed = pp.move(x, home, offset, size)
            for flip in flips:
                [out] = self._raw_outputs([(_mirror(placed, flip, lead=1), spacing, info)])
                probs = self._as_probabilities(_mirror(out, flip, lead=out.ndim - len(size)))
                probs = pp.move(probs, offset, home, size)
                total = probs if total is None else total + probs
                n += 1
        assert total is not None
        return total / n

    def _raw_outputs(self, prepared: Sequence[tuple[np.ndarray, tuple[float, ...], dict[str, Any]]]) -> list[np.ndarray]:
        """Validated outputs on the prepared grid: scores ``(K, *S)`` or a label map ``(*S)`` each."""
        outputs: list[np.ndarray | None] = [None] * len(prepared)
        if self.patch_size is not None:
            for k, (x, spacing, _) in enumerate(prepared):
                outputs[k] = pp.sliding_window(
                    x, self.patch_size, lambda b, s=spacing: self._scores(b, s, one_hot=True),
                    overlap=self.model_card.input.overlap, batch_size=self._batch_size())
        else:
            groups: dict[tuple[Any, ...], list[int]] = {}
            for k, (x, spacing, _) in enumerate(prepared):
                groups.setdefault((x.shape, spacing), []).append(k)
            for (_, spacing), members in groups.items():
                for first in range(0, len(members), self._batch_size()):
                    chunk = members[first:first + self._batch_size()]
                    out = self._scores(np.stack([prepared[k][0] for k in chunk]), spacing, one_hot=False)
                    for k, o in zip(chunk, out):
                        outputs[k] = o
        return outputs  # type: ignore[return-value]

    def _tta_flips(self) -> list[tuple[int, ...]]:
        """Every combination of the card's ``tta_flip_axes`` (axes the image lacks are refused by
        :meth:`check_input` before this runs)."""
        return flip_combinations(self.model_card.input.tta_flip_axes)

    def _as_probabilities(self, out: np.ndarray) -> np.ndarray:
        """Class probabilities ``(K, *S)`` of one raw output (one-hot votes for a label map)."""
        kind = self.model_card.output.kind
        if kind == "labels" and out.dtype.kind in "iub":
            k = expected_classes(self.labels)
            return (out[None] == np.arange(k).reshape(k, *[1] * out.ndim)).astype(np.float32)
        return softmax(out) if kind == "logits" else out.astype(np.float32)

    def _batch_size(self) -> int:
        return self.model_card.model.batch_size if self.batching else 1

    def _prepare(self, image: np.ndarray, spacing: tuple[float, ...]) -> tuple[np.ndarray, tuple[float, ...], dict[str, Any]]:
        if image.ndim not in (3, 4) or not np.issubdtype(image.dtype, np.number) or np.iscomplexobj(image):
            raise ModelError(f"input must be a real-valued (C, *spatial) array with 2 or 3 spatial axes, "
                             f"got {image.dtype} {image.shape}")
        ndim = image.ndim - 1
        if len(spacing) != ndim:
            raise ModelError(f"spacing {spacing} needs one value per spatial axis ({ndim})")
        finite = np.isfinite(image)
        if not finite.all():  # the model would be blamed for the NaN it returns
            raise ModelError(f"input image has {int(finite.size - finite.sum())} NaN or infinite value(s); "
                             "fix the image before prediction")
        problems = self.check_input(channels=image.shape[0], ndim=ndim)
        if problems:
            raise ModelError("; ".join(problems))
        info: dict[str, Any] = {"shape": image.shape[1:]}
        x = self._normalise(image.astype(np.float32, copy=False))
        target = self.model_card.input.spacing
        if target is not None:
            shape = pp.resampled_shape(image.shape[1:], spacing, target)
            x, spacing = pp.resample(x, shape, order=1), tuple(target)
        info["resampled"] = x.shape[1:]
        multiple = per_axis(self.model_card.input.pad_multiple, ndim)
        x, info["crop"] = pp.pad(x, pp.padded_shape(x.shape[1:], multiple, self.patch_size))
        return x, spacing, info

    def _scores(self, batch: np.ndarray, spacing: tuple[float, ...], *, one_hot: bool) -> np.ndarray:
        """Forward + validation. Scores ``(N, K, *spatial)`` float32, or labels ``(N, *spatial)``
        (one-hot scores instead when ``one_hot``, for blending)."""
        raw = self._forward(np.ascontiguousarray(batch, dtype=np.float32), spacing)
        return self.check_output(raw, batch.shape[0], batch.shape[2:], one_hot=one_hot)

    def check_output(self, raw: Any, n: int, spatial: Sequence[int], *, one_hot: bool = False) -> np.ndarray:
        """Validate a raw model output for ``n`` images of ``spatial`` shape (see module docstring)."""
        out = np.asarray(raw)
        spatial = tuple(spatial)
        if not (np.issubdtype(out.dtype, np.number) or out.dtype == bool):
            raise ModelError(f"output has non-numeric dtype {out.dtype}")
        if np.iscomplexobj(out):  # numpy would drop the imaginary part with a warning only
            raise ModelError(f"output has complex dtype {out.dtype}; return real scores or labels")
        if np.issubdtype(out.dtype, np.inexact):
            bad_nan, bad_inf = int(np.isnan(out).sum()), int(np.isinf(out).sum())
            if bad_nan or bad_inf:
                raise ModelError(f"output contains {bad_nan} NaN and {bad_inf} Inf values")
        kind = self.model_card.output.kind
        if kind == "labels":
            if out.shape != (n, *spatial):
                raise ModelError(f"output shape {out.shape} does not match the expected label map "
                                 f"(N, *spatial) = {(n, *spatial)}")
            if np.issubdtype(out.dtype, np.floating) and not np.array_equal(out, np.round(out)):
                raise ModelError(f"label map output holds non-integer values ({self.non_integer_labels_hint})")
            if out.dtype.kind == "u" and out.size and int(out.max()) > np.iinfo(np.int64).max:
                raise ModelError(f"label map output holds {int(out.max())}, not a declared class")  # wraps in int64
            labels = out.astype(np.int64)
            self._check_classes(labels)
            if not one_hot:
                return labels
            k = expected_classes(self.labels)
            return (labels[:, None] == np.arange(k).reshape(1, k, *[1] * len(spatial))).astype(np.float32)
        k = expected_classes(self.labels)
        binary = k == 2 and out.ndim == len(spatial) + 2 and out.shape[1] == 1
        if out.shape != (n, k, *spatial) and not (binary and out.shape == (n, 1, *spatial)):
            raise ModelError(f"output shape {out.shape} does not match the expected (N, K, *spatial) = "
                             f"{(n, k, *spatial)} (K = background + classes {sorted(self.labels)})")
        out = out.astype(np.float32)
        if binary and kind == "logits" and out.size >= SIGMOID_CHECK_MIN_VOXELS and 0 <= out.min() and out.max() <= 1:
            raise ModelError("one output channel with every value in [0, 1] under kind = \"logits\": these look like "
                             "sigmoid probabilities, and read as logits every voxel would be foreground; set [output] "
                             "kind = \"probabilities\" in the model card (a bare model file needs a card for it)")
        if kind == "probabilities" and (out.min() < -1e-3 or out.max() > 1 + 1e-3):
            raise ModelError(f"kind = \"probabilities\" but values span [{out.min():.3g}, {out.max():.3g}]")
        if binary:  # one sigmoid channel -> two channels whose softmax / values are the same
            out = np.concatenate([np.zeros_like(out), out] if kind == "logits" else [1 - out, out], axis=1)
        return out

    def _check_classes(self, labels: np.ndarray) -> None:
        allowed = {0, *self.labels}
        found = {int(v) for v in np.unique(labels)}
        unknown = sorted(found - allowed)
        if unknown:
            raise ModelError(f"predicted label(s) {unknown} are not among the declared classes "
                             f"{sorted(allowed)} ([output] labels)")

    def _postprocess(self, labels: np.ndarray, probabilities: np.ndarray | None = None) -> np.ndarray:
        # label maps come only from kind = "labels", whose cards may not ask for a rule that reads scores
        return apply_postprocess(self.model_card.output.postprocess, labels, probabilities, sorted(self.labels))

    def _finish(self, out: np.ndarray, info: dict[str, Any], kind: str) -> Prediction:
        """Crop and resample ``out`` back to the image grid; ``kind`` says what its scores are."""
        crop = (slice(None), *info["crop"])
        if out.ndim == len(info["shape"]):  # a label map
            labels = out[info["crop"]]
            labels = pp.resample(labels[None], info["shape"], order=0)[0]
            return Prediction(labels=self._postprocess(labels.astype(np.int64)))
        if kind == "labels":  # blended one-hot votes from sliding windows / TTA: decided on the model's
            # grid, then back by nearest neighbour as a plain label map (linear votes moved borders)
            labels = pp.resample(out[crop].argmax(axis=0)[None], info["shape"], order=0)[0]
            self._check_classes(labels)
            return Prediction(labels=self._postprocess(labels.astype(np.int64)))
        scores = pp.resample(out[crop], info["shape"], order=1)
        probs = softmax(scores) if kind == "logits" else scores.astype(np.float32)
        if kind == "probabilities" and tuple(info["resampled"]) != tuple(info["shape"]):
            probs = probs / np.maximum(probs.sum(axis=0, keepdims=True), 1e-12)
        labels = probs.argmax(axis=0)
        self._check_classes(labels)
        return Prediction(labels=self._postprocess(labels.astype(np.int64), probs), probabilities=probs)

    def _probe_labels(self) -> dict[int, str]:
        """Run a zero image through the model to count its output classes (bare model files)."""
        ndim = self.ndim or self._ndim_hint
        multiple = per_axis(self.model_card.input.pad_multiple, ndim)
        shape = self.patch_size or pp.padded_shape((32,) * ndim, multiple)
        channels = self.model_card.input.channels or 1
        try:
            raw = np.asarray(self._forward(np.zeros((1, channels, *shape), np.float32), (1.0,) * ndim))
        except FOREIGN_FAILURES as exc:
            raise ConfigError(f"{self.model_card.where}: could not run the model on a probe input "
                              f"{(1, channels, *shape)} to find its classes ({describe_failure(exc)}); write a card "
                              'with [output] labels = {1 = "...", ...} and [input] channels (and [input] '
                              "patch_size if the model takes one input size only)") from exc
        if raw.ndim != len(shape) + 2:
            raise ConfigError(f"{self.model_card.where}: the model returned shape {raw.shape} for input "
                              f"{(1, channels, *shape)}; expected (N, K, *spatial) scores — write a card "
                              "with [output] kind and labels")
        if tuple(raw.shape[2:]) != tuple(shape):  # e.g. channel-last (N, *spatial, K): axis 1 is not K
            raise ConfigError(f"{self.model_card.where}: the model returned shape {raw.shape} for input "
                              f"{(1, channels, *shape)}: its spatial axes {tuple(raw.shape[2:])} are not the "
                              f"input's {tuple(shape)}. The harness reads (N, K, *spatial) scores: export the "
                              "model channel-first, or wrap it in a Python callable with a card")
        return {k: f"class{k}" for k in range(1, max(raw.shape[1], 2))}
