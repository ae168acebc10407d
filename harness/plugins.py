"""The one plugin mechanism: entry-point groups and ``"package.module:attr"`` strings."""
from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from harness.errors import FOREIGN_FAILURES, ConfigError

GROUPS = ("harness.models", "harness.perturbations", "harness.metrics", "harness.suites")


def import_object(reference: str, *, what: str = "object") -> Any:
    """Import ``"package.module:attr"`` (attr may be dotted). ConfigError with the fix if it fails."""
    module_name, sep, attr = reference.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"{what} {reference!r} must look like 'package.module:attribute'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"{what} {reference!r}: cannot import module {module_name!r} ({exc}); "
                          "install the package that provides it or fix the name") from exc
    except FOREIGN_FAILURES as exc:  # the module itself failed while importing (any error, sys.exit)
        detail = f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise ConfigError(f"{what} {reference!r}: importing module {module_name!r} failed ({detail}); "
                          "fix the module") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise ConfigError(f"{what} {reference!r}: module {module_name!r} has no attribute "
                              f"{attr!r}") from exc
    return obj


def entry_point_objects(group: str) -> dict[str, Any]:
    """Load every entry point of ``group`` (for listings); a broken plugin raises ConfigError naming it."""
    return {ep.name: _load(ep, group) for ep in entry_points(group=group)}


def entry_point_names(group: str) -> dict[str, str]:
    """The entry points of ``group`` as name -> ``"module:attr"``, none of them imported."""
    return {ep.name: ep.value for ep in entry_points(group=group)}


def entry_point_object(group: str, name: str) -> Any:
    """The object of the one entry point ``name`` of ``group`` (None when there is none): a
    broken plugin that is not asked for does not stop the others."""
    for ep in entry_points(group=group, name=name):
        return _load(ep, group)
    return None


def refuse_shadowing(group: str, name: str, what: str) -> None:
    """ConfigError when a plugin of ``group`` takes ``name``, which a bundled ``what`` has: the
    bundled one would be used and the plugin silently ignored."""
    value = entry_point_names(group).get(name)
    if value is not None:
        raise ConfigError(f"plugin {name!r} in entry-point group {group!r} ({value}) takes the name of a bundled "
                          f"{what}; rename the entry point (plugins may not shadow bundled names)")


def _load(ep: Any, group: str) -> Any:
    try:
        return ep.load()
    except FOREIGN_FAILURES as exc:  # a third-party plugin can fail in any way, sys.exit included
        raise ConfigError(f"plugin {ep.name!r} in entry-point group {group!r} ({ep.value}) "
                          f"failed to load: {type(exc).__name__}: {exc}") from exc


def provenance(reference: str, group: str | None = None) -> str | None:
    """Where plugin code comes from, for a run's record: the distribution and version that provide
    entry point ``reference`` of ``group``, or the module of a ``"package.module:attr"`` reference
    (its distribution and version, else its file and that file's sha256). None for bundled code and
    for a name that is neither."""
    if group is not None and ":" not in reference:
        for ep in entry_points(group=group, name=reference):
            dist = getattr(ep, "dist", None)
            if dist is not None and _editable(dist.name):
                return provenance(ep.value)  # its code's file hash: an editable install keeps its version
            return f"{ep.value} ({f'{dist.name} {dist.version}' if dist is not None else 'an unnamed distribution'})"
        return None
    module_name = reference.partition(":")[0]
    if not module_name or module_name == "harness" or module_name.startswith("harness."):
        return None
    from importlib.metadata import packages_distributions, version

    top = module_name.split(".")[0]
    release = ""
    for dist in _distributions(packages_distributions).get(top, []):
        try:
            release = f"{dist} {version(dist)}"
            if not _editable(dist):
                return f"{reference} ({release})"
        except Exception:  # noqa: BLE001 - metadata of a broken install: try the file
            pass
        break
    # not from a release: an editable install's version does not change when its code is edited
    try:
        module: Any = importlib.import_module(module_name)  # already imported by the run: a lookup
    except FOREIGN_FAILURES:
        module = None
    path = getattr(module, "__file__", None)
    if path:  # not a readable file for code typed at a prompt or piped in (<stdin>), or a zip import
        from harness.hashing import file_sha256

        try:
            digest = file_sha256(Path(path))[:16]
        except OSError:
            digest = None
        if digest is not None:
            where = f"{release}, editable: " if release else ""
            return f"{reference} ({where}{path}, sha256 {digest})"
    return f"{reference} ({release or 'origin unknown'})"


def _editable(dist: str) -> bool:
    """Whether distribution ``dist`` is an editable install (``pip install -e``, PEP 660)."""
    import json
    from importlib.metadata import distribution

    try:
        text = distribution(dist).read_text("direct_url.json")
        return bool(text and json.loads(text).get("dir_info", {}).get("editable"))
    except Exception:  # noqa: BLE001 - unreadable metadata: treat as a release
        return False


_DISTRIBUTIONS: dict[str, list[str]] | None = None


def _distributions(lookup: Any) -> dict[str, list[str]]:
    """``importlib.metadata.packages_distributions()``, read once (it scans every installed package)."""
    global _DISTRIBUTIONS
    if _DISTRIBUTIONS is None:
        _DISTRIBUTIONS = dict(lookup())
    return _DISTRIBUTIONS
