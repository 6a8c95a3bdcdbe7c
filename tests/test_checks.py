"""The checks that keep stored outputs honest: numbers within tolerance, stamps, the kernel's wmbook.

Each hole has a test that fails when it is opened: a glued value changed beyond its tolerance,
an edited checkpoint log, other library versions, a kernel importing another wmbook.
"""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

import tests.test_notebooks as test_notebooks
from wmbook.book import checks, stamps
from wmbook.book.notebook import GLUE_PREFIX

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- numbers with tolerances

def test_floats_within_relative_tolerance_pass_and_beyond_fail():
    assert checks.compare_text("0.057792287319898605", "0.05779232457280159") is None  # issue #9's 2.2 cell 3
    assert checks.compare_text("[1.0000001192092896, 1.0]", "[1.0, 1.0000001192092896]") is None
    assert "differs" in checks.compare_text("loss 1.2345", "loss 1.2400")
    assert checks.compare_text("loss 1.2345", "loss 1.2400", rtol=0.01) is None


def test_integers_and_words_must_be_equal():
    assert "integers must be equal" in checks.compare_text("12 steps", "13 steps")
    assert "text differs" in checks.compare_text("accuracy 0.5", "loss 0.5")
    assert "text differs" in checks.compare_text("1 2", "1 2 3")


def test_bounds_ignore_the_stored_value():
    assert checks.compare_text("12.0", "30.0", within=(1, 100)) is None
    assert "outside its bounds" in checks.compare_text("12.0", "300.0", within=(1, 100))


def test_default_tolerance_is_one_unit_of_the_last_digit_shown():
    assert checks.default_tolerance([".2f"]) == {"rtol": 0.0, "atol": 0.01}
    assert checks.default_tolerance([".1f", ".3f"]) == {"rtol": 0.0, "atol": 0.001}
    assert checks.default_tolerance([".1e"]) == {"rtol": 0.1, "atol": 0.0}
    assert checks.default_tolerance([".0%"]) == {"rtol": 0.0, "atol": 0.01}
    assert checks.default_tolerance([]) == {"rtol": checks.TEXT_RTOL, "atol": checks.TEXT_ATOL}
    assert checks.default_tolerance([".2f", ""]) == {"rtol": checks.TEXT_RTOL, "atol": checks.TEXT_ATOL}
    assert checks.prose_formats("a {glue:text}`acc:.1f` b {glue}`n` c {glue:text}`acc`") == {"acc": [".1f", ""], "n": [""]}


def _glue_output(name, text, check=None):
    meta = {"scrapbook": {"name": name, "mime_prefix": GLUE_PREFIX}}
    if check:
        meta["wmbook_check"] = check
    return {"output_type": "display_data", "data": {GLUE_PREFIX + "text/plain": text}, "metadata": meta}


def test_glued_values_use_their_declared_tolerance():
    stored = [_glue_output("acc", "0.80", {"atol": 0.02}), _glue_output("ms", "12.0", {"within": [0, 100]})]
    assert checks.compare_glued(stored, [_glue_output("acc", "0.81"), _glue_output("ms", "55.0")], {}) == []
    problems = checks.compare_glued(stored, [_glue_output("acc", "0.85"), _glue_output("ms", "155.0")], {})
    assert len(problems) == 2 and "'acc'" in problems[0] and "bounds" in problems[1]
    assert "not glued again" in checks.compare_glued(stored, [], {})[0]


def test_glue_rejects_bad_tolerances():
    from wmbook import glue

    with pytest.raises(ValueError, match="rtol must be a number >= 0"):
        glue("x", 1.0, rtol=-1)
    with pytest.raises(ValueError, match="lo <= hi"):
        glue("x", 1.0, within=(2, 1))


def test_cell_tolerance_line():
    assert checks.cell_tolerance("# NBVAL_CHECK_OUTPUT\n# tolerance: rtol=1e-3, atol=0.5\nprint(1)") == {
        "rtol": 1e-3, "atol": 0.5}


# --------------------------------------------------------------------------- the suite catches a change

