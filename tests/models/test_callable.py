"""The callable adapter, and every output failure mode (ModelError naming the case and reason)."""
from __future__ import annotations

import hashlib
import inspect

import numpy as np
import pytest

from harness.errors import ConfigError, ModelError
from harness.models import load_model
from tests.models import helpers
from tests.models.conftest import card


def _model(tmp_path, entry: str, *, kind: str = "labels", extra: str = "", labels: str = '{1 = "organ"}'):
    text = f'''[model]
format = "callable"
entry = "tests.models.helpers:{entry}"
{extra}
[output]
kind = "{kind}"
labels = {labels}
'''
    return load_model(card(tmp_path, text, f"{entry}.toml"))


def test_callable_thresholds_a_phantom(tmp_path, case2d, case3d):
    model = _model(tmp_path, "threshold")
    assert model.differentiable is False and model.labels == {1: "organ"}
    assert model.sha256 == hashlib.sha256(inspect.getsource(helpers.threshold).encode()).hexdigest()
    for case in (case2d, case3d):
        pred = model.predict(case.image, case.spacing)
        np.testing.assert_array_equal(pred.labels, case.image[0] > helpers.THRESHOLD)
        assert pred.probabilities is None and pred.labels.dtype == np.int64


def test_callable_gets_spacing_when_it_asks(tmp_path, case3d):
    model = _model(tmp_path, "threshold_spacing", labels='{1 = "a", 2 = "b"}')
    pred = model.predict(case3d.image, case3d.spacing)  # spacing (2, 1, 1): largest is axis 0 -> 1
    assert set(np.unique(pred.labels)) == {0, 1}


def test_batched_callable(tmp_path, case2d):
    model = _model(tmp_path, "threshold_batched", extra="batched = true")
    images = [case2d.image, case2d.image * 0.5]
    preds = model.predict_batch(images, [case2d.spacing] * 2)
    np.testing.assert_array_equal(preds[1].labels, case2d.image[0] * 0.5 > helpers.THRESHOLD)


def test_score_callable_gives_probabilities(tmp_path, case2d):
    model = _model(tmp_path, "scores", kind="logits")
    pred = model.predict(case2d.image, case2d.spacing)
    assert pred.probabilities.shape == (2, *case2d.label.shape)
    np.testing.assert_array_equal(pred.labels, case2d.image[0] > helpers.THRESHOLD)


FAILURES = [
    ("with_nan", "logits", r"case c1: output contains 1 NaN and 0 Inf values"),
    ("with_inf", "logits", r"case c1: output contains 0 NaN and 1 Inf values"),
    ("wrong_shape", "labels", r"case c1: output shape \(1, 127, 128\) does not match the expected label map"),
    ("scores", "labels", r"case c1: output shape \(1, 2, 128, 128\) does not match the expected label map"),
    ("threshold", "logits", r"case c1: output shape \(1, 128, 128\) does not match the expected \(N, K, \*spatial\)"),
    ("unknown_label", "labels", r"case c1: predicted label\(s\) \[7\] are not among the declared classes \[0, 1\]"),
    ("fractional_labels", "labels", r"case c1: label map output holds non-integer values"),
    ("bad_probabilities", "probabilities", r"case c1: kind = \"probabilities\" but values span"),
    ("crashes", "labels", r"case c1: model '.*' raised RuntimeError: out of memory on purpose"),
    ("complex_scores", "logits", r"case c1: output has complex dtype complex64; return real scores or labels"),
    ("uint64_max", "labels", r"case c1: label map output holds 18446744073709551615, not a declared class"),
]


@pytest.mark.parametrize("entry,kind,pattern", FAILURES, ids=[f[0] + "-" + f[1] for f in FAILURES])
def test_bad_outputs_raise_model_error(tmp_path, case2d, entry, kind, pattern):
    model = _model(tmp_path, entry, kind=kind)
    with pytest.raises(ModelError, match=pattern) as info:
        model.predict(case2d.image, case2d.spacing, case_id="c1")
    assert "\n" not in str(info.value)


def test_wrong_class_count_is_a_shape_error(tmp_path, case2d):
    model = _model(tmp_path, "scores", kind="logits", labels='{1 = "a", 2 = "b"}')
    with pytest.raises(ModelError, match=r"K = background \+ classes \[1, 2\]"):
        model.predict(case2d.image, case2d.spacing)


def test_bad_inputs_raise_model_error(tmp_path, case2d):
    model = _model(tmp_path, "threshold", extra="", labels='{1 = "organ"}')
    strict = load_model(card(tmp_path, '[model]\nformat = "callable"\nentry = "tests.models.helpers:threshold"\n'
                                       '[input]\nchannels = 2\nndim = 3\n[output]\nlabels = {1 = "x"}\n', "strict.toml"))
    with pytest.raises(ModelError, match=r"expects 2 channel\(s\).*data has 1.*is 3D, data is 2D"):
        strict.predict(case2d.image, case2d.spacing, case_id="c1")
    assert strict.check_input(channels=2, ndim=3) == []
    with pytest.raises(ModelError, match=r"spacing \(1\.0,\) needs one value per spatial axis"):
        model.predict(case2d.image, (1.0,))
    with pytest.raises(ModelError, match=r"input must be a real-valued \(C, \*spatial\) array"):
        model.predict(case2d.image[0, 0], (1.0,))
    with pytest.raises(ModelError, match=r"input must be a real-valued .* got complex64"):  # not a cast that drops
        model.predict(case2d.image.astype(np.complex64), case2d.spacing)  # the imaginary part with a warning
    image = case2d.image.copy()
    image[0, :2, 0] = np.inf
    with pytest.raises(ModelError, match=r"case c1: input image has 2 NaN or infinite value\(s\)"):
        model.predict(image, case2d.spacing, case_id="c1")
    for spacing, said in ((None, "a sequence of numbers"), (("a", 1), "a sequence of numbers"),
                          ((-1.0, 1.0), r"positive, finite mm per spatial axis, got \(-1\.0, 1\.0\)")):
        with pytest.raises(ModelError, match=f"spacing must be {said}"):
            model.predict(case2d.image, spacing)


def test_callable_config_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"\[model\] entry: missing"):
        load_model(card(tmp_path, '[model]\nformat = "callable"\n[output]\nlabels = {1 = "x"}\n'))
    with pytest.raises(ConfigError, match=r"is not callable"):
        _model(tmp_path, "not_a_function")
    with pytest.raises(ConfigError, match=r"must look like 'package.module:attribute'"):
        load_model(card(tmp_path, '[model]\nformat = "callable"\nentry = "nocolon"\n[output]\nlabels = {1 = "x"}\n'))


def test_multi_line_exception_messages_become_one_line(tmp_path, case2d, monkeypatch):
    from tests.models import helpers as h

    def noisy(image):
        raise ValueError("first line\nsecond line\n" + "x" * 2000)

    monkeypatch.setattr(h, "crashes", noisy)
    model = _model(tmp_path, "crashes")
    with pytest.raises(ModelError) as info:
        model.predict(case2d.image, case2d.spacing, case_id="c9")
    message = str(info.value)
    assert message.startswith("case c9: model") and "first line second line" in message
    assert "\n" not in message and len(message) < 600
