"""What the book is made of: the outline, the table of contents and its notebooks.

Used by ``tools/execute.py`` and the tests.
"""
from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def outline() -> list[dict]:
    """The guide's numbered headings: ``[{id, zh, en}, ...]`` (``chapters/outline.yml``)."""
    return yaml.safe_load((ROOT / "chapters" / "outline.yml").read_text(encoding="utf-8"))


def _walk(entries):
    for entry in entries or []:
        if "file" in entry:
            yield entry["file"]
        yield from _walk(entry.get("sections"))
        yield from _walk(entry.get("chapters"))


def toc_files() -> list[str]:
    """Every document in ``_toc.yml`` (without suffix), the root first."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    return [toc["root"], *_walk(toc.get("chapters")), *_walk(toc.get("parts"))]


def resolve(doc: str) -> Path:
    for suffix in (".ipynb", ".md"):
        path = ROOT / f"{doc}{suffix}"
        if path.exists():
            return path
    raise FileNotFoundError(f"_toc.yml lists {doc!r} but neither {doc}.ipynb nor {doc}.md exists")


def toc_notebooks(existing_only: bool = False) -> list[Path]:
    """The notebooks the book is made of, in reading order.

    ``existing_only=True`` skips entries whose file is missing (the tests use it
    to collect pages, and report missing files in a test of their own).
    """
    paths = []
    for doc in toc_files():
        try:
            path = resolve(doc)
        except FileNotFoundError:
            if existing_only:
                continue
            raise
        if path.suffix == ".ipynb":
            paths.append(path)
    return paths
