"""Try to install Fairseq and OpenNMT-py from PyPI in a scratch environment and record what happens.

    python scripts/try_toolkits.py                       # the committed run (network; up to ~25 minutes)
    python scripts/try_toolkits.py --dry-run --out /tmp/x.pt   # the log's format only: no network, nothing installed

A development-time script for page 7.1 (the book itself builds offline and only reads the log).
For each package (``--packages``, default ``fairseq OpenNMT-py``) it

1. asks PyPI's JSON API (``https://pypi.org/pypi/<name>/json``) for the latest release, its upload
   date, the first release's date, the declared licence, ``Requires-Python`` and dependencies;
2. creates a fresh virtual environment in a temporary folder with this Python, puts the book's torch
   into it (``pip install torch==<the book's version>``, so that pip does not fetch a second, GPU
   build of torch; the environment's pip configuration is recorded), then runs
   ``pip install <name>`` (the latest release) with a time limit (``--timeout``, default 600 s): a
   build that runs longer is killed (its whole process group) and recorded as ``timed out``.
   Builds run under ``nice -n 19`` with one job (``MAKEFLAGS=-j1``, ``MAX_JOBS=1``);
3. where the install succeeds, runs the package's smallest example: import it and print its
   version, then its training command's ``--help``.

For ``--facts-only`` packages (default ``transformers``) it records the PyPI facts only.
It writes the raw pip transcripts to ``--out`` (default
``wmbook/data/checkpoints/toolkits_install.pt``) and, next to it, the JSON log
(``toolkits_install.json``: outcome, seconds, return code, the last lines of any error, the versions
of Python, pip and torch, the PyPI facts, the example's result), and prints the sha256 of both, to
record as TOOLKITS_INSTALL_SHA256 and TOOLKITS_INSTALL_LOG_SHA256 in wmbook/lab/toolkits.py.
Nothing here is random: ``--seed`` is accepted for the shared command line and unused;
``--steps N`` tries only the first N packages. Options: ``--help``.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from importlib import metadata
from pathlib import Path

import torch
from _common import COMMITTED_DIR, parse, report_written, script_parser  # scripts/_common.py

from wmbook.data.checkpoint import file_sha256
from wmbook.lab.toolkits import InstallRecipe, check_install_log

#: The smallest example of each package: an import that prints the version, then the CLI's --help.
EXAMPLES = {
    "fairseq": [["python", "-c", "import fairseq; print('fairseq', fairseq.__version__)"],
                ["fairseq-train", "--help"]],
    "OpenNMT-py": [["python", "-c", "import onmt; print('onmt', onmt.__version__)"],
                   ["onmt_train", "--help"]],
}
TAIL_LINES = 25


def parser():
    """The command line; its defaults are the committed run's."""
    p = script_parser(__doc__, steps=None, out=COMMITTED_DIR / "toolkits_install.pt",
                      steps_help="number of packages to try, the first N of --packages")
    p.add_argument("--packages", nargs="+", default=InstallRecipe().packages,
                   help="PyPI names to try (default: %(default)s)")
    p.add_argument("--timeout", type=float, default=InstallRecipe().timeout,
                   help="seconds allowed to each pip install before it is killed (default: %(default)s)")
    p.add_argument("--facts-only", nargs="*", default=InstallRecipe().facts_only,
                   help="PyPI names whose release facts are recorded without installing (default: %(default)s)")
    p.add_argument("--dry-run", action="store_true",
                   help="no network, nothing installed: write a log with the format of a real run")
    return p


def run(cmd: list[str], timeout: float, env: dict | None = None, cwd: str | None = None) -> dict:
    """Run ``cmd`` in its own process group under ``nice -n 19``; kill the group after ``timeout`` s."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(["nice", "-n", "19", *cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env, cwd=cwd, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the build and every compiler it started
        out, _ = proc.communicate()
        timed_out = True
    return {"output": out or "", "returncode": proc.returncode, "timed_out": timed_out,
            "seconds": round(time.perf_counter() - t0, 1)}


def tail(text: str, n: int = TAIL_LINES) -> list[str]:
    """The last ``n`` non-empty lines of ``text``."""
    return [line.rstrip() for line in text.splitlines() if line.strip()][-n:]


def pypi_facts(name: str) -> dict:
    """Facts about ``name`` from PyPI's JSON API, as PyPI states them."""
    url = f"https://pypi.org/pypi/{name}/json"
    with urllib.request.urlopen(url, timeout=60) as r:
        data = json.load(r)
    info, releases = data["info"], data["releases"]

    def uploaded(version: str) -> str | None:
        times = sorted(f["upload_time_iso_8601"] for f in releases.get(version, []))
        return times[0][:10] if times else None

    dated = sorted((uploaded(v), v) for v in releases if uploaded(v))
    latest = info["version"]
    files = releases.get(latest, [])
    return {"url": url, "latest": latest, "latest_uploaded": uploaded(latest),
            "first_release": dated[0][1] if dated else None, "first_uploaded": dated[0][0] if dated else None,
            "n_releases": len(dated), "license": info.get("license") or None,
            "license_expression": info.get("license_expression"),
            "classifiers_license": [c for c in info.get("classifiers", []) if c.startswith("License")],
            "requires_python": info.get("requires_python"), "requires_dist": info.get("requires_dist"),
            "latest_files": sorted(f["filename"] for f in files),
            "project_urls": info.get("project_urls"), "summary": info.get("summary")}


