"""The book's checks on re-run pages, hooked into nbval (``pytest chapters --nbval-lax``).

* Every glued number (every number the prose quotes) is re-checked in every cell, within its
  tolerance, and cells marked ``# NBVAL_CHECK_OUTPUT`` are compared number by number
  (:mod:`wmbook.book.checks`): the stored outputs hold on any CPU and thread count, and a real
  change still fails.
* After a page's last cell, one more item per page ("page checks") asks the kernel which
  ``wmbook`` it imported (it must be this checkout's) and checks the page's run time against
  the budget in reference seconds (:mod:`wmbook.book.calibrate`, measured in the same run).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

try:
    from nbval.plugin import IPyNbCell, IPyNbFile
except ImportError:  # nbval is a test requirement; without it only the unit tests run
    IPyNbCell = IPyNbFile = None

if IPyNbCell is not None:
    from wmbook.book import calibrate, checks, stamps

    _run_cell = IPyNbCell.runtest
    _collect = IPyNbFile.collect

    def _runtest(self):
        self.wm_marked = bool(self.options["check"])
        if checks.glued(self.cell.outputs):
            self.options["check"] = True  # compare_outputs below looks only at the glued values
        started = time.perf_counter()
        self.parent.wm_started = getattr(self.parent, "wm_started", None) or started
        try:
            _run_cell(self)
        finally:
            self.parent.wm_seconds = time.perf_counter() - self.parent.wm_started

    def _compare_outputs(self, test, ref, skip_compare=None):
        formats = checks.prose_formats("\n".join(c.source for c in self.parent.nb.cells if c.cell_type == "markdown"))
        problems = checks.compare_glued(ref, test, formats)
        if getattr(self, "wm_marked", False):
            problems += checks.compare_cell(ref, test, self.cell.source)
        self.comparison_traceback = problems
        return not problems

    class PageChecks(pytest.Item):
        """The kernel's wmbook is this checkout's; the page ran within its budget."""

        def runtest(self):
            nbfile = self.parent
            if getattr(nbfile, "kernel", None) is None or not nbfile.kernel.is_alive():
                pytest.fail("the page's kernel is not running: an earlier cell failed or timed out")
            report = _kernel_report(nbfile)
            stamps.check_wmbook_location(report, ROOT)
            seconds = getattr(nbfile, "wm_seconds", 0.0)
            speed = calibrate.calibration_speed()
            ref = calibrate.reference_seconds(seconds, speed)
            self.user_properties.append(("seconds", round(seconds, 1)))
            self.user_properties.append(("reference_seconds", round(ref, 1)))
            print(f"{nbfile.name}: {seconds:.0f} s here, {speed:.0f} tokens/s, {ref:.0f} reference s")
            assert ref <= calibrate.BUDGET_REFERENCE_SECONDS, (
                f"{nbfile.name} ran {seconds:.0f} s on a machine that trains the reference GPT at "
                f"{speed:.0f} tokens/s: {ref:.0f} s on the reference machine "
                f"({calibrate.REFERENCE_TOKENS_PER_SECOND:.0f} tokens/s), budget "
                f"{calibrate.BUDGET_REFERENCE_SECONDS:.0f} s. Make the page lighter or move training into a script.")

        def reportinfo(self):
            return self.path, 0, f"{self.parent.name}::page checks"

    def _collect_with_checks(self):
        yield from _collect(self)
        yield PageChecks.from_parent(self, name="page checks")

    IPyNbCell.runtest = _runtest
    IPyNbCell.compare_outputs = _compare_outputs
    IPyNbFile.collect = _collect_with_checks


def _kernel_report(nbfile, timeout: float = 60) -> dict:
    """Run wmbook.book.stamps.kernel_report() in the page's kernel and read its answer."""
    code = "import json, wmbook.book.stamps as _s; print('WMBOOK_REPORT=' + json.dumps(_s.kernel_report()))"
    kernel = nbfile.kernel
    msg_id = kernel.execute_cell_input(code, allow_stdin=False)
    kernel.await_reply(msg_id, timeout=timeout)
    text = ""
    while True:
        msg = nbfile.get_kernel_message(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            text += msg["content"]["text"]
        elif msg["msg_type"] == "error":
            raise AssertionError("the kernel could not report: " + "\n".join(msg["content"]["traceback"]))
        elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    return json.loads(text.split("WMBOOK_REPORT=", 1)[1])


def pytest_terminal_summary(terminalreporter):
    """One line per re-run page: its seconds here and in reference seconds (the budget's unit)."""
    rows = []
    for kind in ("passed", "failed"):
        for report in terminalreporter.stats.get(kind, []):
            props = dict(getattr(report, "user_properties", []))
            if report.when == "call" and "reference_seconds" in props:
                rows.append((report.nodeid.split("::")[0], props["seconds"], props["reference_seconds"]))
    if rows:
        terminalreporter.section("page run times (budget: 90 reference seconds)")
        for page, seconds, ref in sorted(rows):
            terminalreporter.write_line(f"{page}: {seconds:.0f} s here, {ref:.0f} reference s")
