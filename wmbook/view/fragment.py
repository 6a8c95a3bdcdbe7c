"""Self-contained HTML fragments: the way every interactive view of the book reaches the reader.

A fragment is one ``<div>`` with its CSS inline and one ``<script>`` with its JavaScript inline,
nothing fetched. Jupyter, VS Code and Colab show it as a cell's HTML output; Jupyter Book copies
that output verbatim into the page, so it works in the built book, offline and from ``file://``;
``.save(path)`` writes a complete page. The attention explorer (page 2.1), the reader's tasks
(chapter 1) and the self-check questions (every page) are built this way.

Assets (CSS, JS) are package data read with :func:`asset`, which refuses text that could end the
surrounding ``<style>``/``<script>`` early; data goes into the script through
:func:`json_for_script`, which escapes everything that could.
"""
from __future__ import annotations

import html as _html
import json
import secrets
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any


@lru_cache(maxsize=None)
def asset(folder: str, name: str, placeholder: str | None = None) -> str:
    """The text of ``wmbook/view/<folder>/<name>``, checked safe to inline.

    With ``placeholder``, the asset must contain it exactly once (where the caller's
    arguments go).
    """
    try:
        text = resources.files(__package__).joinpath(folder, name).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(
            f"wmbook/view/{folder}/{name} is missing from this installation of wmbook; the package "
            "data was left out when it was built. Reinstall from a checkout (pip install -e .) or a "
            f"wheel whose pyproject.toml lists {folder}/* under [tool.setuptools.package-data]."
        ) from None
    if "</script" in text.lower() or "</style" in text.lower() or "<!--" in text:
        raise RuntimeError(f"{folder}/{name} must not contain '</script', '</style' or '<!--'")
    if placeholder is not None and text.count(placeholder) != 1:
        raise RuntimeError(f"{folder}/{name} must contain {placeholder} exactly once")
    return text


def json_for_script(obj: Any) -> str:
    """JSON that is safe inside ``<script>``: no ``<``, ``>``, ``&`` or line separators."""
    text = json.dumps(obj, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(ch, esc)
    return text  # ensure_ascii already escaped U+2028 / U+2029


def escape(s: str) -> str:
    """HTML-escaped text, ASCII only (the fragment must not depend on the page's charset)."""
    return _html.escape(s, quote=True).encode("ascii", "xmlcharrefreplace").decode("ascii")


def new_uid(prefix: str) -> str:
    """A fresh element id, so that two fragments on one page never share ids or styles."""
    return f"{prefix}-{secrets.token_hex(6)}"


class Fragment:
    """An HTML fragment ready to show: ``.html`` is the fragment, ``.save(path)`` a page."""

    def __init__(self, html: str, uid: str, summary: str, title: str) -> None:
        self.html = html
        self.uid = uid
        self.summary = summary
        self.title = title

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.uid}: {self.summary}>"

    def save(self, path: str | Path) -> Path:
        """Write a complete HTML page holding this fragment (opens offline, from ``file://``)."""
        path = Path(path)
        path.write_text(page_html(self, title=self.title), encoding="utf-8")
        return path


def page_html(*fragments: Fragment, title: str = "wmbook") -> str:
    """A complete HTML document holding one or more fragments (each keeps its own ids and styles)."""
    if not fragments:
        raise ValueError("page_html needs at least one fragment")
    body = "\n".join(f.html for f in fragments)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        "<meta name=\"color-scheme\" content=\"light dark\">\n"
        f"<title>{escape(title)}</title>\n"
        "<style>body{margin:1.5rem auto;max-width:1180px;padding:0 1rem;"
        "font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}</style>\n"
        f"</head>\n<body>\n{body}\n</body>\n</html>\n"
    )
