"""Executors: fault injection in the supervised pool, equal records across executors, memory, batching."""
from __future__ import annotations

import dataclasses
import gc
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from harness.case import Case
from harness.errors import ConfigError
from harness.executors import make_batches, make_executor
from harness.records import Journal, WorkItem, records_frame
from harness.runner import execute
from tests.runner.conftest import comparable, make_plan
from tests.runner.faulty import FAULT_SIZES, SizesDataset


def _run(plan: Any, items: list[WorkItem], out: Path, **kwargs: Any) -> pd.DataFrame:
    out.mkdir(parents=True, exist_ok=True)
    rows = execute(plan, items, Journal(out / "journal.jsonl"), **kwargs)
    return records_frame(rows, plan.suite.metrics)


def _reasons(frame: pd.DataFrame) -> dict[str, set[str]]:
    return {cid: set(group["error"]) for cid, group in frame.groupby("case_id")}


def test_faults_become_error_rows_and_the_run_completes(tmp_path: Path) -> None:
    """raise, NaN, wrong shape, hang (timeout), a killed worker, MemoryError, an unreadable case and a
    worker killed while reading its case: each is an ERROR row with its reason; the rest is OK."""
    sizes = [*FAULT_SIZES, 72, 76]
    dataset = SizesDataset(sizes, unreadable=(72,), die_on_load=(76,))
    plan, items = make_plan(tmp_path, "chaos", dataset=dataset, severities="[2]")
    frame = _run(plan, items, tmp_path / "out", workers=2, timeout=4.0)
    assert len(frame) == len(items) * 2 and not frame.duplicated(["case_id", "perturbation", "severity", "label"]).any()
    hung = frame[frame["case_id"] == "w52"].set_index("perturbation")["status"]
    assert set(hung["clean"]) == {"ERROR"} and set(hung["gaussian_noise"]) == {"OK"}  # hangs on clean only
    frame = frame[(frame["case_id"] != "w52") | (frame["perturbation"] == "clean")]
    reasons = _reasons(frame)
    expected = {"w40": "RuntimeError: simulated crash", "w44": "NaN", "w48": "output shape",
                "w52": "TimeoutError: timeout after 4s evaluating this item",
                "w56": "WorkerDied: the worker process was killed by SIGKILL", "w60": "MemoryError",
                "w72": "cannot load case: OSError", "w76": "WorkerDied: the worker process was killed by SIGKILL"
                                                          " (out of memory? the kernel's OOM killer sends SIGKILL) "
                                                          "while loading case w76"}
    for cid, fragment in expected.items():
        assert len(reasons[cid]) == 1 and fragment in next(iter(reasons[cid])), (cid, reasons[cid])
    ok = frame[frame["case_id"].isin(["w64", "w68"])]
    assert set(ok["status"]) == {"OK"} and (ok["dice"] > 0.9).all()
    assert set(frame.loc[~frame["case_id"].isin(["w64", "w68"]), "status"]) == {"ERROR"}
    assert frame.loc[frame["status"] == "ERROR", "dice"].isna().all()
    journal = Journal(tmp_path / "out" / "journal.jsonl").read()
    assert set(journal) == {item.key for item in items}


def test_timeout_with_one_worker_isolates_a_hung_model(tmp_path: Path) -> None:
    plan, items = make_plan(tmp_path, "chaos", dataset=SizesDataset([52, 64]), severities="[1]")
    frame = _run(plan, items, tmp_path / "out", workers=1, timeout=3.0)
    assert set(frame.loc[(frame["case_id"] == "w52") & (frame["severity"] == 0), "status"]) == {"ERROR"}
    assert set(frame.loc[frame["case_id"] == "w64", "status"]) == {"OK"}
    assert set(frame.loc[(frame["case_id"] == "w52") & (frame["severity"] == 1), "status"]) == {"OK"}


