"""The lower bounds that pyproject.toml declares are tested, not guessed.

A fresh virtual environment gets exactly the oldest versions pyproject.toml allows, all
together (pip resolves the declared dependencies with a constraint ``name==lower bound`` for
each, derived from the file itself, so this test cannot drift from it), with the Python
version requires-python names. wmbook is installed from a copy of the package with
``--no-deps`` and a smoke script runs: every module imports, the GPT and BERT are built and
match Hugging Face ``transformers`` (GPT-2 at random weights, MiniLM-L6 loaded offline).

torch comes through the Makefile's own torch step (``make torch``: the CPU build where
PyTorch's CPU index can be reached), at the lower bound. The other packages come from the
package index (PyPI).
"""
import json
import os
import shutil
import subprocess
import sys
import tomllib
import venv

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from tools.book import ROOT

pytestmark = pytest.mark.slow

SMOKE = r"""
import importlib, json, os, pkgutil, sys
from pathlib import Path

assert os.environ["HF_HUB_OFFLINE"] == "1"
import numpy as np
import torch
import transformers
import wmbook as wm

for info in pkgutil.walk_packages(wm.__path__, "wmbook."):  # every module imports
    importlib.import_module(info.name)
from wmbook.nn.bert import BertModel, minilm_path, minilm_tokenizer
from wmbook.nn.gpt import GPT

torch.manual_seed(0)
x = torch.from_numpy(np.random.default_rng(0).standard_normal((2, 5, 16)).astype(np.float32))
mha = wm.MultiHeadAttention(wm.AttentionConfig(16, 4, 0.0))
assert wm.count_parameters(mha) > 0 and mha(x, x, x) is not None

cfg = transformers.GPT2Config(n_layer=2, n_head=4, n_embd=32, vocab_size=50, n_positions=16)
hf_gpt = transformers.GPT2LMHeadModel(cfg).eval()
gpt = GPT.from_hf(hf_gpt)
idx = torch.randint(0, 50, (2, 10))
with torch.no_grad():
    gpt_diff = (gpt(idx).logits - hf_gpt(idx).logits).abs().max().item()

tok = minilm_tokenizer()
bert = BertModel.from_minilm()
hf_bert = transformers.BertModel.from_pretrained(str(minilm_path()), attn_implementation="eager").eval()
batch = tok(["The cat sat.", "Working memory holds only a few items at once."], padding=True, return_tensors="pt")
with torch.no_grad():
    ours = bert(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]).last_hidden_state
    bert_diff = (ours - hf_bert(**batch).last_hidden_state).abs().max().item()

package = Path(wm.__file__).parent
print(json.dumps({
    "python": "%d.%d" % sys.version_info[:2],
    "gpt_diff": gpt_diff, "bert_diff": bert_diff,
    "wmbook": str(package),
    "files": sorted(str(p.relative_to(package)) for p in package.rglob("*")
                    if p.is_file() and "__pycache__" not in p.parts),
}))
"""

VERSIONS = r"""
import importlib.metadata as md, json, sys
print(json.dumps({name: md.version(name) for name in sys.argv[1:]}))
"""


def lower_bounds():
    """{name: lowest allowed version} for every dependency in pyproject.toml, and requires-python's."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    bounds = {}
    for line in project["dependencies"]:
        req = Requirement(line)
        lows = [s.version for s in req.specifier if s.operator in (">=", "==", "~=")]
        assert len(lows) == 1, f"{line!r}: declare exactly one lower bound (>=), so it can be tested"
        bounds[req.name] = lows[0]
    python = [s.version for s in Requirement(f"python{project['requires-python']}").specifier if s.operator == ">="]
    assert len(python) == 1, "requires-python must have a lower bound (>=)"
    return bounds, python[0]


def python_for(version):
    """An interpreter of that major.minor: this one, or pythonX.Y on PATH."""
    if "%d.%d" % sys.version_info[:2] == version:
        return sys.executable
    return shutil.which(f"python{version}")


def test_the_declared_lower_bounds_install_together_and_run(tmp_path):
    bounds, python_low = lower_bounds()
    base = python_for(python_low)
    if base is None:
        pytest.skip(f"requires-python's lower bound is {python_low}: no python{python_low} here to test it with")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    # PIP_COMPILE=0: no .pyc at install time (torch's alone cost a minute); imports compile what they use
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_COMPILE="0")
    env_dir = tmp_path / "venv"
    if base == sys.executable:
        venv.EnvBuilder(with_pip=True).create(env_dir)
    else:
        subprocess.run([base, "-m", "venv", str(env_dir)], check=True, timeout=300)
    python = str(env_dir / "bin" / "python")

    def run(cmd, timeout, **kw):
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, **kw)
        assert result.returncode == 0, f"{' '.join(map(str, cmd))}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        return result.stdout

    # torch as the Makefile installs it, at the lower bound
    run(["make", "--no-print-directory", "torch", f"PYTHON={python}", f"TORCH_PIN={bounds['torch']}"],
        timeout=900, cwd=ROOT)
    constraints = tmp_path / "lower-bounds.txt"
    constraints.write_text("".join(f"{name}=={low}\n" for name, low in bounds.items()))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    run([python, "-m", "pip", "install", "-q", "--constraint", str(constraints), *project["dependencies"]],
        timeout=1200)
    source = tmp_path / "source"  # a copy, so pip's build files never land in the working tree
    shutil.copytree(ROOT / "wmbook", source / "wmbook", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    run([python, "-m", "pip", "install", "-q", "--no-deps", str(source)], timeout=600)

    installed = json.loads(run([python, "-c", VERSIONS, *bounds], timeout=120))
    wrong = {n: f"{installed[n]} installed, {low} declared" for n, low in bounds.items()
             if Version(Version(installed[n]).base_version) != Version(low)}
    assert not wrong, f"not the declared lower bounds: {wrong}"

    workdir = tmp_path / "empty"  # so `import wmbook` finds the installed copy, not the checkout
    workdir.mkdir()
    smoke = json.loads(run([python, "-c", SMOKE], timeout=600, cwd=workdir).splitlines()[-1])
    assert smoke["python"] == python_low
    assert smoke["wmbook"].startswith(str(env_dir)), smoke["wmbook"]
    assert smoke["gpt_diff"] <= 1e-4 and smoke["bert_diff"] <= 1e-4, smoke
    shipped = sorted(str(p.relative_to(source / "wmbook")) for p in (source / "wmbook").rglob("*") if p.is_file())
    missing = sorted(set(shipped) - set(smoke["files"]))
    assert not missing, f"files of wmbook/ that a (non-editable) install leaves out (package-data?): {missing}"
