"""End to end: a site-shift run on phantoms (site C's acquisition profile breaks a fixed-threshold
model), a multi-source card run, and `harness compare` in paired and unpaired modes with exit codes."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import harness.analysis.shift  # noqa: F401  (registers the site_drop gate)
from harness.analysis.shift import run_shift_evidence
from harness.cli import main

MODEL = ('[model]\nformat = "callable"\nentry = "tests.shift.models:{entry}"\n'
         '[output]\nkind = "labels"\nlabels = {{1 = "organ", 2 = "lesion"}}\n')
SUITE = """
[suite]
name = "shift-e2e"
data = "phantom2d"
metrics = ["dice", "hd95"]
min_group_size = 5
n_bootstrap = 300
n_permutations = 500
{extra}

[[perturbations]]
family = "blur"
severities = [1, 3, 5]

[[perturbations]]
family = "gamma"
severities = [1]

[[gates]]
name = "site-dice"
check = "site_drop"
metric = "dice"
max_drop = 0.1
warn_drop = 0.03
"""


def _files(tmp: Path, extra: str = "", entry: str = "fixed_threshold") -> tuple[Path, Path]:
    (tmp / "model.toml").write_text(MODEL.format(entry=entry))
    (tmp / "suite.toml").write_text(SUITE.format(extra=extra))
    return tmp / "suite.toml", tmp / "model.toml"


@pytest.fixture(scope="module")
def site_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path]:
    tmp = tmp_path_factory.mktemp("shift")
    suite, model = _files(tmp)
    out = tmp / "run"
    code = main(["run", "--suite", str(suite), "--model", str(model), "--out", str(out), "--workers", "1"])
    return code, out


def test_phantom_site_shift_is_measured(site_run: tuple[int, Path]) -> None:
    code, out = site_run
    summary = json.loads((out / "summary.json").read_text())
    gates = {g["name"]: g for g in summary["gates"]}
    assert code == 1 and gates["site-dice[C]"]["outcome"] == "FAIL"
    assert gates["site-dice[C]"]["detail"].startswith("site C: n=10,") and "reference A (n=26" in gates["site-dice[C]"]["detail"]
    assert gates["site-dice[C]"]["value"] > 0.15
    assert gates["site-dice[B]"]["outcome"] in ("FAIL", "WARN")
    quality = pd.read_csv(out / "quality.csv").merge(pd.read_csv(out / "cases.csv"), on="case_id")
    noise = quality.groupby("site")["noise_sigma"].median()
    assert noise["A"] < noise["B"] < noise["C"]  # planted 0.02 / 0.03 / 0.04
    assert noise.to_numpy() == pytest.approx([0.02, 0.03, 0.04], rel=0.1)
    [evidence] = run_shift_evidence(out)  # device ≡ site on the phantoms: listed once
    assert evidence.attribute == "site" and evidence.reference == "A"
    c = evidence.table[(evidence.table["site"] == "C") & (evidence.table["metric"] == "dice")].iloc[0]
    assert c["p_adjusted"] < 0.05 and c["drop_ci_low"] > 0
    match = evidence.matches.set_index(["site", "metric"]).loc[("C", "dice")]
    assert match["family"] in ("blur", "gamma") and match["gap"] < c["drop"] and match["drop_significant"]
    assert set(evidence.distances["site"]) == {"A", "B", "C"} and len(evidence.histograms)
    json.dumps(evidence.to_dict())


def test_bad_site_configuration_exits_3_before_the_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    suite, _ = _files(tmp_path, extra='reference_site = "Z"')
    code = main(["run", "--suite", str(suite), "--model", str(tmp_path / "missing.toml"), "--out", str(tmp_path / "o")])
    assert code == 3 and "reference site 'Z' is not a value of 'site'" in capsys.readouterr().err
    assert main(["validate-suite", "shift"]) == 0


def _sub_run(src: Path, dst: Path, keep: pd.Series | None = None, *, dice_shift: float = 0.0,
             metrics: list[str] | None = None) -> Path:
    """A run folder made from ``src``: some of its cases, clean Dice moved by ``dice_shift``."""
    dst.mkdir()
    for name in ("summary.json", "suite.toml"):
        shutil.copyfile(src / name, dst / name)
    records, cases = pd.read_csv(src / "records.csv"), pd.read_csv(src / "cases.csv")
    quality = pd.read_csv(src / "quality.csv")
    if keep is not None:
        ids = set(cases.loc[keep(cases), "case_id"])
        records, cases, quality = (t[t["case_id"].isin(ids)] for t in (records, cases, quality))
    clean = records["perturbation"] == "clean"
    records.loc[clean, "dice"] = (records.loc[clean, "dice"] - dice_shift).clip(0, 1)
    records.to_csv(dst / "records.csv", index=False)
    cases.to_csv(dst / "cases.csv", index=False)
    quality.to_csv(dst / "quality.csv", index=False)
    if metrics is not None:
        summary = json.loads((dst / "summary.json").read_text())
        (dst / "summary.json").write_text(json.dumps({**summary, "metrics": metrics}))
    return dst


def test_compare_paired_regression_and_identity(site_run: tuple[int, Path], tmp_path: Path) -> None:
    _, run = site_run
    worse = _sub_run(run, tmp_path / "worse", dice_shift=0.1)
    code = main(["compare", str(run), str(worse), "--out", str(tmp_path / "c1"), "--max-drop", "dice=0.02"])
    result = json.loads((tmp_path / "c1" / "compare.json").read_text())
    gates = {g["name"]: g for g in result["gates"]}
    assert code == 1 and result["mode"] == "paired" and result["cases"]["common"] == 48
    assert gates["regression-dice[clean]"]["outcome"] == "FAIL"
    assert "48 paired cases" in gates["regression-dice[clean]"]["detail"]
    assert gates["regression-hd95[clean]"]["outcome"] == "PASS"
    assert (tmp_path / "c1" / "compare.html").read_text().count("regression-dice[clean]") >= 1
    # each tested row carries its adjusted p (was null in paired mode), equal to the gate's
    clean = next(r for r in result["rows"] if r["metric"] == "dice" and r["comparison"] == "clean")
    assert clean["p_adjusted"] is not None and f"p_adj {clean['p_adjusted']:.3g}" in gates["regression-dice[clean]"]["detail"]
    # a run against itself, resampled with another seed: no "other seed" note (compare once passed
    # its resampling seed as the run's own)
    code = main(["compare", str(run), str(run), "--out", str(tmp_path / "c2"), "--seed", "7"])
    same = json.loads((tmp_path / "c2" / "compare.json").read_text())
    assert code == 0 and {g["outcome"] for g in same["gates"]} == {"PASS"}
    assert not any("NOTE" in g["detail"] for g in same["gates"])
    summary = json.loads((run / "summary.json").read_text())
    for name, change, note in (
            ("reseeded", {"seed": summary["seed"] + 1},
             f"NOTE the baseline ran with seed {summary['seed']} (this run {summary['seed'] + 1}"),
            ("resuited", {"suite": {**summary["suite"], "sha256": "f" * 64}}, "of other content (sha256")):
        other = tmp_path / name
        shutil.copytree(run, other)
        (other / "summary.json").write_text(json.dumps({**summary, **change}))
        assert main(["compare", str(run), str(other), "--out", str(tmp_path / f"c-{name}")]) == 0
        checked = [g for g in json.loads((tmp_path / f"c-{name}" / "compare.json").read_text())["gates"]
                   if g["outcome"] != "INCONCLUSIVE"]
        assert checked and all(note in g["detail"] for g in checked), name


def test_compare_unpaired_site_shift(site_run: tuple[int, Path], tmp_path: Path) -> None:
    _, run = site_run
    site_a = _sub_run(run, tmp_path / "a", lambda c: c["site"] == "A")
    site_c = _sub_run(run, tmp_path / "c", lambda c: c["site"] == "C")
    code = main(["compare", str(site_a), str(site_c), "--out", str(tmp_path / "cmp"), "--max-drop", "dice=0.05"])
    result = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    gates = {g["name"]: g for g in result["gates"]}
    assert code == 1 and result["mode"] == "unpaired" and result["cases"]["common"] == 0
    assert gates["regression-dice[clean]"]["outcome"] == "FAIL"
    assert "A 0.93" in gates["regression-dice[clean]"]["detail"] and "(n=10)" in gates["regression-dice[clean]"]["detail"]
    ev = result["evidence"]
    assert {d["site"]: d["w1"] > 0 for d in ev["distances"]} == {"A": False, "B": True}
    assert ev["matches"] and ev["matches"][0]["family"] in ("blur", "gamma")
    html = (tmp_path / "cmp" / "compare.html").read_text()
    assert "<svg" in html and "Which synthetic perturbation predicts the real drop" in html
    assert ev["matches"][0]["drop_significant"] and "<th>drop CI</th>" in html and "may match by chance" not in html
    assert result["units"] == {"hd95": "mm"} and "hd95 [mm]" in html
    # B's cases without a spacing (raster files): its lengths are pixels, and the table says so
    summary = json.loads((site_c / "summary.json").read_text())
    (site_c / "summary.json").write_text(json.dumps({**summary, "spacing_assumed": 10,
                                                     "data": {**summary["data"], "n_cases": 10}}))
    main(["compare", str(site_a), str(site_c), "--out", str(tmp_path / "px"), "--max-drop", "dice=0.05"])
    assert "hd95 [A mm, B px]" in (tmp_path / "px" / "compare.html").read_text()
    # mean A / B are the metric's values (perturbed ones for a family), as in paired mode; the test
    # and the gate compare the degradations
    records = {k: pd.read_csv(p / "records.csv") for k, p in (("a", site_a), ("b", site_c))}
    for row in (r for r in result["rows"] if r["metric"] == "dice"):
        perturbed = {k: t[(t["perturbation"] == row["comparison"]) & (t["status"] == "OK")] for k, t in records.items()}
        if row["comparison"] != "clean" and min(len(t) for t in perturbed.values()):
            common = set(perturbed["a"]["severity"]) & set(perturbed["b"]["severity"])
            expect = [t[t["severity"].isin(common)].groupby("case_id")["dice"].mean().mean() for t in perturbed.values()]
            assert (row["mean_a"], row["mean_b"]) == pytest.approx(expect), row["comparison"]
    assert "margins dice 0.05" in html and "None" not in html and ">nan<" not in html
    # one drop, one CI: the evidence's real drop carries the tested clean comparison's CI
    clean = next(r for r in result["rows"] if r["metric"] == "dice" and r["comparison"] == "clean")
    match = next(m for m in ev["matches"] if m["metric"] == "dice")
    assert (match["drop_ci_low"], match["drop_ci_high"]) == (clean["ci_low"], clean["ci_high"])
    assert match["drop"] == pytest.approx(clean["regression"])
    # forcing paired on disjoint cases, or strict on a WARN, follow the conventions
    assert main(["compare", str(site_a), str(site_c), "--mode", "paired", "--out", str(tmp_path / "x")]) == 3


def test_compare_bad_input_exits_3(site_run: tuple[int, Path], tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    _, run = site_run
    (tmp_path / "empty").mkdir()
    assert main(["compare", str(run), str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 3
    assert "RUN_B" in capsys.readouterr().err
    other = _sub_run(run, tmp_path / "other", metrics=["nsd"])
    assert main(["compare", str(run), str(other), "--out", str(tmp_path / "o")]) == 3
    assert "no metric in common" in capsys.readouterr().err
    assert main(["compare", str(run), str(run), "--max-drop", "lots", "--out", str(tmp_path / "o")]) == 3
    capsys.readouterr()
    assert main(["compare", str(run), str(run), "--max-drop", "dcie=0.5", "--out", str(tmp_path / "o")]) == 3
    assert "--max-drop dcie: not a compared metric; compared: dice" in capsys.readouterr().err
    assert main(["compare", str(run), "--out", str(tmp_path / "o")]) == 3  # usage error


def _png_site(root: Path, site: str, n: int, *, gain: float) -> None:
    rng = np.random.default_rng(len(site))
    for sub in ("img", "msk"):
        (root / site / sub).mkdir(parents=True)
    for i in range(n):
        mask = np.zeros((48, 48), np.uint8)
        r, c = rng.integers(14, 20, 2)
        mask[r:r + 16, c:c + 14] = 1
        image = (0.30 + 0.42 * mask + 0.02 * rng.standard_normal((48, 48))) * gain
        Image.fromarray(np.clip(image * 255, 0, 255).astype(np.uint8)).save(root / site / "img" / f"{i}.png")
        Image.fromarray(mask * 255).save(root / site / "msk" / f"{i}.png")


def _run_organ_card(tmp_path: Path, card: Path, extra: str) -> tuple[int, dict]:
    """``harness run`` of the site-drop gate alone (no perturbations) on a one-class PNG ``card`` with
    the 8-bit threshold model; the exit code and summary.json."""
    (tmp_path / "model.toml").write_text(MODEL.format(entry="threshold_8bit").replace(', 2 = "lesion"', ""))
    suite = SUITE.split("[[perturbations]]")[0] + SUITE.split('severities = [1]\n')[1]
    (tmp_path / "suite.toml").write_text(suite.format(extra=extra))
    code = main(["run", "--suite", str(tmp_path / "suite.toml"), "--model", str(tmp_path / "model.toml"),
                 "--data", str(card), "--out", str(tmp_path / "run"), "--workers", "1"])
    return code, json.loads((tmp_path / "run" / "summary.json").read_text())


def test_multisource_card_run_gates_per_site(tmp_path: Path) -> None:
    """Two hospitals from a [[sources]] card; hospital h2's scanner is brighter (gain 1.5)."""
    _png_site(tmp_path, "h1", 12, gain=1.0)
    _png_site(tmp_path, "h2", 8, gain=1.5)
    card = "".join(f'[[sources]]\nsite = "{s}"\nscanner = "{sc}"\nimages = "{s}/img/*.png"\nlabels = "{s}/msk/{{key}}.png"\n'
                   f'label_values = {{ "255" = 1 }}\nlabel_names = {{ 1 = "organ" }}\n\n'
                   for s, sc in (("h1", "GE"), ("h2", "Siemens")))
    (tmp_path / "sites.toml").write_text(card)
    code, summary = _run_organ_card(tmp_path, tmp_path / "sites.toml", 'reference_site = "h1"')
    assert code == 1 and [g["name"] for g in summary["gates"]] == ["site-dice[h2]"]
    assert summary["gates"][0]["outcome"] == "FAIL" and "site h2: n=8" in summary["gates"][0]["detail"]
    cases = pd.read_csv(tmp_path / "run" / "cases.csv")
    assert cases["case_id"].str.startswith(("h1/", "h2/")).all() and set(cases["scanner"]) == {"GE", "Siemens"}


