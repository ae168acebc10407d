"""Broken models and model files: one-line errors naming the card and the fix, no lost run."""
from __future__ import annotations

import shutil
import sys
import warnings

import numpy as np
import pytest
import torch

from harness.errors import ConfigError, ModelError
from harness.models import load_model
from tests.models.conftest import Exported, card

LABELS = '[output]\nlabels = {1 = "organ"}\n'


def _callable(tmp_path, entry: str) -> str:
    return card(tmp_path, f'[model]\nformat = "callable"\nentry = "{entry}"\n{LABELS}', "callable.toml")


def test_a_model_calling_sys_exit_is_a_model_error(tmp_path, case2d):
    model = load_model(_callable(tmp_path, "tests.models.helpers:exits"))
    with pytest.raises(ModelError, match=r"^case c1: model .* raised SystemExit\(2\) \(it called sys\.exit\)"):
        model.predict(case2d.image, case2d.spacing, case_id="c1")


@pytest.mark.parametrize(("entry", "fragment"), [
    ("cancelled", r"CancelledError: inference request cancelled"),
    ("generator_exit", r"GeneratorExit: closed"),
    ("unprintable", r"_Unprintable: \(its message could not be read\)"),
])
def test_base_exceptions_and_broken_messages_are_model_errors(tmp_path, case2d, entry, fragment):
    """asyncio.CancelledError is a BaseException: it once escaped as a traceback with exit 1."""
    model = load_model(_callable(tmp_path, f"tests.models.helpers:{entry}"))
    with pytest.raises(ModelError, match=rf"^case c1: model .* raised {fragment}"):
        model.predict(case2d.image, case2d.spacing, case_id="c1")


