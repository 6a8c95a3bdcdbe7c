"""The HTML book: it builds with warnings as errors and has what a reader needs.

Builds into a temporary folder (the working tree's _build is left alone), then
checks the landing page and every page in the table of contents; a headless
Chromium (if installed) confirms that MathJax renders offline.
"""
import os
import re
import shutil
import subprocess

import pytest
import yaml

from tools.book import ROOT, toc_notebooks

pytestmark = pytest.mark.slow
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


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


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")
def test_math_renders_offline_in_a_browser(html, tmp_path):
    nb = toc_notebooks()[0]
    url = (html / nb.relative_to(ROOT).with_suffix(".html")).as_uri()
    cmd = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
           "--virtual-time-budget=20000", "--dump-dom", url]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    assert dom.count("<mjx-container") >= 5, "MathJax did not typeset the formulas"
    shots = os.environ.get("WMBOOK_SCREENSHOT_DIR")
    if shots:
        os.makedirs(shots, exist_ok=True)
        subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile2'}",
                        "--virtual-time-budget=20000", "--window-size=1300,2400",
                        f"--screenshot={os.path.join(shots, nb.stem + '.png')}", url],
                       capture_output=True, timeout=120)
