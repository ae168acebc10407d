"""ε-curve table, the ROG robust-case rule and the ``robust_cases`` gate, on synthetic records;
the bundled suite parses and its families resolve."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from harness.analysis.adversarial import adversarial_table, attack_params, robust_cases, robust_cases_gate
from harness.gates import GateContext, check_kinds
from harness.records import records_frame

CLEAN = {"c0": 0.9, "c1": 0.9, "c2": 0.9, "c3": 0.9}


def row(case, pert, sev, dice, params=None, label=1):
    return {"case_id": case, "perturbation": pert, "severity": sev, "repeat": 0, "seed": 0, "label": label,
            "label_name": "organ" if label == 1 else "lesion", "status": "OK", "error": "", "empty": "none",
            "dice": dice, "hd95": 10 * (1 - dice), "params": json.dumps(params or {}), "inference_s": 0.1}


def attack(name, threat, eps, **extra):
    return {"attack": name, "threat": threat, "targeted": name == "erase", "norm": "linf", "eps_unit": "fg_std",
            "eps_fraction": eps, "achieved_linf_fraction": eps, "achieved_rms_fraction": eps / 2,
            **({"grad_steps": 4} if threat == "whitebox" else {"queries": 25}), **extra}


def records(masked=False):
    rows = [row(c, "clean", 0, d) for c, d in CLEAN.items()]
    pgd = {1: [0.85, 0.8, 0.7, 0.6], 2: [0.9, 0.5, 0.4, 0.3]}  # ROG: robust iff dice > 0.45
    square = {1: [0.88, 0.85, 0.8, 0.8], 2: [0.3, 0.3, 0.3, 0.3]}
    erase = {2: [0.2, 0.2, 0.2, 0.2]}
    for sev, eps in ((1, 0.25), (2, 0.5)):
        for i, c in enumerate(CLEAN):
            flag = masked and sev == 2 and i == 0
            rows.append(row(c, "pgd_linf", sev, pgd[sev][i], attack("pgd_linf", "whitebox", eps,
                                                                     gradient_masking_suspected=flag)))
            rows.append(row(c, "square_attack", sev, square[sev][i], attack("square_attack", "blackbox", eps)))
            rows.append(row(c, "gaussian_noise", sev, 0.1, {"sigma": [0.1]}))  # not an attack
            if sev in erase:
                rows.append(row(c, "erase", sev, erase[sev][i], attack("erase", "whitebox", eps)))
    return records_frame(rows, ["dice", "hd95"])


def gate(**keys):
    return {"name": "robust", "check": "robust_cases", "metric": "dice", "min_fraction": 0.5, **keys}


def run_gate(frame, **keys):
    return {r.name: r for r in robust_cases_gate(gate(**keys), GateContext(frame, pd.DataFrame(), None))}


def test_attack_rows_are_recognised_from_params():
    params = attack_params(records())
    assert set(params["perturbation"]) == {"pgd_linf", "square_attack", "erase"}
    assert len(params) == 4 * 2 * 2 + 4


def test_rog_rule_per_case():
    cases = robust_cases(records())
    pgd2 = cases[(cases["perturbation"] == "pgd_linf") & (cases["severity"] == 2)].set_index("case_id")
    assert pgd2["clean_mean"].eq(0.9).all()
    assert pgd2["robust"].tolist() == [True, True, False, False]  # 0.9, 0.5 > 0.45; 0.4, 0.3 not


def test_eps_curves_table():
    table = adversarial_table(records()).set_index(["perturbation", "severity"])
    pgd = table.loc["pgd_linf"]
    assert pgd["eps_fraction"].tolist() == [0.25, 0.5]
    assert pgd.loc[2, "robust_fraction"] == 0.5 and pgd.loc[1, "robust_fraction"] == 1.0
    assert pgd.loc[2, "mean"] == pytest.approx(0.525) and pgd.loc[2, "drop"] == pytest.approx(0.375)
    assert pgd.loc[2, "hd95"] == pytest.approx(4.75) and pgd.loc[2, "grad_steps"] == 4
    # the black-box attack did more damage than PGD at eps 0.5: suspect gradient masking
    assert bool(pgd.loc[2, "blackbox_stronger"]) and not bool(pgd.loc[1, "blackbox_stronger"])
    assert not bool(table.loc[("erase", 2), "blackbox_stronger"])  # targeted: not comparable
    assert table.loc[("square_attack", 2), "queries"] == 25
    assert "gaussian_noise" not in table.index.get_level_values(0)


def test_gate_per_family_worst_severity():
    results = run_gate(records(), on_masking="ignore")
    assert results["robust[pgd_linf]"].outcome == "PASS" and results["robust[pgd_linf]"].value == 0.5
    assert "severity 2" in results["robust[pgd_linf]"].detail
    assert results["robust[square_attack]"].outcome == "FAIL" and results["robust[square_attack]"].value == 0.0
    assert results["robust[erase]"].outcome == "FAIL"
    only = run_gate(records(), severities=[1], families=["square_attack"])
    assert list(only) == ["robust[square_attack]"] and only["robust[square_attack]"].outcome == "PASS"


def test_gate_masking_suspicion_downgrades_a_pass():
    assert run_gate(records())["robust[pgd_linf]"].outcome == "WARN"  # black-box stronger at eps 0.5
    flagged = run_gate(records(masked=True), severities=[2], families=["pgd_linf"], on_masking="fail")
    assert flagged["robust[pgd_linf]"].outcome == "FAIL" and "masking" in flagged["robust[pgd_linf]"].detail
    warn = run_gate(records(), warn_fraction=0.9, on_masking="ignore")
    assert warn["robust[pgd_linf]"].outcome == "WARN"


def test_gate_flags_attacks_that_had_no_gradient():
    """A model with zero input gradients turns PGD into its random start: that must not read as robust."""
    rows = [row(c, "clean", 0, d) for c, d in CLEAN.items()]
    rows += [row(c, "pgd_linf", 1, 0.9, attack("pgd_linf", "whitebox", 0.25, zero_grad_fraction=1.0)) for c in CLEAN]
    frame = records_frame(rows, ["dice", "hd95"])
    assert adversarial_table(frame)["no_gradient"].tolist() == [4]
    result = run_gate(frame)["robust[pgd_linf]"]
    assert result.outcome == "WARN" and "input gradient was (almost) all zero on 4" in result.detail
    assert run_gate(frame, on_masking="fail")["robust[pgd_linf]"].outcome == "FAIL"


def test_gate_detail_says_when_a_white_box_family_ran_black_box():
    """On a model without gradients, pgd_linf runs as square_attack: the gate (what CI reads) must say so."""
    rows = [row(c, "clean", 0, d) for c, d in CLEAN.items()]
    rows += [row(c, "pgd_linf", 1, 0.9, attack("pgd_linf", "blackbox", 0.25, queries=10,
                                                fallback="square_attack (no gradients)")) for c in CLEAN]
    result = run_gate(records_frame(rows, ["dice", "hd95"]))["robust[pgd_linf]"]
    assert result.outcome == "PASS"
    assert "pgd_linf ran as square_attack on 4 case(s) (the model offers no gradients, 10 queries)" in result.detail
    assert "ran as square_attack" not in run_gate(records())["robust[pgd_linf]"].detail


def test_gate_label_by_name_and_severities_that_did_not_run():
    assert run_gate(records(), label="organ")["robust[pgd_linf]"].value == run_gate(records(), label=1)[
        "robust[pgd_linf]"].value
    missing = run_gate(records(), severities=[5], families=["pgd_linf"])["robust[pgd_linf]"]
    assert missing.outcome == "INCONCLUSIVE" and "no attacked cases at severities [5]" in missing.detail


def test_gate_inconclusive_and_error_cases():
    assert run_gate(records(), min_cases=5)["robust[pgd_linf]"].outcome == "INCONCLUSIVE"
    assert run_gate(records(), metric="hd95")["robust"].outcome == "ERROR"
    clean_only = records_frame([row(c, "clean", 0, d) for c, d in CLEAN.items()], ["dice", "hd95"])
    assert run_gate(clean_only)["robust"].outcome == "INCONCLUSIVE"
    assert adversarial_table(clean_only).empty


def test_bundled_suite_parses_and_its_families_resolve():
    from harness.runner import resolve_families
    from harness.suite import load_suite

    assert "robust_cases" in check_kinds()
    suite = load_suite("adversarial")
    families, notes = resolve_families(suite, "mri")
    assert set(families) == {"random_linf", "fgsm", "pgd_linf", "segpgd", "cospgd", "erase", "square_attack"}
    assert not notes and all(spec.severities == (1, 2, 3, 4, 5) for spec in suite.perturbations)
    assert [g["check"] for g in suite.gates] == ["clean", "robust_cases"]


@pytest.mark.parametrize("keys, needle", [
    ({"min_fraction": 1.5}, "in [0, 1]"),
    ({}, "missing 'min_fraction'"),
    ({"min_fraction": 0.5, "ratio": 0}, "ratio must be > 0"),
    ({"min_fraction": 0.5, "on_masking": "panic"}, "on_masking"),
    ({"min_fraction": 0.5, "severities": [0, 6]}, "severities"),
    ({"min_fraction": 0.5, "metric": "hd95"}, "higher-is-better"),
    ({"min_fraction": 0.5, "threshold": 1}, "unknown key"),
    ({"min_fraction": 0.5, "min_cases": 0}, "min_cases must be a whole number >= 1"),
    ({"min_fraction": 0.5, "label": [1]}, "label must be"),
])
def test_gate_keys_are_validated_at_suite_load(keys, needle):
    from harness.gates import gate_problems

    problems = gate_problems({"name": "g", "check": "robust_cases", **keys})
    assert any(needle in p for p in problems), problems
    assert gate_problems({"name": "g", "check": "robust_cases", "min_fraction": 0.5, "severities": [1, 3],
                          "families": ["fgsm"], "on_masking": "fail", "metric": "dice"}) == []


def test_a_misspelt_gate_metric_gets_the_suite_s_spelling_hint(tmp_path):
    """The validator asked the metric's direction first, which stopped the suite check with "direction
    unknown ... install the plugin" instead of listing "unknown metric 'dcie' (did you mean 'dice'?)"."""
    from harness.errors import ConfigError
    from harness.gates import gate_problems
    from harness.suite import load_suite

    assert gate_problems({"name": "g", "check": "robust_cases", "min_fraction": 0.5, "metric": "dcie"}) == []
    text = (Path(__file__).resolve().parents[2] / "suites" / "adversarial.toml").read_text()
    (tmp_path / "typo.toml").write_text(text.replace('check = "robust_cases"\nmetric = "dice"',
                                                     'check = "robust_cases"\nmetric = "dcie"'))
    with pytest.raises(ConfigError, match=r"unknown metric 'dcie' \(did you mean 'dice'\?\)"):
        load_suite(tmp_path / "typo.toml")


