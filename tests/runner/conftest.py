"""Helpers for the runner tests: tiny suites, callable-model cards and plans."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from harness.datasets import open_dataset
from harness.datasets.base import Dataset
from harness.records import records_frame
from harness.runner import Plan, plan_items, resolve_families
from harness.suite import load_suite

LABELS = {1: "organ", 2: "lesion"}
IDENTITY = ["case_id", "perturbation", "severity", "repeat", "label"]


def write_suite(folder: Path, *, severities: str = "[1, 3]", families: tuple[str, ...] = ("gaussian_noise",),
                data: str = "phantom2d:n=4") -> Path:
    path = folder / "tiny.toml"
    blocks = "".join(f'\n[[perturbations]]\nfamily = "{f}"\nseverities = {severities}\n' for f in families)
    path.write_text(f'[suite]\nname = "tiny"\nseed = 7\ndata = "{data}"\nmetrics = ["dice", "hd95"]\n{blocks}'
                    '\n[[gates]]\nname = "clean-dice"\ncheck = "clean"\nmetric = "dice"\nlabel = "mean"\nmin = 0.0\n')
    return path


def write_card(folder: Path, entry: str, name: str = "model") -> Path:
    path = folder / f"{name}.toml"
    path.write_text(f'[model]\nname = "{name}"\nformat = "callable"\nentry = "tests.runner.faulty:{entry}"\n'
                    '[output]\nkind = "labels"\nlabels = {1 = "organ", 2 = "lesion"}\n')
    return path


def make_plan(folder: Path, entry: str = "threshold", *, dataset: Dataset | None = None,
              **suite_kwargs: Any) -> tuple[Plan, list[Any]]:
    suite = load_suite(write_suite(folder, **suite_kwargs))
    dataset = dataset if dataset is not None else open_dataset(suite.data)
    families, _ = resolve_families(suite, dataset.modality)
    plan = Plan(suite=suite, dataset=dataset, model_spec=str(write_card(folder, entry)), labels=dict(LABELS),
                families=families)
    return plan, plan_items(suite, dataset.case_ids)


def comparable(rows_or_frame: Any, metrics: tuple[str, ...] = ("dice", "hd95")) -> pd.DataFrame:
    """Records sorted by identity, without the timing column (the only one allowed to differ)."""
    frame = rows_or_frame if isinstance(rows_or_frame, pd.DataFrame) else records_frame(rows_or_frame, metrics)
    frame = frame.drop(columns=["inference_s"]).sort_values(IDENTITY, kind="mergesort").reset_index(drop=True)
    return frame.astype({"error": str, "params": str, "empty": str}).fillna({"error": "", "empty": ""})


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return tmp_path