def try_package(name: str, recipe: InstallRecipe, scratch: Path) -> tuple[dict, str]:
    """Install ``name`` in a fresh venv under ``scratch``; return its log record and the raw transcript."""
    record = {"name": name, "command": f"pip install {name}", "outcome": None, "seconds": None,
              "returncode": None, "error_tail": [], "pypi": None, "installed": None, "example": None}
    if recipe.dry_run:
        record["outcome"] = "not tried (dry run)"
        return record, ""
    record["pypi"] = pypi_facts(name)
    venv = scratch / f"venv-{name}"
    env = {**os.environ, "MAKEFLAGS": "-j1", "MAX_JOBS": "1", "PIP_NO_INPUT": "1",
           "PIP_CACHE_DIR": str(scratch / "pip-cache")}
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    transcript = []
    made = run([sys.executable, "-m", "venv", str(venv)], 300, env)
    transcript.append(f"$ python -m venv\n{made['output']}")
    py = str(venv / "bin" / "python")
    record["venv_pip"] = run([py, "-m", "pip", "--version"], 60, env)["output"].split(" from ")[0].strip()
    record["pip_config"] = tail(run([py, "-m", "pip", "config", "list"], 60, env)["output"], 20)
    book_torch = torch.__version__
    setup = run([py, "-m", "pip", "install", f"torch=={book_torch}"], recipe.timeout, env)
    transcript.append(f"$ pip install torch=={book_torch}\n{setup['output']}")
    record["setup"] = {"command": f"pip install torch=={book_torch}", "returncode": setup["returncode"],
                       "seconds": setup["seconds"], "timed_out": setup["timed_out"]}
    print(f"{name}: scratch venv ready ({record['venv_pip']}; torch setup rc {setup['returncode']}, "
          f"{setup['seconds']} s)", flush=True)
    res = run([py, "-m", "pip", "install", name], recipe.timeout, env)
    transcript.append(f"$ pip install {name}\n{res['output']}")
    record.update(seconds=res["seconds"], returncode=res["returncode"])
    if res["timed_out"]:
        record["outcome"] = "timed out"
        record["error_tail"] = tail(res["output"]) or [f"(no output within {recipe.timeout:.0f} s)"]
    elif res["returncode"] != 0:
        record["outcome"] = "failed"
        record["error_tail"] = tail(res["output"])
    else:
        record["outcome"] = "installed"
    freeze = run([py, "-m", "pip", "freeze"], 120, env)["output"]
    record["installed"] = sorted(line for line in freeze.splitlines() if line.strip())
    if record["outcome"] == "installed":
        results = []
        for cmd in EXAMPLES.get(name, []):
            exe = [py, *cmd[1:]] if cmd[0] == "python" else [str(venv / "bin" / cmd[0]), *cmd[1:]]
            r = run(exe, 300, env, cwd=str(scratch))
            transcript.append(f"$ {' '.join(cmd)}\n{r['output']}")
            results.append({"command": " ".join(cmd), "returncode": r["returncode"], "seconds": r["seconds"],
                            "output_head": [s.rstrip() for s in r["output"].splitlines() if s.strip()][:5],
                            "output_tail": tail(r["output"], 10)})
        record["example"] = results
    print(f"{name}: {record['outcome']} after {record['seconds']} s (return code {record['returncode']})", flush=True)
    return record, "\n".join(transcript)


def main(argv: list[str] | None = None) -> int:
    args = parse(parser(), argv)
    recipe = InstallRecipe(packages=list(args.packages), facts_only=list(args.facts_only), timeout=args.timeout,
                           dry_run=args.dry_run)
    names = recipe.packages[: args.steps] if args.steps else recipe.packages
    records, transcripts = [], {}
    with tempfile.TemporaryDirectory(prefix="try_toolkits_") as tmp:
        for name in names:
            record, transcripts[name] = try_package(name, recipe, Path(tmp))
            records.append(record)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(transcripts, out)
    log = {"checkpoint": out.name, "sha256": file_sha256(out), "recipe": dataclasses.asdict(recipe),
           "python": platform.python_version(), "pip": metadata.version("pip"), "torch": torch.__version__,
           "platform": platform.platform(), "machine": platform.machine(),
           "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%MZ"),
           "packages": records,
           "facts_only": {name: None if recipe.dry_run else pypi_facts(name) for name in recipe.facts_only}}
    check_install_log(log)
    out.with_suffix(".json").write_text(json.dumps(log, indent=1) + "\n", encoding="utf-8")
    report_written(out, log["sha256"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
