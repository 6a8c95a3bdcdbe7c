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


def _files(root: Path, modules: Iterable[str] | None) -> Iterable[Path]:
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.suffix not in _STAMPED_SUFFIXES or "__pycache__" in path.parts:
            continue
        rel = path.relative_to(root)
        # a module's data files live in "<module>_assets/"; they belong to that module
        owner = rel.parts[0][: -len("_assets")] if rel.parts[0].endswith("_assets") else rel.with_suffix("").as_posix()
        if modules is None or owner.replace("/", ".") in modules or rel.name == "__init__.py":
            yield path


def loaded_modules() -> list[str]:
    """The ``wmbook`` submodules imported in this process, e.g. ``["attention", "plot"]``."""
    import sys

    return sorted(name.split(".", 1)[1] for name in sys.modules if name.startswith("wmbook."))


def code_stamp(root: str | Path | None = None, modules: Iterable[str] | None = None) -> str:
    """A short sha256 of ``wmbook``'s source files (line endings normalised).

    With ``modules`` (names as :func:`loaded_modules` returns them) only those
    modules, their ``<module>_assets`` folders and the ``__init__`` files count:
    a page is stale when code it imported changed, not when any code did.
    """
    root = Path(root) if root is not None else _PACKAGE
    modules = None if modules is None else set(modules)
    h = hashlib.sha256()
    for path in _files(root, modules):
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


def print_table(rows: list[dict], columns: dict[str, tuple[str, str]]) -> None:
    """Print ``rows`` (dicts) as an aligned text table.

    ``columns`` maps a key to ``(header, format spec)``, e.g.
    ``{"n": ("n", "d"), "t": ("time (ms)", ".1f")}``. A missing value prints as ``–``.
    """
    if not rows:
        raise ValueError("print_table needs at least one row")
    cells = [[format(r[k], spec) if r.get(k) is not None else "–" for k, (_, spec) in columns.items()] for r in rows]
    headers = [h for h, _ in columns.values()]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]
    print("  ".join(h.rjust(w) for h, w in zip(headers, widths)))
    for row in cells:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths)))
