"""Cohort resolution: categorical, binned, intersections, auto, configuration errors."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harness.analysis.cohorts import auto_attributes, bin_numeric, parse_cohorts, resolve_cohorts
from harness.errors import ConfigError


@pytest.fixture
def cases() -> pd.DataFrame:
    return pd.DataFrame({
        "case_id": [f"c{i}" for i in range(8)],
        "sex": ["F", "M"] * 4,
        "age": [20, 30, 41, 50, 60, 66, 70, 85],
        "device": ["X", "X", "Y", "Y", "X", "Y", "X", None],
        "grade": [1, 2, 1, 2, 1, 2, 1, 2],
        "image_sha256": [f"h{i}" for i in range(8)],
        "scanner_serial": [f"s{i}" for i in range(8)],
        "constant": ["k"] * 8,
    })


def test_categorical_and_missing(cases):
    groups = resolve_cohorts(cases, ["sex", "device"])
    assert list(groups["sex"]) == ["F", "M"] * 4
    assert groups["sex"].index.tolist() == cases["case_id"].tolist()
    assert groups["device"].isna().sum() == 1  # missing metadata: no group, not a group "nan"
    assert list(groups["device"].cat.categories) == ["X", "Y"]


def test_bins_from_suite(cases):
    groups = resolve_cohorts(cases, ["age"], bins={"age": [-np.inf, 40, 65, np.inf]})
    assert list(groups["age"].cat.categories) == ["<40", "[40, 65)", "≥65"]
    assert groups["age"].tolist() == ["<40", "<40", "[40, 65)", "[40, 65)", "[40, 65)", "≥65", "≥65", "≥65"]


def test_numeric_without_bins_is_quartiles_and_small_numeric_is_categorical(cases):
    groups = resolve_cohorts(cases, ["age", "grade"])
    assert groups["age"].cat.categories.size == 4
    assert groups["age"].value_counts().tolist() == [2, 2, 2, 2]
    assert list(groups["grade"].cat.categories) == ["1", "2"]


def test_intersection_names_and_levels(cases):
    groups = resolve_cohorts(cases, ["sex×device", "sex*grade"])
    assert set(groups) == {"sex×device", "sex×grade"}
    inter = groups["sex×device"]
    assert inter.iloc[0] == "F×X" and inter.isna().sum() == 1
    assert list(inter.cat.categories) == ["F×X", "F×Y", "M×X", "M×Y"]


def test_auto_takes_2_to_20_levels_and_skips_ids(cases):
    assert auto_attributes(cases.set_index("case_id")) == ["sex", "age", "device", "grade"]
    many = pd.DataFrame({"case_id": [f"c{i}" for i in range(30)], "hospital": [f"h{i}" for i in range(30)],
                         "bmi": np.linspace(18, 40, 30)})
    assert list(resolve_cohorts(many, "auto")) == ["bmi"]  # 30 text levels: not a cohort; numeric: quartiles


def test_parse_cli_override():
    assert parse_cohorts("sex, age") == [("sex",), ("age",)]
    assert parse_cohorts("auto") == "auto"
    assert parse_cohorts([["device", "site"], "sex"]) == [("device", "site"), ("sex",)]
    assert parse_cohorts(["sex,age", "device*site"]) == [("sex",), ("age",), ("device", "site")]
    assert parse_cohorts(["auto"]) == "auto"


def test_missing_attribute_is_config_error_naming_columns(cases):
    with pytest.raises(ConfigError) as err:
        resolve_cohorts(cases, ["sex", "ethnicity"])
    text = str(err.value)
    assert "ethnicity" in text and "sex" in text and "age" in text and "image_sha256" not in text


@pytest.mark.parametrize("bins, match", [
    ({"sex": [0, 1]}, "not numeric"),
    ({"age": [30, 60, 90]}, "outside"),
    ({"age": [60, 30]}, "increasing"),
    ({"age": "tertiles"}, "expected"),
])
def test_bad_bins_are_config_errors(cases, bins, match):
    with pytest.raises(ConfigError, match=match):
        resolve_cohorts(cases, ["sex", "age"], bins=bins)


def test_case_table_needs_case_id():
    with pytest.raises(ConfigError, match="case_id"):
        resolve_cohorts(pd.DataFrame({"sex": ["F"]}), ["sex"])
    indexed = pd.DataFrame({"sex": ["F", "M"]}, index=pd.Index(["a", "b"], name="case_id"))
    assert resolve_cohorts(indexed, ["sex"])["sex"].to_dict() == {"a": "F", "b": "M"}


def test_quartile_edges_keep_the_digits_that_separate_the_data() -> None:
    """Rounded to 3 significant digits, the quartiles of 2010…2018 (2012, 2014, 2016) merged into
    one bin, and the attribute was never tested."""
    years = pd.Series([float(y) for y in range(2010, 2019)] * 10)
    assert bin_numeric(years, None, name="year").value_counts(sort=False).to_dict() == {
        "<2012": 20, "[2012, 2014)": 20, "[2014, 2016)": 20, "≥2016": 30}
    dates = pd.Series([float(20150101 + i) for i in range(8)] * 2)  # YYYYMMDD: edges need 8 digits
    binned = bin_numeric(dates, None, name="date")  # crashed: 6-digit labels of distinct edges collided
    assert list(binned.cat.categories) == ["<20150102.8", "[20150102.8, 20150104.5)", "[20150104.5, 20150106.2)",
                                           "≥20150106.2"] and binned.value_counts().eq(4).all()
    ages = pd.Series([21.0, 35, 48, 52, 60, 61, 77, 80] * 3)  # 3 digits suffice: still the readable edges
    assert list(bin_numeric(ages, None, name="age").cat.categories) == ["<44.8", "[44.8, 56)", "[56, 65)", "≥65"]


def test_auto_skips_patient_identifiers() -> None:
    frame = pd.DataFrame({"case_id": [f"c{i}" for i in range(8)], "Case": [1, 1, 2, 2, 3, 3, 4, 4],
                          "sex": list("FMFMFMFM")})
    assert auto_attributes(frame) == ["sex"]
    # spelt as the trainer and the patient bootstrap find them (a numeric id was cut into quartiles)
    frame = frame.assign(participant_id=[i // 2 for i in range(8)], **{"Patient ID": [f"p{i // 2}" for i in range(8)]})
    assert auto_attributes(frame) == ["sex"]


def test_auto_skips_data_split_columns_but_a_named_one_is_analysed() -> None:
    """BUS-BRA's 5-fold-cv.csv adds kFold and valid_1..valid_5: fold membership is not a subgroup."""
    n = 20
    frame = pd.DataFrame({"case_id": [f"c{i}" for i in range(n)], "Device": ["GE", "Toshiba"] * 10,
                          "kFold": [i % 5 + 1 for i in range(n)], "valid_1": [i % 2 for i in range(n)],
                          "fold_2": ["a", "b"] * 10, "Split": ["train", "test"] * 10, "is_test": [True, False] * 10,
                          "validity": ["ok", "poor"] * 10, "test_result": ["pos", "neg"] * 10}).set_index("case_id")
    assert auto_attributes(frame) == ["Device", "validity", "test_result"]
    assert set(resolve_cohorts(frame.reset_index(), ["kFold"])) == {"kFold"}


