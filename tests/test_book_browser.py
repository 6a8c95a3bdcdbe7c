"""The built book in a real (headless) browser, offline.

Builds the book once (the session's ``html`` fixture, tests/conftest.py) and opens its
pages from ``file://`` in headless Chromium (tests/browser.py) with the network switched
off. Every page opens without a console error or an uncaught exception, as a first visit
(empty storage); MathJax typesets offline; and on page 2.1 the attention explorer works as
a reader would use it: every view comes alive and draws; hovering and clicking a token
change the highlighted weights; choosing another head or layer changes the picture; no view
adds markup or scripts of its own (tokens that are HTML/JavaScript are tested in test_explorer.py). Screenshots go to
``_build/screenshots/`` (or ``$WMBOOK_SCREENSHOT_DIR``).

A console error or uncaught exception on any page a test opens fails that test (the
``with Browser()`` block checks when it ends); nothing is allowed or ignored.
"""
from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest

from tools.book import ROOT, toc_files, toc_notebooks

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser import Browser  # noqa: E402

pytestmark = pytest.mark.slow

PAGE = "chapters/02/2_1_attention.html"
# Resolves once MathJax has typeset the page (at once on a page without MathJax).
MATHJAX_DONE = "window.MathJax && MathJax.startup ? MathJax.startup.promise.then(() => true) : true"

CANVAS = """(function (root, cls) {
  var c = root.querySelector(cls), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  var h = 0, n = 0;
  for (var i = 0; i < d.length; i += 4) {
    h = (h * 31 + d[i] + 7 * d[i + 1] + 13 * d[i + 2] + 17 * d[i + 3]) | 0; if (d[i + 3]) n++;
  }
  return [h, n];
})(document.getElementById(%s), %s)"""