def test_records_are_equal_across_executors(tmp_path: Path) -> None:
    """In process, the local pool with 2 workers and Dask on a LocalCluster with 2 workers agree."""
    plan, items = make_plan(tmp_path, "threshold", data="phantom2d:n=3", severities="[1, 4]",
                            families=("gaussian_noise", "blur"))
    counts: dict[str, list[int]] = {"inprocess": [], "pool": [], "dask": []}
    inprocess = _run(plan, items, tmp_path / "inprocess", workers=1, progress=counts["inprocess"].append)
    pool = _run(plan, items, tmp_path / "pool", workers=2, progress=counts["pool"].append)
    dask = _run(plan, items, tmp_path / "dask", workers=2, executor="dask", progress=counts["dask"].append)
    assert len(inprocess) == len(items) * 2 and set(inprocess["status"]) == {"OK"}
    assert {name: sum(c) for name, c in counts.items()} == dict.fromkeys(counts, len(items))  # progress bar
    pd.testing.assert_frame_equal(comparable(inprocess), comparable(pool))
    pd.testing.assert_frame_equal(comparable(inprocess), comparable(dask))


def test_in_process_evaluation_computes_on_one_thread_like_every_worker(tmp_path: Path) -> None:
    """--workers 1 once ran the model on all cores: logits (a square_attack objective in params)
    differed from a --workers 2 run in the 10th digit. The caller's setting is restored."""
    import torch

    plan, items = make_plan(tmp_path, "one_thread_only", data="phantom2d:n=2", severities="[1]")
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        frame = _run(plan, items, tmp_path / "out", workers=1)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
    assert set(frame["status"]) == {"OK"}, set(frame["error"])


def test_dask_records_only_the_item_that_kills_its_worker_as_worker_died(tmp_path: Path) -> None:
    """Items queued on a worker that another item kills must not end as WorkerDied (with two tasks
    queued per worker they sometimes did, 2 runs in 5)."""
    plan, items = make_plan(tmp_path, "chaos", dataset=SizesDataset([56, 64, 68]), severities="[1, 2]")
    frame = _run(plan, items, tmp_path / "out", workers=2, executor="dask")
    dead = frame[frame["status"] == "ERROR"]
    assert set(dead["case_id"]) == {"w56"} and dead["error"].str.startswith("WorkerDied").all()
    assert set(frame.loc[frame["case_id"] != "w56", "status"]) == {"OK"}


