"""Helpers for the book's notebooks: gluing numbers into the prose, and stamps.

* :func:`glue` stores a value so the text can show it (``{glue:text}`name```)
  — the same output MyST-NB's ``myst_nb.glue`` produces, without needing
  MyST-NB installed (Colab does not have it).
* :func:`code_stamp` fingerprints ``wmbook``'s source; ``tools/execute.py``
  records it in each notebook, and the tests flag notebooks whose stored
  outputs were computed with other code.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Iterable

GLUE_PREFIX = "application/papermill.record/"
_PACKAGE = Path(__file__).resolve().parent
_STAMPED_SUFFIXES = (".py", ".js", ".css", ".json")


def glue(name: str, value: Any, display: bool = False) -> None:
    """Record ``value`` under ``name`` for MyST-NB's ``{glue}`` roles.

    Mirrors ``myst_nb.glue`` (MyST-NB 1.x): the display data is stored with
    the ``scrapbook`` metadata MyST-NB reads. With ``display=False`` nothing is
    shown in a live notebook.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"glue name must be an identifier-like string, got {name!r}")
    from IPython.core.formatters import format_display_data
    from IPython.display import display as ipy_display

    bundle, metadata = format_display_data(value)
    prefix = "" if display else GLUE_PREFIX
    metadata["scrapbook"] = {"name": name, "mime_prefix": prefix}
    ipy_display({prefix + k: v for k, v in bundle.items()}, raw=True, metadata=metadata)


def _files(root: Path) -> Iterable[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix in _STAMPED_SUFFIXES and "__pycache__" not in path.parts:
            yield path


def code_stamp(root: str | Path | None = None) -> str:
    """A short sha256 of every source file of the ``wmbook`` package (line endings normalised)."""
    root = Path(root) if root is not None else _PACKAGE
    h = hashlib.sha256()
    for path in _files(root):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(b"\0")
        h.update(path.read_bytes().replace(b"\r\n", b"\n"))
        h.update(b"\0")
    return h.hexdigest()[:16]


def cells_stamp(nb) -> str:
    """A short sha256 of a notebook's code cells' sources (so an edited cell shows as stale)."""
    h = hashlib.sha256()
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            src = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            h.update(src.strip().encode())
            h.update(b"\0")
    return h.hexdigest()[:16]


def show_source(obj, start: str | None = None, end: str | None = None):
    """Display the source of a ``wmbook`` function or class, highlighted.

    Pages call this so the code a reader sees is the code that runs. ``start``
    and ``end`` (substrings of a line) cut out an excerpt, ``end``'s line included.
    """
    import inspect

    from IPython.display import Code

    lines = inspect.getsource(obj).splitlines()
    if start is not None:
        idx = [i for i, line in enumerate(lines) if start in line]
        if not idx:
            raise ValueError(f"{start!r} does not occur in the source of {obj.__qualname__}")
        lines = lines[idx[0]:]
    if end is not None:
        idx = [i for i, line in enumerate(lines) if end in line]
        if not idx:
            raise ValueError(f"{end!r} does not occur in the source of {obj.__qualname__}")
        lines = lines[: idx[0] + 1]
    return Code("\n".join(lines), language="python")
