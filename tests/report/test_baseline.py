"""Regression against a previous run: the paired test, the gate outcomes and the report deltas."""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.baseline import (
    DEFAULTS,
    apply_baseline,
    baseline_gate,
    comparison_table,
    copy_baseline,
    one_sided_p,
    regressions,
)
from harness.errors import ConfigError
from harness.gates import GateContext
from harness.records import read_records
from harness.report.html import render_report
from harness.suite import load_suite
from tests.report.conftest import make_run

IDS = [f"c{i:02d}" for i in range(12)]


def _context(run: Path) -> GateContext:
    cases = pd.read_csv(run / "cases.csv", dtype=str)  # as runs read it: hashes of digits only stay text
    return GateContext(records=read_records(run / "records.csv"), cases=cases, suite=load_suite("smoke"))


def _gate(base: Path, **over) -> dict:
    return {**{k: v for k, v in DEFAULTS.items() if v is not None}, "check": "baseline", "baseline": str(base), **over}


def _clean_result(results):
    [clean] = [r for r in results if r.name == "baseline[clean]"]
    return clean


def _outcomes(results) -> dict[str, str]:
    return {r.name: r.outcome for r in results}


@pytest.fixture()
def base(tmp_path: Path) -> Path:
    return make_run(tmp_path / "base", case_ids=IDS, drop=0.05)


def _dice(base: Path, delta: float) -> dict[str, float]:
    rec = read_records(base / "records.csv")
    clean = rec[rec["perturbation"] == "clean"].groupby("case_id")["dice"].mean()
    return {cid: float(v) + delta for cid, v in clean.items()}


def test_same_model_passes(base: Path) -> None:
    results = baseline_gate(_gate(base), _context(base))
    assert _outcomes(results) == {"baseline[clean]": "PASS", "baseline[gaussian_noise]": "PASS"}
    assert all(r.value == pytest.approx(0.0) for r in results)


def test_large_regression_fails_small_one_warns(base: Path, tmp_path: Path) -> None:
    worse = make_run(tmp_path / "worse", case_ids=IDS, dice=_dice(base, -0.10), drop=0.05)
    out = _outcomes(baseline_gate(_gate(base), _context(worse)))
    assert out["baseline[clean]"] == "FAIL" and out["baseline[gaussian_noise]"] == "PASS"
    slightly = make_run(tmp_path / "slightly", case_ids=IDS, dice=_dice(base, -0.01), drop=0.05)
    assert _outcomes(baseline_gate(_gate(base), _context(slightly)))["baseline[clean]"] == "WARN"
    fragile = make_run(tmp_path / "fragile", case_ids=IDS, dice=_dice(base, 0.0), drop=0.35)
    out = _outcomes(baseline_gate(_gate(base), _context(fragile)))
    assert out == {"baseline[clean]": "PASS", "baseline[gaussian_noise]": "FAIL"}


def test_improvement_and_margin(base: Path, tmp_path: Path) -> None:
    better = make_run(tmp_path / "better", case_ids=IDS, dice=_dice(base, +0.05), drop=0.0)
    assert set(_outcomes(baseline_gate(_gate(base), _context(better))).values()) == {"PASS"}
    worse = make_run(tmp_path / "worse", case_ids=IDS, dice=_dice(base, -0.10), drop=0.05)
    within = baseline_gate(_gate(base, margin=0.2), _context(worse))[0]
    assert within.outcome == "WARN" and "significantly worse, within the margin" in within.detail


def test_too_few_or_changed_cases_are_inconclusive(base: Path, tmp_path: Path) -> None:
    few = make_run(tmp_path / "few", case_ids=IDS[:4], dice=_dice(base, -0.1))
    assert set(_outcomes(baseline_gate(_gate(base), _context(few))).values()) == {"INCONCLUSIVE"}
    changed = make_run(tmp_path / "changed", case_ids=IDS, dice=_dice(base, -0.1),
                       hashes={c: "f" * 64 for c in IDS[:9]})
    results = baseline_gate(_gate(base), _context(changed))
    assert {r.outcome for r in results} == {"INCONCLUSIVE"} and "different image/label hashes" in results[0].detail
    no_baseline = baseline_gate({"name": "baseline", "check": "baseline"}, _context(base))
    assert no_baseline[0].outcome == "INCONCLUSIVE" and "--baseline" in no_baseline[0].detail


