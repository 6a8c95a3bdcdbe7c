"""Helpers for the book's notebooks: gluing numbers into the prose, showing code, tables.

* :func:`glue` stores a value so the text can show it (``{glue:text}`name```)
  — the same output MyST-NB's ``myst_nb.glue`` produces, without needing
  MyST-NB installed (Colab does not have it) — together with the tolerance within
  which a re-run must reproduce it (checked by the test suite, see :mod:`wmbook.book.checks`).
* :func:`show_source` shows the code that runs; :func:`print_table` prints rows.
"""
from __future__ import annotations

from typing import Any

GLUE_PREFIX = "application/papermill.record/"
CHECK_KEY = "wmbook_check"
# A glued float is stored to this many significant digits: float32 work is good to about 7, and
# the digits beyond vary with the CPU; the prose shows at most as many.
STORED_DIGITS = 6
# A float checked only against bounds (``within=``: timings, memory, rounding noise) is a measurement
# of this machine, not a result a re-run reproduces: it is stored to this many significant digits,
# never dropping digits before the decimal point (the prose shows timings to two).
BOUND_DIGITS = 3


def stored_value(value: Any, bounded: bool = False) -> Any:
    """What glue records: a float (Python or NumPy) to ``STORED_DIGITS`` significant digits, or to
    ``BOUND_DIGITS`` when ``bounded`` (checked only as a bound), anything else as it is. Whole numbers
    and non-finite floats are kept exactly."""
    import math
    import numbers

    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        v = float(value)
        if math.isfinite(v) and not v.is_integer():
            digits = STORED_DIGITS
            if bounded:
                digits = max(BOUND_DIGITS, math.floor(math.log10(abs(v))) + 1)
            return float(f"{v:.{digits}g}")
        return v
    return value


def glue(name: str, value: Any, display: bool = False, *, rtol: float | None = None,
         atol: float | None = None, within: tuple[float, float] | None = None) -> None:
    """Record ``value`` under ``name`` for MyST-NB's ``{glue}`` roles, and how to re-check it.

    Mirrors ``myst_nb.glue`` (MyST-NB 1.x): the display data is stored with
    the ``scrapbook`` metadata MyST-NB reads. With ``display=False`` nothing is
    shown in a live notebook.

    A float is recorded to ``STORED_DIGITS`` significant digits (:func:`stored_value`), one checked
    only as a bound (``within=``) to ``BOUND_DIGITS``: the last digits of a float differ between
    CPUs and a reader should not see them as results.

    When the tests re-run the page, every glued number must come back within a
    tolerance: by default one unit of the last digit the prose shows (exact for
    integers), see :func:`wmbook.book.checks.default_tolerance`. Random or
    machine-dependent results declare theirs: ``rtol``/``atol`` (``|new - stored| <=
    atol + rtol * |stored|``), or ``within=(lo, hi)`` for timings and memory, which
    are checked only as bounds.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"glue name must be an identifier-like string, got {name!r}")
    check = {k: v for k, v in (("rtol", rtol), ("atol", atol)) if v is not None}
    for k, v in check.items():
        if not (isinstance(v, (int, float)) and v >= 0):
            raise ValueError(f"glue({name!r}): {k} must be a number >= 0, got {v!r}")
    if within is not None:
        lo, hi = within
        if not lo <= hi:
            raise ValueError(f"glue({name!r}): within=(lo, hi) needs lo <= hi, got {within!r}")
        check["within"] = [float(lo), float(hi)]
    from IPython.core.formatters import format_display_data
    from IPython.display import display as ipy_display

    bundle, metadata = format_display_data(stored_value(value, bounded=within is not None))
    prefix = "" if display else GLUE_PREFIX
    metadata["scrapbook"] = {"name": name, "mime_prefix": prefix}
    if check:
        metadata[CHECK_KEY] = check
    ipy_display({prefix + k: v for k, v in bundle.items()}, raw=True, metadata=metadata)


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
