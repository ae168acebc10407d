"""Attacks through the runner (records carry the attack's params), and a whole suite run (slow)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import harness.analysis.adversarial  # noqa: F401  (registers robust_cases until gate_checks imports it)
from harness.analysis.adversarial import adversarial_table
from harness.datasets.phantom import phantom_dataset
from harness.pipeline import RunOptions, run
from harness.records import read_records, records_frame
from harness.runner import Evaluator, Plan, plan_items
from harness.suite import parse_suite
from tests.adversarial import fakes

SUITE = """
[suite]
name = "adv-e2e"
seed = 0
data = "phantom2d:n=1"
model = "reference"
metrics = ["dice", "hd95"]

[[perturbations]]
family = "random_linf"
severities = [5]

[[perturbations]]
family = "fgsm"
severities = [5]
options = { check_masking = true, masking_queries = 3 }

[[perturbations]]
family = "square_attack"
severities = [5]
options = { queries = 3 }

[[gates]]
name = "robust-cases"
check = "robust_cases"
min_fraction = 0.5
min_cases = 1
"""


def evaluator(tmp_path, model=None, text=SUITE):
    path = tmp_path / "adv.toml"
    path.write_text(text, encoding="utf-8")
    suite = parse_suite(text, path=path)
    families = {spec.label: (spec.family, dict(spec.options)) for spec in suite.perturbations}
    plan = Plan(suite=suite, dataset=phantom_dataset(2, n=1), model_spec=None,
                labels={1: "organ", 2: "lesion"}, families=families)
    return Evaluator(plan, model=model), plan


def test_runner_binds_the_model_and_records_the_attack(tmp_path, reference):
    ev, plan = evaluator(tmp_path, reference)
    case = fakes.crop(plan.dataset.load(plan.dataset.case_ids[0]), 96)  # smaller, same pipeline
    rows = []
    for item in plan_items(plan.suite, plan.dataset.case_ids):
        rows.extend(ev.evaluate(item, case))
    frame = records_frame(rows, ["dice", "hd95"])
    assert set(frame["status"]) == {"OK"}, frame["error"].tolist()
    fgsm = json.loads(frame.loc[frame["perturbation"] == "fgsm", "params"].iloc[0])
    assert fgsm["attack"] == "fgsm" and fgsm["grad_steps"] == 1 and fgsm["eps_fraction"] == 1.0
    assert fgsm["achieved_linf_fraction"] <= 1.0 and isinstance(fgsm["gradient_masking_suspected"], bool)
    assert json.loads(frame.loc[frame["perturbation"] == "square_attack", "params"].iloc[0])["queries"] == 3
    table = adversarial_table(frame).set_index("perturbation")
    assert set(table.index) == {"random_linf", "fgsm", "square_attack"} and table["n"].eq(1).all()
    assert table.loc["fgsm", "mean"] < table.loc["random_linf", "mean"]


def test_runner_without_gradients_falls_back_or_errors(tmp_path):
    text = SUITE.replace("options = { check_masking = true, masking_queries = 3 }", "options = { queries = 3 }")
    ev, plan = evaluator(tmp_path, fakes.LabelsOnlyModel(), text)
    case = fakes.threshold_case()
    item = next(i for i in plan_items(plan.suite, plan.dataset.case_ids) if i.perturbation == "fgsm")
    rows = ev.evaluate(item, case.with_(label=np.where(case.label > 0, 1, 0)))
    assert rows[0]["status"] == "OK" and json.loads(rows[0]["params"])["fallback"]
    strict = text.replace("options = { queries = 3 }", 'options = { nondifferentiable = "error" }', 1)
    ev, plan = evaluator(tmp_path, fakes.LabelsOnlyModel(), strict)
    rows = ev.evaluate(item, case)
    assert rows[0]["status"] == "ERROR" and "no gradients" in rows[0]["error"]


@pytest.mark.slow
def test_attack_suite_runs_end_to_end(tmp_path):
    path = tmp_path / "adv.toml"
    path.write_text(SUITE, encoding="utf-8")
    result = run(RunOptions(suite=path, out=tmp_path / "run", workers=1))
    assert result.exit_code == 0, [g.to_dict() for g in result.gates]
    records = read_records(tmp_path / "run" / "records.csv")
    assert set(records["status"]) == {"OK"}
    fgsm = json.loads(records.loc[records["perturbation"] == "fgsm", "params"].iloc[0])
    assert fgsm["attack"] == "fgsm" and fgsm["grad_steps"] == 1 and fgsm["eps_fraction"] == 1.0
    assert fgsm["achieved_linf_fraction"] <= 1.0 and isinstance(fgsm["gradient_masking_suspected"], bool)
    square = json.loads(records.loc[records["perturbation"] == "square_attack", "params"].iloc[0])
    assert square["queries"] == 3
    table = adversarial_table(records)
    assert set(table["perturbation"]) == {"random_linf", "fgsm", "square_attack"}
    assert isinstance(table, pd.DataFrame) and table["n"].eq(1).all()
    assert {g.name for g in result.gates} >= {"robust-cases[fgsm]", "robust-cases[square_attack]"}


def test_a_run_notes_white_box_attacks_that_fall_back(tmp_path):
    """The fallback was recorded in each record's params only, under a gate still named fgsm."""
    from harness.pipeline import _fallback_note

    from harness.perturbations import get

    families = {"fgsm": get("fgsm"), "pgd-strict": get("pgd_linf", nondifferentiable="error"),
                "square_attack": get("square_attack"), "noise": get("gaussian_noise")}
    (note,) = _fallback_note(families, fakes.LabelsOnlyModel())
    assert note.startswith("white-box attack(s) fgsm run as the black-box square_attack at the same ε")
    from harness.models import load_model

    assert _fallback_note(families, load_model(None, ndim=2)) == []  # the reference U-Net has gradients
