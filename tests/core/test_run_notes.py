"""Notes a run adds to its summary and report when the setup is legal but likely not what was meant."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from harness.perturbations import get
from harness.pipeline import _hounsfield_note


def test_ct_families_on_an_image_without_negative_values_get_a_note() -> None:
    families = {"dose": get("ct_dose"), "noise": get("gaussian_noise")}
    raw = SimpleNamespace(case_id="c0", image=np.linspace(0, 4095, 1000, dtype=np.float32)[None])
    (note,) = _hounsfield_note(families, raw)
    assert note.startswith("CT families dose expect Hounsfield units, but case c0's intensities run")
    hu = SimpleNamespace(case_id="c0", image=np.linspace(-1000, 1500, 1000, dtype=np.float32)[None])
    assert _hounsfield_note(families, hu) == [] and _hounsfield_note({"noise": get("gaussian_noise")}, raw) == []
