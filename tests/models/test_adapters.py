"""torch / torchscript / onnx adapters: same network, same labels; differentiability; safety."""
from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

from harness.errors import ConfigError
from harness.models import Prediction, load_model
from harness.models.preprocessing import normalize
from tests.models.conftest import Exported, card

COMMON = '''
[input]
channels = 1
normalize = "zscore"
pad_multiple = 2
[output]
labels = {1 = "organ", 2 = "lesion"}
'''


def _three(exported: Exported):
    ts = card(exported.folder, f'[model]\nformat = "torchscript"\npath = "unet.ts"\n{COMMON}', "ts.toml")
    onnx = card(exported.folder, f'[model]\nformat = "onnx"\npath = "unet.onnx"\n{COMMON}', "onnx.toml")
    return [load_model(p, ndim=exported.ndim) for p in (exported.torch_card, ts, onnx)]


@pytest.mark.parametrize("ndim", [2, 3])
def test_torch_torchscript_onnx_give_identical_labels(ndim, unet2d, unet3d, case2d, case3d):
    exported, case = (unet2d, case2d) if ndim == 2 else (unet3d, case3d)
    models = _three(exported)
    preds = [m.predict(case.image, case.spacing, case_id=case.case_id) for m in models]
    for m, p in zip(models, preds):
        assert isinstance(p, Prediction)
        assert p.labels.shape == case.label.shape and p.labels.dtype == np.int64
        assert p.probabilities is not None and p.probabilities.shape == (3, *case.label.shape)
        np.testing.assert_allclose(p.probabilities.sum(axis=0), 1.0, atol=1e-5)
        assert m.labels == {1: "organ", 2: "lesion"}
    assert len(np.unique(preds[0].labels)) > 1  # not a trivial constant map
    for p in preds[1:]:
        np.testing.assert_array_equal(p.labels, preds[0].labels)
        np.testing.assert_allclose(p.probabilities, preds[0].probabilities, atol=1e-4)
    # and the adapters agree with running the network by hand
    x = torch.from_numpy(normalize(case.image, "zscore")[None])
    with torch.no_grad():
        expected = exported.network(x)[0].argmax(0).numpy()
    np.testing.assert_array_equal(preds[0].labels, expected)


def test_attributes_and_card(unet2d):
    model = load_model(unet2d.torch_card)
    assert model.name == "tiny-unet-2d"
    assert model.differentiable is True
    assert model.card["model"]["intended_use"] == "tests only"
    assert model.card["model"]["kwargs"]["channels"] == [4, 8]
    assert model.card["source"] == str(unet2d.torch_card.resolve())
    import hashlib
    assert model.sha256 == hashlib.sha256((unet2d.folder / "unet.pt").read_bytes()).hexdigest()
    assert load_model(unet2d.onnx).differentiable is False


def test_bare_files_work_with_defaults(unet2d, unet3d, case2d, case3d):
    for exported, case in ((unet2d, case2d), (unet3d, case3d)):
        for path in (exported.ts, exported.onnx):
            model = load_model(path, ndim=exported.ndim)
            assert model.labels == {1: "class1", 2: "class2"}  # probed from the output
            assert model.name == path.name
            pred = model.predict(case.image, case.spacing)
            x = torch.from_numpy(case.image[None])  # normalize = "none" by default
            with torch.no_grad():
                expected = exported.network(x)[0].argmax(0).numpy()
            np.testing.assert_array_equal(pred.labels, expected)


def test_pt_suffix_means_torchscript(unet2d, case2d, tmp_path):
    pt = tmp_path / "model.pt"
    pt.write_bytes(unet2d.ts.read_bytes())
    assert load_model(pt).predict(case2d.image, case2d.spacing).labels.shape == case2d.label.shape
    with pytest.raises(ConfigError, match=r"not a TorchScript archive.*format = \"torch\""):
        load_model(unet2d.folder / "unet.pt")  # a state_dict needs a card with its factory


