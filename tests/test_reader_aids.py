"""What every page gives the reader's working memory: a "hold in mind" box, glossary links with
definitions (English and Chinese), self-check questions; and the glossary and notation pages."""
from __future__ import annotations

import re

import nbformat
import pytest

from tools.book import ROOT, toc_files, toc_notebooks
from tools.reader_aids import HOLD_MARK, MIN_TERMS, glossary_terms, link_terms, linked_terms

NOTEBOOKS = toc_notebooks(existing_only=True)
ENTRIES = glossary_terms()
KNOWN = {t.lower() for e in ENTRIES for t in e}
CJK = re.compile(r"[\u3400-\u9fff]")


def _id(path):
    return path.relative_to(ROOT).as_posix()


@pytest.fixture(params=NOTEBOOKS, ids=_id)
def nb(request):
    return request.param, nbformat.read(request.param, as_version=4)


def test_glossary_has_60_entries_each_in_english_and_chinese():
    assert len(ENTRIES) >= 60, f"the glossary has {len(ENTRIES)} entries; the book promises at least 60"
    for terms in ENTRIES:
        assert len(terms) == 2 and not CJK.search(terms[0]) and CJK.search(terms[1]), (
            f"each glossary entry is an English term, then a Chinese one: {terms}")
    english = [e[0].lower() for e in ENTRIES]
    assert english == sorted(english), "keep the glossary in alphabetical order"


def test_glossary_and_notation_are_in_the_book():
    assert {"glossary", "notation"} <= set(toc_files())
    notation = (ROOT / "notation.md").read_text(encoding="utf-8")
    for link in re.findall(r"\]\((chapters/[^)]+)\)", notation):
        assert (ROOT / link).exists(), f"notation.md links {link}, which does not exist"


def test_hold_in_mind_box_opens_the_page(nb):
    path, nb = nb
    md = [c.source for c in nb.cells if c.cell_type == "markdown"]
    boxes = [i for i, s in enumerate(md) if HOLD_MARK in s]
    assert boxes, f"{_id(path)} has no 'hold in mind' box (:::{{admonition}} Hold in mind / {HOLD_MARK})"
    # the first section: N.M.K where the outline has them, else any "## " heading (pages 9.x have none)
    first_section = next(i for i, s in enumerate(md) if re.search(r"^## ", s, re.M))
    assert boxes[0] < first_section, "the 'hold in mind' box goes before the first section"
    items = re.findall(r"^- ", md[boxes[0]], re.M)
    assert 3 <= len(items) <= 5, f"{_id(path)}: a 'hold in mind' box holds 3 to 5 items, not {len(items)}"


def test_self_check_before_the_exercises(nb):
    path, nb = nb
    cells = nb.cells
    checks = [i for i, c in enumerate(cells) if c.cell_type == "code" and "self_check(" in c.source]
    assert checks, f"{_id(path)} has no self-check questions (wmbook.view.selfcheck.self_check)"
    exercises = next(i for i, c in enumerate(cells) if c.cell_type == "markdown" and "## Exercises" in c.source)
    assert all(i < exercises for i in checks)
    for i in checks:
        c = cells[i]
        assert "remove-input" in c.metadata.get("tags", []), "hide the questions' code (tag remove-input)"
        html = [o for o in c.outputs if "text/html" in o.get("data", {})]
        assert html, "the self-check cell must be executed (its widget is its output)"
        n = len(re.findall(r'"prompt":', html[0]["data"]["text/html"]))
        assert 3 <= n <= 5, f"{_id(path)}: 3 to 5 self-check questions, not {n}"


def test_pages_link_glossary_terms_that_exist(nb):
    path, nb = nb
    text = "\n\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    used = linked_terms(text)
    assert len(used) >= MIN_TERMS, (
        f"{_id(path)} links {len(used)} glossary terms; run `python tools/reader_aids.py link {_id(path)}`")
    assert used <= KNOWN, f"{_id(path)} links terms that are not in glossary.md: {sorted(used - KNOWN)}"


def test_linking_skips_code_math_headings_and_links():
    cells = [nbformat.v4.new_markdown_cell(s) for s in (
        "## Attention\n\n`attention` and $attention$ and [attention](x.md) here.",
        "Attention heads read the KV cache; attention again.",
    )]
    entries = [["attention", "注意力"], ["attention head", "注意力头"], ["KV cache", "键值缓存"]]
    assert link_terms(cells, entries) == 3
    assert cells[0].source.startswith("## Attention\n\n`attention` and $attention$ and [attention](x.md)")
    assert cells[1].source == ("{term}`Attention heads <attention head>` read the {term}`KV cache`; "
                               "{term}`attention` again.")
    assert link_terms(cells, entries) == 0  # already linked: nothing more


def test_a_heading_protects_only_its_own_line():
    cells = [nbformat.v4.new_markdown_cell("## About the KV cache\n\nThe KV cache grows.\n\n| KV cache | x |\n|---|---|")]
    assert link_terms(cells, [["KV cache", "键值缓存"]]) == 1
    assert cells[0].source == "## About the KV cache\n\nThe {term}`KV cache` grows.\n\n| KV cache | x |\n|---|---|"
