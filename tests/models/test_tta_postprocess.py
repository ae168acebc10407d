"""Card-driven test-time flip augmentation (``[input] tta_flip_axes``) and label-map cleaning
(``[output] postprocess``), for every adapter through the shared pipeline."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from harness.errors import ModelError
from harness.models import load_model
from harness.models.base import softmax
from tests.models import helpers
from tests.models.conftest import card


def _model(tmp_path, entry: str, *, kind: str, input_: str = "", output: str = ""):
    text = f'''[model]
format = "callable"
entry = "tests.models.helpers:{entry}"
[input]
{input_}
[output]
kind = "{kind}"
labels = {{1 = "organ"}}
{output}
'''
    tmp_path.mkdir(parents=True, exist_ok=True)
    return load_model(card(tmp_path, text, f"{entry}.toml"))


@pytest.mark.parametrize("axes", [[1], [0, 1]])
def test_tta_averages_probabilities_over_mirrored_copies(tmp_path, case2d, axes) -> None:
    model = _model(tmp_path, "ramp_scores", kind="logits", input_=f"tta_flip_axes = {axes}")
    plain = _model(tmp_path / "plain", "ramp_scores", kind="logits")
    x = case2d.image
    expected = np.zeros((2, *x.shape[1:]), np.float32)
    combos = [c for r in range(len(axes) + 1) for c in itertools.combinations(axes, r)]
    for flip in combos:
        dims = tuple(a + 1 for a in flip)
        scores = helpers.ramp_scores(np.flip(x, dims) if flip else x)
        expected += np.flip(softmax(scores), dims) if flip else softmax(scores)
    expected /= len(combos)
    pred = model.predict(x, case2d.spacing)
    np.testing.assert_allclose(pred.probabilities, expected, atol=1e-6)
    np.testing.assert_array_equal(pred.labels, expected.argmax(0))
    assert not np.allclose(pred.probabilities, plain.predict(x, case2d.spacing).probabilities)


def test_tta_on_label_maps_votes(tmp_path, case3d) -> None:
    """A mirror-equivariant label model (a threshold) gives the same labels with TTA."""
    model = _model(tmp_path, "threshold", kind="labels", input_="tta_flip_axes = [0, 2]")
    pred = model.predict(case3d.image, case3d.spacing)
    np.testing.assert_array_equal(pred.labels, case3d.image[0] > helpers.THRESHOLD)


@pytest.mark.parametrize("option", ["tta_flip_axes = [0, 1]", "patch_size = [16, 16]"])
def test_label_votes_go_back_to_the_image_grid_as_a_label_map(tmp_path, case2d, option) -> None:
    """A pointwise label-map model on a card that resamples (2 mm): flips or sliding windows change
    nothing, as the votes are decided on the model's grid and returned by nearest neighbour, as a
    plain label map is (they were resampled linearly, which moved class borders)."""
    resampled = 'spacing = [2.0, 2.0]\nnormalize = "zscore"\npad_multiple = 8'
    plain = _model(tmp_path / "plain", "threshold", kind="labels", input_=resampled)
    voted = _model(tmp_path / "voted", "threshold", kind="labels", input_=f"{resampled}\n{option}")
    rng = np.random.default_rng(0)
    image = rng.normal(size=(1, 37, 29)).astype(np.float32)
    expected = plain.predict(image, (1.0, 1.0)).labels
    assert 0 < expected.mean() < 1
    np.testing.assert_array_equal(voted.predict(image, (1.0, 1.0)).labels, expected)


def test_tta_shifts_average_over_the_placements_in_the_padding(tmp_path) -> None:
    """[input] tta_shifts: the image is put at the start, middle and end of its padding along each axis
    (3 x 3 placements in a 16 x 16 canvas for 13 x 10), each output moved back, probabilities averaged."""
    image = np.random.default_rng(0).normal(0, 1, (1, 13, 10)).astype(np.float32)
    shifted = _model(tmp_path / "s", "row_ramp_scores", kind="logits", input_="pad_multiple = 8\ntta_shifts = true")
    plain = _model(tmp_path / "p", "row_ramp_scores", kind="logits", input_="pad_multiple = 8")
    expected = np.zeros((2, 13, 10))
    for r0, c0 in itertools.product((1, 0, 3), (3, 0, 6)):  # the centred placement is (1, 3)
        canvas = np.zeros((1, 16, 16), np.float32)
        canvas[0, r0:r0 + 13, c0:c0 + 10] = image[0]
        expected += softmax(helpers.row_ramp_scores(canvas))[:, r0:r0 + 13, c0:c0 + 10] / 9
    got = shifted.predict(image, (1.0, 1.0)).probabilities
    np.testing.assert_allclose(got, expected, atol=1e-6)
    centred = plain.predict(image, (1.0, 1.0)).probabilities
    assert np.abs(centred - expected).max() > 0.01  # the placements matter for this model
    flipped = _model(tmp_path / "f", "row_ramp_scores", kind="logits",
                     input_="pad_multiple = 8\ntta_shifts = true\ntta_flip_axes = [0]")
    assert np.abs(flipped.predict(image, (1.0, 1.0)).probabilities - expected).max() > 0.01  # flips too


def test_tta_shifts_leave_a_shift_invariant_model_alone(tmp_path, case3d) -> None:
    """A pointwise model does not care where the image sits: the same labels with or without shifts."""
    model = _model(tmp_path, "threshold", kind="labels", input_="pad_multiple = 16\ntta_shifts = true")
    np.testing.assert_array_equal(model.predict(case3d.image, case3d.spacing).labels,
                                  case3d.image[0] > helpers.THRESHOLD)


def test_tta_axis_beyond_the_image_is_a_model_error(tmp_path, case2d) -> None:
    model = _model(tmp_path, "threshold", kind="labels", input_="tta_flip_axes = [2]")
    with pytest.raises(ModelError, match=r"tta_flip_axes \[2\] names an axis the 2D data does not have"):
        model.predict(case2d.image, case2d.spacing)


def test_largest_component_postprocess(tmp_path) -> None:
    image = np.zeros((1, 32, 32), np.float32)
    image[0, 2:12, 2:12] = 10.0  # 100 px
    image[0, 20:23, 20:23] = 10.0  # 9 px, a separate blob
    kept = _model(tmp_path, "threshold", kind="labels", output='postprocess = "largest_component"')
    raw = _model(tmp_path / "raw", "threshold", kind="labels")
    assert int(raw.predict(image, (1.0, 1.0)).labels.sum()) == 109
    labels = kept.predict(image, (1.0, 1.0)).labels
    assert int(labels.sum()) == 100 and labels[2:12, 2:12].all()
    scored = _model(tmp_path / "scores", "scores", kind="logits", output='postprocess = "largest_component"')
    pred = scored.predict(image, (1.0, 1.0))
    assert int(pred.labels.sum()) == 100
    assert int((pred.probabilities.argmax(0)).sum()) == 109  # probabilities stay the network's


def test_most_confident_component_keeps_the_confident_blob_not_the_big_one(tmp_path) -> None:
    """A large, barely-positive region and a small, confident one: size and confidence disagree."""
    image = np.zeros((1, 32, 32), np.float32)
    image[0, 2:12, 2:12] = 0.6  # 100 px, logit 0.1
    image[0, 20:23, 20:23] = 10.0  # 9 px, logit 9.5
    confident = _model(tmp_path, "scores", kind="logits", output='postprocess = "most_confident_component"')
    largest = _model(tmp_path / "largest", "scores", kind="logits", output='postprocess = "largest_component"')
    labels = confident.predict(image, (1.0, 1.0)).labels
    assert int(labels.sum()) == 9 and labels[20:23, 20:23].all()
    assert int(largest.predict(image, (1.0, 1.0)).labels.sum()) == 100


def test_most_confident_component_needs_scores(tmp_path) -> None:
    from harness.errors import ConfigError

    with pytest.raises(ConfigError, match=r"\[output\] postprocess: .*reads class scores.*use \"largest_component\""):
        _model(tmp_path, "threshold", kind="labels", output='postprocess = "most_confident_component"')
