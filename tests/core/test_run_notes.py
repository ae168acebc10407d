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


LAB = '''
import numpy as np
from harness.metrics import Metric, MetricInfo
from harness.perturbations.base import Perturbation

NOISE = np.random.default_rng()  # unseeded on purpose: the model is not deterministic


def flaky(image):
    labels = (image[0] > np.median(image[0])).astype(np.uint8)
    flips = NOISE.random(labels.shape) < 0.2
    labels[flips] = 1 - labels[flips]
    return labels


class IntShift(Perturbation):
    name = "int_shift"

    def draw(self, case, severity, rng):
        return {"k": np.int64(severity), "offsets": np.array([0.5, -0.5]), "flip": np.bool_(True)}

    def apply(self, case, params):
        return case.with_(image=case.image + np.float32((0.1, 0.2, 0.3)[params["k"]]))


SIM = Metric(MetricInfo("sim", True, "fraction", "a plugin overlap"), lambda ctx: ctx.confusion.dice())
'''


def test_a_run_records_plugin_code_replayable_params_and_its_notes(tmp_path, monkeypatch) -> None:
    """Run-level wiring of what the units check: params stored as JSON values (np.int64 was 2.0, so
    (0.1, 0.2, 0.3)[k] failed on replay), the plugin code in summary.json, the note on raster data
    without a spacing, and the note on worst cases that re-score otherwise (a non-deterministic model)."""
    import json

    from harness.perturbations.base import Perturbation
    from harness.pipeline import RunOptions, run
    from harness.records import read_records
    from tests.png_cards import png_card

    (tmp_path / "lab").mkdir()
    (tmp_path / "lab" / "wiring_lab.py").write_text(LAB, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path / "lab"))
    data = png_card(tmp_path / "data", 'label_values = { "255" = 1 }\nlabel_names = { 1 = "lesion" }\n')
    model = tmp_path / "model.toml"
    model.write_text('[model]\nformat = "callable"\nentry = "wiring_lab:flaky"\n[output]\nkind = "labels"\n'
                     'labels = { 1 = "lesion" }\n', encoding="utf-8")
    suite = tmp_path / "suite.toml"
    suite.write_text('[suite]\nname = "wiring"\nmetrics = ["dice", "wiring_lab:SIM"]\nworst_cases = 2\n'
                     '[[perturbations]]\nfamily = "wiring_lab:IntShift"\nseverities = [1, 2]\n', encoding="utf-8")
    result = run(RunOptions(suite=str(suite), data=str(data), model=str(model), out=tmp_path / "run", workers=1))
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    records = read_records(tmp_path / "run" / "records.csv")
    shifted = records[records["perturbation"] == "wiring_lab:IntShift"]
    stored = json.loads(shifted["params"].iloc[0])
    assert stored == {"k": 1, "offsets": [0.5, -0.5], "flip": True} and isinstance(stored["k"], int)
    from harness.datasets import open_dataset
    from harness.plugins import import_object

    family = import_object("wiring_lab:IntShift")()
    assert isinstance(family, Perturbation)
    clean = open_dataset(str(data)).load(shifted["case_id"].iloc[0])
    replayed = family.apply(clean, stored)  # indexing with the stored k: a float 1.0 raised TypeError
    assert np.allclose(replayed.image, clean.image + np.float32(0.2))
    assert set(summary["plugins"]) == {"perturbation wiring_lab:IntShift", "metric wiring_lab:SIM",
                                       "model entry wiring_lab:flaky"}
    assert all(str(tmp_path / "lab" / "wiring_lab.py") in v for v in summary["plugins"].values())
    notes = " ".join(summary["notes"])
    assert "3 of 3 cases have no physical spacing" in notes and summary["spacing_assumed"] == 3
    assert summary["suite"]["revision"] is None  # a suite file outside version control
    assert summary["training_data"] == {"record": None, "readable": True}  # the card names no training record
    assert "worst cases re-run for the report scored otherwise than the run recorded" in notes
    assert result.exit_code in (0, 1)


def test_a_class_the_model_does_not_declare_gets_a_note_and_a_validate_model_warning(tmp_path) -> None:
    """A model card declaring only 'organ' on data with organ and lesion FAILed its gate on lesion
    Dice 0 with no note saying the model never outputs that class."""
    import io
    import json

    from rich.console import Console

    from harness.cli import main
    from harness.datasets.label_values import classes_the_model_lacks
    from harness.models.command_line import validate_model

    assert classes_the_model_lacks({1: "organ", 2: "lesion"}, {1: "organ"}) == ["class 2 'lesion'"]
    assert classes_the_model_lacks({1: "organ"}, {}) == []  # a model declaring nothing: nothing to say
    card = tmp_path / "model.toml"
    card.write_text('[model]\nformat = "callable"\nentry = "tests.e2e.fixtures.models:all_background"\n'
                    '[output]\nkind = "labels"\nlabels = {1 = "organ"}\n')
    out = io.StringIO()
    validate_model(str(card), "phantom2d:n=2", console=Console(file=out, width=200))
    assert "class 2 'lesion': not among the model's declared classes" in out.getvalue()
    main(["run", "--suite", "smoke", "--model", str(card), "--limit", "2", "--out", str(tmp_path / "run"),
          "--workers", "1"])
    notes = json.loads((tmp_path / "run" / "summary.json").read_text())["notes"]
    assert any(n.startswith("class 2 'lesion' of the data is not among the model's declared classes (1 = 'organ')")
               for n in notes), notes


def test_ct_notes_for_normalised_images_and_generic_intensity_families() -> None:
    """A z-scored CT passed the Hounsfield check (it has negative values), and contrast/gamma on raw HU
    (where air sets the mean) ran unremarked at strengths far beyond their calibration."""
    from harness.pipeline import _generic_intensity_on_ct_note

    families = {"dose": get("ct_dose"), "contrast": get("contrast"), "noise": get("gaussian_noise")}
    zscored = SimpleNamespace(case_id="c0", image=np.linspace(-3, 5, 1000, dtype=np.float32)[None])
    (note,) = _hounsfield_note(families, zscored)
    assert "over less than 100 units (normalised?)" in note
    (note,) = _generic_intensity_on_ct_note(families, "ct")
    assert note.startswith("contrast scale intensities about the whole image's mean or range, which air sets in CT")
    assert _generic_intensity_on_ct_note(families, "mri") == []
