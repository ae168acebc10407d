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


def test_bracketed_card_keys_in_messages_are_shown_as_written(tmp_path):
    """rich read "[input]" as markup: "expects 3 channel(s) ([input] channels)" lost its key."""
    text = ('[model]\nformat = "callable"\nentry = "tests.models.helpers:threshold"\nintended_use = "[demo] only"\n'
            '[input]\nchannels = 3\n[output]\nlabels = {1 = "[organ]"}\n')
    buffer = io.StringIO()
    with pytest.raises(ModelError):
        validate_model(str(card(tmp_path, text)), "phantom2d", console=Console(file=buffer, width=250))
    shown = buffer.getvalue()
    assert "([input] channels)" in shown and "[demo] only" in shown and "1 [organ]" in shown


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


def _lesion_card(tmp_path):
    """Two 64 x 64 PNG cases whose masks (0/255) are class 1 named "lesion"."""
    from tests.png_cards import png_card

    return png_card(tmp_path, 'label_values = { "255" = 1 }\nlabel_names = { 1 = "lesion" }\nmodality = "us"\n',
                    n=2, shape=(64, 64))


def test_class_names_that_differ_between_model_and_data_are_flagged(tmp_path, capsys):
    """The bundled phantom model's class 1 is "organ": scored as a BUS-BRA-like "lesion" it must
    not pass silently (validate-model labelled the data's class with the model's name)."""
    import json

    from harness.cli import main

    data = _lesion_card(tmp_path)
    text = _render(validate_model("reference", str(data), console=Console(file=io.StringIO())))
    assert "lesion (model: organ)" in text and "class 1 is 'organ' in the model card but 'lesion' in the data" in text
    main(["run", "--suite", "smoke", "--data", str(data), "--out", str(tmp_path / "run"), "--workers", "1"])
    notes = json.loads((tmp_path / "run" / "summary.json").read_text())["notes"]
    assert any(n.startswith("class 1 is 'organ' in the model card but 'lesion' in the data") for n in notes)


def test_class_name_conflicts_ignore_case_and_placeholders():
    from harness.datasets.label_values import class_name_conflicts

    assert class_name_conflicts({1: "Lesion ", 2: "left_atrium"}, {1: "lesion", 2: "Left atrium"}) == []
    assert class_name_conflicts({1: "class1", 2: "tumour"}, {1: "organ", 2: "tumour"}) == []
    assert class_name_conflicts({1: "liver", 2: "tumour"}, {1: "organ", 2: "foreground"}) == [
        "class 1 is 'organ' in the model card but 'liver' in the data"]
    # one organ under two numbers: data 3 = kidney is scored against the model's 3, which it never outputs
    assert class_name_conflicts({1: "liver", 2: "spleen", 3: "kidney"}, {1: "liver", 2: "spleen", 4: "Kidney"}) == [
        "'kidney' is class 3 in the data but class 4 in the model card"]
    assert class_name_conflicts({1: "class1"}, {2: "class1"}) == []  # placeholders name nothing
    both = {1: "lesion", 2: "lesion", 3: "organ"}  # one name for two classes, the same in both
    assert class_name_conflicts(both, both) == []


def test_without_data_a_bare_3d_model_file_gets_a_3d_phantom(unet3d):
    """The ONNX graph knows the model is 3D; a 2D phantom made it an ERROR."""
    text = _render(validate_model(str(unet3d.onnx), console=Console(file=io.StringIO())))
    assert "OK" in text and "phantom3d" in text
    assert "spacing 2 × 1 × 1 mm" in text  # the phantom's spacing, written as numbers are


def test_without_data_a_bare_2d_file_that_fails_both_probes_reports_the_2d_error(tmp_path):
    """The 3D retry must not hide why the 2D probe failed (here: the network takes 3 channels)."""
    import torch

    from harness.errors import ConfigError

    import warnings

    path = tmp_path / "rgb2d.pt"
    with warnings.catch_warnings():  # TorchScript is deprecated, and still what users export
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.trace(torch.nn.Conv2d(3, 2, 3, padding=1), torch.zeros(1, 3, 8, 8)).save(str(path))
    with pytest.raises(ConfigError, match=r"probe input \(1, 1, 32, 32\)"):
        validate_model(str(path), console=Console(file=io.StringIO()))


def test_validate_model_skips_the_cases_its_training_record_names(tmp_path):
    """It showed (and scored) the data's first case although the model had trained on it."""
    import json
    import shutil
    from pathlib import Path

    import harness
    from harness.datasets.phantom import phantom_dataset
    from harness.training_overlap import image_digests

    resources = Path(harness.__file__).parent / "resources"
    for name in ("reference2d.toml", "reference2d.pt"):
        shutil.copy(resources / name, tmp_path / name)
    manifest = phantom_dataset(2, n=3, seed=0).manifest()
    (tmp_path / "reference2d.training.json").write_text(json.dumps(
        {"seen_images": {"train": image_digests(manifest, ["phantom2d_000"]), "val": image_digests(manifest, ["phantom2d_001"])}}))
    table = validate_model(str(tmp_path / "reference2d.toml"), "phantom2d:n=3", console=Console(file=io.StringIO()))
    text = _render(table)
    assert "phantom2d/phantom2d_002 (the first 2 case(s) were seen in training or validation" in text
