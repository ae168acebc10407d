"""The rich console every command prints through."""
from __future__ import annotations

import os

from rich.console import Console, ConsoleDimensions

LOG_WIDTH = 160  # columns when the output goes to a file or a CI log rather than a terminal


class _Console(Console):
    """Writing to a log rather than a terminal, and without ``COLUMNS`` set, at least
    :data:`LOG_WIDTH` wide: rich's 80-column default squeezed a gate's detail into a narrow column
    over many lines of a CI log. Decided at each print, as rich reads ``COLUMNS``."""

    @property
    def size(self) -> ConsoleDimensions:
        size = Console.size.fget(self)  # type: ignore[attr-defined]
        if self.is_terminal or "COLUMNS" in os.environ:
            return size
        return ConsoleDimensions(max(size.width, LOG_WIDTH), size.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]


def make_console(*, stderr: bool = False) -> Console:
    """A console without emoji codes (":ghost:" in a plugin reference is text), wide in a log."""
    return _Console(stderr=stderr, emoji=False)
