"""Notebook hygiene and the book's structure: what a reader must be able to trust.

Every page listed in _toc.yml must be stored executed (top to bottom, no errors),
against the current wmbook code (stamps written by tools/execute.py), start with
the Colab install cell, carry the guide's number, title and Chinese subtitle, and
follow the page pattern.
"""
import re

import nbformat
import pytest
import yaml

from tools.book import ROOT, outline, resolve, toc_files, toc_notebooks
import os
import warnings

from wmbook.book.calibrate import BUDGET_REFERENCE_SECONDS
from wmbook.book.notebook import GLUE_PREFIX
from wmbook.book.stamps import cells_stamp, code_stamp, versions

OUTLINE = {h["id"]: h for h in outline()}
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
NOTEBOOKS = toc_notebooks(existing_only=True)  # missing files fail test_toc_lists_existing_pages...


def _id(path):
    return path.relative_to(ROOT).as_posix()


def _code(nb):
    return [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]


def _markdown(nb):
    return "\n\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def _title_id(text):
    m = re.search(r"^# (\d+(?:\.\d+)*) (.+)$", text, re.MULTILINE)
    assert m, "the page must start with a '# N.M Title' heading"
    return m.group(1), m.group(2).strip()


@pytest.fixture(params=NOTEBOOKS, ids=_id)
def nb(request):
    return request.param, nbformat.read(request.param, as_version=4)


def test_the_book_has_pages():
    assert NOTEBOOKS, "_toc.yml lists no notebook"


def test_executed_in_order_without_errors(nb):
    path, nb = nb
    counts = [c.execution_count for c in _code(nb)]
    assert None not in counts, f"{_id(path)}: some cells were never executed; run `make execute`"
    assert counts == list(range(1, len(counts) + 1)), f"{_id(path)}: not executed top to bottom in a fresh kernel"
    errors = [o for c in _code(nb) for o in c.outputs if o.output_type == "error"]
    assert not errors, f"{_id(path)}: stored errors: {[e.ename for e in errors]}"


def test_outputs_are_fresh(nb):
    path, nb = nb
    stamp = nb.metadata.get("wmbook", {})
    hint = f"{_id(path)}: stored outputs are stale; re-execute with `python tools/execute.py {_id(path)}`"
    assert "checkpoints" in stamp and "versions" in stamp, hint + " (its stamp predates checkpoints and versions)"
    assert stamp.get("code_stamp") == code_stamp(ROOT / "wmbook", stamp.get("modules", []), stamp["checkpoints"]), (
        hint + f" (wmbook modules it imports, or checkpoints and logs it loads, changed: "
        f"{stamp.get('modules')}, {stamp['checkpoints']})"
    )
    assert stamp.get("cells_stamp") == cells_stamp(nb), hint + " (its code cells changed)"


def test_runs_within_the_time_budget(nb):
    """The stored run fits the budget on the reference machine (the real run is checked by conftest.py)."""
    path, nb = nb
    stamp = nb.metadata["wmbook"]
    ref = stamp["reference_seconds"]
    assert ref <= BUDGET_REFERENCE_SECONDS, (
        f"{_id(path)} took {stamp['seconds']} s at {stamp['calibration_tokens_per_second']} tokens/s: "
        f"{ref} s on the reference machine (budget {BUDGET_REFERENCE_SECONDS:.0f} s)")


def test_outputs_were_computed_with_these_library_versions():
    """Pages executed under other versions of Python, torch, numpy or transformers are reported:
    a warning on a contributor's machine, a failure in CI (where CI is set) until re-executed."""
    here = versions()
    stale = {}
    for path in NOTEBOOKS:
        stored = nbformat.read(path, as_version=4).metadata.get("wmbook", {}).get("versions")
        if stored != here:
            stale[_id(path)] = stored
    if not stale:
        return
    message = (f"{len(stale)} page(s) were executed with other library versions than these ({here}): "
               + "; ".join(f"{k}: {v}" for k, v in stale.items()) + ". Re-execute them with `make execute`.")
    if os.environ.get("CI"):
        pytest.fail(message)
    warnings.warn(message)


def test_first_cell_installs_wmbook_for_colab(nb):
    path, nb = nb
    first = _code(nb)[0]
    url = CONFIG["repository"]["url"].rstrip("/")
    branch = CONFIG["repository"]["branch"]
    assert 'find_spec("wmbook") is None' in first.source, "the first code cell must install wmbook when missing"
    assert f"git+{url}@{branch}" in first.source, f"the install cell must install from {url}@{branch}"
    assert "remove-cell" in first.metadata.get("tags", []), "the install cell must be hidden in the HTML"


def test_no_paths_relative_to_the_repository(nb):
    path, nb = nb
    for cell in _code(nb):
        assert not re.search(r"""["']\.\.?/""", cell.source), (
            f"{_id(path)} reads a path relative to the repository; load data through wmbook instead:\n{cell.source[:200]}"
        )


