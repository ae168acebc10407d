"""Perturbation protocol: draw parameters with a seeded RNG, then apply them deterministically.

A perturbation family maps ``(case, severity, rng) -> (case, params)``. Severity is an int 0..5,
0 the identity. ``params`` records what was actually drawn (JSON-serialisable scalars/lists) so a
record can be replayed with :meth:`Perturbation.apply`.

Bundled families draw their random structure first (sub-seeds, directions, positions) and take
magnitudes from a fixed severity ladder, so calls with the same ``rng`` at severities 1..5 share
that structure ("coupled draws") and the distortion grows draw by draw, not only on average.
"""
from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from harness.case import Case
from harness.errors import ConfigError
from harness.options import must_be_one_of
from harness.seeds import as_rng

MAX_SEVERITY = 5
MODALITIES = frozenset({"mri", "ct", "us", "other"})


def is_severity_list(value: Any) -> bool:
    """A non-empty list of int severities 1..MAX_SEVERITY (as suites give them)."""
    return isinstance(value, list) and bool(value) and all(
        isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_SEVERITY for v in value)


@dataclass(frozen=True)
class NumberOption:
    """A numeric suite option: a finite number (``integer``: a whole one) above ``above`` (exclusive)
    or from ``at_least`` (inclusive), up to ``at_most`` (inclusive); ``length``: a list of that many
    such numbers."""

    above: float | None = None
    at_least: float | None = None
    at_most: float | None = None
    integer: bool = False
    length: int | None = None

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not acceptable (None when it is)."""
        values = value if self.length is not None and isinstance(value, list) else [value]
        if self.length is not None and (not isinstance(value, list) or len(value) != self.length):
            return f"must be a list of {self.length} numbers"
        for v in values:
            kind = numbers.Integral if self.integer else numbers.Real
            if isinstance(v, bool) or not isinstance(v, kind) or not math.isfinite(v):
                return f"must be {'a whole number' if self.integer else 'a finite number'}" + \
                       (" (in each list entry)" if self.length else "")
            if self.above is not None and not v > self.above:
                return f"must be > {self.above:g}"
            if self.at_least is not None and not v >= self.at_least:
                return f"must be ≥ {self.at_least:g}"
            if self.at_most is not None and not v <= self.at_most:
                return f"must be ≤ {self.at_most:g}"
        return None


class Perturbation(ABC):
    """One family. Subclasses set the class attributes and implement draw/apply.

    Class attributes:
        name: registry name used in suites (``gaussian_noise``).
        modalities: modalities it applies to; ``{"any"}`` for generic families.
        geometric: True when labels move with the image (nearest-neighbour resampling).
        parameter_doc: the physical parameter at each severity 1..5, for docs and ``harness list``.
        options_doc: accepted suite options, name -> description; None (the default, e.g. for
            plugin families) accepts any option unchecked.
        choices: allowed values of the options that take one of a fixed set.
        numbers: the numeric options' types and ranges (:class:`NumberOption`).
    """

    name: ClassVar[str]
    modalities: ClassVar[frozenset[str]] = frozenset({"any"})
    geometric: ClassVar[bool] = False
    parameter_doc: ClassVar[str] = ""
    options_doc: ClassVar[dict[str, str] | None] = None
    choices: ClassVar[dict[str, tuple[str, ...]]] = {}
    numbers: ClassVar[dict[str, NumberOption]] = {}
    requires_model: ClassVar[bool] = False  # adversarial families: the runner calls bind_model()

    def __init__(self, **options: Any) -> None:
        """``options`` come from the suite's ``[perturbations.options]`` table. When the family
        declares ``options_doc``, unknown names, values outside ``choices`` and numbers of the
        wrong type or range (``numbers``) raise ``ConfigError`` (exit 3, before any model call)."""
        problems = []  # all of them in one message: a suite author fixes them in one round
        if self.options_doc is not None:
            unknown = sorted(set(options) - set(self.options_doc))
            if unknown:
                accepted = ", ".join(sorted(self.options_doc)) or "none"
                problems.append(f"unknown option(s) {', '.join(unknown)}; accepted: {accepted}")
        for key, allowed in self.choices.items():
            if key in options and options[key] not in allowed:
                problems.append(f"option {key!r} {must_be_one_of(allowed, options[key])}")
        for key, spec in self.numbers.items():
            problem = spec.problem(options[key]) if key in options else None
            if problem:
                problems.append(f"option {key!r} {problem}, got {options[key]!r}; "
                                f"{(self.options_doc or {}).get(key, '')}".rstrip("; "))
        if problems:
            raise ConfigError(f"perturbation {self.name!r}: " + "; and ".join(problems))
        self.options = dict(options)

    def bind_model(self, model: Any) -> None:
        """Give a model-dependent family (adversarial attacks) the model under evaluation."""
        self.model = model

    def applies_to(self, modality: str) -> bool:
        return "any" in self.modalities or modality in self.modalities

    @abstractmethod
    def draw(self, case: Case, severity: int, rng: np.random.Generator) -> dict[str, Any]:
        """Draw the parameters for ``severity`` (1..5). Pure apart from consuming ``rng``."""

    @abstractmethod
    def apply(self, case: Case, params: dict[str, Any]) -> Case:
        """Apply drawn parameters deterministically. Must not touch global RNG state."""

    def __call__(self, case: Case, severity: int,
                 rng: int | np.random.Generator | None = None) -> tuple[Case, dict[str, Any]]:
        if (isinstance(severity, bool) or not isinstance(severity, (int, np.integer))
                or not 0 <= severity <= MAX_SEVERITY):
            raise ValueError(f"{self.name}: severity must be an int in 0..{MAX_SEVERITY}, got {severity!r}")
        if severity == 0:
            return case, {}
        params = self.draw(case, int(severity), as_rng(rng))
        if not isinstance(params, dict):
            raise PerturbationError(f"{self.name}: draw() returned {type(params).__name__}, not a dict of parameters")
        out = self.apply(case, params)
        self._check_output(case, out)
        return out, params

    def _check_output(self, case: Case, out: Any) -> None:
        """What a plugin's ``apply`` could get wrong, named before the model is blamed for it: not a
        Case, a non-finite image, or a label changed by a family that is not ``geometric``."""
        if not isinstance(out, Case):
            raise PerturbationError(f"{self.name}: apply() returned {type(out).__name__}, not a harness.Case "
                                    "(return case.with_(image=...))")
        image = out.image
        if image.dtype.kind in "fc" and not np.isfinite(image).all():
            given = int(np.size(case.image) - np.isfinite(case.image).sum())
            if given:  # not the family's doing
                raise PerturbationError(f"{self.name}: the input image already has {given} NaN or infinite "
                                        "value(s); fix the image (or the step that made it) first")
            raise PerturbationError(f"{self.name}: apply() made {int(np.size(image) - np.isfinite(image).sum())} "
                                    "image values NaN or infinite")
        if not self.geometric and out.label is not case.label and not np.array_equal(out.label, case.label):
            raise PerturbationError(f"{self.name}: apply() changed the label map, but the family is not geometric; "
                                    "set geometric = True if the reference must move with the image")


class PerturbationError(ValueError):
    """A perturbation returned something unusable (not a Case, non-finite values, a changed label)."""


def plain_params(params: dict[str, Any], *, family: str = "") -> dict[str, Any]:
    """``params`` as JSON values (numpy scalars and arrays to Python numbers and lists, tuples to
    lists), as records store them so that :meth:`Perturbation.apply` can replay them; ValueError
    naming the family and key for a value JSON cannot hold."""
    def plain(value: Any, key: str) -> Any:
        if isinstance(value, (np.bool_, bool)):
            return bool(value)
        if isinstance(value, np.integer):
            return int(value)
        if isinstance(value, np.floating):
            return float(value)
        if isinstance(value, np.ndarray):
            return plain(value.tolist(), key)
        if isinstance(value, (list, tuple)):
            return [plain(v, key) for v in value]
        if isinstance(value, dict):
            return {str(k): plain(v, f"{key}.{k}") for k, v in value.items()}
        if value is None or isinstance(value, (str, int, float)):
            return value
        raise PerturbationError(f"{family or 'perturbation'}: parameter {key!r} is a {type(value).__name__}, "
                                "which a record cannot store; draw() must return numbers, strings, lists or dicts")
    return {str(k): plain(v, str(k)) for k, v in params.items()}
