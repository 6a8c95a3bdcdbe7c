"""Reader aids on the pages: glossary links, read from glossary.md, and the checks the tests share.

``python tools/reader_aids.py link <notebook>...`` turns the first use of each glossary term in a
page's prose into a ``{term}`` link (hover or tap shows the definition, see
``wmbook/book/sphinx_glossary.py``). It never touches headings, code, math, roles, links or HTML,
and leaves terms already linked alone. Run it after writing a page; the tests check that every
page links at least ``MIN_TERMS`` terms and that every linked term exists.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
GLOSSARY = ROOT / "glossary.md"
MIN_TERMS = 5
MAX_TERMS = 15  # per page: enough to help, not so many that the prose turns into links
# Everyday words too: linked only by hand, where the technical sense is meant.
NOT_AUTOMATIC = {"value", "key", "query", "context", "capacity", "activation", "parameter", "gradient", "prompt", "sampling"}
HOLD_MARK = ":class: hold-in-mind"


def glossary_terms(path: Path = GLOSSARY) -> list[list[str]]:
    """The entries of ``glossary.md``: each a list of its terms (English first, then Chinese)."""
    text = path.read_text(encoding="utf-8")
    m = re.search(r"```\{glossary\}\n(.*?)\n```", text, re.S)
    if not m:
        raise ValueError(f"{path} has no ```{{glossary}} block")
    entries, current = [], []
    for line in m.group(1).split("\n"):
        if not line.strip():
            continue
        if line.startswith((" ", "\t")):
            if current:
                entries.append(current)
                current = []
        else:
            current.append(line.strip())
    if current:
        raise ValueError(f"{path}: the entry {current} has no definition")
    return entries


# Spans of a markdown cell that a link must never be put into.
_PROTECTED = re.compile(
    r"```.*?```|:::.*?:::|\$\$.*?\$\$|\$[^$\n]+\$|\{[\w:-]+\}`[^`]*`|`[^`\n]*`|<[^>]+>|\[[^\]]*\]\([^)]*\)"
    r"|^#[^\n]*$|^[ \t]*\|[^\n]*$",
    re.S | re.M,
)


def linked_terms(source: str) -> set[str]:
    """The glossary targets a markdown text already links (``{term}`x``` or ``{term}`text <x>```)."""
    out = set()
    for body in re.findall(r"\{term\}`([^`]*)`", source):
        m = re.match(r"^(.*?)\s*<([^<>]+)>$", body)
        out.add((m.group(2) if m else body).strip().lower())
    return out


def link_terms(cells: list, entries: list[list[str]], limit: int = MAX_TERMS) -> int:
    """Link the first prose use of each English glossary term in ``cells`` (markdown cells, in place)."""
    targets = [e[0] for e in entries if e[0].lower() not in NOT_AUTOMATIC]
    done = set().union(*(linked_terms(c.source) for c in cells)) if cells else set()
    added = 0
    for target in sorted(targets, key=len, reverse=True):  # longer terms first: "attention head" before "attention"
        if target.lower() in done or added >= limit:
            continue
        word = re.compile(rf"(?<![\w-]){re.escape(target)}(s?)(?![\w-])", re.I)
        for cell in cells:
            src = cell.source
            protected = [(m.start(), m.end()) for m in _PROTECTED.finditer(src)]
            hit = next((m for m in word.finditer(src)
                        if not any(a <= m.start() < b or a < m.end() <= b for a, b in protected)), None)
            if hit is None:
                continue
            text = hit.group(0)
            role = f"{{term}}`{text}`" if text == target else f"{{term}}`{text} <{target}>`"
            cell.source = src[:hit.start()] + role + src[hit.end():]
            done.add(target.lower())
            added += 1
            break
    return added


def prose_cells(nb) -> list:
    """The markdown cells a reader reads as prose: after the title, before the exercises."""
    cells = [c for c in nb.cells if c.cell_type == "markdown"]
    out = []
    for c in cells[1:]:
        if c.source.lstrip().startswith("## Exercises") or HOLD_MARK in c.source:
            if c.source.lstrip().startswith("## Exercises"):
                break
            continue
        out.append(c)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    link = sub.add_parser("link", help="link the first use of each glossary term in the pages")
    link.add_argument("notebooks", nargs="+", type=Path)
    args = parser.parse_args(argv)
    entries = glossary_terms()
    for path in args.notebooks:
        nb = nbformat.read(path, as_version=4)
        n = link_terms(prose_cells(nb), entries)
        nbformat.write(nb, path)
        print(f"{path}: {n} glossary links added")
    return 0


if __name__ == "__main__":
    sys.exit(main())
