from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.suite import bundled_suites, load_suite, parse_suite

GOOD = """
[suite]
name = "t"
metrics = ["dice", "hd95"]
[[perturbations]]
family = "gaussian_noise"
severities = [1, 2]
[[gates]]
name = "clean"
check = "clean"
metric = "dice"
min = 0.5
"""


def test_bundled_suites_are_valid() -> None:
    suites = bundled_suites()
    assert {"smoke", "robustness"} <= set(suites)
    for name in suites:
        suite = load_suite(name)
        assert suite.name == name
        assert suite.metrics


def test_parse_good_suite(tmp_path: Path) -> None:
    suite = parse_suite(GOOD, path=tmp_path / "t.toml")
    assert suite.perturbations[0].severities == (1, 2)
    assert suite.gates[0]["check"] == "clean"
    assert len(suite.sha256) == 64
    assert suite.small_groups == "inconclusive"
    assert parse_suite(GOOD.replace('name = "t"', 'name = "t"\nsmall_groups = "exclude"'),
                       path=tmp_path / "t.toml").small_groups == "exclude"
    assert suite.cluster == ""
    assert parse_suite(GOOD.replace('name = "t"', 'name = "t"\ncluster = " Case "'), path=tmp_path / "t.toml").cluster == "Case"


def test_bin_edges_may_be_numbers_written_as_text() -> None:
    from harness.analysis.cohorts import bin_spec_problem

    assert bin_spec_problem(["0", 50, "inf"], name="age") is None
    assert bin_spec_problem(["0", "fifty"], name="age") == "bins.age: edges must be numbers, got ['0', 'fifty']"