def test_title_subtitle_and_sections_follow_the_outline(nb):
    path, nb = nb
    first_md = next(c.source for c in nb.cells if c.cell_type == "markdown")
    page_id, title = _title_id(first_md)
    assert page_id in OUTLINE, f"{page_id} is not a heading of the guide's outline"
    assert title == OUTLINE[page_id]["en"]
    assert f'<p class="zh-subtitle" lang="zh">{OUTLINE[page_id]["zh"]}</p>' in first_md
    text = _markdown(nb)
    sections = [h for h in OUTLINE if h.startswith(page_id + ".") and h.count(".") == page_id.count(".") + 1]
    found = re.findall(r"^## (\d+\.\d+\.\d+) (.+)$", text, re.MULTILINE)
    expected = [(s, OUTLINE[s]["en"]) for s in sections]
    if page_id.count(".") == 1 and sections:  # N.M pages hold their N.M.K sections in order
        assert [f for f in found if f[0].startswith(page_id + ".")] == expected
    for s in sections:  # each N.M.K heading carries the guide's Chinese heading right under it
        sub = f'<p class="zh-subtitle" lang="zh">{OUTLINE[s]["zh"]}</p>'
        assert re.search(rf"^## {re.escape(s)} .+\n+{re.escape(sub)}", text, re.MULTILINE), (
            f"{_id(path)}: section {s} lacks its Chinese subtitle {sub}")


def test_follows_the_page_pattern(nb):
    path, nb = nb
    text = _markdown(nb)
    for marker in ("**After this page you can**", "## Exercises", "## Summary"):
        assert marker in text, f"{_id(path)} lacks {marker!r}"
    assert text.index("## Exercises") < text.index("## Summary")
    hidden = [c for c in nb.cells if c.cell_type == "code" and {"hide-cell", "hide-input"} & set(c.metadata.get("tags", []))]
    assert hidden, "exercise solutions must be code cells tagged hide-cell (hidden behind a toggle)"
    checked = [c for c in _code(nb) if "NBVAL_CHECK_OUTPUT" in c.source]
    assert checked, "mark the cells whose output must not change"
    for c in checked:  # figures depend on the matplotlib backend: keep them out of compared cells
        kinds = {k for o in c.outputs for k in o.get("data", {})}
        assert not any(k.startswith("image/") for k in kinds), (
            f"{_id(path)}: a cell marked NBVAL_CHECK_OUTPUT draws a figure; move the figure to its own cell")


def test_every_glued_name_is_computed(nb):
    path, nb = nb
    used = set(re.findall(r"\{glue:?\w*\}`([A-Za-z_]\w*)", _markdown(nb)))
    glued = {
        o.metadata["scrapbook"]["name"]
        for c in _code(nb) for o in c.outputs
        if o.output_type == "display_data" and "scrapbook" in o.get("metadata", {})
    }
    assert used <= glued, f"{_id(path)}: the text shows {sorted(used - glued)} but no cell glues them"
    assert used, "numbers in the prose must be glued from the cells that compute them"


def test_glue_output_matches_myst_nb():
    """wmbook.glue must emit exactly what myst_nb.glue emits (MyST-NB reads it back)."""
    from myst_nb import glue as myst_glue
    from IPython.core.interactiveshell import InteractiveShell
    from wmbook import glue

    shell = InteractiveShell.instance()
    captured = []
    shell.display_pub.publish = lambda data, metadata=None, **kw: captured.append((data, metadata))
    for fn in (myst_glue, glue):
        fn("x", 1.2345, display=False)
    assert captured[0] == captured[1]
    assert GLUE_PREFIX + "text/plain" in captured[1][0]


# --- the book's structure --------------------------------------------------------------

def test_toc_lists_existing_pages_in_outline_order():
    docs = toc_files()
    assert docs[0] == "intro"
    ids = []
    for doc in docs:
        path = resolve(doc)  # raises if the file is missing
        if not doc.startswith("chapters/"):  # the landing page and the appendices
            continue
        text = path.read_text(encoding="utf-8") if path.suffix == ".md" else _markdown(nbformat.read(path, 4))
        page_id, title = _title_id(text)
        assert page_id in OUTLINE and title == OUTLINE[page_id]["en"], f"{doc}: '{page_id} {title}' is not in the outline"
        assert OUTLINE[page_id]["zh"] in text, f"{doc}: the Chinese title is missing"
        if "." not in page_id:
            assert doc == f"chapters/{int(page_id):02d}/index"
        else:
            assert doc.startswith(f"chapters/{int(page_id.split('.')[0]):02d}/")
        ids.append(page_id)
    order = list(OUTLINE)
    assert ids == sorted(ids, key=order.index), "pages must appear in the guide's order"


def test_landing_page_maps_all_chapters_and_links_existing_pages():
    intro = (ROOT / "intro.md").read_text(encoding="utf-8")
    for h in OUTLINE.values():
        if "." not in h["id"]:
            assert re.search(rf"^{h['id']}\. \*\*.*{re.escape(h['en'])}", intro, re.MULTILINE | re.IGNORECASE), h
            assert h["zh"] in intro
    for path in NOTEBOOKS:
        assert f"({path.relative_to(ROOT).as_posix()})" in intro, f"the landing page must link {path.name}"