def test_blank_values_are_missing_not_a_group(cases):
    """'' and ' ' formed groups of their own (no note), which with min_group_size made the attribute's
    gate INCONCLUSIVE; blanks are no value, as for patient ids and sites."""
    blank = cases.assign(device=["X", "X", "Y", "Y", "", " ", "X", None])
    groups = resolve_cohorts(blank, ["device"])
    assert list(groups["device"].cat.categories) == ["X", "Y"]
    assert groups["device"].isna().sum() == 3


def test_fairness_notes_blank_metadata_as_missing():
    import harness

    ids = [f"c{i}" for i in range(24)]
    records = pd.DataFrame({"case_id": ids, "dice": np.linspace(0.5, 0.9, 24)})
    meta = pd.DataFrame({"case_id": ids, "sex": ["F"] * 10 + ["M"] * 10 + ["", "", " ", " "]})
    result = harness.fairness_tables(records, meta, cohorts=["sex"], metrics=["dice"], min_group_size=2, n_boot=0,
                                     n_perm=50)
    assert sorted(result.groups["group"]) == ["F", "M"]
    assert any("sex: 4 case(s) without a value are left out" in note for note in result.notes)


def test_a_group_of_one_cannot_be_the_minimum_group_size():
    import harness

    records = pd.DataFrame({"case_id": ["a", "b"], "dice": [0.5, 0.9]})
    with pytest.raises(ConfigError, match=r"min_group_size must be >= 2 \(a group of one case has no variance"):
        harness.fairness_tables(records, pd.DataFrame({"case_id": ["a", "b"], "g": ["x", "y"]}), cohorts=["g"],
                                metrics=["dice"], min_group_size=1)


