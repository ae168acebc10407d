"""Gate outcomes on synthetic records: undefined values never pass, too few cases never decide."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from harness.analysis.gate_checks import clean_gate, degradation_gate
from harness.gates import GateContext, compare, evaluate_gates


def _records(values: dict[tuple[str, int], list[float]], metric: str = "dice") -> pd.DataFrame:
    """One OK record per case for each (perturbation, severity): {("clean", 0): [v per case], ...}."""
    rows = []
    for (perturbation, severity), per_case in values.items():
        for i, v in enumerate(per_case):
            rows.append({"case_id": f"c{i}", "perturbation": perturbation, "severity": severity, "label": 1,
                         "label_name": "organ", "status": "OK", "error": "", metric: v})
    return pd.DataFrame(rows)


def _context(records: pd.DataFrame, gates: list[dict] | None = None) -> GateContext:
    return GateContext(records=records, cases=pd.DataFrame({"case_id": sorted(set(records["case_id"]))}),
                       suite=SimpleNamespace(gates=gates or []))


def test_compare_never_passes_a_value_that_is_not_finite() -> None:
    for value in (math.nan, math.inf, -math.inf):
        assert compare(value, higher_is_better=True, fail=0.5, warn=None) == "INCONCLUSIVE"
    assert compare(0.6, higher_is_better=True, fail=0.5, warn=0.7) == "WARN"
    assert compare(0.4, higher_is_better=True, fail=0.5, warn=None) == "FAIL"


def test_clean_gate_leaves_out_undefined_values_and_counts_only_the_rest() -> None:
    records = _records({("clean", 0): [0.9, np.nan, np.nan, np.nan, np.nan]})
    gate = {"name": "c", "check": "clean", "metric": "dice", "min": 0.5, "label": "mean"}
    [result] = clean_gate(gate, _context(records))
    assert result.outcome == "INCONCLUSIVE" and "only 1 clean case(s)" in result.detail
    assert "4 case(s) without a finite value left out" in result.detail
    records = _records({("clean", 0): [0.9, 0.8, 0.7, np.nan]})
    [result] = clean_gate(gate, _context(records))
    assert result.outcome == "PASS" and math.isclose(result.value, 0.8) and "1 case(s) without" in result.detail


def test_degradation_gate_with_undefined_perturbed_values_is_not_a_pass() -> None:
    records = _records({("clean", 0): [0.9] * 5, ("blur", 3): [np.nan] * 5})
    gate = {"name": "d", "check": "degradation", "metric": "dice", "max_drop": 0.1}
    [result] = degradation_gate(gate, _context(records))
    assert result.outcome == "INCONCLUSIVE" and "no severity could be gated" in result.detail


def test_degradation_gate_needs_min_cases_at_every_severity() -> None:
    """One bad case at severity 3 does not decide; nor can the good severity 1 alone pass the family."""
    records = _records({("clean", 0): [0.9] * 5, ("blur", 1): [0.88] * 5})
    records = pd.concat([records, _records({("blur", 3): [0.0]})])
    gate = {"name": "d", "check": "degradation", "metric": "dice", "max_drop": 0.1}
    [result] = degradation_gate(gate, _context(records))
    assert result.outcome == "INCONCLUSIVE" and result.value is not None and math.isclose(result.value, 0.02)
    assert "severity 3: only 1 paired case(s), need 3" in result.detail
    failing = _records({("clean", 0): [0.9] * 5, ("blur", 1): [0.5] * 5})
    failing = pd.concat([failing, _records({("blur", 3): [0.0]})])
    [result] = degradation_gate(gate, _context(failing))
    assert result.outcome == "FAIL" and "at severity 1" in result.detail  # a failure with enough cases stands


def test_relative_degradation_from_a_clean_mean_of_zero_is_undefined() -> None:
    records = _records({("clean", 0): [0.0] * 4, ("blur", 2): [40.0] * 4}, metric="hd95")
    gate = {"name": "d", "check": "degradation", "metric": "hd95", "max_drop": 0.5, "mode": "relative"}
    [result] = degradation_gate(gate, _context(records))
    assert result.outcome == "INCONCLUSIVE" and "clean mean 0, a relative drop is undefined" in result.detail


def test_a_gate_that_finds_nothing_to_gate_is_inconclusive() -> None:
    records = _records({("clean", 0): [0.9] * 4, ("blur", 2): [0.8] * 4})
    gate = {"name": "d", "check": "degradation", "metric": "dice", "max_drop": 0.1, "families": ["gaussian_noise"]}
    [result] = evaluate_gates(_context(records, [gate]))
    assert result.name == "d" and result.outcome == "INCONCLUSIVE" and "found nothing to gate" in result.detail
    assert "check its keys against the suite" in result.detail


def test_a_gate_whose_families_all_failed_says_so(monkeypatch) -> None:
    """A gate (here a plugin kind that returns nothing without scored rows) over a family whose every
    item failed is told apart from a gate whose keys match nothing."""
    from harness import gates

    monkeypatch.setitem(gates._CHECKS, "only_ok", lambda gate, context: [])
    ok = _records({("clean", 0): [0.9] * 3})
    failed = _records({("blur", 2): [math.nan] * 3}).assign(status="ERROR", error="ModelError: boom")
    records = pd.concat([ok, failed], ignore_index=True)
    [_, result] = evaluate_gates(_context(records, [{"name": "g", "check": "only_ok", "families": ["blur"]}]))
    assert "every work item of blur failed (see model-errors)" in result.detail
    [_, other] = evaluate_gates(_context(records, [{"name": "g", "check": "only_ok", "families": ["gamma"]}]))
    assert "check its keys against the suite" in other.detail


def test_a_gate_with_nothing_to_gate_because_every_item_failed_blames_the_failures() -> None:
    """When no item was scored, the suite's keys are not the cause: the detail says so."""
    records = _records({("clean", 0): [math.nan] * 3}).assign(status="ERROR", error="ModelError: boom")
    gate = {"name": "c", "check": "clean", "metric": "dice", "min": 0.5}
    errors, result = evaluate_gates(_context(records, [gate]))
    assert errors.name == "model-errors" and result.outcome == "INCONCLUSIVE"
    assert "every work item failed (see model-errors)" in result.detail and "against the suite" not in result.detail