def test_a_case_counts_as_robust_only_if_it_survives_every_attack():
    """Each family passed on its own (each case broken by a different attack) while no case survived
    them all: the ensemble fraction (AutoAttack, ROG) is 0."""
    from harness.analysis.adversarial import ensemble_robust_cases

    rows = [row(c, "clean", 0, d) for c, d in CLEAN.items()]
    broken_by = {"pgd_linf": "c0", "segpgd": "c1", "cospgd": "c2", "square_attack": "c3"}
    for family, victim in broken_by.items():
        threat = "blackbox" if family == "square_attack" else "whitebox"
        rows += [row(c, family, 3, 0.1 if c == victim else 0.85, attack(family, threat, 0.25)) for c in CLEAN]
    rows += [row(c, "random_linf", 3, 0.1, attack("random_linf", "random", 0.25)) for c in CLEAN]  # a control
    frame = records_frame(rows, ["dice", "hd95"])
    results = run_gate(frame, min_fraction=0.7, on_masking="ignore")
    assert all(results[f"robust[{f}]"].outcome == "PASS" for f in broken_by)  # 3 of 4 each
    together = results["robust[all linf attacks]"]
    assert together.outcome == "FAIL" and together.value == 0.0
    assert "cases surviving every linf attack (cospgd, pgd_linf, segpgd, square_attack)" in together.detail
    table = ensemble_robust_cases(frame)
    assert table["n"].tolist() == [4] and "random_linf" not in table["attacks"].iloc[0]
    assert "robust[all linf attacks]" not in run_gate(frame, families=["pgd_linf"])  # one attack: no ensemble


