"""A finished run folder, read back for rendering: the report needs nothing else.

``summary.json``, ``records.csv``, ``cases.csv``, ``suite.toml``, ``artifacts/`` (worst cases,
gallery, model card) and ``baseline/`` (a copy of the baseline run's tables, when there was one).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.errors import ConfigError
from harness.json_files import read_json_object
from harness.records import read_records

SETTINGS = {"seed": 0, "cohorts": (), "bins": {}, "min_group_size": 10, "alpha": 0.05, "correction": "holm",
            "n_bootstrap": 1000, "n_permutations": 2000, "worst_cases": 6, "site_attribute": "site",
            "reference_site": "", "metric_options": {}, "description": "", "repeats": 1, "labels": "all",
            "small_groups": "inconclusive", "fairness_test": "permutation", "cluster": ""}


@dataclass
class RunDir:
    path: Path
    summary: dict[str, Any]
    records: pd.DataFrame
    cases: pd.DataFrame  # case_id column + hashes + metadata
    suite_text: str
    settings: dict[str, Any]
    suite_gates: list[dict[str, Any]]
    perturbations: list[dict[str, Any]]
    artifacts: dict[str, Any] = field(default_factory=dict)
    model_card: dict[str, Any] = field(default_factory=dict)
    baseline: RunDir | None = None
    suite: Any = None  # harness.suite.Suite parsed from suite.toml (None when it no longer parses)

    @property
    def metrics(self) -> list[str]:
        return list(self.summary.get("metrics", []))

    def artifact_path(self, file: Any) -> Path | None:
        """``artifacts/<file>`` when it is a regular file inside this run folder's ``artifacts/``,
        reached without links or ``..``; None otherwise (absent, or a manifest pointing elsewhere:
        a downloaded run folder must not make the report embed other files of the machine)."""
        if not isinstance(file, str) or not file:
            return None
        base = self.path.resolve() / "artifacts"
        target = Path(os.path.normpath(base / file))
        try:
            resolved = target.resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        if resolved != target or not resolved.is_relative_to(base) or not resolved.is_file():
            return None
        return resolved

    def artifact_arrays(self, file: str) -> dict[str, np.ndarray]:
        path = self.artifact_path(file)
        if path is None:
            raise ConfigError(f"{self.path}: artifact {file!r} is not a file in its artifacts/ folder")
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}

    def artifact_bytes(self, file: str) -> bytes:
        path = self.artifact_path(file)
        if path is None:
            raise ConfigError(f"{self.path}: artifact {file!r} is not a file in its artifacts/ folder")
        return path.read_bytes()


# summary.json keys the report reads, with the JSON types a run writes (a damaged or hand-edited
# file is refused naming the key, instead of failing deep in the report)
SUMMARY_TYPES: dict[str, tuple[str, ...]] = {
    "suite": ("object",), "gates": ("array",), "metrics": ("array",), "cohorts": ("string", "array"),
    "seed": ("integer", "null"), "model": ("object",), "labels": ("object",), "notes": ("array",),
    "clean": ("object",), "outcome": ("string",), "exit_code": ("integer",), "data": ("object",)}
SUMMARY_REQUIRED = ("suite", "gates", "outcome", "model", "data", "metrics")  # every run since the first wrote them
_JSON_TYPES = {"object": dict, "array": list, "string": str, "integer": int, "null": type(None)}


def _json_type(value: Any) -> str:
    return next((name for name, kind in _JSON_TYPES.items() if isinstance(value, kind)
                 and not isinstance(value, bool)), type(value).__name__)


def _check_summary(summary: dict[str, Any], file: Path) -> None:
    problems = [f"missing {key!r}" for key in SUMMARY_REQUIRED if key not in summary]
    problems += [f"{key!r} is {_json_type(summary[key])}, expected {' or '.join(types)}"
                 for key, types in SUMMARY_TYPES.items() if key in summary and _json_type(summary[key]) not in types]
    gates = summary.get("gates")
    if isinstance(gates, list) and not all(isinstance(g, dict) and isinstance(g.get("name"), str)
                                           and isinstance(g.get("outcome"), str) for g in gates):
        problems.append("'gates' must be objects with a name and an outcome")
    if problems:
        raise ConfigError(f"{file}: not a summary `harness run` wrote ({'; '.join(problems)}); is the run folder "
                          "damaged? Rerun the evaluation, or restore the file")


def read_cases(file: Path) -> pd.DataFrame:
    try:
        cases = pd.read_csv(file, dtype=str, keep_default_na=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ConfigError(f"{file}: cannot read ({' '.join(str(exc).split())}); is the run folder damaged?") from exc
    if "case_id" not in cases.columns:
        raise ConfigError(f"{file}: no 'case_id' column; is the run folder damaged?")
    return cases


DAMAGED = "is the run folder damaged?"


def _refuse_links(path: Path) -> None:
    """A run folder holds its own files: a symbolic link inside it (a folder downloaded as a CI
    artifact) could put any file of this machine into the report, or redirect a write."""
    for folder, dirs, files in os.walk(path, followlinks=False):
        for name in dirs + files:
            entry = Path(folder) / name
            if entry.is_symlink():
                raise ConfigError(f"{entry}: a symbolic link inside the run folder; a run folder must hold its "
                                  f"own files (copy it with `cp -rL` to resolve links)")


def _json_object(file: Path) -> dict[str, Any]:
    """A JSON object the run wrote ({} when the file is absent)."""
    return read_json_object(file, fix=DAMAGED) if file.is_file() else {}


def _suite_settings(text: str, file: Path) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    from harness.tomlread import tomllib

    try:
        doc = tomllib.loads(text) if text else {}
    except (tomllib.TOMLDecodeError, RecursionError) as exc:  # RecursionError: nesting thousands deep
        raise ConfigError(f"{file}: invalid TOML ({exc}); is the run folder damaged? Restore the suite "
                          "the run used") from exc
    head = doc.get("suite", {}) if isinstance(doc.get("suite"), dict) else {}
    settings = {k: head.get(k, v) for k, v in SETTINGS.items()}
    if isinstance(settings["cohorts"], list):
        settings["cohorts"] = tuple(settings["cohorts"])
    settings["cluster"] = str(settings["cluster"]).strip()  # as harness.suite reads it
    gates = [g for g in doc.get("gates", []) if isinstance(g, dict)]
    perturbations = [p for p in doc.get("perturbations", []) if isinstance(p, dict)]
    return settings, gates, perturbations


def parse_run_suite(text: str, path: Path) -> Any:
    """The run's suite as a :class:`harness.suite.Suite`, or None (e.g. a plugin gate kind is gone)."""
    if not text:
        return None
    import harness.baseline  # noqa: F401  (registers the "baseline" gate kind)
    from harness.suite import parse_suite

    try:
        return parse_suite(text, path=path)
    except ConfigError:
        return None