def test_site_and_compare_outcomes_never_pass_an_undefined_drop() -> None:
    from harness.analysis.shift import _site_outcome

    assert _site_outcome(math.nan, 0.5, max_drop=0.05, warn_drop=0.0, alpha=0.05)[0] == "INCONCLUSIVE"
    assert _site_outcome(0.01, 0.5, max_drop=0.05, warn_drop=0.0, alpha=0.05)[0] == "PASS"


def test_every_gate_allows_its_threshold_up_to_float_rounding() -> None:
    """0.9 - 0.85 is 0.05000000000000004: a drop of exactly max_drop passes the degradation gate
    (compare) and must pass the site and fairness margins too (they compared bare floats)."""
    from harness.analysis.shift import _site_outcome
    from harness.gates import exceeds

    drop = 0.9 - 0.85
    assert drop > 0.05 and not exceeds(drop, 0.05) and exceeds(0.0501, 0.05)
    assert not exceeds(0.85 - 0.9, -0.05, below=True) and exceeds(-0.0501, -0.05, below=True)
    assert not exceeds(math.nan, 0.05) and not exceeds(math.nan, 0.05, below=True)
    assert compare(drop, higher_is_better=False, fail=0.05, warn=None) == "PASS"
    assert _site_outcome(drop, 0.001, max_drop=0.05, warn_drop=drop, alpha=0.05)[0] == "PASS"
    assert _site_outcome(drop, 0.001, max_drop=0.05, warn_drop=0.04, alpha=0.05)[0] == "WARN"


@pytest.mark.parametrize("outcomes, plain, strict", [
    ((), 0, 0), (("PASS",), 0, 0), (("PASS", "WARN"), 0, 1), (("INCONCLUSIVE",), 0, 1),
    (("PASS", "FAIL"), 1, 1), (("WARN", "FAIL"), 1, 1), (("FAIL", "ERROR"), 2, 2), (("WARN", "ERROR"), 2, 2),
])
def test_exit_codes_of_gate_outcomes_with_and_without_strict(outcomes: tuple[str, ...], plain: int, strict: int) -> None:
    """docs/ci.md: 2 for any ERROR, else 1 for a FAIL (with --strict also a WARN or INCONCLUSIVE), else 0."""
    from harness.gates import GateResult
    from harness.pipeline import exit_code_for

    gates = [GateResult(f"g{i}", o, None, None, "") for i, o in enumerate(outcomes)]
    assert exit_code_for(gates) == plain and exit_code_for(gates, strict=True) == strict