def test_repeats_of_an_attack_count_their_worst():
    """Four restarts of a stochastic attack were averaged: a case broken by one of them counted robust."""
    rows = [row(c, "clean", 0, d) for c, d in CLEAN.items()]
    for rep, dice in enumerate((0.82, 0.85, 0.4, 0.8)):
        rows += [{**row(c, "pgd_linf", 1, dice if c == "c3" else 0.85, attack("pgd_linf", "whitebox", 0.25)),
                  "repeat": rep} for c in CLEAN]
    cases = robust_cases(records_frame(rows, ["dice", "hd95"])).set_index("case_id")
    assert cases.loc["c3", "value"] == pytest.approx(0.4) and not cases.loc["c3", "robust"]  # mean 0.72 was robust


def test_an_attack_no_stronger_than_random_noise_is_flagged():
    """FGSM above clean and PGD no worse than the uniform-noise control passed silently (an obfuscated
    gradient): flagged as suspected masking, so a PASS becomes WARN."""
    rows = [row(c, "clean", 0, d) for c, d in CLEAN.items()]
    rows += [row(c, "random_linf", 1, 0.88, attack("random_linf", "random", 0.25)) for c in CLEAN]
    rows += [row(c, "pgd_linf", 1, 0.885, attack("pgd_linf", "whitebox", 0.25)) for c in CLEAN]
    rows += [row(c, "fgsm", 2, 0.95, attack("fgsm", "whitebox", 0.5)) for c in CLEAN]
    frame = records_frame(rows, ["dice", "hd95"])
    table = adversarial_table(frame).set_index("perturbation")
    assert bool(table.loc["pgd_linf", "weaker_than_noise"]) and bool(table.loc["fgsm", "weaker_than_noise"])
    assert not bool(table.loc["random_linf", "weaker_than_noise"])
    result = run_gate(frame)["robust[pgd_linf]"]
    assert result.outcome == "WARN" and "no more damage than the random-noise control" in result.detail
    stronger = [r if r["perturbation"] != "pgd_linf" else {**r, "dice": 0.7} for r in rows]
    assert not bool(adversarial_table(records_frame(stronger, ["dice", "hd95"])).set_index("perturbation")
                    .loc["pgd_linf", "weaker_than_noise"])


def test_the_worst_repeat_of_a_distance_is_its_largest():
    rows = [row(c, "clean", 0, d) for c, d in CLEAN.items()]
    for rep, dice in enumerate((0.85, 0.3)):  # hd95 = 10 x (1 - dice): 1.5 then 7.0
        rows += [{**row(c, "pgd_linf", 1, dice, attack("pgd_linf", "whitebox", 0.25)), "repeat": rep} for c in CLEAN]
    frame = records_frame(rows, ["dice", "hd95"])
    assert robust_cases(frame, metric="hd95")["value"].tolist() == pytest.approx([7.0] * 4)
    assert robust_cases(frame)["value"].tolist() == pytest.approx([0.3] * 4)