@pytest.mark.parametrize("text, fragment", [
    ("[suite\nname='x'", "invalid TOML"),
    (GOOD.replace('name = "t"', 'nmae = "t"'), "did you mean 'name'"),
    (GOOD.replace("severities = [1, 2]", "severities = [0, 9]"), "ints 1..5"),
    (GOOD.replace('metrics = ["dice", "hd95"]', 'metrics = ["dice", "nonsense"]'), "unknown metric 'nonsense'"),
    (GOOD.replace('check = "clean"', 'check = "nope"'), "'check' must be one of"),
    (GOOD.replace('metric = "dice"\nmin', 'metric = "iou"\nmin'), "is not computed"),
    (GOOD + '[[perturbations]]\nfamily = "gaussian_noise"\n', "appears twice"),
    (GOOD.replace("seed", "x").replace('name = "t"', 'name = "t"\nseed = "zero"'), "expected int"),
    (GOOD.replace("min = 0.5", "minn = 0.5"), "unknown key(s) minn (did you mean 'min'?); allowed:"),
    (GOOD.replace('name = "t"', 'name = "t"\nmin_group_size = 1'), "[suite].min_group_size: must be >= 2, got 1"),
    (GOOD.replace('check = "clean"', 'check = "fairness"').replace("min = 0.5", "max_gap = 0.1\nattribute = 'sex'"),
     "unknown key(s) attribute (did you mean 'attributes'?); allowed:"),
    (GOOD.replace('check = "clean"', 'check = "site_drop"').replace("min = 0.5", "max_drop = 0.1\nrefrence = 'a'"),
     "unknown key(s) refrence (did you mean 'reference'?); allowed:"),
    (GOOD.replace('check = "clean"', 'check = "fairness"'), "missing 'max_gap'"),
    (GOOD.replace('name = "t"', 'name = "t"\ncluster = 5'), "[suite].cluster: expected str, got int"),
    (GOOD.replace('name = "t"', 'name = "t"\nsmall_groups = "drop"'),
     "[suite].small_groups: must be one of inconclusive, exclude"),
    (GOOD.replace('check = "clean"', 'check = "degradation"').replace("min = 0.5", "max_drop = 'x'"),
     "max_drop must be a finite number"),
    (GOOD.replace("min = 0.5", "min = nan"), "min must be a finite number, got nan"),
    (GOOD.replace("min = 0.5", "min = 1.5"), "min 1.5 lies outside what dice can take (0..1)"),
    (GOOD.replace("min = 0.5", "max = 0.5"), "dice is higher-is-better, so its threshold is 'min', not 'max'"),
    (GOOD.replace("min = 0.5", "min = 0.5\nwarn = 0.4"), "warn 0.4 must lie on the passing side of min 0.5"),
    (GOOD.replace("min = 0.5", "min = 0.5\nmin_cases = 0"), "min_cases must be a whole number >= 1, got 0"),
    (GOOD.replace('check = "clean"', 'check = "degradation"').replace("min = 0.5", "max_drop = 0.1\nwarn_drop = 0.2"),
     "warn_drop 0.2 must not exceed max_drop 0.1"),
    (GOOD.replace('check = "clean"', 'check = "degradation"').replace("min = 0.5", "max_drop = 0.1\nseverities = '1'"),
     "severities must be a non-empty list of ints 1..5"),
    (GOOD.replace('check = "clean"', 'check = "degradation"').replace("min = 0.5", "max_drop = 0.1\n"
                                                                      "families = ['gausian_noise']"),
     "families ['gausian_noise'] are not perturbations of this suite (gaussian_noise)"),
    (GOOD.replace('name = "t"', 'name = "t"\nrepeats = 0'), "[suite].repeats: must be >= 1, got 0"),
    (GOOD.replace('name = "t"', 'name = "t"\nalpha = 5.0'), "[suite].alpha: must be in (0, 1), got 5.0"),
    (GOOD.replace('name = "t"', 'name = "t"\nmin_group_size = true'), "[suite].min_group_size: expected int, got bool"),
    (GOOD.replace("severities = [1, 2]", "severities = [1, 2]\noptions = 'x'"), "options: expected dict"),
    ('gates = 5\n[suite]\nname = "t"\nmetrics = ["dice"]\n', "gates: expected list"),
    (GOOD + '[[gates]]\nname = "clean"\ncheck = "clean"\nmetric = "dice"\nmin = 0.4\n', "name 'clean' appears twice"),
    (GOOD.replace("severities = [1, 2]", 'severities = [1, 2]\nname = "clean"'),
     "(gaussian_noise).name: 'clean' is reserved"),  # its rows read as the unperturbed ones: never applied
    (GOOD.replace("severities = [1, 2]", 'severities = [1, 2]\nname = "all"'), "'all' is reserved"),
    (GOOD.replace("severities = [1, 2]", 'severities = [1, 2]\nname = " Clean "'), "' Clean ' is reserved"),
    (GOOD.replace('metrics = ["dice", "hd95"]', 'metrics = ["dice", "hd95", "dice"]'),
     "[suite].metrics: 'dice' appears twice"),
    (GOOD.replace('name = "t"', 'name = "t"\nbins = { age = [3, 1] }'),
     "[suite].bins.age: edges must be at least 2 strictly increasing numbers, got [3, 1]"),
    (GOOD.replace('name = "t"', 'name = "t"\nbins = { age = 1 }'), "[suite].bins.age: need at least 2 quantile bins"),
    (GOOD.replace('name = "t"', 'name = "t"\nbins = { age = "deciles" }'), "[suite].bins.age: expected a list of edges"),
])
def test_malformed_suites_name_the_problem(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_suite(text, path=tmp_path / "bad.toml")
    assert fragment in str(info.value)
    assert "bad.toml" in str(info.value)


def test_unknown_suite_name_lists_bundled() -> None:
    with pytest.raises(ConfigError, match="bundled suites"):
        load_suite("no-such-suite")


def test_a_folder_named_like_a_bundled_suite_does_not_hide_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "smoke").mkdir()  # e.g. an earlier `harness run --suite smoke --out smoke`
    assert load_suite("smoke").name == "smoke"
    (tmp_path / "mine").mkdir()
    with pytest.raises(ConfigError, match="suite file mine is a folder, not a suite file"):
        load_suite("mine")
    with pytest.raises(ConfigError, match="suite file smoke.toml does not exist"):
        load_suite("smoke.toml")


def test_bad_metric_option_is_a_config_error(tmp_path: Path) -> None:
    text = GOOD.replace('metrics = ["dice", "hd95"]', 'metrics = ["dice", "hd95"]\nmetric_options = { percentile = 250 }')
    with pytest.raises(ConfigError, match="percentile"):
        parse_suite(text, path=tmp_path / "t.toml")