def test_auto_cohorts_say_what_they_left_out_and_why(cases):
    """With three cases, auto analysed age alone; sex (one level) and site (distinct values) vanished
    while the report's shift section compared the sites."""
    import harness
    from harness.analysis.cohorts import auto_skipped

    assert auto_skipped(cases) == ["scanner_serial (a different value for every case, like an identifier)",
                                   "constant (one value)"]
    records = pd.DataFrame({"case_id": cases["case_id"], "dice": np.linspace(0.5, 0.9, 8)})
    result = harness.fairness_tables(records, cases, cohorts="auto", metrics=["dice"], n_boot=0, n_perm=20)
    assert any(n.startswith('cohorts = "auto" analysed sex, age, device, grade; left out: scanner_serial (a different '
                            "value for every case, like an identifier), constant (one value)") for n in result.notes)


def test_binning_a_column_with_text_names_the_cells_that_are_not_numbers(cases):
    """A decimal comma ("72,5") left the age column text: the error gave only its dtype (object)."""
    cases["age"] = cases["age"].astype(object)
    cases.loc[3, "age"], cases.loc[5, "age"] = "72,5", "unknown"
    with pytest.raises(ConfigError, match=r"bins.age: column 'age' is not numeric: 2 distinct value\(s\) are not "
                                          r"numbers: '72,5', 'unknown'; .*decimal point"):
        resolve_cohorts(cases, ["age"], bins={"age": [-np.inf, 40, 65, np.inf]})


def test_a_text_column_names_only_the_cells_that_do_not_read_as_numbers():
    """A column read as text (pd.read_csv with one '72,5'; a run folder's column with one bad cell)
    listed every age as 'not a number'."""
    ages = pd.DataFrame({"case_id": [f"c{i}" for i in range(9)], "age": [str(40 + i) for i in range(8)] + ["72,5"]})
    with pytest.raises(ConfigError, match=r"1 distinct value\(s\) are not numbers: '72,5';"):
        resolve_cohorts(ages, ["age"], bins={"age": [-np.inf, 45, np.inf]})


@pytest.mark.parametrize("spec", [None, "quartiles", 3, [0, 50, 120]])
def test_binning_a_column_without_values_gives_no_group(spec) -> None:
    """A numeric column with no value in the cases analysed (a --limit subset keeps its float dtype)
    raised IndexError from the quantiles: `harness run` stopped with an internal error (exit 2)."""
    cases = pd.DataFrame({"case_id": ["p1", "p2"], "age": [np.nan, np.nan]})
    [groups] = resolve_cohorts(cases, ["age"], bins={} if spec is None else {"age": spec}).values()
    assert groups.isna().all() and list(groups.cat.categories) == []