def test_read_only_and_non_float_inputs(unet2d, case2d):
    model = load_model(unet2d.torch_card)
    expected = model.predict(case2d.image, case2d.spacing).labels
    frozen = case2d.image.copy()
    frozen.flags.writeable = False
    np.testing.assert_array_equal(model.predict(frozen, case2d.spacing).labels, expected)
    as_double = model.predict(case2d.image.astype(np.float64), case2d.spacing).labels
    np.testing.assert_array_equal(as_double, expected)


def test_unavailable_device_is_a_config_error(unet2d, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    text = unet2d.torch_card.read_text().replace('format = "torch"', 'format = "torch"\ndevice = "cuda:0"')
    with pytest.raises(ConfigError, match=r"\[model\] device: cannot use 'cuda:0'"):
        load_model(card(unet2d.folder, text, "cuda.toml"))


def test_batching_equals_single(unet2d, case2d):
    model = load_model(unet2d.torch_card)
    other = case2d.image[:, ::-1].copy()
    batch = model.predict_batch([case2d.image, other], [case2d.spacing] * 2, case_ids=["a", "b"])
    np.testing.assert_array_equal(batch[0].labels, model.predict(case2d.image, case2d.spacing).labels)
    np.testing.assert_array_equal(batch[1].labels, model.predict(other, case2d.spacing).labels)


def test_torch_logits_is_differentiable_and_matches_predict(unet2d, case2d):
    model = load_model(unet2d.torch_card)
    ts = load_model(card(unet2d.folder, f'[model]\nformat = "torchscript"\npath = "unet.ts"\n{COMMON}', "ts.toml"))
    x = torch.from_numpy(case2d.image[None, :, :127, :125].copy()).requires_grad_(True)  # odd size: padded
    for m in (model, ts):
        logits = m.torch_logits(x)
        assert logits.shape == (1, 3, 127, 125)
        expected = m.predict(case2d.image[:, :127, :125], case2d.spacing).labels
        np.testing.assert_array_equal(logits[0].argmax(0).detach().numpy(), expected)
        x.grad = None
        logits[:, 1].sum().backward()
        assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_torch_logits_gradient_includes_normalisation(unet2d, case2d):
    """zscore makes the logits invariant to intensity scaling: the gradient must see that."""
    model = load_model(unet2d.torch_card)
    x = torch.from_numpy(case2d.image[None]).requires_grad_(True)
    model.torch_logits(x)[:, 1].sum().backward()
    # d/dt f(t*x) at t=1 = <grad, x> = 0 for a scale-invariant f
    grad, image = x.grad.detach(), x.detach()
    directional = float((grad * image).sum())
    assert abs(directional) < 1e-3 * float(grad.abs().sum() * image.abs().max())


def test_model_pickles_by_reloading(unet2d, case2d):
    model = load_model(unet2d.torch_card)
    clone = pickle.loads(pickle.dumps(model))
    assert clone.sha256 == model.sha256
    np.testing.assert_array_equal(clone.predict(case2d.image, case2d.spacing).labels,
                                  model.predict(case2d.image, case2d.spacing).labels)
    onnx = load_model(unet2d.onnx)
    assert pickle.loads(pickle.dumps(onnx)).labels == onnx.labels


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo harness-test-should-never-run",))


@pytest.mark.parametrize("how", ["torch.save", "pickle"])
def test_code_executing_pickle_is_refused(unet2d, tmp_path, how, capfd):
    weights = tmp_path / "evil.pt"
    payload = {"conv.weight": torch.zeros(1), "x": _Evil()}
    if how == "torch.save":
        torch.save(payload, weights)
    else:
        with weights.open("wb") as fh:
            pickle.dump(payload, fh)
    text = unet2d.torch_card.read_text().replace('weights = "unet.pt"', f'weights = "{weights}"')
    with pytest.raises(ConfigError, match=r"refused to load evil\.pt.*run code.*state_dict") as info:
        load_model(card(tmp_path, text))
    assert "\n" not in str(info.value) and "[model] weights" in str(info.value)
    assert "should-never-run" not in capfd.readouterr().out


def test_torch_config_errors(unet2d, tmp_path):
    base = unet2d.torch_card.read_text()
    cases = {
        "missing weights": (base.replace('"unet.pt"', '"nope.pt"'), r"\[model\] weights: file .*nope\.pt does not exist"),
        "bad entry": (base.replace("monai.networks.nets:UNet", "monai.networks.nets:Nope"), r"\[model\] entry.*no attribute"),
        "bad module": (base.replace("monai.networks.nets:UNet", "no_such_pkg.mod:f"), r"cannot import module 'no_such_pkg\.mod'"),
        "bad kwargs": (base.replace("num_res_units = 0", "num_res_unitz = 0"), r"\[model\.kwargs\] do not fit"),
        "weights mismatch": (base.replace("out_channels = 3", "out_channels = 4"), r"do not fit the network"),
        "no entry": (base.replace('entry = "monai.networks.nets:UNet"\n', ""), r"\[model\] entry: missing"),
        "not a module": ('[model]\nformat = "torch"\nentry = "numpy:zeros"\n[model.kwargs]\nshape = 3\n',
                         r"returned ndarray, not a torch\.nn\.Module"),
        "garbage weights": (base.replace('"unet.pt"', '"garbage.pt"'), r"refused to load garbage\.pt"),
    }
    (unet2d.folder / "garbage.pt").write_bytes(b"definitely not a checkpoint")
    for name, (text, pattern) in cases.items():
        path = card(unet2d.folder, text, f"bad-{name.replace(' ', '-')}.toml")
        with pytest.raises(ConfigError, match=pattern) as info:
            load_model(path)
        assert str(path) in str(info.value), name


def test_onnx_config_errors(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not onnx")
    with pytest.raises(ConfigError, match=r"not a loadable ONNX model"):
        load_model(bad)
    text = f'[model]\nformat = "onnx"\npath = "{bad}"\nproviders = ["NoSuchProvider"]\n'
    with pytest.raises(ConfigError, match=r"providers: none of \['NoSuchProvider'\] is available .*add \"CPUExecutionProvider\""):
        load_model(card(tmp_path, text))
    with pytest.raises(ConfigError, match=r"does not exist"):
        load_model(tmp_path / "missing.onnx")


def test_onnx_fixed_shape_becomes_patch_size(unet2d, tmp_path, case2d):
    """A static-shape export (batch 1, 64x64) runs through sliding windows without a card."""
    import warnings
    path = tmp_path / "static.onnx"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"You are using the legacy TorchScript-based ONNX export",
                                category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=r"The feature will be removed", category=DeprecationWarning)
        torch.onnx.export(unet2d.network, (torch.zeros(1, 1, 64, 64),), str(path), dynamo=False)
    model = load_model(path)
    assert model.patch_size == (64, 64) and model.batching is False
    import io

    from rich.console import Console

    from harness.models.command_line import validate_model

    table = validate_model(str(path), console=Console(file=io.StringIO()))
    rows = dict(zip(table.columns[0]._cells, table.columns[1]._cells))
    assert "patch_size=(64, 64)" in rows["preprocessing"]  # the effective size, not the card's None
    assert model.check_input(channels=2, ndim=2)  # the graph takes one channel
    pred = model.predict(case2d.image, case2d.spacing)
    assert pred.labels.shape == case2d.label.shape
    # providers is a preference list: one this installation lacks is skipped, as onnxruntime does
    # (docs/models.md's CUDA-then-CPU card was refused on every CPU-only install)
    text = f'[model]\nformat = "onnx"\npath = "{path}"\nproviders = ["NoSuchProvider", "CPUExecutionProvider"]\n'
    fallback = load_model(card(tmp_path, text))
    assert fallback.runs_on == "CPUExecutionProvider (NoSuchProvider not available here)"
    np.testing.assert_array_equal(fallback.predict(case2d.image, case2d.spacing).labels, pred.labels)