def test_toml_nested_thousands_deep_is_a_config_error(tmp_path: Path) -> None:
    """A malicious suite nesting arrays 50,000 deep ended in an internal RecursionError (exit 2)."""
    with pytest.raises(ConfigError, match="invalid TOML"):
        parse_suite("x = " + "[" * 50_000 + "]" * 50_000 + "\n", path=tmp_path / "deep.toml")


def test_every_problem_is_listed_and_a_misspelt_gate_metric_is_named_as_such(tmp_path: Path) -> None:
    """A family name typo was reported only once its bad severities were fixed, and a gate's misspelt
    metric got direction advice for an unknown metric ('dicee is lower-is-better, use max')."""
    text = ('[suite]\nname = "typo"\nmetrics = ["dice"]\n\n[[perturbations]]\nfamily = "gausian_noise"\n'
            'severities = [1, 7]\n\n[[gates]]\nname = "c"\ncheck = "clean"\nmetric = "dicee"\nmin = 0.8\n')
    with pytest.raises(ConfigError) as info:
        parse_suite(text, path=tmp_path / "s.toml", build_families=True)
    said = str(info.value)
    assert "(gausian_noise).severities: must be a non-empty list of ints 1..5" in said
    assert "unknown perturbation 'gausian_noise' (did you mean 'gaussian_noise'?)" in said
    assert "gate 'c': unknown metric 'dicee' (did you mean 'dice'?)" in said
    assert "lower-is-better" not in said and "add it to [suite].metrics" not in said


def test_gate_settings_that_could_only_fail_after_the_run_are_refused_at_load(tmp_path: Path) -> None:
    """Each of these ran the whole evaluation, then gave an ERROR or INCONCLUSIVE gate (or crashed)."""
    text = ('[suite]\nname = "late"\nmetrics = ["hd95"]\ncohorts = [1]\n\n'
            '[[perturbations]]\nfamily = "gaussian_noise"\nseverities = [1]\n\n'
            '[[gates]]\nname = "g"\ncheck = "robust_cases"\nmin_fraction = 0.5\n\n'
            '[[gates]]\nname = "f"\ncheck = "fairness"\nmetric = "hd95"\nmax_gap = 1.0\nperturbation = "gausian_noise"\n\n'
            '[[gates]]\nname = "b"\ncheck = "baseline"\nmetric = "hd95"\nbaseline = 5\n\n'
            '[[gates]]\nname = "s"\ncheck = "site_drop"\nmetric = "hd95"\nmax_drop = 1.0\nlabel = "each"\n')
    with pytest.raises(ConfigError) as info:
        parse_suite(text, path=tmp_path / "s.toml")
    said = str(info.value)
    assert "gate 'g': its default metric 'dice' is not computed" in said
    assert "gate 'f': perturbation 'gausian_noise' is not one of this suite's (gaussian_noise), 'clean' or 'all' " \
           "(did you mean 'gaussian_noise'?)" in said
    assert "gate 'b': baseline must be the path of a run folder, got 5" in said
    assert "[suite].cohorts: a list of metadata column names" in said
    assert "gate 's': label \"each\" is not supported by site_drop gates" in said


def test_a_gate_s_own_baseline_that_is_not_a_run_is_refused_before_the_model(tmp_path: Path) -> None:
    from harness.pipeline import RunOptions, run

    suite = tmp_path / "s.toml"
    suite.write_text('[suite]\nname = "b"\nmetrics = ["dice"]\n\n[[gates]]\nname = "b"\ncheck = "baseline"\n'
                     f'baseline = "{tmp_path / "nowhere"}"\n')
    with pytest.raises(ConfigError, match=r"gate 'b': baseline = .*nowhere: not a run folder"):
        run(RunOptions(suite=str(suite), out=str(tmp_path / "out"), limit=2, workers=1))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("gate", "said"), [
    ('check = "degradation"\nmetric = "dice"\nmax_drop = 0.1\nwarn_drop = -1', "warn_drop must be >= 0"),
    ('check = "site_drop"\nmetric = "dice"\nmax_drop = inf', "max_drop must be a finite number >= 0, got inf"),
    ('check = "site_drop"\nmetric = "dice"\nmax_drop = 0.05\nwarn_drop = 0.2', "warn_drop 0.2 must not exceed max_drop 0.05"),
    ('check = "robust_cases"\nmin_fraction = 0.5\nwarn_fraction = 0.2',
     "warn_fraction 0.2 must lie on the passing side of min_fraction 0.5"),
])
def test_thresholds_are_consistent_for_every_gate_kind(tmp_path: Path, gate: str, said: str) -> None:
    text = f'[suite]\nname = "t"\nmetrics = ["dice"]\n\n[[gates]]\nname = "g"\n{gate}\n'
    with pytest.raises(ConfigError, match=said):
        parse_suite(text, path=tmp_path / "s.toml")


