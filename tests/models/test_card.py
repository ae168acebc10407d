"""Model cards: every key parsed, defaults, and one-line ConfigErrors naming the card and key."""
from __future__ import annotations

import pickle

import pytest

from harness.errors import ConfigError
from harness.models import load_card, load_model, reference_card_path
from harness.models.card import default_card, read_card
from tests.models.conftest import card

FULL = '''
[model]
name = "full"
format = "torch"
entry = "tests.models.helpers:threshold"
intended_use = "Research only. Adult MRI."
batch_size = 2
[model.kwargs]
depth = 3
[input]
channels = 1
normalize = "window"
window = [-100, 300]
pad_multiple = [8, 8]
patch_size = [64, 64]
overlap = 0.25
spacing = [1.0, 1.0]
tta_flip_axes = [1, 0]
[output]
kind = "labels"
labels = {1 = "anterior", 2 = "posterior"}
postprocess = "largest_component"
[training]
dataset = "somewhere"
'''


def test_full_card_parses(tmp_path):
    parsed = read_card(card(tmp_path, FULL))
    assert parsed.model.name == "full" and parsed.model.format == "torch"
    assert parsed.model.intended_use.startswith("Research only")
    assert dict(parsed.model.kwargs) == {"depth": 3} and parsed.model.batch_size == 2
    assert parsed.input.window == (-100.0, 300.0) and parsed.input.normalize == "window"
    assert parsed.input.pad_multiple == (8, 8) and parsed.input.patch_size == (64, 64)
    assert parsed.input.overlap == 0.25 and parsed.input.spacing == (1.0, 1.0)
    assert dict(parsed.output.labels) == {1: "anterior", 2: "posterior"}
    assert parsed.input.tta_flip_axes == (0, 1) and parsed.output.postprocess == "largest_component"
    assert parsed.ndim == 2
    as_dict = parsed.to_dict()
    assert as_dict["training"] == {"dataset": "somewhere"}  # extra tables are kept for the report
    assert as_dict["output"]["labels"] == {"1": "anterior", "2": "posterior"}
    assert pickle.loads(pickle.dumps(parsed)).to_dict() == as_dict
    with pytest.raises(TypeError):
        parsed.model.kwargs["depth"] = 4  # type: ignore[index]


def test_defaults_and_relative_paths(tmp_path):
    (tmp_path / "sub").mkdir()
    parsed = read_card(card(tmp_path / "sub", '[model]\nformat = "onnx"\npath = "../m.onnx"\n'))
    assert parsed.model.path == (tmp_path / "m.onnx").resolve()
    assert parsed.model.name == "card"  # the card's file stem
    assert parsed.input.normalize == "none" and parsed.input.pad_multiple == 1
    assert parsed.input.patch_size is None and parsed.input.overlap == 0.5
    assert parsed.output.kind == "logits" and parsed.output.labels is None
    assert parsed.input.tta_flip_axes == () and parsed.output.postprocess == "none"
    assert parsed.model.providers == ("CPUExecutionProvider",)


def test_bare_file_default_card(tmp_path):
    for suffix, fmt in ((".ts", "torchscript"), (".pt", "torchscript"), (".onnx", "onnx")):
        parsed = default_card(tmp_path / f"m{suffix}")
        assert parsed.model.format == fmt and parsed.source is None
    with pytest.raises(ConfigError, match=r"unknown model file suffix '\.h5'"):
        default_card(tmp_path / "m.h5")


