"""Allowed values of the suite's analysis options (and of ``harness compare``'s), spelled once.

A leaf module (no third-party imports), so the suite parser can check a suite at start-up
without importing the analysis code; the analysis functions check the same tuples when called
from Python. The ``Literal`` types beside them (``stats.Correction``, ``fairness_cell.Test``)
are kept equal to these by a test.
"""
from __future__ import annotations

from collections.abc import Iterable

CORRECTIONS = ("holm", "bh")  # multiple-comparison correction: Holm step-down, Benjamini–Hochberg
FAIRNESS_TESTS = ("permutation", "kruskal")  # test of a fairness gap between groups
SMALL_GROUP_POLICIES = ("inconclusive", "exclude")  # groups below min_group_size
ON_INAPPLICABLE = ("error", "skip")  # a perturbation that does not apply to a case
COMPARE_MODES = ("auto", "paired", "unpaired")  # `harness compare --mode`

# [suite] key -> allowed values (checked when the suite is parsed)
SUITE_CHOICES: dict[str, tuple[str, ...]] = {
    "on_inapplicable": ON_INAPPLICABLE,
    "correction": CORRECTIONS,
    "fairness_test": FAIRNESS_TESTS,
    "small_groups": SMALL_GROUP_POLICIES,
}


def closest(word: object, choices: Iterable[str], *, cutoff: float = 0.6) -> str | None:
    """The choice nearest to a misspelt ``word`` (difflib ratio ≥ ``cutoff``), or None when none is
    close or ``word`` is not text."""
    if not isinstance(word, str):
        return None
    import difflib  # standard library; imported here to keep this leaf module's import light

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=cutoff)
    return close[0] if close else None


def did_you_mean(word: object, choices: Iterable[str], *, otherwise: str = "") -> str:
    """The one wording of a spelling hint: ``" (did you mean 'alpha'?)"`` when a choice is close to
    ``word``, else ``otherwise`` (e.g. ``" (allowed: a, b)"``); callers append it to their message."""
    match = closest(word, choices)
    return f" (did you mean {match!r}?)" if match else otherwise


def must_be_one_of(allowed: Iterable[object], got: object) -> str:
    """The one wording of a bad choice: ``"must be one of a, b, got 'c'"`` (callers prefix the
    option's name, e.g. ``f"--mode {must_be_one_of(COMPARE_MODES, value)}"``)."""
    return f"must be one of {', '.join(map(str, allowed))}, got {got!r}"