def _two_classes(clean: dict[str, list[float]], blurred: dict[str, list[float]],
                 empty: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """Records of two classes (1 organ, 2 lesion) for clean and blur@3: {name: [value per case]}."""
    rows = []
    for (perturbation, severity), values in ((("clean", 0), clean), (("blur", 3), blurred)):
        for label, name in ((1, "organ"), (2, "lesion")):
            for i, v in enumerate(values[name]):
                kind = (empty or {}).get(name, ["none"] * len(values[name]))[i] if perturbation == "clean" else "none"
                rows.append({"case_id": f"c{i}", "perturbation": perturbation, "severity": severity, "label": label,
                             "label_name": name, "status": "OK", "error": "", "empty": kind, "dice": v})
    return pd.DataFrame(rows)


def test_a_degradation_gate_on_the_mean_names_each_class_drop_and_its_warn_threshold() -> None:
    """A mean over classes hides one class's drop: the detail gives each class's own drop at the
    worst severity, and the warn_drop that a WARN crossed."""
    records = _two_classes({"organ": [0.99] * 4, "lesion": [0.90] * 4}, {"organ": [0.99] * 4, "lesion": [0.70] * 4})
    gate = {"name": "d", "check": "degradation", "metric": "dice", "max_drop": 0.15, "warn_drop": 0.05}
    [result] = degradation_gate(gate, _context(records))
    assert result.outcome == "WARN" and math.isclose(result.value, 0.1)
    assert "(allowed <= 0.15, warn above 0.05)" in result.detail
    assert "mean over classes (organ 0, lesion 0.2)" in result.detail
    [organ, lesion] = degradation_gate({**gate, "label": "each"}, _context(records))
    assert "mean over classes" not in lesion.detail and math.isclose(lesion.value, 0.2) and lesion.outcome == "FAIL"


def test_a_perturbation_that_changed_no_score_is_said_to_have_had_no_effect() -> None:
    records = _records({("clean", 0): [0.9, 0.8, 0.7], ("brightness", 2): [0.9, 0.8, 0.7]})
    gate = {"name": "d", "check": "degradation", "metric": "dice", "max_drop": 0.1}
    [result] = degradation_gate(gate, _context(records))
    assert result.outcome == "PASS" and "no case's dice changed under brightness" in result.detail
    changed = _records({("clean", 0): [0.9, 0.8, 0.7], ("brightness", 2): [0.9, 0.8, 0.69]})
    [result] = degradation_gate(gate, _context(changed))
    assert "no case's" not in result.detail


def test_a_clean_gate_counts_the_cases_without_the_class_and_names_a_mean_over_classes() -> None:
    records = _two_classes({"organ": [0.99] * 4, "lesion": [1.0, 1.0, 0.9, 0.8]}, {"organ": [0.9] * 4, "lesion": [0.9] * 4},
                           empty={"lesion": ["both", "both", "none", "none"]})
    [organ, lesion] = clean_gate({"name": "c", "check": "clean", "metric": "dice", "min": 0.5}, _context(records))
    assert "2 of them with the class absent from reference and prediction" in lesion.detail
    assert "absent" not in organ.detail
    [mean] = clean_gate({"name": "c", "check": "clean", "metric": "dice", "min": 0.5, "label": "mean"},
                        _context(records))
    assert mean.detail.startswith("clean dice (mean over classes per case) = ") and " of mean " not in mean.detail


@pytest.mark.parametrize("check, said", [
    (lambda gate, context: 1 / 0, r"exploding gate failed: ZeroDivisionError: division by zero; fix the gate check"),
    (lambda gate, context: ["PASS"], r"exploding gate failed: TypeError: returned str instead of GateResult"),
])
def test_a_gate_check_that_fails_is_an_error_gate_and_the_others_stand(monkeypatch: pytest.MonkeyPatch,
                                                                       check: object, said: str) -> None:
    """A raising gate_check plugin ended harness.run with a traceback before summary.json was written."""
    import re

    from harness import gates

    monkeypatch.setitem(gates._CHECKS, "exploding", check)
    records = _records({("clean", 0): [0.9, 0.8, 0.7]})
    suite = [{"name": "boom", "check": "exploding"},
             {"name": "c", "check": "clean", "metric": "dice", "min": 0.5, "label": "mean"}]
    boom, clean = evaluate_gates(_context(records, suite))
    assert boom.name == "boom" and boom.outcome == "ERROR" and re.search(said, boom.detail), boom.detail
    assert clean.outcome == "PASS"


def test_severities_and_families_whose_items_all_failed_are_not_gated_silently() -> None:
    """A family failing at severity 5 passed on severities 1-3 with no word of 5; one failing at every
    severity had no gate row at all."""
    records = _records({("clean", 0): [0.9] * 4, ("odd", 1): [0.89] * 4})
    failed = [{"case_id": f"c{i}", "perturbation": p, "severity": sev, "label": 1, "label_name": "organ",
               "status": "ERROR", "error": "perturbation failed", "dice": np.nan}
              for i in range(4) for p, sev in (("odd", 5), ("broken", 1), ("broken", 3))]
    records = pd.concat([records, pd.DataFrame(failed)], ignore_index=True)
    gate = {"name": "d", "check": "degradation", "metric": "dice", "max_drop": 0.1}
    broken, odd = degradation_gate(gate, _context(records))
    assert odd.name == "d[odd]" and odd.outcome == "INCONCLUSIVE"
    assert "not gated: severity 5: no scored case (every item failed)" in odd.detail
    assert broken.name == "d[broken]" and broken.outcome == "INCONCLUSIVE" and "no severity could be gated" in broken.detail
    [only_one] = degradation_gate({**gate, "severities": [1]}, _context(records))[1:]
    assert only_one.outcome == "PASS"  # severity 5 was not asked for
