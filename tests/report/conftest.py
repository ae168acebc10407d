"""Fixtures: one real smoke run (in process, single-threaded torch) and synthetic run folders."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

SUITE = """[suite]
name = "synthetic"
description = "synthetic run for report tests"
seed = 0
metrics = ["dice", "hd95"]
{extra}
[[perturbations]]
family = "gaussian_noise"
severities = [1, 3]

[[gates]]
name = "clean-dice"
check = "clean"
metric = "dice"
label = "mean"
min = 0.5
"""


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``harness run --suite smoke`` (12 phantom cases) written once for the whole session."""
    import torch

    from harness.pipeline import RunOptions, run

    out = tmp_path_factory.mktemp("report") / "smoke"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # in-process evaluation; avoids thread contention on shared CPUs
    try:
        result = run(RunOptions(suite="smoke", out=out, workers=1, command_line="harness run --suite smoke"))
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0, result.summary.get("gates")
    return out


def make_run(path: Path, *, case_ids: list[str], dice: dict[str, float] | None = None, drop: float = 0.05,
             metadata: dict[str, list[Any]] | None = None, suite_extra: str = "", gates: list[dict[str, Any]] | None = None,
             suite_text: str | None = None, hashes: dict[str, str] | None = None, seed: int = 0) -> Path:
    """A run folder with records/cases/summary/suite as ``harness run`` writes them (no model)."""
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, cid in enumerate(case_ids):
        base = (dice or {}).get(cid, 0.9 + 0.05 * rng.random())
        for pert, sev in (("clean", 0), ("gaussian_noise", 1), ("gaussian_noise", 3)):
            value = base - (drop * sev / 3 if sev else 0.0)
            for label, name in ((1, "organ"), (2, "lesion")):
                rows.append({"case_id": cid, "perturbation": pert, "severity": sev, "repeat": 0, "seed": i,
                             "label": label, "label_name": name, "status": "OK", "error": "", "empty": "none",
                             "dice": value, "hd95": 1.0 + (1 - value) * 10, "params": json.dumps({"sigma": sev}),
                             "inference_s": 0.01})
    pd.DataFrame(rows).to_csv(path / "records.csv", index=False)
    cases = pd.DataFrame({"case_id": case_ids,
                          "image_sha256": [(hashes or {}).get(c, f"{k:064x}") for k, c in enumerate(case_ids)],
                          "label_sha256": [f"{k + 100:064x}" for k in range(len(case_ids))],
                          **(metadata or {})})
    cases.to_csv(path / "cases.csv", index=False)
    text = suite_text if suite_text is not None else SUITE.format(extra=suite_extra)
    (path / "suite.toml").write_text(text, encoding="utf-8")
    gates = gates if gates is not None else [{"name": "clean-dice[mean]", "outcome": "PASS", "value": 0.9,
                                               "threshold": 0.5, "detail": "clean mean dice 0.9"}]
    order = {"ERROR": 4, "FAIL": 3, "INCONCLUSIVE": 2, "WARN": 1, "PASS": 0}
    outcome = max((g["outcome"] for g in gates), key=order.__getitem__, default="PASS")
    summary = {"outcome": outcome, "exit_code": {"FAIL": 1, "ERROR": 2}.get(outcome, 0), "gates": gates,
               "clean": {"dice": {"organ": 0.9, "lesion": 0.9, "mean": 0.9}}, "seed": 0, "harness_version": "0",
               "suite": {"name": "synthetic", "path": "suite.toml", "sha256": "a" * 64},
               "model": {"name": "model", "sha256": "b" * 64, "spec": "x", "intended_use": "testing only"},
               "data": {"name": "synthetic", "spec": "synthetic", "modality": "mri", "n_cases": len(case_ids),
                        "manifest_sha256": "c" * 64},
               "labels": {"1": "organ", "2": "lesion"}, "metrics": ["dice", "hd95"], "n_items": len(rows) // 2,
               "n_records": len(rows), "n_errors": 0, "notes": [], "seconds": 1.0, "workers": 1,
               "command_line": "harness run", "created": "2026-01-01T00:00:00+00:00",
               "platform": {"python": "3", "machine": "x86_64", "system": "Linux"}}
    (path / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    return path
