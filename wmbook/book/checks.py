r"""Checking a re-run page against its stored outputs, number by number, with tolerances.

A page's stored outputs are what the book shows. When the tests re-run it (nbval), the
numbers must come back — but not to the last digit: another CPU, thread count or
summation order changes the 7th significant digit of a float. So outputs are compared
as text in which every number may differ by a tolerance:

.. math::

    |x_\text{new} - x_\text{stored}| \le \text{atol} + \text{rtol}\,|x_\text{stored}|,

and everything that is not a number must be equal. Integers (no ``.`` or exponent)
must be equal unless a tolerance is declared.

* **Glued numbers** (every number the prose quotes) are checked in every cell. The
  tolerance is the one declared in :func:`wmbook.glue` (``rtol``/``atol``, or ``within``
  bounds for timings and memory), else :func:`default_tolerance`: one unit of the last
  digit the prose shows (``{glue:text}`name:.2f``` allows 0.01).
* **Cells marked** ``# NBVAL_CHECK_OUTPUT`` compare all their text outputs with
  ``rtol=1e-5, atol=1e-8``, or what a ``# tolerance: rtol=..., atol=...`` line sets.

Used by the repository's ``conftest.py`` (which hooks this into nbval); described in the
README's "Writing a page".
"""
from __future__ import annotations

import math
import re
from typing import Any, Iterable

from wmbook.book.notebook import CHECK_KEY, GLUE_PREFIX

NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?![\w.])|\bnan\b|\binf\b")
TEXT_RTOL, TEXT_ATOL = 1e-5, 1e-8
GLUE_ROLE = re.compile(r"\{glue(?::\w+)?\}`([A-Za-z_]\w*)(?::([^`]*))?`")
TOLERANCE_LINE = re.compile(r"^\s*#\s*tolerance:\s*(.+)$", re.MULTILINE)


def _split(text: str) -> tuple[list[str], list[str]]:
    """Text -> (the parts between numbers, the numbers)."""
    return NUMBER.split(text), NUMBER.findall(text)


def _is_int(token: str) -> bool:
    return re.fullmatch(r"[-+]?\d+", token) is not None


def compare_text(stored: str, new: str, rtol: float = TEXT_RTOL, atol: float = TEXT_ATOL,
                 within: Iterable[float] | None = None, exact_ints: bool = True) -> str | None:
    """``None`` if ``new`` reproduces ``stored`` within the tolerance, else what differs."""
    s_rest, s_nums = _split(stored)
    n_rest, n_nums = _split(new)
    if s_rest != n_rest or len(s_nums) != len(n_nums):
        return f"text differs: stored {stored[:300]!r}, new {new[:300]!r}"
    for s, n in zip(s_nums, n_nums):
        a, b = float(s), float(n)
        if within is not None:
            lo, hi = within
            if not lo <= b <= hi:
                return f"{n} is outside its bounds [{lo:g}, {hi:g}] (stored {s})"
            continue
        if math.isnan(a) or math.isnan(b):
            if not (math.isnan(a) and math.isnan(b)):
                return f"{n} differs from stored {s}"
            continue
        if exact_ints and _is_int(s) and _is_int(n):
            if a != b:
                return f"{n} differs from stored {s} (integers must be equal)"
            continue
        if not abs(b - a) <= atol + rtol * abs(a):
            return f"{n} differs from stored {s} by {abs(b - a):.3g} (allowed {atol:g} + {rtol:g} × |stored|)"
    return None


def prose_formats(markdown: str) -> dict[str, list[str]]:
    """The format specs the prose shows each glued name with: ``{"acc": [".1f"], ...}``."""
    found: dict[str, list[str]] = {}
    for name, spec in GLUE_ROLE.findall(markdown):
        found.setdefault(name, []).append(spec)
    return found


