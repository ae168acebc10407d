"""Relative links in the user guide point at files (and headings) that exist."""
from __future__ import annotations

from pathlib import Path

import pytest

from ._markdown import DOCS, REPO, anchors, links

OWN_PAGES = ("README.md", "quickstart.md", "concepts.md", "suites.md", "datasets.md", "plugins.md",
             "ci.md", "examples.md")
# Pages other engineers are writing now: a link to them is checked once the file exists.
PENDING = {"report.md", "dossier.md", "scaling.md", "shift.md", "adversarial.md"}


def _pages() -> list[Path]:
    return [DOCS / name for name in OWN_PAGES if (DOCS / name).is_file()] + [REPO / "examples/plugin/README.md"]


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(page):
    problems = []
    for target in links(page):
        if "://" in target or target.startswith("mailto:"):
            continue
        path_part, _, anchor = target.partition("#")
        path = (page.parent / path_part).resolve() if path_part else page
        if not path.exists():
            if path.name in PENDING and path.parent == DOCS:
                continue
            problems.append(f"{target}: {path} does not exist")
            continue
        if anchor and path.suffix == ".md" and anchor not in anchors(path):
            problems.append(f"{target}: no heading #{anchor} in {path.name}")
    assert not problems, "\n".join(problems)


def test_every_docs_page_is_in_the_index():
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    pages = {p.name for p in DOCS.glob("*.md")} | PENDING
    missing = sorted(p for p in pages - {"README.md"} if f"({p})" not in index)
    assert not missing, f"docs/README.md does not link {missing}"
