"""`harness --help` and every command's options agree with the documentation."""
from __future__ import annotations

import re

import click
import pytest
import typer

from harness.cli import app, main

from ._markdown import DOCS, first_table, sections

QUICKSTART = (DOCS / "quickstart.md").read_text(encoding="utf-8")
COMMAND_SECTIONS = {m.group(1): lines for h, lines in sections(QUICKSTART, 3).items()
                    if (m := re.fullmatch(r"`harness ([a-z\- ]+)`", h))}


def _commands() -> dict[str, click.Command]:
    """Every leaf command by its full name (``run``, ``perturbations preview``)."""
    found: dict[str, click.Command] = {}

    def walk(command: click.Command, prefix: str) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            full = f"{prefix} {name}".strip()
            if getattr(sub, "commands", None):
                walk(sub, full)
            else:
                found[full] = sub

    walk(typer.main.get_command(app), "")
    return found


def _options(command: click.Command) -> set[str]:
    names = set()
    for param in command.params:
        if param.param_type_name == "option":
            names.update(o for o in [*param.opts, *param.secondary_opts] if o.startswith("--"))
    return names - {"--help"}


def test_every_command_is_documented_and_every_documented_command_exists():
    assert set(COMMAND_SECTIONS) == set(_commands())


def test_docs_index_lists_every_command():
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    for name in _commands():
        assert re.search(rf"^harness {re.escape(name)}\b", index, re.M), f"docs/README.md misses `harness {name}`"


@pytest.mark.parametrize("name", sorted(_commands()))
def test_command_options_match_docs(name):
    table = first_table(COMMAND_SECTIONS[name])
    documented = {o for cells in table for o in re.findall(r"--[a-z][a-z0-9\-]*", cells[0])}
    actual = _options(_commands()[name])
    assert documented == actual, (f"harness {name}: documented only {sorted(documented - actual)}; "
                                  f"undocumented {sorted(actual - documented)}")


def test_root_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in {n.split()[0] for n in _commands()}:
        assert name in out


@pytest.mark.parametrize("name", sorted(_commands()))
def test_command_help_exits_0(name, capsys):
    assert main([*name.split(), "--help"]) == 0
    assert "Usage" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(_commands()))
def test_every_option_has_help(name):
    missing = [p.opts[0] for p in _commands()[name].params
               if p.param_type_name == "option" and not (p.help or "").strip()]
    assert not missing, f"harness {name}: options without help text: {missing}"


def test_root_debug_option_is_documented():
    root = typer.main.get_command(app)
    assert {o for p in root.params for o in p.opts if o.startswith("--")} - {"--help"} == {"--debug"}
    assert "`--debug`" in QUICKSTART


def test_list_choices_documented():
    """`harness list` takes suites | perturbations | metrics | gates, as the docs say."""
    help_text = _commands()["list"].params[0].help
    for what in ("suites", "perturbations", "metrics", "gates"):
        assert what in help_text
        assert what in "\n".join(COMMAND_SECTIONS["list"])
