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
