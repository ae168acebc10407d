"""``validate_model_command``: one case through the model, a table of what was found."""
from __future__ import annotations

import io

import pytest
from rich.console import Console

from harness.errors import ModelError
from harness.models.command_line import validate_model, validate_model_command
from tests.models.conftest import card


def _render(table) -> str:
    out = io.StringIO()
    Console(file=out, width=200).print(table)
    return out.getvalue()


def test_validate_torch_model(unet3d):
    buffer = io.StringIO()
    table = validate_model(str(unet3d.torch_card), console=Console(file=buffer, width=200))
    text = _render(table)
    assert buffer.getvalue() == text  # printed and returned
    for expected in ("tiny-unet-3d", "float32 (1, 32, 64, 64)", "int64 (32, 64, 64)",
                     "float32 (3, 32, 64, 64)", "1 organ, 2 lesion",
                     "time per case", "yes (|∂logits/∂image|", "tests only", "OK", "Dice vs the case's mask"):
        assert expected in text, expected


def test_validate_bare_onnx_with_phantom_data(unet2d):
    table = validate_model(str(unet2d.onnx), "phantom2d", console=Console(file=io.StringIO()))
    text = _render(table)
    assert "(bare model file: defaults)" in text and "no (not a differentiable adapter)" in text


def test_validate_reports_then_raises_model_errors(tmp_path):
    text = '[model]\nformat = "callable"\nentry = "tests.models.helpers:unknown_label"\n[output]\nlabels = {1 = "x"}\n'
    buffer = io.StringIO()
    with pytest.raises(ModelError, match=r"not among the declared classes"):
        validate_model(str(card(tmp_path, text)), console=Console(file=buffer, width=200))
    assert "ERROR" in buffer.getvalue()


def test_cli_command_returns_exit_codes(tmp_path, unet2d, capsys):
    """The CLI registers validate_model_command as a typer command: --model/--data options, int result."""
    import typer
    from typer.testing import CliRunner

    app = typer.Typer()
    app.command("validate-model")(validate_model_command)
    app.command("noop")(lambda: None)
    runner = CliRunner()
    ok = runner.invoke(app, ["validate-model", "--model", str(unet2d.onnx), "--data", "phantom2d"],
                       standalone_mode=False)
    assert ok.exception is None and ok.return_value == 0 and "OK" in ok.output
    text = '[model]\nformat = "callable"\nentry = "tests.models.helpers:crashes"\n[output]\nlabels = {1 = "x"}\n'
    bad = runner.invoke(app, ["validate-model", "--model", str(card(tmp_path, text))], standalone_mode=False)
    assert bad.return_value == 2 and "ERROR" in bad.output
