"""Console width: a CI log gets wide lines; a terminal or COLUMNS decides otherwise, at each print."""
from __future__ import annotations

import pytest

from harness.terminal import LOG_WIDTH, make_console


def test_a_log_gets_wide_lines_and_columns_still_decides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    console = make_console()  # made once, as the command line's are at import
    assert console.width == LOG_WIDTH and make_console(stderr=True).width == LOG_WIDTH  # captured: not a tty
    monkeypatch.setenv("COLUMNS", "100")
    assert console.width == 100
