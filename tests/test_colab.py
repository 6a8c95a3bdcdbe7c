"""A Colab-like run: a fresh virtual environment, wmbook installed the way the
install cell does it (from this checkout instead of the network), and a page
executed from an empty temporary folder.

Like Colab, the environment starts with torch (and a Jupyter kernel) already
installed; everything else comes from wmbook's own dependency list.
"""
import os
import shutil
import subprocess
import sys
import venv

import pytest

from tools.book import ROOT

pytestmark = pytest.mark.slow
PAGES = [ROOT / "chapters" / "04" / "4_1_attention.ipynb", ROOT / "chapters" / "02" / "2_1_attention.ipynb"]

RUNNER = r"""
import sys, nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": "."}}).execute()
errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
assert not errors, errors
import importlib.metadata as md
print("OK wmbook", md.version("wmbook"))
"""


def test_page_runs_in_a_fresh_environment_from_an_empty_folder(tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    # what Colab has before the page runs: torch and a kernel. torch as `make` installs it: the
    # version requirements.txt pins, the CPU build where PyTorch's CPU index can be reached.
    # PIP_COMPILE=0: no .pyc at install time (torch's alone cost a minute); imports compile what they use
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    clean.update(PIP_COMPILE="0")
    subprocess.run(["make", "--no-print-directory", "torch", f"PYTHON={python}"], cwd=ROOT, env=clean,
                   check=True, timeout=900)
    subprocess.run([*pip, "ipykernel", "nbclient", "nbformat"], env=clean, check=True, timeout=900)
    source = tmp_path / "checkout"  # a copy, so pip's build files never land in the working tree
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns("_build", ".git", "*.egg-info", "build", "__pycache__"))
    workdir = tmp_path / "empty"
    workdir.mkdir()
    probe = "import importlib.util; print(importlib.util.find_spec('wmbook') is None)"
    before = subprocess.run([str(python), "-c", probe], cwd=workdir, capture_output=True, text=True, check=True)
    assert before.stdout.strip() == "True", "wmbook must not be importable before the install cell runs"
    env = dict(clean, WMBOOK_PIP_SPEC=str(source), PATH=f"{env_dir / 'bin'}:{clean['PATH']}")
    # the model page first (its install cell installs wmbook), then the explorer's page
    for page in PAGES:
        shutil.copy(page, workdir / page.name)  # only the notebook, as Colab opens it
        result = subprocess.run([str(python), "-c", RUNNER, page.name], cwd=workdir, env=env,
                                capture_output=True, text=True, timeout=1200)
        assert result.returncode == 0, page.name + result.stdout[-3000:] + result.stderr[-3000:]
        assert "OK wmbook" in result.stdout
    installed = subprocess.run([str(python), "-c", "import wmbook, sys; print(wmbook.__file__)"],
                               cwd=workdir, capture_output=True, text=True, check=True).stdout
    assert str(env_dir) in installed, "wmbook must have been installed into the fresh environment"
