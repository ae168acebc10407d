"""docs/suites.md documents exactly the keys the suite schema accepts, with the schema's defaults,
and docs/datasets.md / docs/models.md document every dataset-card and model-card key."""
from __future__ import annotations

import importlib
import re
import sys

import pytest

from harness import suite as suite_module
from harness.gates import check_kinds, gate_problems

from ._markdown import DOCS, sections, table_keys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SUITES_MD = (DOCS / "suites.md").read_text(encoding="utf-8")
H2 = sections(SUITES_MD, 2)
H3 = sections(SUITES_MD, 3)
COMMON_GATE_KEYS = set(table_keys(H2["`[[gates]]`"]))
# Gate kinds registered by modules that live beside their analyses (imported on first use).
GATE_MODULES = ("harness.analysis.gate_checks", "harness.analysis.shift", "harness.baseline")


def _kinds() -> list[str]:
    for name in GATE_MODULES:
        importlib.import_module(name)
    return check_kinds()


def _documented_kinds() -> dict[str, set[str]]:
    kinds = {}
    for heading, lines in H3.items():
        match = re.fullmatch(r'`check = "(\w+)"`', heading)
        if match:
            kinds[match.group(1)] = set(table_keys(lines)) | COMMON_GATE_KEYS
    return kinds


def _allowed_gate_keys(kind: str) -> set[str]:
    """The keys a gate kind accepts: from its validator's "allowed: ..." message, else the
    ``GATE_KEYS`` of the module that defines it."""
    for problem in gate_problems({"name": "probe", "check": kind, "zz_not_a_key": 1}):
        match = re.search(r"allowed: (.+)$", problem)
        if match:
            return {k.strip() for k in match.group(1).split(",")}
    from harness import gates

    module = sys.modules[gates._CHECKS[kind].__module__]
    assert hasattr(module, "GATE_KEYS"), f"gate kind {kind!r} has no validator and no GATE_KEYS"
    return set(module.GATE_KEYS)


def test_suite_table_matches_schema():
    documented = table_keys(H2["`[suite]`"])
    assert len(documented) == len(set(documented)), "a [suite] key is documented twice"
    assert set(documented) == set(suite_module.SUITE_KEYS)


def test_perturbation_table_matches_schema():
    assert set(table_keys(H2["`[[perturbations]]`"])) == set(suite_module.PERTURBATION_KEYS)


def test_common_gate_keys():
    assert COMMON_GATE_KEYS == {"name", "check", "description"}


def test_every_gate_kind_is_documented_and_vice_versa():
    assert set(_documented_kinds()) == set(_kinds())


@pytest.mark.parametrize("kind", _kinds())
def test_gate_kind_keys_match_validator(kind):
    documented = _documented_kinds().get(kind, set())
    allowed = _allowed_gate_keys(kind)
    assert documented == allowed, (f"check = {kind!r}: documented but not accepted "
                                   f"{sorted(documented - allowed)}; accepted but not documented "
                                   f"{sorted(allowed - documented)}")


def _literal(cell: str):
    """A default cell that is exactly one backticked TOML value, parsed; else None."""
    match = re.fullmatch(r"`([^`]+)`", cell.strip())
    if not match:
        return None
    try:
        return tomllib.loads(f"v = {match.group(1)}")["v"]
    except tomllib.TOMLDecodeError:
        return None


def test_documented_suite_defaults_are_the_parsers():
    from ._markdown import first_table

    parsed = suite_module.parse_suite('[suite]\nname = "x"\n', path=DOCS / "x.toml")
    checked = 0
    for cells in first_table(H2["`[suite]`"]):
        key = re.findall(r"`([^`]+)`", cells[0])[0]
        default = _literal(cells[2])
        if default is None:
            continue
        actual = getattr(parsed, key)
        actual = list(actual) if isinstance(actual, tuple) else actual
        assert actual == default, f"[suite].{key}: documented default {default!r}, parser gives {actual!r}"
        checked += 1
    assert checked >= 15


def test_documented_perturbation_defaults():
    parsed = suite_module.parse_suite('[suite]\nname = "x"\n[[perturbations]]\nfamily = "blur"\n',
                                      path=DOCS / "x.toml")
    spec = parsed.perturbations[0]
    assert list(spec.severities) == [1, 2, 3, 4, 5] and spec.options == {} and spec.label == "blur"
    assert "`[1, 2, 3, 4, 5]`" in "\n".join(H2["`[[perturbations]]`"])


def test_dataset_card_keys_documented():
    from harness.datasets.card import CARD_KEYS

    lines = sections((DOCS / "datasets.md").read_text(encoding="utf-8"), 3)
    heading = next(h for h in lines if h.startswith("Keys of"))
    assert set(table_keys(lines[heading])) == set(CARD_KEYS)


def test_model_card_keys_documented():
    from harness.models import card

    text = sections((DOCS / "models.md").read_text(encoding="utf-8"), 3)
    for table, keys in (("`[model]`", card._MODEL_KEYS), ("`[input]`", card._INPUT_KEYS),
                        ("`[output]`", card._OUTPUT_KEYS)):
        documented = {k.strip("[]").split(".")[-1] for k in table_keys(text[table])}
        assert set(keys) <= documented, f"models.md {table} misses {sorted(set(keys) - documented)}"