def test_numeric_site_codes_with_a_gap_name_the_same_sites_in_gates_and_report(tmp_path: Path) -> None:
    """Hospital codes 1 / 2 with one blank cell are floats in memory (1.0, NaN): the gates call the
    sites "1" and "2"; cases.csv must too, or the report's shift section (read from it) fails on
    reference_site = "2" ("not a value of 'hospital'; values: 1.0, 2.0")."""
    _png_site(tmp_path, "img", 14, gain=1.0)
    codes = ["2"] * 7 + ["1"] * 6 + [""]
    pd.DataFrame({"ID": [str(i) for i in range(14)], "hospital": codes}).to_csv(tmp_path / "meta.csv", index=False)
    (tmp_path / "card.toml").write_text('[dataset]\nimages = "img/img/*.png"\nlabels = "img/msk/{key}.png"\n'
                                        'label_values = { "255" = 1 }\nlabel_names = { 1 = "organ" }\n'
                                        'metadata = "meta.csv"\nmetadata_key = "ID"\n')
    code, summary = _run_organ_card(tmp_path, tmp_path / "card.toml", 'site_attribute = "hospital"\nreference_site = "2"')
    assert code in (0, 1) and [g["name"] for g in summary["gates"]] == ["site-dice[1]"]
    cases = pd.read_csv(tmp_path / "run" / "cases.csv", dtype=str, keep_default_na=False)
    assert sorted(set(cases["hospital"])) == ["", "1", "2"]
    [evidence] = run_shift_evidence(tmp_path / "run")
    assert evidence.reference == "2" and set(evidence.table["site"]) == {"1", "2"}
    html = (tmp_path / "run" / "report.html").read_text()
    assert "Shift analysis failed" not in html and "(reference: 2)" in html