@pytest.mark.parametrize(("source", "fragment"), [
    ("raise RuntimeError('MODEL_HOME is not set')\n", r"RuntimeError: MODEL_HOME is not set"),
    ("def f(:\n", r"SyntaxError"),
    ("import sys\nsys.exit(1)\n", r"SystemExit: 1"),
])
def test_a_module_failing_at_import_is_a_config_error(tmp_path, monkeypatch, source, fragment):
    (tmp_path / "broken_model_module.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "broken_model_module", raising=False)
    with pytest.raises(ConfigError, match=r"\[model\] entry 'broken_model_module:f': importing module "
                                          rf"'broken_model_module' failed \({fragment}") as info:
        load_model(_callable(tmp_path, "broken_model_module:f"))
    assert "\n" not in str(info.value)


def test_a_factory_failing_is_a_config_error(tmp_path):
    text = '[model]\nformat = "torch"\nentry = "tests.models.helpers:factory_raises_key_error"\n' + LABELS
    with pytest.raises(ConfigError, match=r"\[model\] entry tests\.models\.helpers:factory_raises_key_error raised "
                                          r"KeyError: 'missing_key'; fix the factory"):
        load_model(card(tmp_path, text))


def test_mismatched_weights_name_the_keys(unet2d: Exported):
    text = unet2d.torch_card.read_text().replace("out_channels = 3", "out_channels = 4")
    with pytest.raises(ConfigError, match=r"do not fit the network .*size mismatch for .*torch\.Size") as info:
        load_model(card(unet2d.folder, text, "mismatch.toml"))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("content", "fragment"), [
    (b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 12\n", r"a Git LFS pointer.*git lfs pull"),
    (b"<!DOCTYPE html><html>Not found</html>", r"text \(an HTML page or JSON\?\).*fetch the file again"),
    (b"hello, not weights", r"not a readable torch weights file \(KeyError"),
    (b"", r"not a readable torch weights file"),
])
def test_files_that_are_not_weights_are_named(unet2d: Exported, content: bytes, fragment: str):
    (unet2d.folder / "placeholder.pt").write_bytes(content)
    text = unet2d.torch_card.read_text().replace('"unet.pt"', '"placeholder.pt"')
    with pytest.raises(ConfigError, match=rf"\[model\] weights: placeholder\.pt .*{fragment}") as info:
        load_model(card(unet2d.folder, text, "placeholder.toml"))
    assert "\n" not in str(info.value)


def test_torchscript_on_a_missing_gpu_names_the_device(unet2d: Exported):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    text = f'[model]\nformat = "torchscript"\npath = "{unet2d.ts}"\ndevice = "cuda"\n{LABELS}'
    with pytest.raises(ConfigError, match=r"\[model\] device: cannot use 'cuda'"):
        load_model(card(unet2d.folder, text, "ts-cuda.toml"))


class _FixedShape(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(-1, 7, 5)


def test_a_probe_failure_is_one_line(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # exporting TorchScript is set-up here
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.script(_FixedShape()), str(tmp_path / "fixed.ts"))
    with pytest.raises(ConfigError, match=r"could not run the model on a probe input .*shape '\[-1, 7, 5\]' is "
                                          r"invalid.*patch_size") as info:
        load_model(tmp_path / "fixed.ts")
    assert "\n" not in str(info.value) and "Traceback" not in str(info.value)


class _ChannelLast(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, 1 - x, x * 0], dim=1).permute(0, 2, 3, 1)  # (N, H, W, 3)


def test_a_channel_last_bare_file_is_refused_at_load(tmp_path):
    """The probe read axis 1 (the image's height, 32) as the class count and declared class1 ..
    class31; every case then failed with a shape error quoting the probe's width as K."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.script(_ChannelLast()), str(tmp_path / "last.ts"))
    with pytest.raises(ConfigError, match=r"returned shape \(1, 32, 32, 3\) for input \(1, 1, 32, 32\): its spatial "
                                          r"axes \(32, 3\) are not the input's \(32, 32\).*channel-first") as info:
        load_model(tmp_path / "last.ts")
    assert "\n" not in str(info.value)


def test_a_home_directory_that_cannot_be_expanded_is_named(tmp_path):
    text = '[model]\nformat = "torchscript"\npath = "~no_such_user_here/m.ts"\n' + LABELS
    with pytest.raises(ConfigError, match=r"\[model\] path: cannot expand '~no_such_user_here/m\.ts'"):
        load_model(card(tmp_path, text))


def test_tta_axes_the_data_lacks_are_reported_before_the_run(tmp_path):
    text = '[model]\nformat = "callable"\nentry = "tests.models.helpers:threshold"\n[input]\n' \
           'tta_flip_axes = [2]\n' + LABELS
    model = load_model(card(tmp_path, text))
    assert model.check_input(channels=1, ndim=3) == []
    assert "tta_flip_axes [2] names an axis the 2D data does not have" in model.check_input(channels=1, ndim=2)[0]


def test_a_model_folder_hashes_the_same_wherever_it_lies(tmp_path):
    text = '[model]\nformat = "command"\npath = "results"\ncommand = ["{python}", "{input}", "{output}"]\n' + LABELS
    cards = []
    for name in ("a", "b"):
        (tmp_path / name / "results" / "fold_0").mkdir(parents=True)
        (tmp_path / name / "results" / "fold_0" / "checkpoint.pth").write_bytes(b"weights")
        (tmp_path / name / "results" / "plans.json").write_text("{}")
        cards.append(card(tmp_path / name, text))
    first, second = (load_model(c).sha256 for c in cards)
    assert first == second
    shutil.move(tmp_path / "b" / "results" / "plans.json", tmp_path / "b" / "results" / "fold_0" / "plans.json")
    assert load_model(cards[1]).sha256 != first  # a file moved inside the folder


def test_png_files_refuse_values_a_png_cannot_hold(tmp_path):
    from harness.models.command import write_png

    with pytest.raises(ModelError, match=r'holds integers 0\.\.65535.*values -1000\.\.300.*file_format = "nifti"'):
        write_png(np.array([[-1000.0, 0.0], [40.0, 300.0]]), tmp_path / "ct.png", "none")
    with pytest.raises(ModelError, match=r"with fractions"):
        write_png(np.array([[0.25, 0.5]]), tmp_path / "f.png", "none")
    write_png(np.array([[0.0, 0.5, 1.0]]), tmp_path / "ok.png", "minmax")  # scaled to 0..255
    write_png(np.array([[0.0, 1000.0]]), tmp_path / "ok16.png", "none")  # 16-bit


def test_png_with_zscored_input_is_refused_in_the_card(tmp_path):
    text = '[model]\nformat = "command"\ncommand = ["{python}", "{input}", "{output}"]\nfile_format = "png"\n' \
           '[input]\nnormalize = "zscore"\n' + LABELS
    with pytest.raises(ConfigError, match=r"\[model\] file_format: PNG holds integers"):
        load_model(card(tmp_path, text))
    text = text.replace('"zscore"', '"minmax"')
    model = load_model(card(tmp_path, text))
    assert model.check_input(channels=1, ndim=2) == []
    assert 'file_format = "png" holds 2D images only' in model.check_input(channels=1, ndim=3)[0]


@pytest.mark.parametrize(("fmt", "key", "value", "fragment"), [
    ("onnx", "device", '"cuda"', r'use providers = \["CUDAExecutionProvider"'),
    ("onnx", "weights", '"w.pt"', "the file holds the network and its weights"),
    ("torchscript", "entry", '"pkg.mod:f"', "the file holds the network and its weights"),
    ("torchscript", "providers", '["CPUExecutionProvider"]', "use device"),
    ("torch", "timeout", "5", r"only to command; an in-process model is timed out by `harness run --item-timeout`"),
    ("onnx", "batched", "true", "only to callable"),
    ("callable", "file_format", '"png"', "only to command"),
    ("callable", "device", '"cuda"', "only to torch / torchscript"),
    ("command", "kwargs", "{a = 1}", "only to torch"),
])
def test_keys_a_format_would_ignore_are_refused(tmp_path, fmt, key, value, fragment):
    text = f'[model]\nformat = "{fmt}"\npath = "m.{fmt}"\n{key} = {value}\n' + LABELS
    with pytest.raises(ConfigError, match=rf'\[model\] {key}: does not apply to format = "{fmt}" \(.*{fragment}'):
        load_model(card(tmp_path, text))


def test_sigmoid_probabilities_under_kind_logits_are_refused(tmp_path, case2d):
    """A one-channel sigmoid head read as logits marks every voxel foreground (Dice of a full mask,
    'OK' in validate-model): refused, naming kind = "probabilities"; with that kind it segments."""
    def build(kind: str):
        text = (f'[model]\nformat = "callable"\nentry = "tests.models.helpers:sigmoid_probabilities"\n'
                f'[output]\nkind = "{kind}"\nlabels = {{1 = "organ"}}\n')
        return load_model(card(tmp_path, text, f"{kind}.toml"))

    with pytest.raises(ModelError, match=r'every value in \[0, 1\] under kind = "logits".*kind = "probabilities"'):
        build("logits").predict(case2d.image, case2d.spacing)
    labels = build("probabilities").predict(case2d.image, case2d.spacing).labels
    assert 0 < labels.mean() < 1  # foreground and background, not everything


@pytest.mark.parametrize(("fmt", "key"), [("torchscript", "path"), ("onnx", "path"), ("torch", "weights")])
def test_a_model_file_that_is_a_folder_is_named_so(tmp_path, unet2d: Exported, fmt, key):
    (tmp_path / "weights").mkdir()
    text = (unet2d.torch_card.read_text().replace('weights = "unet.pt"', 'weights = "weights"') if fmt == "torch"
            else f'[model]\nformat = "{fmt}"\n{key} = "weights"\n{LABELS}')
    with pytest.raises(ConfigError, match=rf"\[model\] {key}: .*weights is a folder, not a file; fix the path"):
        load_model(card(tmp_path, text))


def _two_class_graph(path, batch, elem_type=None):
    """An ONNX graph (batch, 1, 16, 16) -> (batch, 2, 16, 16): scores 1 - x and x."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    elem = TensorProto.FLOAT if elem_type is None else elem_type
    one = helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])
    nodes = [helper.make_node("Cast", ["x"], ["xf"], to=TensorProto.FLOAT),
             helper.make_node("Sub", ["one", "xf"], ["bg"]),
             helper.make_node("Concat", ["bg", "xf"], ["y"], axis=1)]
    graph = helper.make_graph(nodes, "two", [helper.make_tensor_value_info("x", elem, [batch, 1, 16, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 2, 16, 16])], [one])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_an_onnx_graph_with_a_fixed_batch_above_one_is_filled(tmp_path):
    """A graph exported with batch 2 failed every item with onnxruntime's 'Got: 1 Expected: 2'."""
    pytest.importorskip("onnxruntime")
    model = load_model(_two_class_graph(tmp_path / "b2.onnx", 2), ndim=2)
    images = [np.full((1, 16, 16), v, np.float32) for v in (0.9, 0.1, 0.8)]
    labels = [p.labels for p in model.predict_batch(images, [(1.0, 1.0)] * 3)]
    assert [int(lab.max()) for lab in labels] == [1, 0, 1]
    assert model.predict(images[1], (1.0, 1.0)).labels.max() == 0


