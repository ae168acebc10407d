"""Exception types that map onto the CLI's exit codes.

``ConfigError`` (exit 3): bad configuration, usage or input, found before any model call.
``ModelError``: the model failed on one work item; the runner turns it into an ERROR record.
"""
from __future__ import annotations

from asyncio import CancelledError


class HarnessError(Exception):
    """Base class of the harness's own errors."""


class ConfigError(HarnessError):
    """Bad configuration or input (suite, card, data folder, CLI option). Exit code 3.

    The message names the file or field and says what to do.
    """

    def __init__(self, message: str, *, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems or [])

    def __str__(self) -> str:
        base = super().__str__()
        if not self.problems:
            return base
        return base + "\n" + "\n".join(f"  - {p}" for p in self.problems)


class ModelError(HarnessError):
    """The model raised, returned NaN/Inf, the wrong shape or unknown labels, or timed out."""


# What foreign code (a model, a perturbation, a plugin) may raise that is its own failure, not the
# user's interrupt: any exception, ``sys.exit``, and the BaseExceptions of asynchronous and generator
# code (``asyncio.CancelledError`` from an inference client, ``GeneratorExit``). KeyboardInterrupt
# is not among them: it stops the run.
FOREIGN_FAILURES: tuple[type[BaseException], ...] = (Exception, SystemExit, GeneratorExit, CancelledError)


def one_line(text: str, limit: int = 500) -> str:
    """Collapse a message to one line (records hold one-line reasons), at most ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit - 1] + "…"


def describe_failure(exc: BaseException) -> str:
    """``Type: message`` on one line for what foreign code raised; ``SystemExit(code)`` for code
    that called ``sys.exit``; a broken ``__str__`` does not hide the failure."""
    if isinstance(exc, SystemExit):
        return f"SystemExit({exc.code!r}) (it called sys.exit)"
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001 - a broken __str__ must not hide the failure
        text = "(its message could not be read)"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if lines and "TorchScript interpreter" in lines[0]:  # its last line is the error; the rest, a traceback
        return one_line(lines[-1])
    return f"{type(exc).__name__}: {one_line(text)}" if lines else type(exc).__name__
