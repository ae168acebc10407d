"""Gates: pure functions of analysis tables and suite thresholds -> outcomes.

Outcomes: PASS, WARN, FAIL, ERROR (the harness or model broke), INCONCLUSIVE (too few cases).
A gate evaluated per family/attribute yields one :class:`GateResult` per family/attribute, named
``"<gate>[<family>]"`` so a reader knows what to fix.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable, Literal

import pandas as pd

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


def compare(value: float, *, higher_is_better: bool, fail: float, warn: float | None) -> str:
    """PASS/WARN/FAIL for ``value`` against a fail threshold and an optional stricter warn one."""
    def bad(threshold: float) -> bool:
        return value < threshold if higher_is_better else value > threshold

    if bad(fail):
        return "FAIL"
    if warn is not None and bad(warn):
        return "WARN"
    return "PASS"


GateCheck = Callable[[dict[str, Any], "GateContext"], list[GateResult]]
_CHECKS: dict[str, GateCheck] = {}


@dataclass(frozen=True)
class GateContext:
    """What gate checks may read: the records, the case table and the suite's analysis options."""

    records: pd.DataFrame
    cases: pd.DataFrame
    suite: Any  # harness.suite.Suite (kept loose to avoid an import cycle)


def gate_check(kind: str) -> Callable[[GateCheck], GateCheck]:
    """Register a gate kind (the suite's ``check = "..."``)."""
    def wrap(fn: GateCheck) -> GateCheck:
        _CHECKS[kind] = fn
        return fn

    return wrap


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
        bad = records.loc[records["status"] == "ERROR", ["case_id", "perturbation", "error"]].drop_duplicates()
        first = bad.iloc[0]
        results.append(GateResult(
            name="model-errors", outcome="ERROR", value=float(n_err), threshold=0.0,
            detail=(f"{len(bad)} work item(s) failed; first: case {first.case_id}, "
                    f"{first.perturbation}: {first.error}")))
    for gate in context.suite.gates:
        results.extend(_CHECKS[gate["check"]](gate, context))
    return results
