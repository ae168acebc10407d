"""Importable test doubles for the model adapters: callables, a plugin adapter, a CLI program."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from harness.models.base import Model

THRESHOLD = 0.5  # phantom organ ~0.72, lesion ~0.38, background ~0.30 (a.u.)


def threshold(image: np.ndarray) -> np.ndarray:
    """(C, *spatial) -> label map: 1 where channel 0 exceeds THRESHOLD."""
    return (image[0] > THRESHOLD).astype(np.uint8)


def threshold_spacing(image: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    """Records the spacing it was given in the label (1 + index of the largest spacing)."""
    return np.where(image[0] > THRESHOLD, 1 + int(np.argmax(spacing)), 0)


def threshold_batched(batch: np.ndarray) -> np.ndarray:
    """(N, C, *spatial) -> (N, *spatial)."""
    return (batch[:, 0] > THRESHOLD).astype(np.int32)


def scores(image: np.ndarray) -> np.ndarray:
    """Two-class logits (K=2) for kind = "logits"."""
    return np.stack([THRESHOLD - image[0], image[0] - THRESHOLD])


def sigmoid_probabilities(image: np.ndarray) -> np.ndarray:
    """One channel of foreground probabilities (a sigmoid head), shape (1, *spatial)."""
    return (1.0 / (1.0 + np.exp(-(image[:1] - THRESHOLD) * 20.0))).astype(np.float32)


def with_nan(image: np.ndarray) -> np.ndarray:
    out = scores(image)
    out[0, 0, 0] = np.nan
    return out


def with_inf(image: np.ndarray) -> np.ndarray:
    out = scores(image)
    out[1, 0, 0] = np.inf
    return out


def wrong_shape(image: np.ndarray) -> np.ndarray:
    return threshold(image)[:-1]


def unknown_label(image: np.ndarray) -> np.ndarray:
    return threshold(image) * 7


def fractional_labels(image: np.ndarray) -> np.ndarray:
    return threshold(image) * 0.5


def bad_probabilities(image: np.ndarray) -> np.ndarray:
    return scores(image) * 10


def crashes(image: np.ndarray) -> np.ndarray:
    raise RuntimeError("out of memory on purpose")


def identity_scores(image: np.ndarray) -> np.ndarray:
    """K = C + 1 scores: background 0, then the channels (shows what normalisation produced)."""
    return np.concatenate([np.zeros_like(image[:1]), image])


def ramp_scores(image: np.ndarray) -> np.ndarray:
    """Logits that depend on position (a ramp along the last axis): not mirror-symmetric."""
    ramp = np.linspace(-2.0, 2.0, image.shape[-1], dtype=np.float32)
    return np.stack([np.zeros_like(image[0]), image[0] - THRESHOLD + ramp])


not_a_function = 42


class ThresholdAdapter(Model):
    """A third-party adapter plugin: ``format = "threshold"``, option ``level`` from [model.options]."""

    format = "threshold"

    def _forward(self, batch: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
        level = float(self.model_card.model.options.get("level", THRESHOLD))
        return (batch[:, 0] > level).astype(np.int64)


def not_a_model(card: Any) -> object:
    return object()


def raising_adapter(card: Any) -> object:
    raise FileNotFoundError("no weights here")


# A command-line "model": thresholds every {input}/NAME_0000.(nii.gz|png) into {output}/NAME.*.
# Flags: --sleep S, --fail, --nothing, --label K (foreground value), --crop (wrong shape).
SCRIPT = r'''
import sys, time
from pathlib import Path
import numpy as np
args = sys.argv[1:]
src, dst = Path(args[0]), Path(args[1])
flags = args[2:]
if "--sleep" in flags:
    time.sleep(float(flags[flags.index("--sleep") + 1]))
if "--fail" in flags:
    sys.stderr.write("loading checkpoint\nRuntimeError: CUDA out of memory (simulated)\n")
    sys.exit(3)
if "--nothing" in flags:
    sys.exit(0)
if "--background" in flags:  # leave a child running after a successful exit; its pid in the named file
    import subprocess
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    Path(flags[flags.index("--background") + 1]).write_text(str(child.pid))
value = int(flags[flags.index("--label") + 1]) if "--label" in flags else 1
for path in sorted(src.iterdir()):
    name = path.name.split("_0000.")[0]
    if path.suffix == ".png":
        from PIL import Image
        data = np.asarray(Image.open(path)).astype(float) / 255.0
        out = ((data > 0.5) * value).astype(np.uint8)
        if "--crop" in flags:
            out = out[:-1]
        Image.fromarray(out).save(dst / f"{name}.png")
    else:
        import nibabel as nib
        img = nib.load(str(path))
        data = np.asarray(img.dataobj)
        out = ((data > 0.5) * value).astype(np.uint8)
        if "--crop" in flags:
            out = out[:-1]
        if "--fractional" in flags:  # scores where labels belong
            out = out.astype(np.float32) * 0.5
        if "--reorient" in flags:  # saved as a tool that reorients does: to LPS, the header saying so
            reoriented = nib.as_closest_canonical(nib.Nifti1Image(out, img.affine)).as_reoriented(
                nib.orientations.axcodes2ornt(("L", "P", "S")))
            nib.save(reoriented, str(dst / f"{name}.nii.gz"))
            continue
        nib.save(nib.Nifti1Image(out, img.affine), str(dst / f"{name}.nii.gz"))
'''

# A segmentation program that never finishes and starts a helper of its own; it writes
# "<its pid> <helper pid> <the harness's temporary folder>" to the file named by its third argument.
HANGING_SCRIPT = r'''
import os, subprocess, sys, time
from pathlib import Path
helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
Path(sys.argv[3]).write_text(f"{os.getpid()} {helper.pid} {Path(sys.argv[1]).parent}")
time.sleep(600)
'''


def hanging_program(folder: Path, labels: str = '{1 = "organ"}') -> tuple[Path, Path]:
    """A command-format card running HANGING_SCRIPT, and the file the script writes its pids to."""
    write(folder / "hangs.py", HANGING_SCRIPT)
    pids = folder / "pids.txt"
    argv = ["{python}", "hangs.py", "{input}", "{output}", str(pids)]
    card = write(folder / "hangs.toml", f'[model]\nname = "hangs"\nformat = "command"\ncommand = {json.dumps(argv)}\n'
                 f'[output]\nlabels = {labels}\n')
    return card, pids


def clean_up_program(pids: Path) -> None:
    """Kill what HANGING_SCRIPT started and remove its folder (a failing test must not leave them)."""
    import os
    import shutil
    import signal

    if not pids.is_file():
        return
    program, helper, folder = pids.read_text().split()
    for pid in (int(program), int(helper)):
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    shutil.rmtree(folder, ignore_errors=True)


def gone(pid: int, wait_s: float = 10.0) -> bool:
    """Whether process ``pid`` has ended (a zombie awaiting its reaper counts as ended)."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def complex_scores(image: np.ndarray) -> np.ndarray:
    """Two-class logits as complex numbers (an FFT-based model that forgot np.real)."""
    return scores(image).astype(np.complex64) + 1j


