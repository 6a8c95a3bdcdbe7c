import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # so tests can import tools.book


@pytest.fixture(scope="session")
def html(tmp_path_factory):
    """The HTML book, built once per test session into a temporary folder (warnings are errors).

    Shared by tests/test_book.py and tests/test_book_browser.py; the working tree's
    _build is left alone.
    """
    out = tmp_path_factory.mktemp("book")
    # the README's `make book` without its install step, into a temporary folder
    cmd = ["make", "--no-print-directory", "html", f"PYTHON={sys.executable}", f"BOOK_OUT={out}"]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    warnings = [l for l in result.stdout.splitlines() + result.stderr.splitlines() if "WARNING" in l]
    assert result.returncode == 0, f"the book build failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    assert not warnings, warnings
    return out / "_build" / "html"
