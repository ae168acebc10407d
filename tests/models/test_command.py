"""The command adapter: an external program (run without a shell) segments a folder of files."""
from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from harness.errors import ConfigError, ModelError
from harness.models import load_model
from harness.models.preprocessing import normalize
from tests.models import helpers
from tests.models.conftest import card


@pytest.fixture
def script(tmp_path):
    return helpers.write(tmp_path / "threshold.py", helpers.SCRIPT)


def _model(tmp_path, *flags: str, extra: str = "", inp: str = ""):
    argv = ["{python}", "threshold.py", "{input}", "{output}", *flags]
    text = f'''[model]
format = "command"
command = {json.dumps(argv)}
{extra}
[input]
{inp}
[output]
labels = {{1 = "organ"}}
'''
    return load_model(card(tmp_path, text))


def test_command_thresholds_nifti_2d_and_3d(tmp_path, script, case2d, case3d):
    model = _model(tmp_path)
    assert model.timeout_s == 1800 and model.differentiable is False
    for case in (case2d, case3d):
        pred = model.predict(case.image, case.spacing, case_id=case.case_id)
        np.testing.assert_array_equal(pred.labels, case.image[0] > 0.5)
        assert pred.probabilities is None


def test_command_output_saved_in_another_orientation_is_read_back_by_its_header(tmp_path, script, case3d):
    """A program that reorients (here to LPS: two axes stored reversed, its affine saying so) is
    turned back to the voxel order the harness wrote; read as stored, the labels were mirrored."""
    pred = _model(tmp_path, "--reorient").predict(case3d.image, case3d.spacing)
    np.testing.assert_array_equal(pred.labels, case3d.image[0] > 0.5)


@pytest.mark.parametrize("how", ["permuted", "lost header", "sitk default"])
def test_command_output_orientation_cases(tmp_path, how):
    """Axes permuted (A, S, R) on a non-cubic volume are put back; a header that does not describe
    the written volume (none at all, or a tool's unit-spacing default) is ignored: labels as stored."""
    import nibabel as nib
    import nibabel.orientations as nio

    from harness.models.command import read_labels, write_nifti

    labels = (np.random.default_rng(0).random((5, 6, 7)) > 0.5).astype(np.uint8)
    spacing = (3.0, 0.8, 0.7)
    write_nifti(labels.astype(np.float32), spacing, tmp_path / "input.nii.gz")
    written = nib.load(tmp_path / "input.nii.gz").affine
    if how == "permuted":
        image = nib.Nifti1Image(labels, written).as_reoriented(
            nio.ornt_transform(nio.io_orientation(written), nio.axcodes2ornt(("A", "S", "R"))))
        assert image.shape == (6, 7, 5)
    else:
        image = nib.Nifti1Image(labels, None if how == "lost header" else np.diag([-1.0, -1.0, 1.0, 1.0]))
    nib.save(image, tmp_path / "case_0000.nii.gz")
    np.testing.assert_array_equal(read_labels(tmp_path, "case_0000", labels.shape, spacing), labels)


def test_command_batches_several_cases_in_one_call(tmp_path, script, case2d):
    model = _model(tmp_path)
    preds = model.predict_batch([case2d.image, case2d.image * 0.6], [case2d.spacing] * 2)
    np.testing.assert_array_equal(preds[1].labels, case2d.image[0] * 0.6 > 0.5)


def test_command_png(tmp_path, script, case2d):
    model = _model(tmp_path, extra='file_format = "png"', inp='normalize = "minmax"')
    pred = model.predict(case2d.image, case2d.spacing)
    quantised = np.round(normalize(case2d.image, "minmax")[0] * 255) / 255
    np.testing.assert_array_equal(pred.labels, quantised > 0.5)
    with pytest.raises(ModelError, match="PNG holds 2D|png.*2D images only"):
        model.predict(np.zeros((1, 4, 4, 4), np.float32), (1.0, 1.0, 1.0))


def test_command_timeout(tmp_path, script, case2d):
    model = _model(tmp_path, "--sleep", "30", extra="timeout = 0.5")
    start = time.perf_counter()
    with pytest.raises(ModelError, match=r"case slow: command '.*python.*' timed out after 0.5 s"):
        model.predict(case2d.image, case2d.spacing, case_id="slow")
    assert time.perf_counter() - start < 10


@pytest.mark.parametrize("flags,pattern", [
    (("--fail",), r"case c1: command .* exited with status 3: loading checkpoint \| RuntimeError: CUDA out of memory"),
    (("--nothing",), r"case c1: the command wrote no output for case_0000"),
    (("--label", "5"), r"case c1: predicted label\(s\) \[5\] are not among the declared classes"),
    (("--crop",), r"case c1: output shape .* does not match"),
    (("--fractional",), r"case c1: label map output holds non-integer values \(the program must write whole-number "
                        r"class labels: this format reads label files only"),
])
def test_command_failures(tmp_path, script, case2d, flags, pattern):
    with pytest.raises(ModelError, match=pattern):
        _model(tmp_path, *flags).predict(case2d.image, case2d.spacing, case_id="c1")


