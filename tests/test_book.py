"""The HTML book: it builds with warnings as errors and has what a reader needs.

Builds into a temporary folder (the working tree's _build is left alone), then
checks the landing page and every page in the table of contents. What a browser
makes of the pages (no console errors, MathJax offline) is in test_book_browser.py.
"""
import re

import pytest
import yaml

from tools.book import ROOT, toc_notebooks

pytestmark = pytest.mark.slow
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))


# The `html` fixture (the book, built once per session) lives in tests/conftest.py.


def _page(html, path):
    rel = path.relative_to(ROOT).with_suffix(".html")
    return (html / rel).read_text(encoding="utf-8")


def test_landing_page(html):
    index = (html / "intro.html").read_text(encoding="utf-8")
    assert "LLMs and Working Memory" in index
    for nb in toc_notebooks():
        assert nb.relative_to(ROOT).with_suffix(".html").as_posix() in index, f"landing page does not link {nb.name}"
    assert (html / "index.html").exists()


@pytest.mark.parametrize("nb", toc_notebooks(), ids=lambda p: p.stem)
def test_page_has_math_figures_solutions_and_colab(html, nb):
    page = _page(html, nb)
    rel = nb.relative_to(ROOT).as_posix()
    url = CONFIG["repository"]["url"].removeprefix("https://github.com/").rstrip("/")
    colab = f"https://colab.research.google.com/github/{url}/blob/{CONFIG['repository']['branch']}/{rel}"
    assert colab in page, "no Colab launch link to the notebook on the configured branch"
    assert CONFIG["repository"]["branch"] == "main"
    assert 'class="math notranslate nohighlight"' in page, "no display math"
    assert "_static/mathjax/tex-chtml.js" in page, "MathJax must be served locally (offline readers)"
    images = re.findall(r'<img[^>]+src="([^"]+\.png)"', page)
    assert images, "no figures"
    for src in images:
        assert (html / nb.relative_to(ROOT).parent / src).resolve().exists(), src
    assert page.count("tag_hide-cell") >= 1, "exercise solutions must be hidden behind a toggle"
    assert "find_spec" not in page, "the install cell must not be shown"
    assert "{glue" not in page and "pasted-text" in page, "glued numbers must be substituted"