def test_outline_is_the_guides():
    heads = list(OUTLINE)
    assert len(heads) == 110 and heads[0] == "1" and heads[-1] == "9.5"


# A percentage or a ratio in the prose is a result unless shown otherwise: it must be glued from the
# cell that computes it ({glue:text}`acc:.1f` %), or stand in a paragraph that cites its source
# ({cite:p}`...`), or be a setting the page's code uses (15 % masked <-> 0.15 in a code cell).
_RATIO = re.compile(r"(?<![\w.,])(\d+(?:[.,]\d+)*)\s?(%|×|-fold\b|\s?times\b)")


def _prose(text):
    """Markdown without code, math, roles' arguments, HTML tags and link targets."""
    for pattern, flags in ((r"```.*?```", re.S), (r":::.*?:::", 0), (r"\$\$.*?\$\$", re.S), (r"\$[^$\n]+\$", 0),
                           (r"\{[\w:-]+\}`[^`]*`", 0), (r"`[^`\n]*`", 0), (r"<[^>]+>", 0), (r"\]\([^)]*\)", 0)):
        text = re.sub(pattern, " ", text, flags=flags)
    return text


def _code_literals(nb):
    found = set()
    for c in _code(nb):
        for lit in re.findall(r"(?<![\w.])\d+(?:_\d+)*(?:\.\d+)?(?:e-?\d+)?", c.source):
            found.add(float(lit.replace("_", "")))
    return found


def unsupported_ratios(nb):
    """(number, context) of each % or × in the prose that is neither glued, cited nor a setting."""
    literals = _code_literals(nb)
    bad = []
    for c in nb.cells:
        if c.cell_type != "markdown":
            continue
        for para in re.split(r"\n\s*\n", c.source):
            if "{cite" in para:
                continue
            text = _prose(para)
            for m in _RATIO.finditer(text):
                value = float(m.group(1).replace(",", ""))
                options = {value, round(value / 100, 10)} if m.group(2) == "%" else {value}
                if options & literals:
                    continue
                bad.append((m.group(0).strip(), " ".join(text[max(0, m.start() - 70):m.end() + 30].split())))
    return bad


def test_percentages_and_ratios_in_the_prose_are_glued_cited_or_settings(nb):
    path, nb = nb
    bad = unsupported_ratios(nb)
    assert not bad, (
        f"{_id(path)}: these percentages or ratios are typed into the prose; glue them from the cell that "
        "computes them, cite their source in the same paragraph, or use the value in the code:\n"
        + "\n".join(f"  {n!r}: ...{ctx}..." for n, ctx in bad))


def test_unsupported_ratios_are_found():
    page = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("mask_rate = 0.15\nfor n in range(16): pass"),
        nbformat.v4.new_markdown_cell("We mask 15 % and the model keeps 97 % of the accuracy, 2.5× faster."),
        nbformat.v4.new_markdown_cell("DistilBERT keeps 97 % {cite:p}`sanh2019distilbert`.\n\n"
                                      "It is {glue:text}`speed:.1f`× faster on a 16 times longer text."),
    ])
    assert [n for n, _ in unsupported_ratios(page)] == ["97 %", "2.5×"]


def test_glue_records_floats_to_six_significant_digits():
    import numpy as np

    from wmbook.book.notebook import STORED_DIGITS, stored_value

    assert STORED_DIGITS == 6
    assert stored_value(0.05779232457280159) == 0.0577923
    assert stored_value(np.float32(7.152557373046875e-07)) == 7.15256e-07
    assert type(stored_value(np.float64(2.5))) is float
    assert stored_value(809856.0) == 809856.0 and stored_value(3) == 3 and stored_value(True) is True
    assert stored_value("0.123456789") == "0.123456789"


def test_glue_records_a_bound_checked_float_to_three_significant_digits():
    from wmbook.book.notebook import BOUND_DIGITS, stored_value

    assert BOUND_DIGITS == 3
    assert stored_value(6.742930412292480e-06, bounded=True) == 6.74e-06  # float32 rounding noise
    assert stored_value(0.0351562, bounded=True) == 0.0352
    assert stored_value(1234.567, bounded=True) == 1235.0  # digits before the point are kept
    assert stored_value(12, bounded=True) == 12 and stored_value(2.5, bounded=True) == 2.5


def test_stored_glued_floats_carry_no_cpu_noise(nb):
    """No page stores a glued float to more digits than glue keeps (re-execute it if one does)."""
    path, nb = nb
    from wmbook.book.notebook import STORED_DIGITS

    for c in _code(nb):
        for o in c.outputs:
            name = o.get("metadata", {}).get("scrapbook", {}).get("name")
            text = o.get("data", {}).get(GLUE_PREFIX + "text/plain")
            if name is None or text is None:
                continue
            try:
                v = float(text)
            except ValueError:
                continue
            if v == v and abs(v) != float("inf") and not v.is_integer():
                assert float(f"{v:.{STORED_DIGITS}g}") == v, f"{_id(path)}: {name} is stored as {text}"