def test_dask_gives_up_when_its_cluster_has_lost_every_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A LocalCluster left with no worker once hung the run forever: after NO_WORKERS_TIMEOUT_S
    the unfinished items become WorkerDied ERROR rows and the run goes on to its outputs."""
    import harness.executors.dask as dask_executor

    class Gone:
        def __init__(self, client: Any) -> None:
            pass

        def gone_for(self) -> float:  # as if the scheduler had reported no worker for long
            return dask_executor.NO_WORKERS_TIMEOUT_S + 1

    monkeypatch.setattr(dask_executor, "_WorkerWatch", Gone)
    monkeypatch.setenv("HARNESS_TEST_MODEL_DELAY", "30")  # nothing finishes before the watch gives up
    plan, items = make_plan(tmp_path, "slow_threshold", dataset=SizesDataset([40, 44]), severities="[1]")
    frame = _run(plan, items, tmp_path / "out", workers=1, executor="dask")
    assert len(frame) == len(items) * 2 and set(frame["status"]) == {"ERROR"}
    assert frame["error"].str.startswith("WorkerDied: no Dask worker was left").all()


def test_the_worker_watch_counts_only_time_without_any_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.executors.dask as dask_executor

    monkeypatch.setattr(dask_executor, "WORKER_CHECK_S", 0.0)
    answers = iter([{"workers": {}}, {"workers": {}}, {"workers": {"tcp://w": {}}}, {"workers": {}}])

    class Client:
        def scheduler_info(self) -> dict[str, Any]:
            return next(answers)

    watch = dask_executor._WorkerWatch(Client())
    assert watch.gone_for() == 0.0  # no worker since just now
    assert watch.gone_for() > 0.0
    assert watch.gone_for() == 0.0  # a worker came back: the clock restarts
    assert watch.gone_for() == 0.0


class _CountingDataset(SizesDataset):
    """Remembers how many loaded cases are alive at once (weak references to their images)."""

    def __init__(self, sizes: list[int]) -> None:
        super().__init__(sizes)
        self.alive: weakref.WeakSet[Any] = weakref.WeakSet()
        self.peak = 0

    def load(self, case_id: str) -> Case:
        gc.collect()
        case = super().load(case_id)
        holder = _Pixels(case.image)
        self.alive.add(holder)
        object.__setattr__(case, "_holder", holder)
        self.peak = max(self.peak, len(self.alive))
        return case


class _Pixels:
    def __init__(self, image: np.ndarray) -> None:
        self.image = image


def test_cases_are_loaded_lazily_one_at_a_time(tmp_path: Path) -> None:
    dataset = _CountingDataset([40, 44, 48, 52])
    plan, items = make_plan(tmp_path, "threshold", dataset=dataset, severities="[1, 2]")
    _run(plan, items, tmp_path / "out", workers=1)
    assert dataset.peak == 1  # a worker holds one case (and what derives from it) at a time


def test_batches_keep_cases_together_and_split_when_cases_are_few() -> None:
    items = [WorkItem(f"c{c}", "p", "p", s, 0, 0) for c in range(2) for s in range(6)]
    whole = make_batches(items, workers=1)
    assert [(b.case_id, len(b.items)) for b in whole] == [("c0", 6), ("c1", 6)]
    split = make_batches(items, workers=2)
    assert len(split) >= 4 and all(len({i.case_id for i in b.items}) == 1 for b in split)
    assert [i for b in split for i in b.items] == items
    capped = make_batches(items, workers=1, max_items=4)
    assert [len(b.items) for b in capped] == [4, 2, 4, 2]


@pytest.mark.parametrize("kwargs, fragment", [
    ({"name": "spark"}, "choose one of local, dask"),
    ({"name": "local", "timeout": 0.0}, "positive"),
    ({"name": "local", "workers": 0}, "at least 1"),
])
def test_bad_executor_settings_are_config_errors(kwargs: dict[str, Any], fragment: str) -> None:
    name = kwargs.pop("name")
    with pytest.raises(ConfigError, match=fragment):
        make_executor(name, **kwargs)


def test_dask_attaches_to_a_running_scheduler(tmp_path: Path) -> None:
    """``--scheduler ADDRESS``: the run uses an existing cluster (here an in-process one) and leaves it up."""
    from distributed import Client, LocalCluster

    plan, items = make_plan(tmp_path, "threshold", dataset=SizesDataset([40, 64]), severities="[2]")
    expected = _run(plan, items, tmp_path / "inprocess", workers=1)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        frame = _run(plan, items, tmp_path / "dask", scheduler=cluster.scheduler_address)
        with Client(cluster) as client:  # still serving after the run detached
            assert client.submit(sum, [1, 2]).result() == 3
    pd.testing.assert_frame_equal(comparable(expected), comparable(frame))


def test_dask_with_a_malformed_scheduler_address_is_a_config_error(tmp_path: Path) -> None:
    plan, items = make_plan(tmp_path, "threshold", dataset=SizesDataset([40]), severities="[2]")
    with pytest.raises(ConfigError, match=r"--scheduler localhost: cannot connect .*tcp://HOST:PORT"):
        _run(plan, items, tmp_path / "dask", scheduler="localhost")


def test_a_single_remaining_item_still_runs_in_a_worker(tmp_path: Path) -> None:
    """With --workers 2, the last item once ran in the harness's own process: a model that kills its
    process (e.g. a --resume --retry-errors of one WorkerDied item) killed the whole run."""
    die = next(size for size, fault in FAULT_SIZES.items() if fault == "die")
    plan, items = make_plan(tmp_path, "chaos", dataset=SizesDataset([die]), severities="[2]")
    frame = _run(plan, items[:1], tmp_path / "out", workers=2)
    assert "WorkerDied" in frame["error"].iloc[0]


def test_a_worker_that_never_starts_is_timed_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--item-timeout bounds a worker's start too (at least START_TIMEOUT_MIN_S): a model whose load
    hangs in the worker once hung the run for good (the timeout clock started at dispatch)."""
    from harness.executors import local

    assert local.ProcessPoolExecutor(workers=1, timeout=5.0)._start_timeout == local.START_TIMEOUT_MIN_S
    assert local.ProcessPoolExecutor(workers=1, timeout=500.0)._start_timeout == 500.0
    monkeypatch.setattr(local, "START_TIMEOUT_MIN_S", 1.0)  # the floor, not the 0.3 s item timeout, applies
    plan, items = make_plan(tmp_path, dataset=SizesDataset([64]), severities="[1]")
    card = Path(plan.model_spec)
    card.write_text(card.read_text().replace("tests.runner.faulty:threshold", "tests.runner.slow_start:threshold"))
    frame = _run(plan, items, tmp_path / "out", workers=1, timeout=0.3)
    assert set(frame["status"]) == {"ERROR"}
    assert set(frame["error"]) == {"WorkerStartFailed: TimeoutError: the worker did not start within 1s "
                                   "(building the model; --item-timeout, at least 1s)"}


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
def test_a_timed_out_worker_takes_its_program_along(tmp_path: Path) -> None:
    """A command-format model's program leads its own session: killing the worker used to leave it
    (and its temporary folder) behind."""
    from tests.models.helpers import clean_up_program, gone, hanging_program

    plan, items = make_plan(tmp_path, dataset=SizesDataset([64]), severities="[1]")
    card, pids = hanging_program(tmp_path, labels='{1 = "organ", 2 = "lesion"}')
    plan = dataclasses.replace(plan, model_spec=str(card))
    try:
        frame = _run(plan, items[:1], tmp_path / "out", workers=1, timeout=3.0)
        assert frame["error"].iloc[0].startswith("TimeoutError: timeout after 3s evaluating this item")
        program, helper, folder = pids.read_text().split()
        assert gone(int(program)) and gone(int(helper))
        assert not Path(folder).exists()
    finally:
        clean_up_program(pids)