def test_one_sided_p_exact_and_wilcoxon() -> None:
    assert one_sided_p(np.full(5, 0.1)) == pytest.approx(1 / 32)
    assert one_sided_p(np.full(5, -0.1)) == pytest.approx(1.0)
    assert one_sided_p(np.zeros(8)) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    big = rng.normal(0.5, 1.0, 40)
    assert one_sided_p(big, n_perm=999, seed=1) < 0.05
    assert one_sided_p(big, test="wilcoxon") < 0.05


def test_regressions_sign_for_distance_metrics(base: Path, tmp_path: Path) -> None:
    worse = make_run(tmp_path / "worse", case_ids=IDS, dice=_dice(base, -0.1))
    diffs = regressions(read_records(worse / "records.csv"), read_records(base / "records.csv"), "hd95")
    assert (diffs["clean"] > 0).all()  # higher HD95 is worse: positive regression


def test_apply_baseline_adds_a_default_gate_and_checks_the_folder(base: Path, tmp_path: Path) -> None:
    suite = load_suite("smoke")
    with_gate = apply_baseline(suite, base)
    added = with_gate.gates[-1]
    assert added["check"] == "baseline" and added["baseline"] == str(base.resolve()) and added["margin"] == 0.02
    assert with_gate.text == suite.text  # the suite file (and its sha256) is unchanged
    declared = dataclasses.replace(suite, gates=(*suite.gates, {"name": "regress", "check": "baseline", "margin": 0.1}))
    assert apply_baseline(declared, base).gates[-1] == {"name": "regress", "check": "baseline", "margin": 0.1,
                                                        "baseline": str(base.resolve())}
    with pytest.raises(ConfigError, match="not a run folder"):
        apply_baseline(suite, tmp_path / "missing")


def test_report_shows_deltas(base: Path, tmp_path: Path) -> None:
    worse = make_run(tmp_path / "worse", case_ids=IDS, dice=_dice(base, -0.1),
                     gates=[{"name": "baseline[clean]", "outcome": "FAIL", "value": 0.1, "threshold": 0.02,
                             "detail": "clean dice: regression vs baseline +0.1"}])
    copy_baseline(worse, base)
    shutil.rmtree(base)  # the report must not need the original folder
    html = render_report(worse)
    assert 'id="baseline"' in html and "Regression vs baseline" in html
    assert "+0.1" in html and "dashed lines: the baseline run" in html


def test_undefined_clean_values_are_left_out_of_the_pairing(base: Path, tmp_path: Path) -> None:
    """A NaN in one run's clean values once made the identical run FAIL with p_adj 0."""
    run = tmp_path / "nan"
    shutil.copytree(base, run)
    rec = read_records(run / "records.csv")
    rec.loc[(rec["perturbation"] == "clean") & (rec["case_id"] == IDS[0]), "dice"] = np.nan
    rec.to_csv(run / "records.csv", index=False)
    diffs = regressions(read_records(run / "records.csv"), read_records(base / "records.csv"), "dice")
    assert IDS[0] not in diffs["clean"].index and len(diffs["clean"]) == len(IDS) - 1
    assert _outcomes(baseline_gate(_gate(base), _context(run)))["baseline[clean]"] == "PASS"


def test_the_suite_alpha_applies_when_the_gate_has_none(base: Path) -> None:
    gate = {k: v for k, v in _gate(base).items() if k != "alpha"}
    context = _context(base)
    strict = dataclasses.replace(context, suite=dataclasses.replace(context.suite, alpha=0.001))
    loose = dataclasses.replace(context, suite=dataclasses.replace(context.suite, alpha=0.5))
    assert "α 0.001" in baseline_gate(gate, strict)[0].detail and "α 0.5" in baseline_gate(gate, loose)[0].detail
    assert "α 0.05" in baseline_gate({**gate, "alpha": 0.05}, loose)[0].detail  # the gate's own α wins