def test_command_missing_program(tmp_path, case2d):
    """Refused when the card is loaded (before any case), naming the card and the program; a program
    that goes missing later fails its items with a ModelError."""
    text = '[model]\nformat = "command"\ncommand = ["no-such-program-xyz", "{input}", "{output}"]\n' \
           '[output]\nlabels = {1 = "x"}\n'
    with pytest.raises(ConfigError, match=r"card\.toml: \[model\] command: program 'no-such-program-xyz' is not on PATH"):
        load_model(card(tmp_path, text))
    (tmp_path / "tools").mkdir()
    tool = tmp_path / "tools" / "predict.sh"
    tool.write_text("#!/bin/sh\nexit 0\n")
    local = text.replace("no-such-program-xyz", "tools/predict.sh")
    with pytest.raises(ConfigError, match=r"program 'tools/predict.sh' is not an executable file"):
        load_model(card(tmp_path, local))  # there, but not executable
    tool.chmod(0o755)
    model = load_model(card(tmp_path, local))  # relative to the card's folder, the program's working directory
    tool.unlink()
    with pytest.raises(ModelError, match=r"cannot start 'tools/predict.sh'"):
        model.predict(case2d.image, case2d.spacing)


def test_no_shell_is_involved(tmp_path, case2d):
    """Shell syntax in an argument reaches the program verbatim (argv list, never a shell)."""
    marker = tmp_path / "pwned"
    argv = ["{python}", "-c", "import sys; open(sys.argv[1] + '/case_0000.txt', 'w').write(sys.argv[3])",
            "{output}", "{input}", f"x; touch {marker}"]
    text = f'[model]\nformat = "command"\ncommand = {json.dumps(argv)}\n[output]\nlabels = {{1 = "x"}}\n'
    with pytest.raises(ModelError, match="wrote no output"):
        load_model(card(tmp_path, text)).predict(case2d.image, case2d.spacing)
    assert not marker.exists()


def test_command_config_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"must contain the \{input\} and \{output\} placeholders"):
        load_model(card(tmp_path, '[model]\nformat = "command"\ncommand = ["x", "{input}"]\n[output]\nlabels = {1 = "x"}\n'))
    with pytest.raises(ConfigError, match=r"\[model\] command: missing"):
        load_model(card(tmp_path, '[model]\nformat = "command"\n[output]\nlabels = {1 = "x"}\n'))
    with pytest.raises(ConfigError, match=r"\[model\] path: .* does not exist"):
        load_model(card(tmp_path, '[model]\nformat = "command"\npath = "nnUNet_results"\n'
                                  'command = ["x", "{input}", "{output}"]\n[output]\nlabels = {1 = "x"}\n'))


def test_command_sha256_covers_the_model_folder(tmp_path):
    (tmp_path / "results" / "fold_0").mkdir(parents=True)
    (tmp_path / "results" / "fold_0" / "checkpoint_final.pth").write_bytes(b"a")
    text = '[model]\nformat = "command"\npath = "results"\ncommand = ["{python}", "{input}", "{output}"]\n' \
           '[output]\nlabels = {1 = "x"}\n'
    first = load_model(card(tmp_path, text)).sha256
    (tmp_path / "results" / "fold_0" / "checkpoint_final.pth").write_bytes(b"b")
    assert load_model(card(tmp_path, text)).sha256 != first


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
def test_ctrl_c_stops_the_program_and_what_it_started(tmp_path, case2d):
    """The program leads its own session, so the terminal's SIGINT misses it: the adapter kills it."""
    card_path, pids = helpers.hanging_program(tmp_path)
    model = load_model(card_path)

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 2.0)
    try:
        with pytest.raises(KeyboardInterrupt):
            model.predict(case2d.image, case2d.spacing)
        program, helper, folder = pids.read_text().split()
        assert helpers.gone(int(program)) and helpers.gone(int(helper))
        assert not Path(folder).exists()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        helpers.clean_up_program(pids)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
def test_a_child_the_program_leaves_running_is_killed(tmp_path, script, case2d):
    pid_file = tmp_path / "child.pid"
    model = _model(tmp_path, "--background", str(pid_file))
    pred = model.predict(case2d.image, case2d.spacing)
    np.testing.assert_array_equal(pred.labels, case2d.image[0] > 0.5)
    child = int(pid_file.read_text())
    try:
        assert helpers.gone(child)
    finally:
        if not helpers.gone(child, 0.1):
            os.kill(child, signal.SIGKILL)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
def test_sigterm_to_a_run_stops_the_program_and_writes_the_outputs(tmp_path):
    """SIGTERM (kill, timeout, a cancelled CI job) takes the Ctrl-C path: the program and what it
    started are killed, its folder removed, and the run writes a failing run-complete gate (it
    left them running, with no outputs)."""
    import subprocess
    import sys

    card_path, pids = helpers.hanging_program(tmp_path)
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "harness", "run", "--suite", "smoke", "--model", str(card_path),
                             "--data", "phantom2d:n=1", "--workers", "1", "--out", str(out)],
                            cwd=Path(__file__).resolve().parents[2], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not pids.is_file():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() else "slow"
            time.sleep(0.05)
        time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 2
        program, helper, folder = pids.read_text().split()
        assert helpers.gone(int(program)) and helpers.gone(int(helper)) and not Path(folder).exists()
        summary = json.loads((out / "summary.json").read_text())
        assert summary["gates"][0]["name"] == "run-complete" and summary["gates"][0]["detail"].startswith("interrupted")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
        helpers.clean_up_program(pids)