@pytest.mark.parametrize("label", ["true", "[1]", "1.5"])
def test_a_label_of_the_wrong_type_is_refused_by_validate_suite_for_every_kind(tmp_path: Path, label: str) -> None:
    """validate-suite passed them on clean, degradation and fairness gates; harness run then refused them."""
    for gate in ('check = "clean"\nmetric = "dice"\nmin = 0.5', 'check = "degradation"\nmetric = "dice"\nmax_drop = 0.1',
                 'check = "fairness"\nmetric = "dice"\nmax_gap = 0.1'):
        text = f'[suite]\nname = "t"\nmetrics = ["dice"]\n\n[[gates]]\nname = "g"\n{gate}\nlabel = {label}\n'
        with pytest.raises(ConfigError, match=r'label must be "mean", "each", a class number or a class name'):
            parse_suite(text, path=tmp_path / "s.toml")


def test_cohorts_the_data_lack_are_named_with_the_suite_key(tmp_path: Path) -> None:
    from harness.pipeline import RunOptions, run

    suite = tmp_path / "s.toml"
    suite.write_text('[suite]\nname = "c"\nmetrics = ["dice"]\ncohorts = ["sexx"]\n')
    with pytest.raises(ConfigError, match=r"s\.toml: \[suite\]\.cohorts \(or --cohorts\): cohort attribute\(s\) 'sexx'"):
        run(RunOptions(suite=str(suite), out=str(tmp_path / "out"), limit=2, workers=1))


def test_a_gate_name_that_is_not_text_is_named_as_such(tmp_path: Path) -> None:
    for name, said in (("5", "'name' must be non-empty text, got 5"), ('"  "', "'name' must be non-empty text, got '  '")):
        text = f'[suite]\nname = "t"\nmetrics = ["dice"]\n\n[[gates]]\nname = {name}\ncheck = "clean"\nmetric = "dice"\nmin = 0.5\n'
        with pytest.raises(ConfigError, match=said):
            parse_suite(text, path=tmp_path / "s.toml")


def test_a_suite_without_gates_says_that_it_cannot_fail(tmp_path: Path) -> None:
    from harness.pipeline import RunOptions, run

    suite = tmp_path / "s.toml"
    suite.write_text('[suite]\nname = "report-only"\nmetrics = ["dice"]\n')
    result = run(RunOptions(suite=str(suite), out=str(tmp_path / "out"), limit=2, workers=1))
    assert result.exit_code == 0
    assert any("declares no gates: the run passes unless the model errs" in n for n in result.summary["notes"])


def test_metric_options_that_do_not_fit_the_data_s_dimensions_are_refused_before_the_model(tmp_path: Path) -> None:
    """connectivity = 3 is valid for 3D only: validate-suite cannot know the data, and every item
    failed at scoring after its model call (exit 2) instead of one load error (exit 3)."""
    from harness.pipeline import RunOptions, run

    suite = tmp_path / "s.toml"
    suite.write_text('[suite]\nname = "c"\ndata = "phantom2d:n=2"\nmetrics = ["dice", "fp_lesions"]\n'
                     'metric_options = { connectivity = 3 }\n')
    parse_suite(suite.read_text(), path=suite)  # valid on its own: 3D data could use it
    with pytest.raises(ConfigError, match=r"s.toml: \[suite\].metric_options do not fit the 2D data phantom2d:n=2: "
                                          r".*connectivity must be an integer from 1 \(faces\) to 2 \(full\)"):
        run(RunOptions(suite=str(suite), out=str(tmp_path / "out"), limit=2, workers=1))
    assert not (tmp_path / "out").exists()
