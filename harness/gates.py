"""Gates: pure functions of analysis tables and suite thresholds -> outcomes.

Outcomes: PASS, WARN, FAIL, ERROR (the harness or model broke), INCONCLUSIVE (too few cases).
A gate evaluated per family/attribute yields one :class:`GateResult` per family/attribute, named
``"<gate>[<family>]"`` so a reader knows what to fix.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Literal

import pandas as pd

from harness.errors import FOREIGN_FAILURES, ConfigError, describe_failure
from harness.options import did_you_mean
from harness.perturbations.base import MAX_SEVERITY, is_severity_list
from harness.records import failed_items

Outcome = Literal["PASS", "WARN", "FAIL", "ERROR", "INCONCLUSIVE"]
OUTCOMES: tuple[Outcome, ...] = ("PASS", "WARN", "FAIL", "ERROR", "INCONCLUSIVE")
# Worst first: the overall outcome of a run is the worst of its gates.
_SEVERITY_ORDER = {"ERROR": 4, "FAIL": 3, "INCONCLUSIVE": 2, "WARN": 1, "PASS": 0}


@dataclass(frozen=True)
class GateResult:
    """The outcome of one gate (or of one family/attribute of a gate)."""

    name: str
    outcome: str
    value: float | None
    threshold: float | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def overall_outcome(results: list[GateResult]) -> str:
    """The worst outcome among ``results`` (PASS when there are none)."""
    if not results:
        return "PASS"
    return max((r.outcome for r in results), key=_SEVERITY_ORDER.__getitem__)


def exceeds(value: float, threshold: float, *, below: bool = False) -> bool:
    """``value > threshold`` (``value < threshold`` with ``below``) beyond float rounding: a value
    equal to a gate's threshold up to rounding is allowed (0.9 - 0.85 is 0.05000000000000004, not
    0.05). False for NaN; every gate compares through this, so none is stricter than another."""
    slack = 1e-9 * max(1.0, abs(threshold))
    return bool(value < threshold - slack) if below else bool(value > threshold + slack)


def compare(value: float, *, higher_is_better: bool, fail: float, warn: float | None) -> str:
    """PASS/WARN/FAIL for ``value`` against a fail threshold and an optional stricter warn one;
    INCONCLUSIVE for a value that is not finite."""
    def bad(threshold: float) -> bool:
        return exceeds(value, threshold, below=higher_is_better)

    if not math.isfinite(value):  # NaN compares False both ways: it must never pass
        return "INCONCLUSIVE"
    if bad(fail):
        return "FAIL"
    if warn is not None and bad(warn):
        return "WARN"
    return "PASS"


GateCheck = Callable[[dict[str, Any], "GateContext"], list[GateResult]]
GateValidator = Callable[[dict[str, Any]], list[str]]
_CHECKS: dict[str, GateCheck] = {}
_VALIDATORS: dict[str, GateValidator] = {}
_DEFAULTS: dict[str, dict[str, Any]] = {}
_MEANINGS: dict[str, str] = {}
_SETTINGS: dict[str, tuple[str, ...]] = {}


@dataclass(frozen=True)
class SuiteSetting:
    """A gate key whose default is a ``[suite]`` setting (``alpha``: the suite's ``alpha``);
    ``fallback`` for a suite-like object without it."""

    key: str
    fallback: Any = None


# What a default of None means, in the dossier's words (an absent list key takes everything).
_NONE_WORDS = {"families": "all", "severities": "all", "attributes": "all analysed",
               "reference": "the suite's reference site (its value of the attribute), else the largest site"}


@dataclass(frozen=True)
class GateContext:
    """What gate checks may read: the records, the case table and the suite's analysis options."""

    records: pd.DataFrame
    cases: pd.DataFrame
    suite: Any  # harness.suite.Suite (kept loose to avoid an import cycle)
    cache: dict[str, Any] = field(default_factory=dict, compare=False)  # analyses shared by gates/report


def gate_check(kind: str, *, validate: GateValidator | None = None, defaults: Mapping[str, Any] | None = None,
               meaning: str = "", settings: tuple[str, ...] = ()) -> Callable[[GateCheck], GateCheck]:
    """Register a gate kind (the suite's ``check = "..."``), optionally with a key validator that
    returns problems found without data (run at suite load, so bad gates exit 3 up front), the
    ``defaults`` of its optional keys (a value, None for "all"/"none", or a :class:`SuiteSetting`),
    which the check reads through :func:`with_defaults` and the dossier lists, a one-line
    ``meaning`` and the ``[suite]`` ``settings`` its outcome depends on (e.g. ``min_group_size``),
    both for the dossier's acceptance criteria."""
    def wrap(fn: GateCheck) -> GateCheck:
        if not str(getattr(fn, "__module__", "")).startswith("harness."):  # a plugin may not replace a bundled kind
            _load_checks()
            taken = _CHECKS.get(kind)
            if taken is not None and taken is not fn and str(getattr(taken, "__module__", "")).startswith("harness."):
                raise ConfigError(f"gate kind {kind!r} is bundled; register yours under another name")
        _CHECKS[kind] = fn
        if validate is not None:
            _VALIDATORS[kind] = validate
        _DEFAULTS[kind] = dict(defaults or {})
        _MEANINGS[kind] = meaning
        _SETTINGS[kind] = tuple(settings)
        return fn

    return wrap


def gate_defaults(kind: str) -> dict[str, Any]:
    """The registered defaults of a gate kind's optional keys ({} for an unknown kind)."""
    _load_checks()
    return dict(_DEFAULTS.get(kind, {}))


def gate_meaning(kind: str) -> str:
    """A gate kind's one-line meaning ("" when it registered none)."""
    _load_checks()
    return _MEANINGS.get(kind, "")


def settings_used(kind: str, settings: Any) -> list[str]:
    """The ``[suite]`` settings a gate kind's outcome depends on, as "min_group_size = 10"; empty
    values (e.g. no ``cluster``) left out."""
    _load_checks()
    out = []
    for key in _SETTINGS.get(kind, ()):
        value = _setting(SuiteSetting(key), settings)
        if value not in (None, "", (), []):
            out.append(f"{key} = {value}")
    return out


def _setting(value: Any, settings: Any) -> Any:
    if not isinstance(value, SuiteSetting):
        return value
    if isinstance(settings, Mapping):
        return settings.get(value.key, value.fallback)
    return getattr(settings, value.key, value.fallback)


def with_defaults(gate: Mapping[str, Any], settings: Any, *, kind: str | None = None) -> dict[str, Any]:
    """``gate`` with its kind's defaults for the keys it leaves out: what the gate is evaluated
    with. ``settings``: the suite (its attributes) or a run's settings mapping, for
    :class:`SuiteSetting` defaults; ``kind``: the gate kind when ``gate`` has no ``check`` (a check
    function called directly)."""
    out = dict(gate)
    for key, value in gate_defaults(kind or str(gate.get("check", ""))).items():
        if key not in out:
            out[key] = _setting(value, settings)
    return out


def defaults_used(gate: Mapping[str, Any], settings: Any) -> list[str]:
    """The gate's defaulted keys in words, as "min_cases = 3", "alpha = 0.05 ([suite].alpha)" or
    "families = all"; [] when it sets every optional key (or its kind registered no defaults)."""
    out = []
    for key, value in gate_defaults(str(gate.get("check", ""))).items():
        if key in gate:
            continue
        shown = _setting(value, settings)
        if shown is None or shown == "":
            text = _NONE_WORDS.get(key, "none" if value is None else "auto")
        else:
            text = f"{shown:g}" if isinstance(shown, float) else str(shown)
        out.append(f"{key} = {text}" + (f" ([suite].{value.key})" if isinstance(value, SuiteSetting) else ""))
    return out


def _nothing_to_gate(gate: dict[str, Any], records: pd.DataFrame, n_err: int) -> str:
    """Why a gate found nothing to gate: its items all failed, or its keys match nothing."""
    if n_err and not (records["status"] == "OK").any():
        return "every work item failed (see model-errors): no scored record to gate"
    named = gate.get("families") or ([gate["perturbation"]] if isinstance(gate.get("perturbation"), str) else [])
    named = [str(f) for f in named if f not in ("all",)]
    if n_err and named:
        mine = records[records["perturbation"].astype(str).isin(named)]
        if len(mine) and not (mine["status"] == "OK").any():
            return f"every work item of {', '.join(named)} failed (see model-errors): no scored record to gate"
    return "no matching perturbation, label or cohort; check its keys against the suite"


def gate_problems(gate: dict[str, Any]) -> list[str]:
    """Problems with a gate's keys (empty when its kind has no validator)."""
    _load_checks()
    validator = _VALIDATORS.get(gate.get("check", ""))
    return validator(gate) if validator else []


def key_problems(gate: Mapping[str, Any], *, required: Iterable[str], allowed: Iterable[str]) -> list[str]:
    """The one wording of a gate's missing and unknown keys (an unknown key gets a spelling hint):
    ``gate 'g': missing 'max_drop'``, ``gate 'g': unknown key(s) maxdrop (did you mean 'max_drop'?);
    allowed: …``."""
    name = gate.get("name", "<unnamed>")
    allowed = sorted(set(allowed))
    problems = [f"gate {name!r}: missing {k!r}" for k in required if k not in gate]
    unknown = sorted(set(gate) - set(allowed))
    if unknown:
        named = ", ".join(key + did_you_mean(key, allowed) for key in unknown)
        problems.append(f"gate {name!r}: unknown key(s) {named}; allowed: {', '.join(allowed)}")
    return problems


def check_keys(gate: dict[str, Any], *, required: set[str], optional: set[str],
               numbers: set[str] = frozenset(), counts: set[str] = frozenset()) -> list[str]:  # type: ignore[assignment]
    """Generic validator: required/optional keys, finite numbers (``numbers``), whole numbers ≥ 1
    (``counts``, e.g. ``min_cases``), and the shared list keys when given: ``severities`` (ints
    1..5) and ``families`` (perturbation names)."""
    name = gate.get("name", "<unnamed>")
    problems = key_problems(gate, required=sorted(required),
                            allowed=required | optional | {"name", "check", "description"})
    for key in sorted(numbers & set(gate)):
        value = gate[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            problems.append(f"gate {name!r}: {key} must be a finite number, got {value!r}")
    for key in sorted(counts & set(gate)):
        value = gate[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            problems.append(f"gate {name!r}: {key} must be a whole number >= 1, got {value!r}")
    if "severities" in gate and not is_severity_list(gate["severities"]):
        problems.append(f"gate {name!r}: severities must be a non-empty list of ints 1..{MAX_SEVERITY}, "
                        f"got {gate['severities']!r}")
    families = gate.get("families")
    if families is not None and not (isinstance(families, list) and all(isinstance(f, str) for f in families)):
        problems.append(f"gate {name!r}: families must be a list of perturbation names, got {families!r}")
    return problems


def label_problems(gate: dict[str, Any], *, each: bool = False) -> list[str]:
    """Why a gate's ``label`` is not "mean", a class number or a class name (empty when it is); "each"
    is refused unless ``each`` (a kind that gates one value per case would count every case once
    per class)."""
    label = gate.get("label", "mean")
    name = gate.get("name", "<unnamed>")
    if isinstance(label, bool) or not isinstance(label, (int, str)):
        allowed = '"mean", "each"' if each else '"mean"'
        return [f"gate {name!r}: label must be {allowed}, a class number or a class name, got {label!r}"]
    if label == "each" and not each:
        return [f"gate {name!r}: label \"each\" is not supported by {gate.get('check', 'this')} gates; use \"mean\" "
                "or one class (one gate per class)"]
    return []


def check_kinds() -> list[str]:
    _load_checks()
    return sorted(_CHECKS)


def _load_checks() -> None:
    from harness.analysis import gate_checks  # noqa: F401  (registers the bundled kinds)


def evaluate_gates(context: GateContext) -> list[GateResult]:
    """Evaluate every gate of the suite; any ERROR record adds a failing ``model-errors`` gate."""
    _load_checks()
    results: list[GateResult] = []
    records = context.records
    n_err = int((records["status"] == "ERROR").sum()) if len(records) else 0
    if n_err:
        errors = records[records["status"] == "ERROR"]
        n_items = len(failed_items(records))
        first = errors.iloc[0]
        results.append(GateResult(
            name="model-errors", outcome="ERROR", value=float(n_err), threshold=0.0,
            detail=(f"{n_items} work item(s) failed ({n_err} record(s)); first: case {first.case_id}, "
                    f"{first.perturbation}: {first.error}")))
    for gate in context.suite.gates:
        try:
            found = list(_CHECKS[gate["check"]](gate, context))
            wrong = [type(r).__name__ for r in found if not isinstance(r, GateResult)]
            if wrong:
                raise TypeError(f"returned {', '.join(sorted(set(wrong)))} instead of GateResult")
        except FOREIGN_FAILURES as exc:  # a gate_check plugin may fail in any way; the other gates stand
            found = [GateResult(str(gate["name"]), "ERROR", None, None,
                                f"{gate['check']} gate failed: {describe_failure(exc)}; fix the gate check")]
        if not found:  # a gate that gates nothing must not let the run pass unnoticed
            why = _nothing_to_gate(gate, records, n_err)
            found = [GateResult(str(gate["name"]), "INCONCLUSIVE", None, None,
                                f"{gate['check']} gate found nothing to gate in this run: {why}")]
        results.extend(found)
    return results
