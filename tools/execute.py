"""Re-execute the book's notebooks in place and stamp them.

    python tools/execute.py                 # every notebook listed in _toc.yml
    python tools/execute.py chapters/04/4_1_attention.ipynb

Each notebook runs top to bottom in a fresh kernel, from its own folder, with a
time limit per cell. Its metadata records the ``wmbook`` code stamp and the
stamp of its own code cells (the tests flag stored outputs that are stale), and
how long the run took.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.book import toc_notebooks  # noqa: E402
from wmbook.book.notebook import cells_stamp, code_stamp  # noqa: E402

# Run after the notebook, then removed: which wmbook modules did the page import?
_PROBE = "import wmbook.book.notebook as _n; print('WMBOOK_MODULES=' + ','.join(_n.loaded_modules()))"


def execute(path: Path, timeout: int = 600) -> float:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    nb.cells.append(nbformat.v4.new_code_cell(_PROBE))
    t0 = time.perf_counter()
    try:
        client.execute()
    finally:
        probe = nb.cells.pop()
    seconds = time.perf_counter() - t0
    # A stored widget state makes the HTML book load the widget manager from a CDN; the book
    # works offline, and a live widget needs a kernel anyway: keep the outputs, drop the state.
    nb.metadata.pop("widgets", None)
    text = "".join(o.get("text", "") for o in probe.outputs)
    modules = text.split("WMBOOK_MODULES=", 1)[1].strip().split(",")
    nb.metadata["wmbook"] = {
        "modules": modules,
        "code_stamp": code_stamp(ROOT / "wmbook", modules),
        "cells_stamp": cells_stamp(nb),
        "seconds": round(seconds, 1),
    }
    nbformat.write(nb, path)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    args = parser.parse_args()
    paths = args.notebooks or toc_notebooks()
    for path in paths:
        path = path.resolve()
        print(f"executing {path.relative_to(ROOT)} ...", flush=True)
        seconds = execute(path)
        print(f"  done in {seconds:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
