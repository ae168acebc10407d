"""pyproject.toml says requires-python >= 3.10: the package's code must parse and import there too
(tomllib is 3.11+; two modules imported it directly and every run ended in "internal error" on 3.10)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import harness

PACKAGE = Path(harness.__file__).parent
NEWER_THAN_310 = re.compile(r"^\s*(import tomllib|from tomllib |from datetime import .*\bUTC\b|from typing import .*\b("
                            r"Self|LiteralString|Never|assert_never|reveal_type|NotRequired|Required)\b|from enum import "
                            r".*\bStrEnum\b)", re.MULTILINE)


def test_the_package_parses_as_python_3_10_and_reads_toml_through_its_backport_shim() -> None:
    sources = sorted(PACKAGE.rglob("*.py"))
    assert len(sources) > 50
    for path in sources:
        text = path.read_text(encoding="utf-8")
        ast.parse(text, filename=str(path), feature_version=(3, 10))  # no 3.11+ syntax (except*, ...)
        if path.name != "tomlread.py":
            assert not NEWER_THAN_310.search(text), f"{path}: a 3.11+ standard-library name; see harness/tomlread.py"
    requires = re.search(r'requires-python = ">=(\d+)\.(\d+)"', (PACKAGE.parent / "pyproject.toml").read_text()) \
        if (PACKAGE.parent / "pyproject.toml").is_file() else None
    assert requires is None or (int(requires[1]), int(requires[2])) == (3, 10)  # update this test with the floor
