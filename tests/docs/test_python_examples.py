"""Python examples in the docs run as written (in a fresh interpreter, from ``import harness``)."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from ._markdown import DOCS

EXAMPLES = [("statistics.md", "## 12. From Python, on your own table", "F           M        0.08")]


@pytest.mark.parametrize(("page", "heading", "printed"), EXAMPLES)
def test_a_documented_python_example_runs_and_prints_what_it_says(page: str, heading: str, printed: str) -> None:
    text = (DOCS / page).read_text(encoding="utf-8")
    section = text[text.index(heading):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert printed in result.stdout, result.stdout
