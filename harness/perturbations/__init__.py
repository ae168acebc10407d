"""Perturbation families and their registry (bundled families + ``harness.perturbations`` plugins)."""
from __future__ import annotations

from typing import Any

from harness.errors import ConfigError
from harness.perturbations.base import MAX_SEVERITY, Perturbation

_REGISTRY: dict[str, type[Perturbation]] = {}
GROUP = "harness.perturbations"  # the entry-point group of plugin families


def _is_bundled(obj: Any) -> bool:
    return str(getattr(obj, "__module__", "")).startswith("harness.")


def register(cls: type[Perturbation]) -> type[Perturbation]:
    """Class decorator adding a family to the registry under ``cls.name``; a plugin may not take a
    bundled family's name (ConfigError), whatever the order of registration."""
    if not (isinstance(cls, type) and issubclass(cls, Perturbation)):
        raise ConfigError(f"register_perturbation({cls!r}): expected a subclass of "
                          "harness.perturbations.base.Perturbation")
    if not _is_bundled(cls):
        _load_bundled()  # so the check below sees every bundled name
        taken = _REGISTRY.get(cls.name)
        if taken is not None and taken is not cls and _is_bundled(taken):
            raise ConfigError(f"perturbation name {cls.name!r} is taken by a bundled family; choose another name")
    _REGISTRY[cls.name] = cls
    return cls


def _load_bundled() -> None:
    from harness.perturbations import _bundled  # noqa: F401  (imports register the families)


def available() -> dict[str, type[Perturbation]]:
    """All families by name: bundled, then entry-point plugins."""
    _load_bundled()
    from harness.plugins import entry_point_objects, refuse_shadowing

    found = dict(_REGISTRY)
    for name, obj in entry_point_objects(GROUP).items():
        if name in found and _is_bundled(found[name]):  # a plugin's own @register is no shadowing
            refuse_shadowing(GROUP, name, "perturbation family")
        found[name] = _plugin_class(name, obj)
    return found


def _plugin_class(name: str, obj: Any) -> type[Perturbation]:
    if not (isinstance(obj, type) and issubclass(obj, Perturbation)):
        raise ConfigError(f"plugin perturbation {name!r} is not a harness Perturbation subclass")
    return obj


def _family(name: str) -> type[Perturbation] | None:
    """The class of family ``name``: bundled or registered, else the one entry point of that name
    (other plugins are not imported, so a broken one does not stop a suite that does not use it)."""
    _load_bundled()
    from harness.plugins import entry_point_object, refuse_shadowing

    if name in _REGISTRY:
        if _is_bundled(_REGISTRY[name]):  # a plugin that @register-s its class is found here once loaded
            refuse_shadowing(GROUP, name, "perturbation family")
        return _REGISTRY[name]
    obj = entry_point_object(GROUP, name)
    return None if obj is None else _plugin_class(name, obj)


def build(name: str, options: dict[str, Any], *, label: str | None = None) -> Perturbation | str:
    """Family ``name`` built with ``options``, or the one-line reason it cannot be (unknown family,
    bad options; naming the suite's ``label`` when it differs from the name) — for checks that
    list every problem of a suite at once."""
    where = f"perturbation {label!r}: " if label and label != name else ""
    try:
        return get(name, **options)
    except ConfigError as exc:
        return where + str(exc)
    except TypeError as exc:  # a plugin family whose __init__ does not take these options
        return f"{where or f'perturbation {name!r}: '}bad options {options} ({exc})"


def get(name: str, **options: Any) -> Perturbation:
    """An instance of family ``name`` (or of a ``"package.module:Class"`` reference)."""
    if ":" in name:
        from harness.plugins import import_object

        cls = import_object(name, what="perturbation")
        if not (isinstance(cls, type) and issubclass(cls, Perturbation)):
            raise ConfigError(f"perturbation {name!r} is not a harness Perturbation subclass")
        return cls(**options)
    cls = _family(name)
    if cls is None:
        from harness.options import did_you_mean
        from harness.plugins import entry_point_names

        names = sorted({*_REGISTRY, *entry_point_names(GROUP)})
        raise ConfigError(f"unknown perturbation {name!r}{did_you_mean(name, names)}; available: {', '.join(names)}")
    return cls(**options)


__all__ = ["MAX_SEVERITY", "Perturbation", "available", "get", "register"]
