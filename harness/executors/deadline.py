"""A model whose every method call has a deadline, for steps where one hung call cannot be killed
alone (the report's worst-case figures call the model again after scoring).

Each call runs in a daemon thread; one that runs past the deadline raises ``TimeoutError`` in the
caller and is abandoned, not killed (its thread ends with the process), so the step moves on to
its next case instead of waiting on the hung one until the step's own deadline.
"""
from __future__ import annotations

import inspect
import sys
import threading
from typing import Any


WRAPPED_PRIVATE = ("_run",)  # the adversarial attacks call the network through the adapter's _run


class CallDeadline:
    """``model`` with each call of its public methods limited to ``seconds``; other attributes (a
    wrapped ``network`` module, the card) pass through unchanged."""

    def __init__(self, model: Any, seconds: float) -> None:
        self._model, self._seconds = model, float(seconds)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._model, name)
        if (name.startswith("_") and name not in WRAPPED_PRIVATE) or not inspect.ismethod(attr):
            return attr
        return lambda *args, **kwargs: self._call(name, attr, args, kwargs)

    def _call(self, name: str, method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        box: dict[str, Any] = {}
        torch = sys.modules.get("torch")
        grad = torch.is_grad_enabled() if torch is not None else None  # thread-local: carried over

        def target() -> None:
            try:
                if grad is None:
                    box["value"] = method(*args, **kwargs)
                else:
                    with torch.set_grad_enabled(grad):
                        box["value"] = method(*args, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
                box["error"] = exc

        thread = threading.Thread(target=target, name=f"harness-call-{name}", daemon=True)
        thread.start()
        thread.join(self._seconds)
        if thread.is_alive():
            raise TimeoutError(f"model.{name} ran past {self._seconds:g} s (--item-timeout); the call was "
                               "abandoned and this case skipped")
        if "error" in box:
            raise box["error"]
        return box["value"]
