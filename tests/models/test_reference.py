"""The bundled reference model (written by the training work; skipped until its files exist)."""
from __future__ import annotations

import numpy as np
import pytest

from harness.models import load_model, reference_card_path


@pytest.mark.parametrize("ndim", [2, 3])
def test_reference_model_loads_and_predicts(ndim, case2d, case3d):
    if not reference_card_path(ndim).is_file():
        pytest.skip(f"{reference_card_path(ndim).name} not bundled yet")
    case = case2d if ndim == 2 else case3d
    for spec in (None, "reference"):
        model = load_model(spec, ndim=ndim)
        assert model.labels == {1: "organ", 2: "lesion"} and model.differentiable
        assert model.card["model"]["intended_use"]
        pred = model.predict(case.image, case.spacing, case_id=case.case_id)
        assert pred.labels.shape == case.label.shape
        dice = 2 * np.sum((pred.labels == 1) & (case.label == 1)) / (np.sum(pred.labels == 1) + np.sum(case.label == 1))
        assert dice > 0.5  # a trained model, not noise
