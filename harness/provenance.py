"""What produced a result: package versions and the harness's own code revision.

Written into ``summary.json`` / ``junit.xml`` / the dossier by ``harness run`` and into
``training.json`` by ``harness train``, so a reader can rebuild the environment a number came from.
"""
from __future__ import annotations

import platform
import subprocess
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

# packages whose versions can change results: models, perturbations, resampling, metrics, statistics
PACKAGES = ("harness", "torch", "numpy", "scipy", "pandas", "torchio", "monai", "SimpleITK", "nibabel")


def versions() -> dict[str, str]:
    """Python and :data:`PACKAGES` versions ("unknown" for a package that is not installed)."""
    out = {"python": platform.python_version()}
    for pkg in PACKAGES:
        try:
            out[pkg] = importlib_metadata.version(pkg)
        except importlib_metadata.PackageNotFoundError:
            out[pkg] = "unknown"
    return out


def plugin_code(suite: Any, model: Any) -> dict[str, str]:
    """The plugin code a run used, as ``{"perturbation salt_pepper": "pkg.mod:Cls (mylab 0.1)", ...}``:
    perturbation families, metrics and model formats from entry points or ``"module:attr"``
    references, and a torch/callable card's ``entry`` (bundled code is left out)."""
    from harness.plugins import provenance

    wanted = [("perturbation", spec.family, "harness.perturbations") for spec in suite.perturbations]
    wanted += [("metric", name, "harness.metrics") for name in suite.metrics]
    card = getattr(model, "card", None) or {}
    section = card.get("model") if isinstance(card, dict) else None
    if isinstance(section, dict):
        if isinstance(section.get("format"), str):
            wanted.append(("model format", section["format"], "harness.models"))
        if isinstance(section.get("entry"), str) and ":" in section["entry"]:
            wanted.append(("model entry", section["entry"], None))
    out: dict[str, str] = {}
    for kind, name, group in wanted:
        key = f"{kind} {name}"
        if key not in out and (where := provenance(name, group)) is not None:
            out[key] = where
    return out


def _git(args: list[str], where: Path) -> str | None:
    try:
        res = subprocess.run(["git", *args], cwd=where, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() if res.returncode == 0 else None


def git_hash(path: Path | None = None) -> str | None:
    """HEAD commit of the git checkout that tracks the folder ``path`` (default: the harness's code);
    None when it does not track it (an installed package, even one inside another project's checkout,
    as a ``.venv`` in a repository is) or git is missing."""
    where = Path(path or Path(__file__).resolve().parent)
    if not _git(["ls-files", "--", "."], where):  # no tracked file here: this checkout is not our code's
        return None
    return _git(["rev-parse", "HEAD"], where) or None


def code_revision(path: Path | None = None) -> dict[str, Any] | None:
    """``{"commit": sha, "dirty": bool}`` of the harness's checkout (``dirty``: tracked files differ
    from the commit, so the commit alone does not name the code that ran); None outside a checkout."""
    where = Path(path or Path(__file__).resolve().parent)
    commit = git_hash(where)
    if commit is None:
        return None
    status = _git(["status", "--porcelain", "--untracked-files=no", "--", "."], where)
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def file_revision(path: str | Path) -> dict[str, Any] | None:
    """The last commit of a git-tracked file — ``{"commit": sha, "date": ISO time, "modified": bool}``
    (``modified``: the file differs from that commit) — so a reader can see that a suite's acceptance
    criteria were fixed before a run; None for a file git does not track; ``{"unavailable": True}``
    when git cannot run."""
    file = Path(path).resolve()
    if not file.is_file():
        return None
    if _git(["--version"], file.parent) is None:
        return {"unavailable": True}  # git missing or failing: nothing can be said either way
    # literal pathspecs: "release[1].toml" is that file, not a pattern matching release1.toml
    if _git(["--literal-pathspecs", "ls-files", "--error-unmatch", "--", file.name], file.parent) is None:
        return None
    last = _git(["--literal-pathspecs", "log", "-1", "--format=%H %cI", "--", file.name], file.parent)
    if not last:
        return None  # tracked (staged) but never committed
    commit, _, date = last.partition(" ")
    status = _git(["--literal-pathspecs", "status", "--porcelain", "--", file.name], file.parent)
    return {"commit": commit, "date": date, "modified": bool(status) if status is not None else None}