def uint64_max(image: np.ndarray) -> np.ndarray:
    """A label map of the largest uint64 (an unsigned overflow): once reported as class -1."""
    return np.full(image.shape[1:], np.iinfo(np.uint64).max, dtype=np.uint64)


def generator_exit(image: np.ndarray) -> np.ndarray:
    """A model wrapping a generator that was closed (GeneratorExit is a BaseException)."""
    raise GeneratorExit("closed")


def cancelled(image: np.ndarray) -> np.ndarray:
    """A client of an inference service whose request was cancelled (a BaseException, not Exception)."""
    import asyncio

    raise asyncio.CancelledError("inference request cancelled")


class _Unprintable(RuntimeError):
    def __str__(self) -> str:
        raise ValueError("no message")


def unprintable(image: np.ndarray) -> np.ndarray:
    """Raises an exception whose message cannot be read."""
    raise _Unprintable()


def exits(image: np.ndarray) -> np.ndarray:
    """A wrapper that ends the process the way an argparse-based script does on bad arguments."""
    raise SystemExit(2)


def factory_raises_key_error(**kwargs: Any) -> Any:
    """A network factory that fails on a missing configuration key."""
    raise KeyError("missing_key")


def row_ramp_scores(image: np.ndarray) -> np.ndarray:
    """Two-class logits that depend on where a voxel sits in the array: foreground = intensity +
    0.3 per row (a network that is not shift-invariant, in the extreme)."""
    rows = np.arange(image.shape[1], dtype=np.float32).reshape(-1, *[1] * (image.ndim - 2))
    foreground = image[0] + 0.3 * rows
    return np.stack([np.zeros_like(foreground), foreground]).astype(np.float32)