def test_dask_batch_keeps_finished_items_when_the_model_cannot_be_rebuilt(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """After a timeout a Dask worker builds its model again; when that fails, the items finished
    before stay OK and only the rest become ERROR (the whole batch used to fail)."""
    from harness.executors import dask as dask_executor
    from harness.runner import Evaluator

    hang = next(size for size, fault in FAULT_SIZES.items() if fault == "hang")
    plan, items = make_plan(tmp_path, "chaos", dataset=SizesDataset([hang]), severities="[1, 2]")
    clean, *perturbed = items  # the chaos model hangs on the clean image only
    builds: list[int] = []

    def evaluator(token: str, plan: Any) -> Evaluator:
        builds.append(1)
        if len(builds) > 1:
            raise OSError("weights file vanished")
        return Evaluator(plan)

    monkeypatch.setattr(dask_executor, "_evaluator", evaluator)
    out = dict(dask_executor.run_batch("t", plan, f"w{hang}", [perturbed[0], clean, perturbed[1]], timeout=1.0))
    frame = records_frame([row for rows in out.values() for row in rows], plan.suite.metrics)
    by_key = {key: set(frame.loc[frame["severity"] == item.severity, "status"])
              for key, item in ((i.key, i) for i in items)}
    assert by_key == {perturbed[0].key: {"OK"}, clean.key: {"ERROR"}, perturbed[1].key: {"ERROR"}}
    assert out[perturbed[1].key][0]["error"] == ("model could not be built again after a timeout: "
                                                 "OSError: weights file vanished")