def default_tolerance(formats: Iterable[str]) -> dict[str, float]:
    """One unit of the last digit shown: ``.2f`` -> atol 0.01, ``.1e`` -> rtol 0.1, ``.0%`` -> atol 0.01.

    Integers stay exact (``d``, ``,d`` or no format). A number the prose does not
    show, or shows in full, gets ``rtol=1e-5``; several formats -> the tightest.
    """
    rtol, atol = TEXT_RTOL, TEXT_ATOL
    shown = []
    for spec in formats:
        m = re.search(r"\.(\d+)([fFeE%])", spec or "")
        if not m:
            continue
        digits, kind = int(m.group(1)), m.group(2)
        if kind in "fF":
            shown.append(("atol", 10.0 ** -digits))
        elif kind == "%":
            shown.append(("atol", 10.0 ** -(digits + 2)))
        else:
            shown.append(("rtol", 10.0 ** -digits))
    if len(shown) < len([f for f in formats]) or not shown:
        return {"rtol": rtol, "atol": atol}  # some occurrence shows the full number
    atols = [v for k, v in shown if k == "atol"]
    rtols = [v for k, v in shown if k == "rtol"]
    return {"rtol": min(rtols) if rtols else 0.0, "atol": min(atols) if atols else 0.0}


def glued(outputs: list[dict]) -> list[tuple[str, str, dict]]:
    """``(name, text/plain, check)`` of every glued value among a cell's outputs, in order."""
    found = []
    for out in outputs:
        meta = out.get("metadata", {}) or {}
        if out.get("output_type") != "display_data" or "scrapbook" not in meta:
            continue
        data = out.get("data", {})
        text = data.get(GLUE_PREFIX + "text/plain", data.get("text/plain", ""))
        found.append((meta["scrapbook"]["name"], "".join(text) if isinstance(text, list) else text,
                      dict(meta.get(CHECK_KEY, {}))))
    return found


def compare_glued(stored: list[dict], new: list[dict], formats: dict[str, list[str]]) -> list[str]:
    """Every glued value of ``stored`` must be glued again in ``new``, within its tolerance."""
    problems = []
    new_by_name: dict[str, list[str]] = {}
    for name, text, _ in glued(new):
        new_by_name.setdefault(name, []).append(text)
    for name, text, check in glued(stored):
        if not new_by_name.get(name):
            problems.append(f"glued value {name!r} was not glued again")
            continue
        again = new_by_name[name].pop(0)
        explicit = "rtol" in check or "atol" in check
        tol = ({"rtol": check.get("rtol", 0.0), "atol": check.get("atol", 0.0)} if explicit
               else default_tolerance(formats.get(name, [])))
        why = compare_text(text, again, within=check.get("within"), exact_ints=not explicit, **tol)
        if why:
            problems.append(f"glued value {name!r}: {why}")
    return problems


def cell_tolerance(source: str) -> dict[str, float]:
    """``# tolerance: rtol=1e-3, atol=1e-6`` in a cell -> ``{"rtol": 1e-3, "atol": 1e-6}``."""
    tol = {"rtol": TEXT_RTOL, "atol": TEXT_ATOL}
    for line in TOLERANCE_LINE.findall(source):
        for key, value in re.findall(r"(rtol|atol)\s*=\s*([-+0-9.eE]+)", line):
            tol[key] = float(value)
    return tol


def _texts(outputs: list[dict]) -> list[str]:
    """The text of a cell's outputs other than glued values and images, in order."""
    texts = []
    for out in outputs:
        if "scrapbook" in (out.get("metadata", {}) or {}):
            continue
        if out.get("output_type") == "stream":
            texts.append(out.get("name", "") + ": " + "".join(out.get("text", "")))
        for mime, value in sorted(out.get("data", {}).items()):
            if not mime.startswith("image/"):
                texts.append(mime + ": " + (value if isinstance(value, str) else "".join(value)
                                            if isinstance(value, list) else repr(value)))
    return texts


def compare_cell(stored: list[dict], new: list[dict], source: str) -> list[str]:
    """A ``# NBVAL_CHECK_OUTPUT`` cell: all text outputs, number by number (streams merged)."""
    tol = cell_tolerance(source)
    s, n = "\n".join(_texts(_merge_streams(stored))), "\n".join(_texts(_merge_streams(new)))
    why = compare_text(s, n, **tol)
    return [why] if why else []


def _merge_streams(outputs: list[dict]) -> list[dict]:
    merged: list[dict] = []
    for out in outputs:
        if out.get("output_type") == "stream" and merged and merged[-1].get("output_type") == "stream" \
                and merged[-1].get("name") == out.get("name"):
            merged[-1] = {**merged[-1], "text": "".join(merged[-1]["text"]) + "".join(out["text"])}
        else:
            merged.append(dict(out))
    return merged


