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
