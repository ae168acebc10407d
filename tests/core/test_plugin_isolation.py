"""Entry-point plugins: a broken one stops only what uses it, and none may take a bundled name (it
was silently ignored for perturbations and model formats)."""
from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from harness.errors import ConfigError


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A fake installed distribution with the given entry-point lines per group."""
    def _install(name: str, groups: dict[str, list[str]]) -> None:
        dist = tmp_path / name / f"{name}-0.1.dist-info"
        dist.mkdir(parents=True)
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
        (dist / "entry_points.txt").write_text(
            "".join(f"[{group}]\n" + "\n".join(lines) + "\n" for group, lines in groups.items()))
        monkeypatch.syspath_prepend(str(tmp_path / name))
    return _install


@pytest.fixture
def fresh_caches():
    from harness.metrics import registry

    for cached in (registry._plugins, registry._plugin, registry._not_shadowed):
        cached.cache_clear()
    yield
    for cached in (registry._plugins, registry._plugin, registry._not_shadowed):
        cached.cache_clear()


@pytest.fixture
def plugin_module(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """An importable module with a perturbation family and a metric; a suite file beside it."""
    from harness.metrics import Metric, MetricInfo
    from harness.perturbations.base import Perturbation

    module = types.ModuleType("isolation_plugin")

    class Ghost(Perturbation):
        name = "ghost"

        def draw(self, case, severity, rng):
            return {}

        def apply(self, case, params):
            return case

    module.Ghost = Ghost  # type: ignore[attr-defined]
    module.SIMILAR = Metric(MetricInfo("similar", True, "fraction", ""), lambda ctx: 1.0)  # type: ignore[attr-defined]
    (tmp_path / "mine.toml").write_text('[suite]\nname = "mine"\n', encoding="utf-8")
    module.SUITE = str(tmp_path / "mine.toml")  # type: ignore[attr-defined]
    module.MISSING = str(tmp_path / "gone.toml")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "isolation_plugin", module)
    return "isolation_plugin"


def test_a_broken_plugin_stops_only_what_uses_it(install, plugin_module: str, fresh_caches: None) -> None:
    from harness.metrics import evaluate
    from harness.perturbations import get
    from harness.suite import resolve_suite_path

    install("broken_plugins", {
        "harness.perturbations": ["broken = no_such_module_xyz:X", f"ghost = {plugin_module}:Ghost"],
        "harness.metrics": ["broken = no_such_module_xyz:X", f"similar = {plugin_module}:SIMILAR"],
        "harness.suites": ["broken = no_such_module_xyz:X", f"mine = {plugin_module}:SUITE",
                           f"gone = {plugin_module}:MISSING"]})
    import numpy as np

    square = np.zeros((8, 8), dtype=np.uint8)
    square[2:6, 2:6] = 1
    assert get("blur").name == "blur" and get("ghost").name == "ghost"  # the broken family is not imported
    (row,) = evaluate(square, square, spacing=1.0, labels=[1], metrics=["dice", "similar"])
    assert row["similar"] == 1.0
    assert resolve_suite_path("smoke").name == "smoke.toml" and resolve_suite_path("mine").name == "mine.toml"
    for call in (lambda: get("broken"), lambda: evaluate(square, square, spacing=1.0, labels=[1], metrics=["broken"]),
                 lambda: resolve_suite_path("broken")):
        with pytest.raises(ConfigError, match=r"plugin 'broken' in entry-point group 'harness\.\w+' "
                                              r"\(no_such_module_xyz:X\) failed to load"):
            call()
    with pytest.raises(ConfigError, match=r"plugin suite 'gone' .* points at .*gone.toml, which is not a file"):
        resolve_suite_path("gone")
    with pytest.raises(ConfigError, match=r"unknown perturbation 'ghosty' \(did you mean 'ghost'\?\); available: .*broken"):
        get("ghosty")


def test_a_plugin_may_not_take_a_bundled_name(install, plugin_module: str, fresh_caches: None) -> None:
    from harness.metrics import evaluate
    from harness.perturbations import available, get

    install("shadowing_plugins", {"harness.perturbations": [f"blur = {plugin_module}:Ghost"],
                                  "harness.metrics": [f"dice = {plugin_module}:SIMILAR"]})
    for call in (lambda: get("blur"), available):
        with pytest.raises(ConfigError, match=r"plugin 'blur' in entry-point group 'harness.perturbations' "
                                              r"\(isolation_plugin:Ghost\) takes the name of a bundled perturbation family"):
            call()
    import numpy as np

    with pytest.raises(ConfigError, match=r"plugin 'dice' .* takes the name of a bundled metric"):
        evaluate(np.ones((4, 4), dtype=np.uint8), np.ones((4, 4), dtype=np.uint8), spacing=1.0, labels=[1],
                 metrics=["dice"])


def test_a_plugin_reference_is_printed_as_written_not_as_an_emoji(capsys: pytest.CaptureFixture[str]) -> None:
    """"mylab.pert:Ghost:" was printed as "mylab.pert" and a ghost emoji by harness compare."""
    from harness import cli

    for console in (cli.out_console, cli.console):
        console.print("family mylab.pert:ghost: and :thumbs_up:")
    captured = capsys.readouterr()
    assert captured.out.count("mylab.pert:ghost: and :thumbs_up:") == 1
    assert captured.err.count("mylab.pert:ghost: and :thumbs_up:") == 1


def test_the_plugin_code_a_run_used_is_recorded(install, plugin_module: str, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """summary.json named no plugin: the code behind a plugin family, metric or model was untraceable."""
    from harness.hashing import file_sha256
    from harness.provenance import plugin_code

    install("traced_plugins", {"harness.perturbations": [f"ghost = {plugin_module}:Ghost"]})
    source = tmp_path / "lab" / "traced_metric.py"
    source.parent.mkdir()
    source.write_text("from harness.metrics import Metric, MetricInfo\n"
                      "M = Metric(MetricInfo('m', True, 'fraction', ''), lambda ctx: 1.0)\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(source.parent))
    suite = types.SimpleNamespace(perturbations=[types.SimpleNamespace(family="ghost"), types.SimpleNamespace(family="blur")],
                                  metrics=["dice", "traced_metric:M"])
    model = types.SimpleNamespace(card={"model": {"format": "callable", "entry": "traced_metric:M"}})
    found = plugin_code(suite, model)
    assert found["perturbation ghost"] == "isolation_plugin:Ghost (traced_plugins 0.1)"
    assert found["metric traced_metric:M"] == f"traced_metric:M ({source}, sha256 {file_sha256(source)[:16]})"
    assert "model entry traced_metric:M" in found
    assert set(found) == {"perturbation ghost", "metric traced_metric:M", "model entry traced_metric:M"}  # bundled code left out


def test_an_editable_plugin_is_traced_by_its_code_not_its_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pip install -e keeps the version while the code is edited: the file's sha256 tells them apart."""
    import json

    from harness import plugins
    from harness.hashing import file_sha256

    root = tmp_path / "site"
    (root / "editlab").mkdir(parents=True)
    (root / "editlab" / "__init__.py").write_text("")
    code = root / "editlab" / "fam.py"
    code.write_text("X = 1\n")
    for name, editable in (("editlab", True),):
        dist = root / f"{name}-0.1.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
        (dist / "top_level.txt").write_text("editlab\n")
        (dist / "direct_url.json").write_text(json.dumps({"url": "file:///src", "dir_info": {"editable": editable}}))
        (dist / "entry_points.txt").write_text("[harness.perturbations]\nedited = editlab.fam:X\n")
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setattr(plugins, "_DISTRIBUTIONS", None)
    before = plugins.provenance("editlab.fam:X")
    assert before == f"editlab.fam:X (editlab 0.1, editable: {code}, sha256 {file_sha256(code)[:16]})"
    assert plugins.provenance("edited", "harness.perturbations") == before
    code.write_text("X = 2\n")
    assert plugins.provenance("editlab.fam:X") != before  # the edit shows