def test_an_onnx_graph_with_an_integer_input_is_refused_at_load(tmp_path):
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto

    with pytest.raises(ConfigError, match=r"u8\.onnx takes tensor\(uint8\) input 'x'; the harness feeds float images"):
        load_model(_two_class_graph(tmp_path / "u8.onnx", "n", TensorProto.UINT8), ndim=2)


@pytest.mark.parametrize("save, said", [
    (lambda net, path: torch.save(net.state_dict(), path), r"it is a state_dict \(weights without the network's "
                                                           r'code\); write a card with format = "torch"'),
    (lambda net, path: torch.save(net, path), r"it holds a pickled Python object \(a whole model saved with "
                                              r"torch\.save\(model\)\).*torch\.jit\.script"),
    (lambda net, path: path.write_bytes(b"PK\x03\x04 cut short"), "torch cannot read it"),
])
def test_a_bare_torch_file_that_is_not_torchscript_says_what_it_holds(tmp_path, save, said):
    """Both a state_dict and a pickled model got torch's 'your checkpoint file is corrupted' text."""
    path = tmp_path / "net.pt"
    save(torch.nn.Conv2d(1, 2, 3), path)
    with pytest.raises(ConfigError, match=rf"net\.pt is not a TorchScript archive: {said}") as info:
        load_model(path)
    assert "corrupted" not in str(info.value)