def test_a_baseline_run_with_another_seed_or_suite_is_noted(base: Path) -> None:
    """The comparison assumes the same suite, data and seed; another seed or suite was accepted
    without a word (a same-model run at another seed showed a 'regression')."""
    import json

    context = _context(base)
    summary = json.loads((base / "summary.json").read_text())
    summary["suite"]["sha256"] = context.suite.sha256
    (base / "summary.json").write_text(json.dumps(summary))
    assert "NOTE" not in baseline_gate(_gate(base), context)[0].detail
    other_seed = dataclasses.replace(context, suite=dataclasses.replace(context.suite, seed=5))
    assert "NOTE the baseline ran with seed 0 (this run 5: other perturbation draws)" in \
        baseline_gate(_gate(base), other_seed)[0].detail
    summary["suite"]["sha256"] = "c" * 64
    (base / "summary.json").write_text(json.dumps(summary))
    assert "NOTE the baseline ran with suite 'synthetic' of other content (sha256 cccccccccccc…)" in \
        baseline_gate(_gate(base), context)[0].detail


def test_dossier_states_the_added_baseline_gate_and_strict(tmp_path: Path) -> None:
    """The gate --baseline adds read "defaults (see docs/report.md)"; a --strict run's exit rule was missing."""
    import json

    from harness.report.html import render
    from harness.report.rundir import load_run

    gates = [{"name": "baseline[clean]", "outcome": "WARN", "value": 0.01, "threshold": 0.02, "detail": "d"}]
    run = make_run(tmp_path / "run", case_ids=IDS, gates=gates)
    html = render(load_run(run), "dossier")
    assert ("margin = 0.02, alpha = 0.05 ([suite].alpha), min_cases = 5, test = permutation, families = all" in html
            and "--strict" not in html)
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, "strict": True}))
    assert "this run used\n<code>--strict</code> — a gate is WARN or INCONCLUSIVE (1)" in render(load_run(run), "dossier")


def test_a_severity_that_failed_in_the_baseline_is_left_out_of_that_case_in_both_runs(base: Path,
                                                                                      tmp_path: Path) -> None:
    """A baseline whose severity 3 failed on some cases (ERROR records) compared the current run's
    mean over severities 1 and 3 with the baseline's over severity 1 alone: the same model regressed.
    It also adds an ERROR result, as harness compare does for an incomplete run."""
    broken = tmp_path / "broken"
    shutil.copytree(base, broken)
    rec = read_records(broken / "records.csv")
    failed = (rec["perturbation"] == "gaussian_noise") & (rec["severity"] == 3) & rec["case_id"].isin(IDS[:4])
    rec.loc[failed, "status"], rec.loc[failed, "error"], rec.loc[failed, "dice"] = "ERROR", "model raised", np.nan
    rec.to_csv(broken / "records.csv", index=False)
    diffs = regressions(read_records(base / "records.csv"), read_records(broken / "records.csv"), "dice")
    assert len(diffs["gaussian_noise"]) == len(IDS)
    assert np.allclose(diffs["gaussian_noise"], 0.0)  # same model, same predictions: no regression anywhere
    results = {r.name: r for r in baseline_gate(_gate(broken), _context(base))}
    assert results["baseline[baseline-run]"].outcome == "ERROR" and "has 8 ERROR record(s)" in \
        results["baseline[baseline-run]"].detail
    assert results["baseline[gaussian_noise]"].outcome == "PASS"
    assert results["baseline[gaussian_noise]"].value == pytest.approx(0.0)


def test_a_named_family_the_runs_do_not_share_is_inconclusive_not_dropped(base: Path) -> None:
    results = {r.name: r for r in baseline_gate(_gate(base, families=["noise", "gaussian_noise"]), _context(base))}
    assert results["baseline[noise]"].outcome == "INCONCLUSIVE"
    assert "not a perturbation of both runs (shared: gaussian_noise)" in results["baseline[noise]"].detail
    assert results["baseline[gaussian_noise]"].outcome == "PASS"


