"""Journal and resume at the API level: skip what is done, refuse another run's journal, repair a cut line."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.records import Journal
from harness.runner import execute
from tests.runner.conftest import comparable, make_plan
from tests.runner.faulty import SizesDataset


class _Progress:
    def __init__(self) -> None:
        self.skipped, self.advanced = 0, 0

    def __call__(self, n: int) -> None:
        self.advanced += n

    def skip(self, n: int) -> None:
        self.skipped += n


def test_resume_runs_only_what_is_missing_and_counts_each_item_once(tmp_path: Path) -> None:
    plan, items = make_plan(tmp_path, dataset=SizesDataset([40, 44, 48]), severities="[1, 2]")
    whole = execute(plan, items, Journal(tmp_path / "whole.jsonl"))
    journal = Journal(tmp_path / "part.jsonl")
    execute(plan, items[:4], journal)
    with journal.path.open("a") as fh:
        fh.write('{"key": "w48|gaussian_noise|2|0", "rows": [{"case_id": "w4')  # a write cut by a kill
    progress = _Progress()
    with pytest.warns(RuntimeWarning, match="corrupt journal line"):
        rows = execute(plan, items, journal, progress=progress)
    assert (progress.skipped, progress.advanced) == (4, len(items) - 4)
    assert json.loads(journal.path.read_text().splitlines()[0]).keys() == {"meta"}
    assert len(journal.read()) == len(items) and len(journal.path.read_text().splitlines()) == len(items) + 1
    assert comparable(rows).equals(comparable(whole))
    again = _Progress()
    assert comparable(execute(plan, items, journal, progress=again)).equals(comparable(whole))
    assert (again.skipped, again.advanced) == (len(items), 0)  # nothing left to run


def test_resume_refuses_a_journal_of_another_run(tmp_path: Path) -> None:
    plan, items = make_plan(tmp_path, dataset=SizesDataset([40, 44]), severities="[1]")
    journal = Journal(tmp_path / "journal.jsonl")
    execute(plan, items[:1], journal)
    (tmp_path / "other").mkdir()
    other, other_items = make_plan(tmp_path / "other", dataset=SizesDataset([40, 44]), severities="[1, 2]")
    with pytest.raises(ConfigError, match="suite_sha256"):
        execute(other, other_items, journal)


def test_one_run_at_a_time_per_journal(tmp_path: Path) -> None:
    plan, items = make_plan(tmp_path, dataset=SizesDataset([40]), severities="[1]")
    journal = Journal(tmp_path / "journal.jsonl")
    with journal.lock(), pytest.raises(ConfigError, match="another harness run"):
        execute(plan, items, Journal(tmp_path / "journal.jsonl"))


def test_group_commit_writes_everything_even_when_interrupted(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.jsonl")
    with pytest.raises(KeyboardInterrupt), journal.group_commit():
        for k in range(50):
            journal.append(f"item{k}", [{"case_id": f"c{k}", "dice": float("nan") if k == 3 else 0.5}])
        raise KeyboardInterrupt
    done = journal.read()
    assert len(done) == 50 and done["item3"][0]["dice"] is None


def test_retry_errors_reruns_only_the_error_items(tmp_path: Path) -> None:
    plan, items = make_plan(tmp_path, dataset=SizesDataset([40, 44]), severities="[1]")
    whole = execute(plan, items, Journal(tmp_path / "whole.jsonl"))
    journal = Journal(tmp_path / "journal.jsonl")
    execute(plan, items, journal)
    failed = items[1]
    stored = journal.read()[failed.key]
    error_rows = [{**row, "status": "ERROR", "error": "timeout"} for row in stored]
    journal.append(failed.key, error_rows)  # as if the item had timed out: the last line of a key wins
    kept = _Progress()
    rows = execute(plan, items, journal, progress=kept)
    assert (kept.skipped, kept.advanced) == (len(items), 0)  # a plain resume keeps the ERROR rows
    assert sum(r["status"] == "ERROR" for r in rows) == len(error_rows)
    retried = _Progress()
    rows = execute(plan, items, journal, progress=retried, retry_errors=True)
    assert (retried.skipped, retried.advanced) == (len(items) - 1, 1)
    assert comparable(rows).equals(comparable(whole))
    rerun = journal.read()[failed.key]  # the rerun's rows supersede the ERROR ones
    assert comparable(rerun).equals(comparable(stored)) and {r["status"] for r in rerun} == {"OK"}


def test_retry_errors_needs_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    assert main(["run", "--suite", "smoke", "--out", str(tmp_path / "r"), "--retry-errors"]) == 3
    assert "--resume" in capsys.readouterr().err


def test_resume_refuses_a_journal_whose_header_is_unreadable(tmp_path: Path) -> None:
    """Without its header the journal cannot be checked to belong to this run; the repair once
    dropped it and resumed with another run's records (then never checked again)."""
    plan, items = make_plan(tmp_path, dataset=SizesDataset([40, 44]), severities="[1]")
    journal = Journal(tmp_path / "journal.jsonl")
    execute(plan, items[:2], journal)
    lines = journal.path.read_text().splitlines(keepends=True)
    journal.path.write_text(lines[0][:40] + "\n" + "".join(lines[1:]))  # header cut
    before = journal.path.read_text()
    with pytest.raises(ConfigError, match="header naming the run it belongs to .* is unreadable"):
        execute(plan, items, journal)
    assert journal.path.read_text() == before  # left as it was, not rewritten without a header


LAB = '''import numpy as np
from harness.perturbations.base import Perturbation


class Shift(Perturbation):
    name = "lab_shift"

    def draw(self, case, severity, rng):
        return {"d": 0.01 * severity}

    def apply(self, case, params):
        return case.with_(image=case.image + np.float32(params["d"]))  # {version}
'''


def test_resume_refuses_a_journal_made_with_other_plugin_code(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A plugin perturbation edited between the cut run and --resume would mix two versions of the
    family in one run: the journal records the plugin code (file sha256 here) and refuses."""
    import sys

    (tmp_path / "lab").mkdir()
    module = tmp_path / "lab" / "resume_lab.py"
    module.write_text(LAB.replace("{version}", "v1"))
    monkeypatch.syspath_prepend(str(tmp_path / "lab"))
    plan, items = make_plan(tmp_path, dataset=SizesDataset([40, 44]), severities="[1]",
                            families=("resume_lab:Shift",))
    journal = Journal(tmp_path / "journal.jsonl")
    execute(plan, items[:1], journal)
    meta = json.loads(journal.path.read_text().splitlines()[0])["meta"]
    assert str(module) in meta["plugins"]["perturbation resume_lab:Shift"]
    execute(plan, items, journal)  # the same code: resumes
    module.write_text(LAB.replace("{version}", "v2"))
    sys.modules.pop("resume_lab", None)
    with pytest.raises(ConfigError, match="plugins differ"):
        execute(plan, items, journal)