def test_code_without_a_readable_file_is_of_unknown_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    """A model function typed at a prompt or piped in (module file "<stdin>") must not stop the run
    after its evaluation: its provenance is unknown, not an error."""
    from harness import plugins

    module = types.ModuleType("piped_in_model")
    module.__file__ = "<stdin>"
    monkeypatch.setitem(sys.modules, "piped_in_model", module)
    assert plugins.provenance("piped_in_model:predict") == "piped_in_model:predict (origin unknown)"


def test_a_plugin_family_that_registers_itself_is_found_again(install, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """An entry-point family whose module also uses @register: once imported its class sits in the
    registry, and the second lookup (and `harness list`) refused it as taking a bundled name."""
    from harness import perturbations

    install("selfreg", {"harness.perturbations": ["salt_selfreg = selfreg_mod:Salt"]})
    (tmp_path / "selfreg" / "selfreg_mod.py").write_text(
        "from harness.perturbations import register\n"
        "from harness.perturbations.base import Perturbation\n\n\n"
        "@register\nclass Salt(Perturbation):\n    name = 'salt_selfreg'\n\n"
        "    def draw(self, case, severity, rng):\n        return {}\n\n"
        "    def apply(self, case, params):\n        return case\n")
    monkeypatch.delitem(sys.modules, "selfreg_mod", raising=False)
    try:
        first = perturbations.get("salt_selfreg")
        again = perturbations.get("salt_selfreg")
        assert type(first) is type(again) and type(first).__module__ == "selfreg_mod"
        assert perturbations.available()["salt_selfreg"] is type(first)
    finally:
        perturbations._REGISTRY.pop("salt_selfreg", None)
        sys.modules.pop("selfreg_mod", None)
