"""The book's glossary tooltips: hover (or tap) a glossary term anywhere and read its definition.

A Sphinx extension (listed in ``_config.yml``). The glossary itself is an ordinary Sphinx
glossary in ``glossary.md`` (each entry names the English term, then its Chinese term, then the
definition), and pages link terms with ``{term}`attention```. At the end of a build this extension
reads the glossary's doctree and writes ``_static/wmbook-glossary-data.js``: one record per entry,
keyed by every anchor Sphinx gave its terms. ``_static/wmbook-glossary.js`` (ours, no library)
shows the record beside any link to a glossary anchor. Nothing is fetched: the data is a script
file next to the page, so the tooltips work offline and from ``file://``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

GLOSSARY_DOC = "glossary"
DATA_FILE = "wmbook-glossary-data.js"


def glossary_entries(doctree: Any) -> list[dict]:
    """The glossary's entries: ``{"terms": [...], "ids": [...], "definition": str}`` each."""
    from docutils import nodes
    from sphinx import addnodes

    entries = []
    for glossary in doctree.findall(addnodes.glossary):
        for item in glossary.findall(nodes.definition_list_item):
            terms = [t for t in item.children if isinstance(t, nodes.term)]
            definition = next((d for d in item.children if isinstance(d, nodes.definition)), None)
            if not terms or definition is None:
                continue
            entries.append({
                "terms": [t.astext() for t in terms],
                "ids": [i for t in terms for i in t["ids"]],
                "definition": " ".join(definition.astext().split()),
            })
    return entries


def data_script(entries: list[dict]) -> str:
    """The JavaScript that hands the entries to ``wmbook-glossary.js``, keyed by anchor id."""
    by_id = {}
    for e in entries:
        record = {"terms": e["terms"], "definition": e["definition"]}
        for i in e["ids"]:
            by_id[i] = record
    body = json.dumps(by_id, ensure_ascii=False, sort_keys=True).replace("</", "<\\/")
    return f"window.WMBOOK_GLOSSARY = {body};\n"


def _write_data(app: Any, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    if GLOSSARY_DOC not in app.env.all_docs:
        raise RuntimeError(f"the book has no {GLOSSARY_DOC}.md: the glossary tooltips need it")
    entries = glossary_entries(app.env.get_and_resolve_doctree(GLOSSARY_DOC, app.builder))  # citations as text
    if not entries:
        raise RuntimeError(f"{GLOSSARY_DOC}.md holds no glossary entries (a ```{{glossary}} block)")
    out = Path(app.outdir) / "_static" / DATA_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(data_script(entries), encoding="utf-8")


def setup(app: Any) -> dict:
    app.add_js_file(DATA_FILE)
    app.add_js_file("wmbook-glossary.js")
    app.connect("build-finished", _write_data)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
