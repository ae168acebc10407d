"""Clustered cases (several images of one patient): the patient is the unit of group comparisons.

Oracle: a table of patients each expanded into several images whose mean is the patient's value,
analysed with ``cluster``, gives exactly what the patient table gives analysed per case.
"""
from __future__ import annotations

import doctest

import numpy as np
import pandas as pd
import pytest

from harness.analysis import clusters
from harness.analysis.clusters import by_cluster, cluster_ids
from harness.analysis.fairness import fairness_tables
from harness.analysis.shift import site_table
from harness.errors import ConfigError

FAST = {"n_boot": 300, "n_perm": 500}


def _patients(n: int = 40, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One clean record per patient (ids p000…), sex and site, Dice lower at site B."""
    rng = np.random.default_rng(seed)
    ids = [f"p{i:03d}" for i in range(n)]
    site = np.where(np.arange(n) % 4 == 0, "B", "A")
    dice = np.clip(rng.normal(0.85, 0.05, n) - 0.08 * (site == "B"), 0, 1)
    records = pd.DataFrame({"case_id": ids, "perturbation": "clean", "severity": 0, "repeat": 0, "label": 1,
                            "label_name": "lesion", "status": "OK", "dice": dice, "hd95": 20 * (1 - dice)})
    cases = pd.DataFrame({"case_id": ids, "sex": np.where(np.arange(n) % 2 == 0, "F", "M"), "site": site})
    return records, cases


def _images(records: pd.DataFrame, cases: pd.DataFrame, *, per_patient: int,
            spread: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each patient as ``per_patient`` images (ids <patient>_<k>, column Case) around the patient's
    value, ±``spread`` in pairs, so each patient's images average to its value."""
    offsets = spread * np.array([(-1) ** k * (k // 2 + 1) if per_patient % 2 == 0 or k < per_patient - 1 else 0
                                 for k in range(per_patient)], dtype=float)
    offsets -= offsets.mean()
    rows, meta = [], []
    for rec, case in zip(records.to_dict("records"), cases.to_dict("records")):
        for k, off in enumerate(offsets):
            image = f"{rec['case_id']}_{k}"
            rows.append({**rec, "case_id": image, "dice": rec["dice"] + off, "hd95": rec["hd95"] - 20 * off})
            meta.append({**case, "case_id": image, "Case": rec["case_id"]})
    return pd.DataFrame(rows), pd.DataFrame(meta)


def test_docstring_examples() -> None:
    assert doctest.testmod(clusters).failed == 0


@pytest.mark.parametrize("per_patient, spread", [(3, 0.0), (4, 0.02)])
def test_fairness_by_patient_equals_the_patient_table(per_patient: int, spread: float) -> None:
    records, cases = _patients()
    oracle = fairness_tables(records, cases, cohorts=["sex", "site"], metrics=["dice", "hd95"], **FAST)
    images, meta = _images(records, cases, per_patient=per_patient, spread=spread)
    clustered = fairness_tables(images, meta, cohorts=["sex", "site"], metrics=["dice", "hd95"], cluster="Case",
                                **FAST)
    assert clustered.cluster == "Case"
    assert (clustered.groups["n"] == oracle.groups["n"]).all()  # patients, not images
    for table in ("groups", "gaps"):
        got, want = getattr(clustered, table), getattr(oracle, table)
        numeric = want.select_dtypes("number").columns
        np.testing.assert_allclose(got[numeric].to_numpy(float), want[numeric].to_numpy(float), atol=1e-12)
        assert got.drop(columns=numeric).equals(want.drop(columns=numeric))
    assert any(f"analysed by Case ({40 * per_patient} cases of 40 Case values" in n for n in clustered.notes)


def test_images_as_independent_cases_are_noted_and_narrower() -> None:
    records, cases = _patients()
    images, meta = _images(records, cases, per_patient=4, spread=0.0)
    loose = fairness_tables(images, meta, cohorts=["site"], metrics=["dice"], **FAST)
    note = next(n for n in loose.notes if "treated as independent" in n)
    assert "160 of 160 cases share a Case value" in note and 'cluster = "Case"' in note
    clustered = fairness_tables(images, meta, cohorts=["site"], metrics=["dice"], cluster="Case", **FAST)
    assert not any("treated as independent" in n for n in clustered.notes)
    # four copies of each patient: the per-image analysis claims twice the precision it has
    width = lambda r: (r.groups["ci_high"] - r.groups["ci_low"]).to_numpy()  # noqa: E731
    assert (width(loose) < 0.7 * width(clustered)).all()
    assert loose.gaps["statistic"].iloc[0] > 1.5 * clustered.gaps["statistic"].iloc[0]


def test_no_note_without_repeated_patients() -> None:
    records, cases = _patients()
    result = fairness_tables(records, cases.assign(Case=cases["case_id"]), cohorts=["site"], metrics=["dice"],
                             **FAST)
    assert not any("treated as independent" in n for n in result.notes)


def test_patient_in_two_groups_counts_in_each_and_is_noted() -> None:
    records, cases = _patients(n=20)
    images, meta = _images(records, cases, per_patient=2, spread=0.0)
    meta.loc[meta["case_id"] == "p001_1", "sex"] = "F"  # patient p001 (M) has one image filed as F
    result = fairness_tables(images, meta, cohorts=["sex"], metrics=["dice"], cluster="Case", **FAST)
    groups = result.groups.set_index("group")["n"]
    assert groups["F"] == 11 and groups["M"] == 10
    assert any("1 Case value(s) have cases in more than one sex group" in n for n in result.notes)


def test_case_without_a_cluster_value_is_its_own_cluster() -> None:
    cases = pd.DataFrame({"case_id": ["a", "b", "c", "d"], "Case": ["p1", None, " ", "p1"]})
    ids = cluster_ids(cases, "Case")
    assert ids["a"] == ids["d"] == "Case=p1"
    assert len({ids["b"], ids["c"], ids["a"]}) == 3
    values = pd.DataFrame({"case_id": list("abcd"), "label": "mean", "perturbation": "clean", "severity": 0,
                           "g": "x", "dice": [0.2, 0.4, 0.6, 0.8]})
    out = by_cluster(values, ids, groups=["g"], metrics=["dice"])
    assert sorted(out["dice"].round(6)) == [0.4, 0.5, 0.6]


def test_unknown_cluster_column_names_the_key_and_the_patient_column() -> None:
    records, cases = _patients()
    with pytest.raises(ConfigError, match=r"\[suite\]\.cluster 'patient' is not a metadata column"):
        fairness_tables(records, cases.assign(Case=cases["case_id"]), cohorts=["site"], metrics=["dice"],
                        cluster="patient", **FAST)
    with pytest.raises(ConfigError, match="a patient column here: 'Case'"):
        cluster_ids(cases.assign(Case=1), "patient")
    with pytest.raises(ConfigError, match=r"'Case' is not a metadata column; the data has none"):
        cluster_ids(cases[["case_id"]], "Case")
    with pytest.raises(ConfigError, match=r"\[suite\]\.cluster 'Case': no case has a value in that column"):
        cluster_ids(cases.assign(Case=[None, " "] * 20), "Case")


@pytest.mark.parametrize("label", ["mean", "each"])
def test_site_table_by_patient_equals_the_patient_table(label: str) -> None:
    records, cases = _patients()
    records = pd.concat([records, records.assign(label=2, label_name="rim", dice=records["dice"] ** 3)])
    kwargs = {"attribute": "site", "metrics": ["dice", "hd95"], "reference_site": "A", "label": label, **FAST}
    oracle = site_table(records, cases, **kwargs)
    images, meta = _images(records[records["label"] == 1], cases, per_patient=3, spread=0.01)
    rims, _ = _images(records[records["label"] == 2], cases, per_patient=3, spread=0.01)
    images = pd.concat([images, rims])
    clustered = site_table(images, meta, cluster="Case", **kwargs)
    loose = site_table(images, meta, **kwargs)
    numeric = oracle.select_dtypes("number").columns
    np.testing.assert_allclose(clustered[numeric].to_numpy(float), oracle[numeric].to_numpy(float), atol=1e-12)
    assert (clustered["n"] == oracle["n"]).all() and (loose["n"] == 3 * oracle["n"]).all()


def test_the_note_reads_patient_ids_as_cluster_does() -> None:
    """The note counts the patients that cluster = "Case" would group: ids stripped, blanks none."""
    records, cases = _patients(n=4)
    result = fairness_tables(records, cases.assign(Case=["p1", " p1 ", "", ""]), cohorts=["site"],
                             metrics=["dice"], **FAST)
    assert any(n.startswith("2 of 2 cases share a Case value with another case (1 Case values)") for n in result.notes)