def _tiny_page(folder: Path, stored_value: str) -> Path:
    """A page that glues 0.123456 (shown as .2f), executed, then its stored value replaced."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("The value is {glue:text}`x:.2f`."),
                nbformat.v4.new_code_cell("from wmbook import glue\nglue('x', 0.123456)")]
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    out = nb.cells[1].outputs[0]
    assert out["data"][GLUE_PREFIX + "text/plain"] == "0.123456"
    out["data"][GLUE_PREFIX + "text/plain"] = stored_value
    path = folder / "page.ipynb"
    nbformat.write(nb, path)
    return path


def _nbval(path: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pytest", str(path), "--nbval-lax", "-p", "conftest", "-p", "no:cacheprovider",
           "-q", "--rootdir", str(path.parent)]
    return subprocess.run(cmd, cwd=path.parent, capture_output=True, text=True, timeout=600,
                          env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})


@pytest.mark.slow
def test_the_suite_fails_beyond_and_passes_within_a_glued_tolerance(tmp_path):
    beyond, within = tmp_path / "beyond", tmp_path / "within"
    beyond.mkdir(), within.mkdir()
    run = _nbval(_tiny_page(beyond, "0.143456"))  # 0.02 away: the prose would show 0.14, not 0.12
    assert run.returncode == 1 and "glued value 'x'" in run.stdout, run.stdout[-3000:]
    run = _nbval(_tiny_page(within, "0.127456"))  # 0.004 away: within one unit of 0.12
    assert run.returncode == 0, run.stdout[-3000:]
    assert "2 passed" in run.stdout  # the cell and the page checks (kernel's wmbook, time budget)


# --------------------------------------------------------------------------- stamps

def test_an_edited_checkpoint_log_makes_its_pages_stale(tmp_path):
    copy = tmp_path / "wmbook"
    shutil.copytree(ROOT / "wmbook", copy, ignore=shutil.ignore_patterns("__pycache__"))
    modules = ["data.checkpoint", "lab.char_gpt"]
    used = ["char_gpt_shakespeare.pt", "char_gpt_shakespeare.json"]
    before, other = stamps.code_stamp(copy, modules, used), stamps.code_stamp(copy, modules, ["reversal.pt"])
    log = copy / "data" / "checkpoints" / "char_gpt_shakespeare.json"
    record = json.loads(log.read_text())
    record["edited"] = True
    log.write_text(json.dumps(record))
    assert stamps.code_stamp(copy, modules, used) != before  # the page that loads it is stale
    assert stamps.code_stamp(copy, modules, ["reversal.pt"]) == other  # a page that does not is not
    assert stamps.code_stamp(copy, ["nn.attention"]) == stamps.code_stamp(ROOT / "wmbook", ["nn.attention"])


def test_a_changed_asset_makes_the_explorer_pages_stale(tmp_path):
    copy = tmp_path / "wmbook"
    shutil.copytree(ROOT / "wmbook", copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = stamps.code_stamp(copy, ["view.explorer"])
    (copy / "view" / "explorer_assets" / "explorer.css").write_text("/* changed */")
    assert stamps.code_stamp(copy, ["view.explorer"]) != before


def test_other_library_versions_fail_in_ci_and_warn_elsewhere(monkeypatch):
    monkeypatch.setattr(test_notebooks, "versions", lambda: {"python": "3.0", "torch": "0.1"})
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="other library versions"):
        test_notebooks.test_outputs_were_computed_with_these_library_versions()
    monkeypatch.delenv("CI")
    with pytest.warns(UserWarning, match="Re-execute them"):
        test_notebooks.test_outputs_were_computed_with_these_library_versions()


def test_loaded_checkpoints_are_recorded():
    from wmbook.lab.char_gpt import load_char_gpt

    load_char_gpt()  # the weights and, next to them, the training log
    assert {"char_gpt_shakespeare.pt", "char_gpt_shakespeare.json"} <= set(stamps.kernel_report()["checkpoints"])


def test_a_foreign_wmbook_is_refused(tmp_path):
    report = stamps.kernel_report()
    stamps.check_wmbook_location(report, ROOT)  # this process imports the checkout's wmbook
    with pytest.raises(stamps.ForeignWmbook, match="pip install -e"):
        stamps.check_wmbook_location({"wmbook_file": str(tmp_path / "site-packages" / "wmbook" / "__init__.py")}, ROOT)


def test_execute_refuses_a_kernel_with_another_wmbook(tmp_path):
    from tools.execute import read_report

    probe = nbformat.v4.new_code_cell("")
    fake = {**stamps.kernel_report(), "wmbook_file": str(tmp_path / "elsewhere" / "wmbook" / "__init__.py")}
    probe.outputs = [nbformat.v4.new_output("stream", name="stdout", text="WMBOOK_REPORT=" + json.dumps(fake))]
    with pytest.raises(stamps.ForeignWmbook):
        read_report(probe)
