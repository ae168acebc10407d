"""Fault-injection fixtures for the runner tests: callable models and a small dataset.

The dataset's cases differ in size (``FAULT_SIZES``), so a model can fail on chosen cases whatever
perturbation is applied: each ``chaos`` fault is tied to one image width.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import time

import numpy as np
import pandas as pd

from harness.case import Case
from harness.datasets.base import Dataset

# image width -> what the chaos model does on that case
FAULT_SIZES = {40: "raise", 44: "nan", 48: "shape", 52: "hang", 56: "die", 60: "oom", 64: "ok", 68: "ok"}


def _threshold(image: np.ndarray) -> np.ndarray:
    labels = np.zeros(image.shape[1:], dtype=np.int64)
    labels[image[0] > 0.5] = 1
    labels[image[0] > 0.9] = 2
    return labels


def threshold(image: np.ndarray) -> np.ndarray:
    """A cheap, deterministic 'model'."""
    return _threshold(image)


def one_thread_only(image: np.ndarray) -> np.ndarray:
    """Fails unless torch computes on one thread (as in every worker), so records cannot depend on
    the machine's core count."""
    import torch

    if torch.get_num_threads() != 1:
        raise RuntimeError(f"torch runs on {torch.get_num_threads()} threads")
    from threadpoolctl import threadpool_info

    pools = {pool["internal_api"]: pool["num_threads"] for pool in threadpool_info()}
    if any(n != 1 for n in pools.values()):
        raise RuntimeError(f"native thread pools {pools}")
    return _threshold(image)


def slow_threshold(image: np.ndarray) -> np.ndarray:
    """The same, ``HARNESS_TEST_MODEL_DELAY`` seconds per call (set for runs to be interrupted; the
    card, hence the run's fingerprint, stays the same for the fast in-process runs)."""
    time.sleep(float(os.environ.get("HARNESS_TEST_MODEL_DELAY", "0")))
    return _threshold(image)


def chaos(image: np.ndarray) -> np.ndarray:
    """Fails on the cases named in FAULT_SIZES, in the way named there."""
    fault = FAULT_SIZES.get(image.shape[-1], "ok")
    if fault == "raise":
        raise RuntimeError("simulated crash on an odd case")
    if fault == "nan":
        return np.full(image.shape[1:], np.nan, dtype=np.float32)
    if fault == "shape":
        return _threshold(image)[:-3]
    if fault == "hang" and len(np.unique(image)) <= 3:  # the clean image only: one timeout per case
        time.sleep(3600)
    if fault == "die":  # what the kernel's OOM killer does to a worker
        os.kill(os.getpid(), signal.SIGKILL)
    if fault == "oom":  # a real allocation failure: far beyond any address space
        np.empty(1 << 62, dtype=np.uint8)
    return _threshold(image)


class SizesDataset(Dataset):
    """One 2D case per image width; disc-shaped organ with a bright lesion. Picklable, lazy."""

    name = "sizes"
    modality = "mri"
    label_names = {1: "organ", 2: "lesion"}

    def __init__(self, sizes: list[int], *, unreadable: tuple[int, ...] = (), die_on_load: tuple[int, ...] = ()) -> None:
        self.sizes, self.unreadable, self.die_on_load = list(sizes), tuple(unreadable), tuple(die_on_load)

    @property
    def case_ids(self) -> list[str]:
        return [f"w{s}" for s in self.sizes]

    @property
    def metadata(self) -> pd.DataFrame:
        return pd.DataFrame({"site": ["A"] * len(self.sizes)}, index=pd.Index(self.case_ids, name="case_id"))

    def load(self, case_id: str) -> Case:
        size = int(case_id[1:])
        if size in self.unreadable:
            raise OSError(f"{case_id}: unreadable pixels")
        if size in self.die_on_load and multiprocessing.parent_process() is not None:
            os.kill(os.getpid(), signal.SIGKILL)  # a huge volume meeting the OOM killer (workers only)
        yy, xx = np.mgrid[:size, :size]
        r = np.hypot(yy - size / 2, xx - size / 2)
        label = np.where(r < size / 3, 1, 0) + np.where(r < size / 10, 1, 0)
        image = (0.2 + 0.5 * (label >= 1) + 0.3 * (label == 2)).astype(np.float32)[None]
        return Case(image=image, label=label.astype(np.int64), spacing=(1.0, 1.0), metadata={"site": "A"},
                    case_id=case_id)
