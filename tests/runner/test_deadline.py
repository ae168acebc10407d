"""CallDeadline: a model call that runs past its deadline raises in the caller; others pass through."""
from __future__ import annotations

import threading
import time

import pytest
import torch

from harness.executors.deadline import CallDeadline


class Model:
    card = {"name": "m"}

    def __init__(self) -> None:
        self.network = torch.nn.Linear(2, 1)
        self.release = threading.Event()

    def predict(self, x: int) -> int:
        return x + 1

    def hang(self) -> None:
        self.release.wait(30)

    def fail(self) -> None:
        raise ValueError("broken")

    def grad_enabled(self) -> bool:
        return torch.is_grad_enabled()


def test_a_hung_call_raises_timeout_and_the_next_call_still_runs() -> None:
    model = Model()
    slow = CallDeadline(model, 0.2)
    with pytest.raises(TimeoutError, match=r"model\.hang ran past 0\.2 s \(--item-timeout\)"):
        slow.hang()
    assert slow.predict(1) == 2  # the step moves on to its next case
    model.release.set()


def test_errors_attributes_and_grad_mode_pass_through() -> None:
    model = CallDeadline(Model(), 5)
    with pytest.raises(ValueError, match="broken"):
        model.fail()
    assert model.card == {"name": "m"}
    assert isinstance(model.network, torch.nn.Linear)  # a module is not wrapped as a call
    with torch.no_grad():
        assert model.grad_enabled() is False  # thread-local grad mode carried into the call's thread
    assert model.grad_enabled() is True


def test_the_adapter_s_network_call_used_by_attacks_has_a_deadline_too() -> None:
    """Attacks call the network through the adapter's _run, which a private-name rule left unwrapped."""

    class Adapter(Model):
        def _run(self, x: int) -> int:
            self.release.wait(30)
            return x

        def _private(self) -> str:
            return "kept"

    adapter = Adapter()
    slow = CallDeadline(adapter, 0.2)
    with pytest.raises(TimeoutError, match=r"model\._run ran past 0\.2 s"):
        slow._run(1)
    assert slow._private() == "kept"
    adapter.release.set()
