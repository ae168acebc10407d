"""Suites: TOML data naming perturbations, metrics, cohorts and gates, parsed into frozen dataclasses.

A suite is given by bundled name (``robustness``), by an entry point of group ``harness.suites``
(a path to a TOML file), or by path. Every problem is reported with the file and the key.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.hashing import text_sha256
from harness.options import SUITE_CHOICES, did_you_mean, must_be_one_of
from harness.perturbations.base import is_severity_list
from harness.tomlread import tomllib

BUNDLED_DIR = Path(__file__).parent / "suites"

SUITE_KEYS: dict[str, Any] = {
    "name": str, "description": str, "seed": int, "data": str, "model": str, "metrics": list,
    "labels": (str, list), "repeats": int, "on_inapplicable": str, "cohorts": (str, list),
    "bins": dict, "min_group_size": int, "alpha": float, "correction": str, "n_bootstrap": int,
    "n_permutations": int, "metric_options": dict, "reference_site": str, "site_attribute": str,
    "worst_cases": int, "fairness_test": str, "small_groups": str, "cluster": str,
}
PERTURBATION_KEYS: dict[str, Any] = {"family": str, "severities": list, "options": dict, "name": str}
GATE_COMMON_KEYS = {"name": str, "check": str, "metric": str, "description": str}


@dataclass(frozen=True)
class PerturbationSpec:
    """One perturbation family at the given severities. ``name`` labels it in records."""

    family: str
    severities: tuple[int, ...]
    options: dict[str, Any] = field(default_factory=dict)
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or self.family


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    seed: int
    data: str
    model: str
    metrics: tuple[str, ...]
    labels: str | tuple[int, ...]
    repeats: int
    on_inapplicable: str
    cohorts: str | tuple[str, ...]
    bins: dict[str, list[float]]
    min_group_size: int
    alpha: float
    correction: str
    n_bootstrap: int
    n_permutations: int
    metric_options: dict[str, Any]
    reference_site: str
    site_attribute: str
    worst_cases: int
    fairness_test: str
    small_groups: str
    perturbations: tuple[PerturbationSpec, ...]
    gates: tuple[dict[str, Any], ...]
    path: Path
    text: str
    cluster: str = ""  # metadata column of non-independent cases (a patient id): the unit of group comparisons

    @property
    def sha256(self) -> str:
        return text_sha256(self.text)


def bundled_suites() -> dict[str, Path]:
    """Bundled suites plus ``harness.suites`` entry points (name -> TOML path)."""
    found = {p.stem: p for p in sorted(BUNDLED_DIR.glob("*.toml"))}
    from harness.plugins import entry_point_objects

    for name, obj in entry_point_objects("harness.suites").items():
        found.setdefault(name, Path(str(obj)))
    return found


def resolve_suite_path(spec: str | Path) -> Path:
    """The TOML file of ``spec``: an existing file, else a bundled suite name (a folder that happens
    to carry a suite's name, e.g. a run's --out, does not hide the bundled suite)."""
    path = Path(spec)
    if path.is_file():
        return path
    if path.suffix != ".toml" and (BUNDLED_DIR / f"{spec}.toml").is_file() and "/" not in str(spec):
        return BUNDLED_DIR / f"{spec}.toml"  # bundled names win; no plugin is imported for them
    if path.suffix != ".toml":
        from harness.plugins import entry_point_object

        plugin = entry_point_object("harness.suites", str(spec))  # only this plugin: a broken other one stops nothing
        if plugin is not None:
            if not Path(str(plugin)).is_file():
                raise ConfigError(f"plugin suite {str(spec)!r} (entry-point group 'harness.suites') points at "
                                  f"{plugin}, which is not a file; fix the plugin's SUITE path or reinstall it")
            return Path(str(plugin))
    from harness.plugins import entry_point_names

    suites = [p.stem for p in sorted(BUNDLED_DIR.glob("*.toml"))] + sorted(entry_point_names("harness.suites"))
    if path.suffix == ".toml" or path.exists():
        what = "is a folder, not a suite file" if path.is_dir() else "does not exist"
        raise ConfigError(f"suite file {path} {what}; give a bundled suite name "
                          f"({', '.join(suites)}) or a path to a .toml file")
    raise ConfigError(f"unknown suite {spec!r}; bundled suites: {', '.join(suites)} "
                      "(or give a path to a .toml file)")


def _check_keys(table: dict[str, Any], allowed: dict[str, Any], where: str, problems: list[str]) -> None:
    for key, value in table.items():
        if key not in allowed:
            hint = did_you_mean(key, allowed, otherwise=f" (allowed: {', '.join(allowed)})")
            problems.append(f"{where}: unknown key {key!r}{hint}")
            continue
        expected = allowed[key]
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            continue
        if isinstance(value, bool) and expected in (int, float):
            problems.append(f"{where}.{key}: expected {expected.__name__}, got bool {value!r}")
            continue
        if expected is not Any and not isinstance(value, expected):
            names = expected.__name__ if isinstance(expected, type) else "/".join(t.__name__ for t in expected)
            problems.append(f"{where}.{key}: expected {names}, got {type(value).__name__} {value!r}")


RESERVED_PERTURBATION_NAMES = frozenset({"clean", "all"})


def _parse_perturbation(i: int, table: Any, problems: list[str]) -> PerturbationSpec | None:
    where = f"[[perturbations]] #{i + 1}"
    if not isinstance(table, dict):
        problems.append(f"{where}: must be a table")
        return None
    _check_keys(table, PERTURBATION_KEYS, where, problems)
    family = table.get("family")
    if not isinstance(family, str):
        problems.append(f"{where}: missing 'family' (a perturbation name, see `harness list perturbations`)")
        return None
    severities = table.get("severities", [1, 2, 3, 4, 5])
    if not is_severity_list(severities):  # reported; the family and its options are still checked
        problems.append(f"{where} ({family}).severities: must be a non-empty list of ints 1..5, got {severities!r}")
        severities = []
    options = table.get("options", {})
    return PerturbationSpec(family=family, severities=tuple(sorted(set(severities))),
                            options=dict(options) if isinstance(options, dict) else {},  # else reported above
                            name=str(table.get("name", "")))


def _parse_gate(i: int, table: Any, problems: list[str]) -> dict[str, Any] | None:
    from harness.gates import check_kinds

    where = f"[[gates]] #{i + 1}"
    if not isinstance(table, dict):
        problems.append(f"{where}: must be a table")
        return None
    kinds = check_kinds()
    check = table.get("check")
    if check not in kinds:
        problems.append(f"{where}: 'check' {must_be_one_of(kinds, check)}")
        return None
    name = table.get("name")
    if not isinstance(name, str) or not name.strip():
        got = "missing 'name'" if name is None else f"'name' must be non-empty text, got {name!r}"
        problems.append(f"{where}: {got} (a short identifier shown in reports and junit.xml)")
        return None
    for key, value in table.items():
        if key in GATE_COMMON_KEYS and not isinstance(value, GATE_COMMON_KEYS[key]):
            problems.append(f"{where}.{key}: expected {GATE_COMMON_KEYS[key].__name__}, got {value!r}")
    from harness.gates import gate_problems

    problems.extend(f"{where}: {p}" for p in gate_problems(table))
    return dict(table)


def parse_suite(text: str, *, path: Path, build_families: bool = False) -> Suite:
    """Parse and validate suite TOML; ConfigError listing every problem found (with
    ``build_families``: unknown families and bad family options too, as ``harness run`` finds them)."""
    try:
        doc = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError) as exc:  # RecursionError: nesting thousands deep
        raise ConfigError(f"suite {path}: invalid TOML: {exc}") from exc
    problems: list[str] = []
    _check_keys(doc, {"suite": dict, "perturbations": list, "gates": list}, str(path), problems)
    head = doc.get("suite", {})
    if not isinstance(head, dict):
        head = {}
    _check_keys(head, SUITE_KEYS, "[suite]", problems)
    if "name" not in head:
        problems.append("[suite]: missing 'name'")
    perturbations = [p for i, t in enumerate(_listed(doc, "perturbations"))
                     if (p := _parse_perturbation(i, t, problems)) is not None]
    for dup in _repeated(p.label for p in perturbations):
        problems.append(f"[[perturbations]]: {dup!r} appears twice; give one of them a distinct 'name'")
    for p in perturbations:
        if p.label.strip().lower() in RESERVED_PERTURBATION_NAMES:
            problems.append(f"[[perturbations]] ({p.family}).name: {p.label!r} is reserved (\"clean\" names the "
                            f"unperturbed rows, \"all\" every perturbation in a fairness gate); choose another name")
    if build_families:
        from harness.perturbations import build

        problems.extend(reason for p in perturbations
                        if isinstance(reason := build(p.family, p.options, label=p.label), str))
    gates = [g for i, t in enumerate(_listed(doc, "gates")) if (g := _parse_gate(i, t, problems)) is not None]
    _check_gate_families(gates, {p.label for p in perturbations}, problems)
    labels_value = head.get("labels", "all")
    if not (labels_value == "all" or (isinstance(labels_value, list) and labels_value and all(
            isinstance(k, int) and not isinstance(k, bool) and k >= 1 for k in labels_value))):
        problems.append(f"[suite].labels: \"all\" or a non-empty list of class numbers >= 1 (background 0 is "
                        f"never scored), got {labels_value!r}")
    for dup in _repeated(g["name"] for g in gates):
        problems.append(f"[[gates]]: name {dup!r} appears twice; gate names identify results in reports and "
                        "junit.xml, make them unique")
    cohorts_value = head.get("cohorts", [])
    if isinstance(cohorts_value, list) and not all(isinstance(c, str) and c.strip() for c in cohorts_value):
        problems.append(f"[suite].cohorts: a list of metadata column names (or \"auto\"), got {cohorts_value!r}")
    _check_ranges(head, problems)
    _check_bins(head.get("bins"), problems)
    metrics = head.get("metrics", ["dice", "hd95"])
    _check_metric_names(metrics, gates, head.get("metric_options", {}), problems)
    for key, allowed in SUITE_CHOICES.items():
        if key in head and head[key] not in allowed:
            problems.append(f"[suite].{key}: {must_be_one_of(allowed, head[key])}")
    if problems:
        raise ConfigError(f"suite {path} is invalid:", problems=problems)
    labels = head.get("labels", "all")
    cohorts = head.get("cohorts", [])
    return Suite(
        name=head["name"], description=head.get("description", ""), seed=head.get("seed", 0),
        data=head.get("data", "phantom2d"), model=head.get("model", "reference"),
        metrics=tuple(metrics), labels=labels if isinstance(labels, str) else tuple(labels),
        repeats=head.get("repeats", 1), on_inapplicable=head.get("on_inapplicable", "error"),
        cohorts=cohorts if isinstance(cohorts, str) else tuple(cohorts), bins=head.get("bins", {}),
        min_group_size=head.get("min_group_size", 10), alpha=float(head.get("alpha", 0.05)),
        correction=head.get("correction", "holm"), n_bootstrap=head.get("n_bootstrap", 1000),
        n_permutations=head.get("n_permutations", 2000), metric_options=head.get("metric_options", {}),
        reference_site=head.get("reference_site", ""), site_attribute=head.get("site_attribute", "site"),
        worst_cases=head.get("worst_cases", 6), fairness_test=head.get("fairness_test", "permutation"),
        small_groups=head.get("small_groups", "inconclusive"),
        perturbations=tuple(perturbations), gates=tuple(gates), path=path, text=text,
        cluster=head.get("cluster", "").strip(),
    )


def _repeated(values: Any) -> list[Any]:
    """The values that occur more than once, sorted."""
    seen = list(values)
    return sorted({v for v in seen if seen.count(v) > 1})


def _listed(doc: dict[str, Any], key: str) -> list[Any]:
    """``doc[key]`` when it is a list (an array of tables); [] otherwise (reported by _check_keys)."""
    value = doc.get(key, [])
    return value if isinstance(value, list) else []


# [suite] numbers and the ranges they must lie in: (low, high, low inclusive)
_RANGES: dict[str, tuple[float, float, bool]] = {
    "seed": (0, float("inf"), True), "repeats": (1, float("inf"), True),
    "min_group_size": (2, float("inf"), True), "alpha": (0, 1, False),
    "n_bootstrap": (1, float("inf"), True), "n_permutations": (1, float("inf"), True),
    "worst_cases": (0, float("inf"), True),
}


def _check_ranges(head: dict[str, Any], problems: list[str]) -> None:
    """``[suite]`` numbers in range (a wrong type is reported by _check_keys)."""
    for key, (low, high, inclusive) in _RANGES.items():
        value = head.get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        above = value >= low if inclusive else value > low
        if not (above and value < high):
            bounds = f">= {low:g}" if high == float("inf") else f"in ({low:g}, {high:g})"
            problems.append(f"[suite].{key}: must be {bounds}, got {value!r}")


def _check_bins(bins: Any, problems: list[str]) -> None:
    """Each ``[suite].bins`` entry valid on its own (edges against the data are checked by the run)."""
    if not isinstance(bins, dict):
        return  # absent, or a wrong type reported by _check_keys
    from harness.analysis.cohorts import bin_spec_problem

    problems.extend(f"[suite].{problem}" for name, spec in bins.items()
                    if (problem := bin_spec_problem(spec, name=name)))


def _check_gate_families(gates: list[dict[str, Any]], labels: set[str], problems: list[str]) -> None:
    """Every perturbation a gate's ``families`` (or a fairness gate's ``perturbation``) names is one
    of the suite's (by label)."""
    for gate in gates:
        wanted = gate.get("perturbation")
        if gate["check"] == "fairness" and isinstance(wanted, str) and wanted not in {"clean", "all"} | labels:
            problems.append(f"gate {gate['name']!r}: perturbation {wanted!r} is not one of this suite's "
                            f"({', '.join(sorted(labels)) or 'none'}), 'clean' or 'all'"
                            + did_you_mean(wanted, sorted(labels)))
        families = gate.get("families")
        if not isinstance(families, list):
            continue
        unknown = [f for f in families if isinstance(f, str) and f not in labels]
        if unknown:
            problems.append(f"gate {gate['name']!r}: families {unknown} are not perturbations of this suite "
                            f"({', '.join(sorted(labels)) or 'none'})")