def test_comparison_means_use_the_severities_both_runs_have(base: Path, tmp_path: Path) -> None:
    """A run with an extra severity showed a perturbed mean over more severities than the regression
    compared, so its mean differed while the regression was 0."""
    from harness.baseline import comparison_table

    current = make_run(tmp_path / "cur", case_ids=IDS, drop=0.05)
    records = read_records(current / "records.csv")
    extra = records[records["severity"] == 3].assign(severity=5, dice=0.1)  # severity 5 only in this run
    records = pd.concat([records, extra], ignore_index=True)
    cases = pd.read_csv(current / "cases.csv", dtype={"case_id": str})
    table = comparison_table(records, cases, read_records(base / "records.csv"),
                             pd.read_csv(base / "cases.csv", dtype={"case_id": str}), ["dice"])
    noise = table[table["comparison"] == "gaussian_noise"].iloc[0]
    assert noise["regression"] == pytest.approx(0.0, abs=1e-12)
    assert noise["current"] == pytest.approx(noise["baseline"])



@pytest.mark.parametrize(("damage", "fragment"), [
    (lambda run: (run / "cases.csv").write_text(""), r"cases\.csv: cannot read"),
    (lambda run: (run / "cases.csv").write_text("id,x\na,1\n"), r"cases\.csv: no 'case_id' column"),
    (lambda run: _edit_summary(run, cohorts=5), r"summary\.json: not a summary .*'cohorts' is integer, expected "
                                                r"string or array"),
    (lambda run: _edit_summary(run, gates=None), r"summary\.json: .*'gates' is null, expected array"),
    (lambda run: _edit_summary(run, gates=[{"outcome": "PASS"}]), r"'gates' must be objects with a name and an outcome"),
    (lambda run: _edit_summary(run, model=None), r"'model' is null, expected object"),
    (lambda run: _drop_summary_key(run, "data"), r"summary\.json: not a summary .*missing 'data'"),
    (lambda run: (run / "suite.toml").write_text("[suite\n"), r"suite\.toml: invalid TOML"),
    (lambda run: (run / "artifacts").mkdir() or (run / "artifacts" / "manifest.json").write_text("{"),
     r"manifest\.json: cannot read"),
])
def test_a_damaged_baseline_is_refused_before_any_model_call(base: Path, damage, fragment: str) -> None:
    """Once the run evaluated everything, then failed with an internal error (exit 2, no report), or its
    summary said INCONCLUSIVE beside the failure."""
    from harness.report.rundir import load_run

    damage(base)
    with pytest.raises(ConfigError, match=fragment) as info:
        apply_baseline(load_suite("smoke"), base)
    assert str(info.value).startswith(f"--baseline {base}: ") and "\n" not in str(info.value)
    with pytest.raises(ConfigError, match=fragment):  # harness report / compare read it the same way
        load_run(base)


def _edit_summary(run: Path, **changes) -> None:
    import json

    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, **changes}))


def _drop_summary_key(run: Path, key: str) -> None:
    import json

    summary = json.loads((run / "summary.json").read_text())
    del summary[key]
    (run / "summary.json").write_text(json.dumps(summary))


def test_what_the_baseline_and_compared_runs_noted_is_carried_over(base: Path, tmp_path: Path) -> None:
    """A run scored on its model's training cases says so; a comparison or regression report against
    it lost that word and passed an optimistic baseline as is."""
    import json

    from harness.compare import compare_runs

    said = "10 of the 10 evaluated cases were seen by the model in training"
    summary = json.loads((base / "summary.json").read_text())
    (base / "summary.json").write_text(json.dumps({**summary, "notes": [said]}))
    other = make_run(tmp_path / "other", case_ids=IDS, dice=_dice(base, -0.01))
    assert f"run A: {said}" in compare_runs(base, other)["notes"]
    assert not any(n.startswith("run B:") for n in compare_runs(base, other)["notes"])
    copy_baseline(other, base)
    assert f'<p class="note">Baseline run: {said}</p>' in render_report(other)


def test_harness_compare_prints_a_plugin_reference_as_written(base: Path, tmp_path: Path, capsys) -> None:
    """compare's own console turned "mylab.pert:ghost:" into a ghost emoji."""
    import json

    from harness.cli import main

    summary = json.loads((base / "summary.json").read_text())
    (base / "summary.json").write_text(json.dumps({**summary, "notes": ["family mylab.pert:ghost: was used"]}))
    other = make_run(tmp_path / "other", case_ids=IDS, dice=_dice(base, 0.0))
    main(["compare", str(base), str(other), "--out", str(tmp_path / "cmp")])
    assert "mylab.pert:ghost: was used" in " ".join(capsys.readouterr().out.split())


