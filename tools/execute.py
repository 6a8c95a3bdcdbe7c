"""Re-execute the book's notebooks in place and stamp them.

    python tools/execute.py                 # every notebook listed in _toc.yml
    python tools/execute.py chapters/04/4_1_attention.ipynb

Each notebook runs top to bottom in a fresh kernel, from its own folder, with a
time limit per cell. Its metadata records the stamps of :mod:`wmbook.book.stamps`
(the code, checkpoints and logs the page used, its code cells, the library versions),
how long the run took, and that time on the reference machine (:mod:`wmbook.book.calibrate`).
The kernel must import this checkout's ``wmbook``, or the run stops.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.book import toc_notebooks  # noqa: E402
from wmbook.book import calibrate  # noqa: E402
from wmbook.book.stamps import cells_stamp, check_wmbook_location, code_stamp  # noqa: E402

# Run after the notebook, then removed: which wmbook did the page import, which modules, which versions?
_PROBE = "import json, wmbook.book.stamps as _s; print('WMBOOK_REPORT=' + json.dumps(_s.kernel_report()))"


def read_report(probe) -> dict:
    text = "".join(o.get("text", "") for o in probe.outputs)
    if "WMBOOK_REPORT=" not in text:
        raise RuntimeError(f"the probe cell printed no report: {probe.outputs}")
    report = json.loads(text.split("WMBOOK_REPORT=", 1)[1])
    check_wmbook_location(report, ROOT)
    return report


def execute(path: Path, timeout: int = 600, speed: float | None = None) -> dict:
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
    report = read_report(probe)
    speed = speed if speed is not None else calibrate.calibration_speed()
    # A stored widget state makes the HTML book load the widget manager from a CDN; the book
    # works offline, and a live widget needs a kernel anyway: keep the outputs, drop the state.
    nb.metadata.pop("widgets", None)
    nb.metadata["wmbook"] = {
        "modules": report["modules"],
        "checkpoints": report["checkpoints"],
        "code_stamp": code_stamp(ROOT / "wmbook", report["modules"], report["checkpoints"]),
        "cells_stamp": cells_stamp(nb),
        "versions": report["versions"],
        "seconds": round(seconds, 1),
        "calibration_tokens_per_second": round(speed),
        "reference_seconds": round(calibrate.reference_seconds(seconds, speed), 1),
    }
    nbformat.write(nb, path)
    return nb.metadata["wmbook"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    args = parser.parse_args()
    paths = args.notebooks or toc_notebooks()
    for path in paths:
        path = path.resolve()
        print(f"executing {path.relative_to(ROOT)} ...", flush=True)
        stamp = execute(path)
        print(f"  done in {stamp['seconds']:.1f} s ({stamp['calibration_tokens_per_second']} tokens/s: "
              f"{stamp['reference_seconds']:.0f} s on the reference machine)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
