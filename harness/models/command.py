"""The ``command`` format: an external program that segments a folder of image files.

Per call the harness writes the (prepared) images to a fresh temporary ``{input}`` folder in
nnU-Net's naming — ``case_0000_0000.nii.gz`` (image ``case_0000``, channel ``0000``) — runs the
argv list ``[model] command`` (never through a shell) with the placeholders replaced, and reads
``{output}/case_0000.nii.gz`` (or ``.nii``/``.png``) back as the label map.

Placeholders: ``{input}``, ``{output}`` (folders), ``{python}`` (this interpreter),
``{card_dir}`` (the card's folder; also the working directory). ``[model] timeout`` (seconds,
default 1800) bounds each call; on expiry the program's whole process group is killed and the
case becomes an ERROR record. Files: ``[model] file_format = "nifti"`` (default; 2D images are
written as one-slice volumes, the affine carries the spacing) or ``"png"`` (2D only: integer
intensities written as 8- or 16-bit grey; ``minmax``/``window``-normalised [0, 1] images scaled
to 0–255).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from harness.errors import ConfigError, ModelError
from harness.models.base import Model
from harness.models.card import ModelCard

DEFAULT_TIMEOUT_S = 1800.0
_STDERR_TAIL = 300

#: Told ``("started", process group id, temporary folder)`` when a program starts and ``("ended",
#: group id, folder)`` when it has ended; a pool worker sets it so that the run, when it kills the
#: worker (``--item-timeout``) or sees it die, also kills the program and removes its folder.
program_listener: Callable[[str, int, str], None] | None = None


def _findable(program: str, cwd: Path) -> bool:
    """Whether ``program`` can be started as the command's first argument: a path (relative to the
    card's folder, the program's working directory) to an executable file, else a name on PATH."""
    if os.sep in program or (os.altsep and os.altsep in program):
        path = Path(program) if Path(program).is_absolute() else cwd / program
        return path.is_file() and os.access(path, os.X_OK)
    return shutil.which(program) is not None


class CommandModel(Model):
    """``format = "command"``; ``[model] path`` (optional) names the model's files for the hash."""

    format = "command"
    non_integer_labels_hint = ("the program must write whole-number class labels: this format reads label "
                               "files only, so kind = \"labels\"")

    def __init__(self, card: ModelCard, *, ndim_hint: int = 2) -> None:
        super().__init__(card, ndim_hint=ndim_hint)
        if not card.model.command:
            raise ConfigError(f"{card.where}: [model] command: missing; give the argv list, e.g. "
                              '["nnUNetv2_predict", "-i", "{input}", "-o", "{output}", "-d", "1"]')
        joined = " ".join(card.model.command)
        if "{input}" not in joined or "{output}" not in joined:
            raise ConfigError(f"{card.where}: [model] command must contain the {{input}} and {{output}} "
                              "placeholders (the folders the harness writes and reads)")
        if card.model.path is not None and not card.model.path.exists():
            raise ConfigError(f"{card.where}: [model] path: {card.model.path} does not exist; fix the "
                              "path (relative to the card) or remove the key")
        if self.timeout_s is None:
            self.timeout_s = DEFAULT_TIMEOUT_S
        program = self.argv(Path("input"), Path("output"))[0]
        if not _findable(program, self.model_card.base_dir):
            raise ConfigError(f"{card.where}: [model] command: program {program!r} is not "
                              + ("an executable file" if os.sep in program else "on PATH")
                              + "; install it, activate its environment, or give its full path")

    def argv(self, input_dir: Path, output_dir: Path) -> list[str]:
        """The command with its placeholders filled in."""
        values = {"{input}": str(input_dir), "{output}": str(output_dir), "{python}": sys.executable,
                  "{card_dir}": str(self.model_card.base_dir)}
        argv = []
        for arg in self.model_card.model.command:
            for key, value in values.items():
                arg = arg.replace(key, value)
            argv.append(arg)
        return argv

    def check_input(self, *, channels: int, ndim: int) -> list[str]:
        problems = super().check_input(channels=channels, ndim=ndim)
        if self.model_card.model.file_format == "png" and ndim != 2:
            problems.append(f'model {self.name!r}: [model] file_format = "png" holds 2D images only, the data is '
                            f'{ndim}D; use file_format = "nifti"')
        return problems

    def _forward(self, batch: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
        fmt = self.model_card.model.file_format  # PNG with 3D data is refused by check_input
        with tempfile.TemporaryDirectory(prefix="harness-cmd-") as tmp:
            in_dir, out_dir = Path(tmp, "input"), Path(tmp, "output")
            in_dir.mkdir()
            out_dir.mkdir()
            names = [f"case_{k:04d}" for k in range(len(batch))]
            for name, image in zip(names, batch):
                for c, channel in enumerate(image):
                    target = in_dir / f"{name}_{c:04d}"
                    if fmt == "png":
                        write_png(channel, target.with_suffix(".png"), self.model_card.input.normalize)
                    else:
                        write_nifti(channel, spacing, target.with_name(target.name + ".nii.gz"))
            self._run(self.argv(in_dir, out_dir), tmp)
            return np.stack([read_labels(out_dir, name, batch.shape[2:], spacing) for name in names])

    def _run(self, argv: list[str], folder: str) -> None:
        # stderr goes to a file, not a pipe: a child the program leaves running would hold a pipe open
        # and keep the harness waiting after the program itself has ended
        with open(Path(folder, "program-stderr.txt"), "w+", encoding="utf-8", errors="replace") as err:
            try:
                proc = subprocess.Popen(argv, cwd=self.model_card.base_dir, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
            except OSError as exc:
                raise ModelError(f"cannot start {argv[0]!r}: {exc.strerror or exc}") from exc
            listener = program_listener
            if listener is not None:
                listener("started", proc.pid, folder)
            try:
                proc.wait(timeout=self.timeout_s)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                proc.wait()
                raise ModelError(f"command {argv[0]!r} timed out after {self.timeout_s:g} s "
                                 "([model] timeout)") from None
            except BaseException:  # Ctrl-C (the program leads its own session: the terminal's SIGINT misses it)
                _kill_group(proc)
                proc.wait()
                raise
            finally:
                if listener is not None:
                    listener("ended", proc.pid, folder)
            _kill_group(proc)  # whatever the program left running in its session (a background child)
            if proc.returncode != 0:
                err.seek(max(0, err.seek(0, os.SEEK_END) - 64 * 1024))
                tail = " | ".join(line for line in err.read().strip().splitlines()[-3:])[-_STDERR_TAIL:]
                raise ModelError(f"command {argv[0]!r} exited with status {proc.returncode}"
                                 + (f": {tail}" if tail else ""))

    def files(self) -> list[Path]:
        return [self.model_card.model.path] if self.model_card.model.path else []

    def identity(self) -> bytes:
        return "\0".join(self.model_card.model.command).encode()


def _kill_group(proc: subprocess.Popen[str]) -> None:
    """Kill the program and everything it started (it leads its own session)."""
    if hasattr(os, "killpg"):
        kill_group(proc.pid)
    elif proc.poll() is None:  # pragma: no cover - Windows
        proc.kill()


def kill_group(group: int) -> None:
    """SIGKILL every process of process group ``group``; nothing when none is left (or on Windows)."""
    if not hasattr(os, "killpg"):  # pragma: no cover - Windows
        return
    try:
        os.killpg(group, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def write_nifti(channel: np.ndarray, spacing: tuple[float, ...], path: Path) -> None:
    """One channel as NIfTI; 2D becomes ``(H, W, 1)``; the affine's diagonal is the spacing."""
    import nibabel as nib

    data = channel[..., None] if channel.ndim == 2 else channel
    nib.save(nib.Nifti1Image(np.asarray(data, np.float32), _written_affine(spacing)), str(path))


def write_png(channel: np.ndarray, path: Path, normalize: str) -> None:
    """One 2D channel as an 8-bit (values within 0..255) or 16-bit grey PNG (rounded).

    ``minmax``/``window`` input (0..1) is scaled to 0..255; other input must already be integers in
    0..65535 (a PNG holds nothing else), else a ModelError says how to fix the card.
    """
    from PIL import Image

    data = np.asarray(channel, np.float64)
    if normalize in ("minmax", "window"):
        data = data * 255.0
    elif data.size:
        whole = np.array_equal(data, np.round(data))
        if data.min() < 0 or data.max() > 65535 or not whole:
            raise ModelError(f'[model] file_format = "png" holds integers 0..65535, and this image (normalize = '
                             f'"{normalize}") has values {data.min():.4g}..{data.max():.4g}'
                             f'{"" if whole else " with fractions"}; use [input] normalize = "minmax" or '
                             '"window", or file_format = "nifti"')
    if data.max(initial=0) <= 255:
        Image.fromarray(np.clip(np.round(data), 0, 255).astype(np.uint8)).save(path)
    else:
        Image.fromarray(np.clip(np.round(data), 0, 65535).astype(np.uint16)).save(path)


def _written_affine(spacing: Sequence[float]) -> np.ndarray:
    """The affine :func:`write_nifti` gives a file: its diagonal is the spacing (1 for a 2D file's slice)."""
    return np.diag([*[*spacing, 1.0][:3], 1.0])


def _as_written(data: np.ndarray, affine: np.ndarray, written: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Labels in the voxel order the harness wrote (``written`` affine, array ``shape``): a program that
    saved them reoriented (axes flipped or permuted, its affine mapping the same voxels to the same
    places) is turned back by its header. A header that does not describe the written volume (lost:
    no orientation, unit spacing at the origin, as a tool that drops it writes) is ignored: the
    labels are taken as stored."""
    import nibabel.orientations as nio

    if data.ndim != 3 or len(shape) != 3:
        return data
    with np.errstate(invalid="ignore", divide="ignore"):
        try:
            found, expected = nio.io_orientation(affine), nio.io_orientation(written)
        except ValueError:
            return data
    if np.isnan(found).any() or (found == expected).all():
        return data
    corners = np.array(np.meshgrid(*[[0, n - 1] for n in shape], indexing="ij")).reshape(3, -1)
    out_corners = np.array(np.meshgrid(*[[0, n - 1] for n in data.shape], indexing="ij")).reshape(3, -1)
    world = written[:3, :3] @ corners + written[:3, 3:]
    out_world = affine[:3, :3] @ out_corners + affine[:3, 3:]
    tolerance = 1e-3 * float(np.abs(np.diag(written)[:3]).max())
    same_box = np.allclose(np.sort(world, axis=1), np.sort(out_world, axis=1), atol=tolerance)
    if not same_box:
        return data
    return np.ascontiguousarray(nio.apply_orientation(data, nio.ornt_transform(found, expected)))


def read_labels(folder: Path, name: str, spatial: tuple[int, ...],
                spacing: Sequence[float] | None = None) -> np.ndarray:
    """Read the program's label file for ``name`` (``.nii.gz``, ``.nii`` or ``.png``); with the
    ``spacing`` the input was written with, a NIfTI saved reoriented is turned back (:func:`_as_written`)."""
    for suffix in (".nii.gz", ".nii", ".png"):
        path = folder / f"{name}{suffix}"
        if path.is_file():
            break
    else:
        found = sorted(p.name for p in folder.iterdir())[:5]
        raise ModelError(f"the command wrote no output for {name} (expected {name}.nii.gz or .png in "
                         f"{{output}}; found {found or 'nothing'})")
    try:
        if suffix == ".png":
            from PIL import Image

            with Image.open(path) as img:
                data = np.asarray(img)
        else:
            import nibabel as nib

            from harness.datasets.io import nifti_size_problem

            img = nib.load(str(path))
            if (problem := nifti_size_problem(path, img)) is not None:
                raise ValueError(problem)
            data = np.asarray(img.dataobj)
            if spacing is not None:
                data = _as_written(data, img.affine, _written_affine(spacing), (*spatial, 1)[:3])
    except Exception as exc:  # any unreadable file is a model failure for this case
        raise ModelError(f"cannot read the command's output {path.name}: {exc}") from exc
    if len(spatial) == 2 and data.ndim == 3 and data.shape[2] == 1:
        data = data[..., 0]
    return data