def test_the_bootstrap_t_test_needs_no_symmetry() -> None:
    """With regressions at the margin but skewed (most cases a little worse, a few much better) the
    sign-flip test FAILs far more often than α; bootstrap-t stays near it (docs/ci.md)."""
    rng = np.random.default_rng(3)
    samples = [0.03 * (1.0 - rng.exponential(1.0, 20)) for _ in range(300)]  # mean 0: at the null's boundary
    perm = np.mean([one_sided_p(x, n_perm=999, seed=i) < 0.05 for i, x in enumerate(samples)])
    boot = np.mean([one_sided_p(x, test="bootstrap-t", n_perm=999, seed=i) < 0.05 for i, x in enumerate(samples)])
    assert perm > 0.08 and boot < 0.08 and boot < perm - 0.03, (perm, boot)
    worse = rng.normal(0.03, 0.03, 12)  # a real regression is found by both
    assert one_sided_p(worse, test="bootstrap-t", seed=0) < 0.01 and one_sided_p(worse, seed=0) < 0.01
    assert one_sided_p(worse, test="bootstrap-t", seed=5) == one_sided_p(worse, test="bootstrap-t", seed=5)
    assert one_sided_p(np.full(6, 0.01), test="bootstrap-t", n_perm=999) == 1 / 1000  # no spread, above 0
    assert one_sided_p(np.zeros(6), test="bootstrap-t") == 1.0


def test_a_baseline_gate_takes_the_bootstrap_t_test(base: Path, tmp_path: Path) -> None:
    from harness.baseline import gate_problems

    assert gate_problems({"name": "b", "check": "baseline", "test": "bootstrap-t"}) == []
    assert "test must be one of permutation, wilcoxon, bootstrap-t, got 't'" in gate_problems(
        {"name": "b", "check": "baseline", "test": "t"})[0]
    worse = make_run(tmp_path / "worse", case_ids=IDS, dice=_dice(base, -0.1))
    results = baseline_gate(_gate(base, test="bootstrap-t"), _context(worse))
    assert _outcomes(results)["baseline[clean]"] == "FAIL"


def test_clustered_cases_are_tested_by_patient(base: Path, tmp_path: Path) -> None:
    """With [suite].cluster, each patient's paired regressions are averaged and the test runs on the
    patients: the gate equals the per-case gate on the patient means (oracle: one_sided_p)."""
    shifts = {cid: -0.08 + 0.04 * (i % 3) for i, cid in enumerate(IDS)}
    worse = make_run(tmp_path / "worse", case_ids=IDS, dice={c: v + shifts[c] for c, v in _dice(base, 0.0).items()},
                     drop=0.05)
    context = _context(worse)
    patients = dict(zip(IDS, ["p0"] * 4 + ["p1"] * 2 + ["p2"] * 2 + ["p3"] * 2 + ["p4", "p5"]))  # uneven
    context = dataclasses.replace(context, cases=context.cases.assign(Case=context.cases["case_id"].map(patients)),
                                  suite=dataclasses.replace(context.suite, cluster="Case"))
    gate = _gate(base, families=["none"])  # clean only: a family the runs lack is not tested (INCONCLUSIVE)
    clean = _clean_result(baseline_gate(gate, context))
    per_case = regressions(context.records, read_records(base / "records.csv"), "dice")["clean"]
    by_patient = per_case.groupby(per_case.index.map(patients)).mean()
    assert clean.value == pytest.approx(by_patient.mean()) and clean.value != pytest.approx(per_case.mean())
    expected = one_sided_p(by_patient.to_numpy() - DEFAULTS["margin"], n_perm=2000, seed=0)
    assert f"p_adj {expected:.3g}" in clean.detail
    assert "over 12 paired cases (6 Case values, the unit of the test)" in clean.detail
    loose = _clean_result(baseline_gate(gate, _context(worse)))
    assert "over 12 paired cases;" in loose.detail and "Case values" not in loose.detail
    base_records = read_records(base / "records.csv")
    base_cases = pd.read_csv(base / "cases.csv", dtype={"case_id": str})
    table = comparison_table(context.records, context.cases, base_records, base_cases, ["dice"], cluster="Case")
    row = table[table["comparison"] == "clean"].iloc[0]  # the report's table says what the gate tested
    assert row["n"] == 12 and row["n_clusters"] == 6 and row["regression"] == pytest.approx(clean.value)
    assert row["baseline"] - row["current"] == pytest.approx(row["regression"])