def test_a_pickled_model_as_card_weights_is_refused_without_torch_s_unsafe_advice(tmp_path):
    torch.save(torch.nn.Conv2d(1, 2, 3), tmp_path / "whole.pth")
    (tmp_path / "m.toml").write_text('[model]\nformat = "torch"\nentry = "torch.nn:Conv2d"\nweights = "whole.pth"\n'
                                     '[model.kwargs]\nin_channels = 1\nout_channels = 2\nkernel_size = 3\n'
                                     '[output]\nlabels = {1 = "a"}\n')
    with pytest.raises(ConfigError, match=r"\(Unsupported global: GLOBAL torch\.nn\.modules\.conv\.Conv2d was not an "
                                          r"allowed global by default\): a pickled Python object") as info:
        load_model(tmp_path / "m.toml")
    assert "weights_only` set to `False`" not in str(info.value) and "will likely succeed" not in str(info.value)


def test_a_torchscript_archive_that_fails_to_load_keeps_torch_s_reason(tmp_path, monkeypatch):
    """An archive using an unknown custom op was called 'damaged' and the op's name was lost."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.script(_ChannelLast()), str(tmp_path / "custom.ts"))

    def unknown_op(*args, **kwargs):
        raise RuntimeError("Unknown builtin op: myns::foo.\nHere are some suggestions: ...")

    monkeypatch.setattr(torch.jit, "load", unknown_op)
    with pytest.raises(ConfigError, match=r"custom\.ts is a TorchScript archive that this torch cannot load "
                                          r"\(Unknown builtin op: myns::foo\.\)"):
        load_model(tmp_path / "custom.ts")