def _check_metric_names(metrics: Any, gates: list[dict[str, Any]], options: Any, problems: list[str]) -> None:
    from harness.metrics import validate_config

    if not isinstance(metrics, list) or not metrics:
        problems.append("[suite].metrics: must be a non-empty list of metric names")
        return
    for dup in _repeated(m for m in metrics if isinstance(m, str)):
        problems.append(f"[suite].metrics: {dup!r} appears twice; list each metric once")
    try:
        validate_config(metrics, options if isinstance(options, dict) else None)
    except ConfigError as exc:
        problems.append(f"[suite].metrics / metric_options: {exc}")
    from harness.gates import gate_defaults
    from harness.metrics import available, metric_info

    for gate in gates:
        if "metric" not in gate:  # a kind's default metric (robust_cases, baseline: dice) must be computed too
            default = gate_defaults(gate["check"]).get("metric")
            if isinstance(default, str) and default not in metrics:
                problems.append(f"gate {gate['name']!r}: its default metric {default!r} is not computed; add it to "
                                "[suite].metrics or set the gate's metric")
            continue
        if gate["metric"] in metrics:
            continue
        if isinstance(gate["metric"], str) and metric_info(gate["metric"]) is None:  # a typo, not a missing entry
            problems.append(f"gate {gate['name']!r}: unknown metric {gate['metric']!r}"
                            + did_you_mean(gate["metric"], available(), otherwise="; see harness list metrics"))
        else:
            problems.append(f"gate {gate['name']!r}: metric {gate['metric']!r} is not computed; "
                            f"add it to [suite].metrics")


def load_suite(spec: str | Path, *, build_families: bool = False) -> Suite:
    """Load a suite by bundled name or path (ConfigError naming the file on any problem; with
    ``build_families``, also every family that cannot be built with its options, in the same list)."""
    path = resolve_suite_path(spec)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"suite {path}: cannot read ({exc})") from exc
    return parse_suite(text, path=path, build_families=build_families)