def screenshot_dir() -> Path:
    path = Path(os.environ.get("WMBOOK_SCREENSHOT_DIR") or ROOT / "_build" / "screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def built_pages(html: Path) -> list[Path]:
    """Every HTML page of the built book (not the theme's assets or the page sources)."""
    return sorted(p for p in html.rglob("*.html") if not {"_static", "_sources"} & set(p.relative_to(html).parts))


def test_every_page_opens_without_errors(html):
    pages = built_pages(html)
    missing = [doc for doc in toc_files() if html / f"{doc}.html" not in pages]
    assert not missing, f"pages of _toc.yml that were not built: {missing}"
    with Browser() as browser:  # leaving the block fails on any page's console error or uncaught exception
        for path in pages:
            page = browser.new_page(offline=True)  # a context of its own: a first visit, nothing stored
            page.goto(path.as_uri())
            page.eval(MATHJAX_DONE)
            page.close()


def test_math_renders_offline(html):
    nb = toc_notebooks()[0]
    with Browser() as browser:
        page = browser.new_page(width=1300, height=2400, offline=True)
        page.goto((html / nb.relative_to(ROOT).with_suffix(".html")).as_uri())
        page.eval(MATHJAX_DONE)
        assert page.eval("document.querySelectorAll('mjx-container').length") >= 5, "MathJax did not typeset"
        page.screenshot(screenshot_dir() / f"{nb.stem}.png", full_page=False)


def test_explorer_views_work_in_the_built_book(html):
    page_file = html / PAGE
    assert page_file.exists(), f"{PAGE} was not built"
    with Browser() as browser:
        page = browser.new_page(width=1280, height=1000, offline=True)
        page.goto(page_file.as_uri())
        n_views = page.eval("document.querySelectorAll('.wmb-attn').length")
        assert n_views >= 6, f"expected the explorer views of page 2.1, found {n_views}"
        page.wait_for(f"document.querySelectorAll('.wmb-attn[data-wmb-ready]').length === {n_views}"
                      f" && document.querySelectorAll('.wmb-attn .wmb-readout').length === {n_views}",
                      timeout=20)
        views = page.eval("Array.from(document.querySelectorAll('.wmb-attn')).map(e => "
                          "[e.id, (e.querySelector('.wmb-title') || {}).textContent || ''])")
        by_title = {title: uid for uid, title in views}

        def uid_of(prefix: str) -> str:
            hits = [uid for title, uid in by_title.items() if title.startswith(prefix)]
            assert hits, f"no view titled {prefix!r}; titles: {list(by_title)}"
            return hits[0]

        def heat(uid: str, cls: str = ".wmb-heat") -> tuple[int, int]:
            return tuple(page.eval(CANVAS % (json.dumps(uid), json.dumps(cls))))

        def attr(uid: str, name: str) -> str:
            return page.eval(f"document.getElementById({json.dumps(uid)}).getAttribute({json.dumps(name)})")

        def away() -> None:
            page.mouse_move(2, 2)

        # 1. every view rendered: a heatmap with pixels, token lines drawn, no fallback text left
        for uid, title in views:
            assert heat(uid)[1] > 1000, f"view {title!r} drew an empty heatmap"
            assert page.eval(f"document.querySelectorAll('#{uid} .wmb-fallback').length") == 0

        # 2. hover a query token: its row is highlighted and the heatmap changes; moving away restores it
        prev = uid_of("previous-token head")
        layer, head = map(int, re.search(r"layer (\d+), head (\d+)", [t for u, t in views if u == prev][0]).groups())
        assert attr(prev, "data-wmb-head") == f"{layer}:{head}"  # opened on the head the page found
        away()
        before = heat(prev)
        page.mouse_move(*page.center(f"#{prev} .wmb-q .wmb-tok[data-i='3']"))
        assert attr(prev, "data-wmb-sel") == "q3"
        shaded = page.eval(f"Array.from(document.querySelectorAll('#{prev} .wmb-k .wmb-tok'))"
                           ".filter(e => e.style.backgroundColor).length")
        assert shaded > 0, "hovering a token must shade the keys it reads"
        assert heat(prev) != before
        readout = page.eval(f"document.querySelector('#{prev} .wmb-readout').textContent")
        assert readout.startswith("query '"), readout
        away()
        assert attr(prev, "data-wmb-sel") == "" and heat(prev) == before
        # a click pins the token: it stays selected when the mouse leaves
        page.click(*page.center(f"#{prev} .wmb-q .wmb-tok[data-i='3']"))
        away()
        assert attr(prev, "data-wmb-sel") == "q3"
        # a screenshot of the view with the pinned token, for people to look at
        page.eval(f"window.scrollBy(0, document.getElementById({json.dumps(prev)})"
                  ".getBoundingClientRect().top - 60)")
        shot = page.screenshot(screenshot_dir() / "book_2_1_explorer.png", full_page=False)
        assert shot.stat().st_size > 10_000
        page.click(*page.center(f"#{prev} .wmb-q .wmb-tok[data-i='3']"))
        away()
        assert attr(prev, "data-wmb-sel") == ""

        # 3. switching head and layer changes the picture
        def choose(uid: str, control: str, value: int) -> None:
            page.eval(f"(e => {{ e.value = {json.dumps(str(value))}; e.dispatchEvent(new Event('change')); }})"
                      f"(document.getElementById({json.dumps(uid + '-' + control)}))")

        h0 = heat(prev)
        choose(prev, "head", (head + 1) % 12)
        assert attr(prev, "data-wmb-head") == f"{layer}:{(head + 1) % 12}" and heat(prev) != h0
        h1 = heat(prev)
        choose(prev, "layer", (layer + 1) % 6)
        assert attr(prev, "data-wmb-head") == f"{(layer + 1) % 6}:{(head + 1) % 12}" and heat(prev) != h1

        # 4. no view turned text into markup or scripts (tokens that are HTML are tested in test_explorer.py)
        for uid, _ in views:
            assert page.eval(f"document.querySelectorAll('#{uid} img, #{uid} script').length") == 0
        assert not page.eval("Array.from(document.scripts).some(s => s.textContent.trim() === 'alert(1)')")

        # 5. nothing ran that should not have, nothing asked the network (errors: checked on leaving the block)
        assert page.dialogs() == [], f"a dialog opened: {page.dialogs()}"
        external = [u for u in page.requests() if not u.startswith(("file:", "data:"))]
        assert external == [], f"the page asked the network for {external}"


def test_glossary_terms_show_their_definition_on_hover_and_tap(html):
    """A term on the landing page: hover shows English, Chinese and the definition; a first tap shows
    it without leaving the page, a second tap opens the glossary."""
    from browser import tap

    intro = (html / "intro.html").as_uri()
    link = "a.wmbook-gloss-link[href$='#term-working-memory']"
    with Browser() as browser:
        page = browser.new_page(width=1100, height=800, offline=True)
        page.goto(intro)
        page.wait_for("document.documentElement.hasAttribute('data-wmbook-glossary-links')")
        assert int(page.eval("document.documentElement.getAttribute('data-wmbook-glossary-links')")) >= 1
        assert page.eval("document.getElementById('wmbook-gloss-tip').hidden") is True
        page.mouse_move(*page.center(link))
        assert page.eval("document.getElementById('wmbook-gloss-tip').hidden") is False
        terms = page.eval("document.querySelector('#wmbook-gloss-tip .wmbook-gloss-terms').textContent")
        assert terms == "working memory · 工作记忆"
        definition = page.eval("document.querySelector('#wmbook-gloss-tip .wmbook-gloss-def').textContent")
        assert definition.startswith("The small store that holds")
        page.screenshot(screenshot_dir() / "glossary_hover.png", full_page=False)
        page.mouse_move(2, 2)
        assert page.eval("document.getElementById('wmbook-gloss-tip').hidden") is True
        page.close()

        page = browser.new_page(width=400, height=800, offline=True)  # a phone
        page.goto(intro)
        page.wait_for("document.documentElement.hasAttribute('data-wmbook-glossary-links')")
        tap(page, *page.center(link))
        assert page.eval("document.getElementById('wmbook-gloss-tip').hidden") is False
        assert page.eval("location.pathname").endswith("/intro.html")  # the first tap stays
        page.screenshot(screenshot_dir() / "glossary_tap.png", full_page=False)
        tap(page, *page.center(link))
        page.wait_for("location.pathname.endsWith('/glossary.html')")
        assert page.eval("location.hash") == "#term-working-memory"


def test_self_check_in_the_built_book(html):
    """Page 4.1's self-check: typeset math, feedback on a click, the answer kept in localStorage."""
    page_file = html / "chapters" / "04" / "4_1_attention.html"
    with Browser() as browser:
        page = browser.new_page(width=1100, height=900, offline=True)
        page.goto(page_file.as_uri())
        page.eval(MATHJAX_DONE)
        page.wait_for("document.querySelector('.wmb-sc[data-wmb-ready]') !== null")
        root = "document.querySelector('.wmb-sc')"
        assert page.eval(f"{root}.querySelectorAll('.wmb-sc-q').length") >= 3
        page.wait_for(f"{root}.querySelectorAll('mjx-container').length > 0")  # the questions' math is typeset
        page.click(*page.center(".wmb-sc .wmb-sc-q .wmb-sc-opt[data-correct='1']"))
        feedback = page.eval(f"{root}.querySelector('.wmb-sc-feedback').textContent")
        assert feedback.startswith("Right.")
        stored = json.loads(page.eval("localStorage.getItem('wmbook-selfcheck')"))
        assert list(stored) == ["4.1"] and list(stored["4.1"].values()) == ["right"]
        page.screenshot(screenshot_dir() / "self_check_4_1.png", full_page=False)