BAD = [
    ('[model]\nformat = "keras"\n', r"\[model\] format: unknown format 'keras'; use one of torch, torchscript"),
    ('[model]\nentry = "a:b"\n', r"\[model\] format: missing"),
    ('[model]\nformat = "onnx"\n[input]\nnormalize = "z-score"\n', r"\[input\] normalize: unknown value 'z-score'.*did you mean 'zscore'"),
    ('[model]\nformat = "onnx"\n[input]\nnormalize = "window"\n', r"\[input\] window: normalize = \"window\" needs window"),
    ('[model]\nformat = "onnx"\n[input]\nnormalize = "window"\nwindow = [5, 1]\n', r"\[input\] window: needs lo < hi"),
    ('[model]\nformat = "onnx"\n[input]\nnormalise = "zscore"\n', r"\[input\] normalise: unknown key; did you mean 'normalize'"),
    ('[model]\nformat = "onnx"\n[ouput]\nkind = "logits"\n', r"\[ouput\]: unknown table; did you mean \[output\]"),
    ('[model]\nformat = "onnx"\n[input]\noverlap = 1.0\n', r"\[input\] overlap: must be in \[0, 1\)"),
    ('[model]\nformat = "onnx"\n[input]\nchannels = 0\n', r"\[input\] channels: must be a positive integer"),
    ('[model]\nformat = "onnx"\n[input]\nchannels = "one"\n', r"\[input\] channels: expected int"),
    ('[model]\nformat = "onnx"\n[input]\npad_multiple = [16, 0]\n', r"\[input\] pad_multiple: expected"),
    ('[model]\nformat = "onnx"\n[input]\npatch_size = [60, 64]\npad_multiple = 16\n', r"patch_size.*multiple of pad_multiple"),
    ('[model]\nformat = "onnx"\n[input]\npatch_size = [64, 64]\nspacing = [1, 1, 1]\n', r"axis counts disagree"),
    ('[model]\nformat = "onnx"\n[input]\nspacing = [0, 1]\n', r"\[input\] spacing: must be positive"),
    ('[model]\nformat = "onnx"\n[output]\nkind = "mask"\n', r"\[output\] kind: unknown value 'mask'"),
    ('[model]\nformat = "onnx"\n[output]\nlabels = {a = "x"}\n', r"\[output\] labels: class key 'a' is not an integer"),
    ('[model]\nformat = "callable"\nentry = "a:b"\n', r"\[output\] labels: kind = \"labels\" needs the class names"),
    ('[model]\nformat = "command"\ncommand = "run {input} {output}"\n[output]\nlabels = {1 = "x"}\n',
     r"\[model\] command: must be a list of arguments.*never runs a shell"),
    ('[model]\nformat = "command"\ncommand = ["x", "{input}", "{output}"]\n[output]\nkind = "logits"\n',
     r"\[output\] kind: the command format reads label files"),
    ('[model]\nformat = "command"\ncommand = ["x"]\ntimeout = -1\n[output]\nlabels = {1 = "x"}\n',
     r"\[model\] timeout: must be a positive, finite number"),
    ('[model]\nformat = "command"\ncommand = ["x"]\ntimeout = nan\n[output]\nlabels = {1 = "x"}\n',
     r"\[model\] timeout: must be a positive, finite number of seconds, got nan"),
    ('[model]\nformat = "onnx"\n[input]\nspacing = [inf, 1]\n', r"\[input\] spacing: must be finite numbers"),
    ('[model]\nformat = "onnx"\n[input]\nspacing = [nan, 1]\n', r"\[input\] spacing: must be finite numbers"),
    ('[model]\nformat = "onnx"\n[input]\nnormalize = "window"\nwindow = [-inf, inf]\n',
     r"\[input\] window: must be finite numbers"),
    ('[model]\nformat = "onnx"\n[input]\nnormalize = "zscore"\nwindow = [0, 1]\n',
     r"\[input\] window: is read only with normalize = \"window\" \(this card: normalize = \"zscore\"\)"),
    ('[model]\nformat = "onnx"\n[input]\nwindow = [0, 1]\n', r"\[input\] window: is read only with normalize"),
    ('[model]\nformat = "callable"\nentry = "a:b"\nbatched = "yes"\n[output]\nlabels = {1 = "x"}\n',
     r"\[model\] batched: expected bool"),
    ('[model]\nformat = "command"\ncommand = ["x"]\nfile_format = "dicom"\n[output]\nlabels = {1 = "x"}\n',
     r"\[model\] file_format: unknown value 'dicom'"),
    ('[model\nformat = "onnx"\n', r"not valid TOML"),
    ('[model]\nformat = "onnx"\n[input]\ntta_shifts = 1\n', r"\[input\] tta_shifts: expected bool, got 1"),
    ('[model]\nformat = "onnx"\n[input]\ntta_flip_axes = 1\n', r"\[input\] tta_flip_axes: expected a list of distinct"),
    ('[model]\nformat = "onnx"\n[input]\ntta_flip_axes = [0, 0]\n', r"\[input\] tta_flip_axes: expected a list of distinct"),
    ('[model]\nformat = "onnx"\n[input]\ntta_flip_axes = [2]\nspacing = [1, 1]\n', r"tta_flip_axes: \[2\]: the spatial axes are 0\.\.1"),
    ('[model]\nformat = "onnx"\n[output]\nlabels = {1 = "a", 01 = "b"}\n',
     r"\[output\] labels: class 1 is named twice \('a' and 'b'\); keep one key per class"),
    ('[model]\nformat = "onnx"\n[output]\npostprocess = "largest"\n', r"\[output\] postprocess: unknown value 'largest'.*largest_component"),
]


@pytest.mark.parametrize("text,pattern", BAD, ids=[p for _, p in BAD])
def test_bad_cards_raise_one_line_config_errors(tmp_path, text, pattern):
    path = card(tmp_path, text)
    with pytest.raises(ConfigError, match=pattern) as info:
        load_model(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message


def test_missing_card_and_model_files(tmp_path):
    with pytest.raises(ConfigError, match=r"model card .*nope\.toml does not exist"):
        load_card(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match=r"model 'pkg.mod:fn' does not exist; pass a \.toml model card"):
        load_card("pkg.mod:fn")


def test_reference_spec_names_the_bundled_card():
    assert reference_card_path(2).name == "reference2d.toml"
    assert reference_card_path(3).name == "reference3d.toml"
    with pytest.raises(ConfigError):
        reference_card_path(4)
    if not reference_card_path(2).is_file():
        with pytest.raises(ConfigError, match="bundled reference model card"):
            load_card(None)
        with pytest.raises(ConfigError, match="bundled reference model card"):
            load_card("reference")
