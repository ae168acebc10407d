"""Relative links in the user guide point at files (and headings) that exist."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from ._markdown import DOCS, REPO, anchors, links

PLACEHOLDER = re.compile(r"^\s*[A-Z][A-Z0-9]*(_[A-Z0-9]+)+\s*$")  # a line that is only a FILL_ME token


def _pages() -> list[Path]:
    return sorted(DOCS.glob("*.md")) + [REPO / "README.md", REPO / "examples/README.md",
                                         REPO / "examples/plugin/README.md"]


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(page):
    problems = []
    for target in links(page):
        if "://" in target or target.startswith("mailto:"):
            continue
        path_part, _, anchor = target.partition("#")
        path = (page.parent / path_part).resolve() if path_part else page
        if not path.exists():
            problems.append(f"{target}: {path} does not exist")
            continue
        if anchor and path.suffix == ".md" and anchor not in anchors(path):
            problems.append(f"{target}: no heading #{anchor} in {path.name}")
    assert not problems, "\n".join(problems)


def test_every_docs_page_is_in_the_index():
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    pages = {p.name for p in DOCS.glob("*.md")}
    missing = sorted(p for p in pages - {"README.md"} if f"({p})" not in index)
    assert not missing, f"docs/README.md does not link {missing}"


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(REPO)))
def test_no_unfilled_placeholder(page):
    lines = [n for n, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1) if PLACEHOLDER.match(line)]
    assert not lines, f"{page.name}: unfilled placeholder line(s) {lines}"