def test_min_cases_counts_patients_when_clustered(base: Path, tmp_path: Path) -> None:
    """Six images of three patients are three units: below min_cases 5, INCONCLUSIVE, as per case
    they would be tested."""
    few = make_run(tmp_path / "few", case_ids=IDS[:6], dice={c: v - 0.1 for c, v in _dice(base, 0.0).items()
                                                              if c in IDS[:6]}, drop=0.05)
    context = _context(few)
    patients = {cid: f"p{i // 2}" for i, cid in enumerate(IDS)}
    clustered = dataclasses.replace(context, cases=context.cases.assign(Case=context.cases["case_id"].map(patients)),
                                    suite=dataclasses.replace(context.suite, cluster="Case"))
    by_patient = _clean_result(baseline_gate(_gate(base, families=["none"]), clustered))
    assert by_patient.outcome == "INCONCLUSIVE" and "3 Case values, need 5" in by_patient.detail
    per_case = _clean_result(baseline_gate(_gate(base, families=["none"]), context))
    assert per_case.outcome == "FAIL"


def test_compare_follows_run_b_cluster(base: Path, tmp_path: Path) -> None:
    """harness compare in paired mode tests by patient when run B's suite sets cluster, as B's own
    --baseline gate does."""
    import json

    from harness.cli import main

    worse = make_run(tmp_path / "worse", case_ids=IDS, dice=_dice(base, -0.03), drop=0.05)
    patients = {cid: f"p{i // 2}" for i, cid in enumerate(IDS)}
    cases = pd.read_csv(worse / "cases.csv", dtype={"case_id": str})
    cases.assign(Case=cases["case_id"].map(patients)).to_csv(worse / "cases.csv", index=False)
    suite = (worse / "suite.toml").read_text()
    (worse / "suite.toml").write_text(suite.replace("[suite]\n", '[suite]\ncluster = "Case"\n', 1))
    main(["compare", str(base), str(worse), "--out", str(tmp_path / "cmp"), "--max-drop", "dice=0.02"])
    result = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    clean = next(g for g in result["gates"] if g["name"] == "regression-dice[clean]")
    assert "(6 Case values, the unit of the test)" in clean["detail"]


def test_unpaired_compare_follows_run_b_cluster(tmp_path: Path) -> None:
    """Two runs on different patients (unpaired): with run B's cluster the test compares patients,
    each the mean of its images; run A without the column is refused with a clear message."""
    import json

    from harness.cli import main

    ids_a, ids_b = [f"a{i:02d}" for i in range(12)], [f"b{i:02d}" for i in range(12)]
    meta = {"Case": [f"p{i // 2}" for i in range(12)]}
    run_a = make_run(tmp_path / "a", case_ids=ids_a, metadata=meta, hashes={c: f"{c:>064}" for c in ids_a})
    run_b = make_run(tmp_path / "b", case_ids=ids_b, metadata={"Case": [f"q{i // 3}" for i in range(12)]},
                     suite_extra='cluster = "Case"', hashes={c: f"{c:>064}" for c in ids_b})
    assert main(["compare", str(run_a), str(run_b), "--out", str(tmp_path / "cmp"), "--min-cases", "3"]) in (0, 1)
    result = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert result["mode"] == "unpaired"
    clean = next(g for g in result["gates"] if g["name"] == "regression-dice[clean]")
    assert "(n=6) vs B" in clean["detail"] and "(n=4 Case values)" in clean["detail"]
    bare = make_run(tmp_path / "bare", case_ids=ids_a, hashes={c: f"{c:>064}" for c in ids_a})
    assert main(["compare", str(bare), str(run_b), "--out", str(tmp_path / "cmp2")]) == 3
