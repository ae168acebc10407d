"""The compiled metric kernels cache outside the installed package (numba's default would write
``__pycache__`` files into site-packages that pip does not know about)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("numba")

REPO = Path(__file__).resolve().parents[2]
SCRIPT = """
import numpy as np
from harness.metrics import _kernels as k
a = np.zeros((1, 8, 8), np.uint8); a[0, 2:5, 2:5] = 1
assert list(k.scan_pair(a, a)[1]) == [9, 9, 9]
print(k.cache_dir())
"""


def _run(env: dict[str, str]) -> str:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"} | env
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_kernels_cache_under_the_user_cache_dir(tmp_path: Path) -> None:
    out = _run({"XDG_CACHE_HOME": str(tmp_path)})
    assert Path(out) == tmp_path / "harness" / "numba"
    assert list((tmp_path / "harness" / "numba").rglob("_kernels.scan_pair-*.nbi"))


def test_numba_cache_dir_wins(tmp_path: Path) -> None:
    out = _run({"XDG_CACHE_HOME": str(tmp_path / "xdg"), "NUMBA_CACHE_DIR": str(tmp_path / "numba")})
    assert Path(out) == tmp_path / "numba"
    assert list((tmp_path / "numba").rglob("_kernels.scan_pair-*.nbi"))
    assert not (tmp_path / "xdg").exists()