def _with_cohorts(suite: Any, cohorts: Any) -> Any:
    """The run's suite with the cohorts it analysed (``harness run --cohorts`` overrides the file)."""
    import dataclasses

    return suite if suite is None or suite.cohorts == cohorts else dataclasses.replace(suite, cohorts=cohorts)


def load_run(run_dir: str | Path, *, with_baseline: bool = True) -> RunDir:
    """Read a run folder (ConfigError when it is not one)."""
    path = Path(run_dir)
    if not (path / "summary.json").is_file() or not (path / "records.csv").is_file():
        raise ConfigError(f"{path}: not a run folder of `harness run` (needs summary.json and records.csv)")
    _refuse_links(path)
    summary = read_json_object(path / "summary.json", fix=DAMAGED)
    _check_summary(summary, path / "summary.json")
    records = read_records(path / "records.csv")
    cases_path = path / "cases.csv"
    cases = (read_cases(cases_path) if cases_path.is_file()
             else pd.DataFrame({"case_id": sorted(records["case_id"].unique())}))
    for col in cases.columns:  # numeric metadata back to numbers (age), text stays text
        if col != "case_id" and not col.endswith("sha256"):
            given = cases[col].str.strip() != ""  # the run writes a missing value as an empty cell
            converted = pd.to_numeric(cases[col].where(given), errors="coerce")
            if given.any() and converted[given].notna().all():
                cases[col] = converted  # empty cells become NaN, as in the run
    suite_text = (path / "suite.toml").read_text(encoding="utf-8") if (path / "suite.toml").is_file() else ""
    settings, gates, perturbations = _suite_settings(suite_text, path / "suite.toml")
    settings["seed"] = summary.get("seed", settings["seed"])
    if "cohorts" in summary:  # what the run analysed, --cohorts included (suite.toml is the file as given)
        cohorts = summary["cohorts"]
        settings["cohorts"] = cohorts if isinstance(cohorts, str) else tuple(cohorts)
    artifacts = _json_object(path / "artifacts" / "manifest.json")
    card = _json_object(path / "artifacts" / "model_card.json")
    run = RunDir(path=path, summary=summary, records=records, cases=cases, suite_text=suite_text,
                 settings=settings, suite_gates=gates, perturbations=perturbations, artifacts=artifacts,
                 model_card=card, suite=_with_cohorts(parse_run_suite(suite_text, path / "suite.toml"),
                                                      settings["cohorts"]))
    if with_baseline and (path / "baseline" / "summary.json").is_file():
        run.baseline = load_run(path / "baseline", with_baseline=False)
    return run
