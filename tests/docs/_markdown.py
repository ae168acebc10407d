"""Small Markdown readers for the documentation tests (sections, table keys, links)."""
from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


def lines_outside_code(text: str) -> list[str]:
    """The lines of ``text`` with fenced code blocks blanked out."""
    out, fenced = [], False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            out.append("")
            continue
        out.append("" if fenced else line)
    return out


def sections(text: str, level: int) -> dict[str, list[str]]:
    """Heading text -> its lines, for headings of exactly ``level`` (a section runs to the next
    heading of the same or a higher level)."""
    found: dict[str, list[str]] = {}
    current: str | None = None
    for line in lines_outside_code(text):
        match = _HEADING.match(line)
        if match and len(match.group(1)) <= level:
            current = match.group(2) if len(match.group(1)) == level else None
            if current is not None:
                found[current] = []
            continue
        if current is not None:
            found[current].append(line)
    return found


def first_table(lines: list[str]) -> list[list[str]]:
    """Cells of the first Markdown table in ``lines`` (header and rule rows dropped), stopping at a
    sub-heading."""
    rows: list[list[str]] = []
    started = False
    for line in lines:
        if _HEADING.match(line):
            break
        if line.startswith("|"):
            started = True
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            rows.append(cells)
        elif started:
            break
    return [r for r in rows[2:]] if len(rows) >= 2 else []


def table_keys(lines: list[str]) -> list[str]:
    """The backticked names in the first column of the first table (``| `key` | ...``)."""
    keys = []
    for cells in first_table(lines):
        keys += re.findall(r"`([^`]+)`", cells[0])
    return keys


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[`*_]", lambda m: "_" if m.group(0) == "_" else "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in lines_outside_code(path.read_text(encoding="utf-8")):
        match = _HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        n = seen.get(base, 0)
        out.add(base if n == 0 else f"{base}-{n}")
        seen[base] = n + 1
    return out


def links(path: Path) -> list[str]:
    text = "\n".join(lines_outside_code(path.read_text(encoding="utf-8")))
    text = re.sub(r"`[^`\n]*`", "", text)
    return re.findall(r"\[[^\]]*\]\(([^)\s]+)\)", text)
