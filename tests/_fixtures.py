"""Fixtures shared by several test files (import them by name: ``from _fixtures import one_thread``).

A fixture imported into a test module is a fixture of that module, with its scope and ``autouse``.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

import wmbook

#: The shared data folder next to the repository (used when $WMBOOK_DATA_DIR is not set).
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Every test of the module on one PyTorch thread (tiny models run ~10x faster on one thread than
    on two contended ones); the thread count is restored afterwards."""
    with wmbook.threads(1):
        yield


@pytest.fixture
def real_data(monkeypatch):
    """The folder with the real data files: $WMBOOK_DATA_DIR, else the shared data folder (skipped
    when neither is there). Returns ``need(*relpaths)``, which skips the test when a file is missing
    (rather than downloading it)."""
    from wmbook.data import loaders

    if not os.environ.get("WMBOOK_DATA_DIR"):
        if not SHARED_DATA.is_dir():
            pytest.skip(f"no data: set WMBOOK_DATA_DIR to a folder with the book's data ({SHARED_DATA} is missing)")
        monkeypatch.setenv("WMBOOK_DATA_DIR", str(SHARED_DATA))
    folder = loaders.data_dir()

    def need(*relpaths: str) -> None:  # skip rather than download
        missing = [r for r in relpaths if not (folder / r).is_file()]
        if missing:
            pytest.skip(f"{', '.join(missing)} not in {folder}")

    return need


# ---------------------------------------------------------------- checks shared by the loaders' tests

def assert_refuses_bad_checkpoints(load, committed: Path, script: str, tmp_path: Path) -> None:
    """``load(path, sha256=...)`` refuses a missing file, an altered copy of the ``committed`` checkpoint
    (its recorded sha256 is checked by default) and a file of another format; the first two messages
    name ``script``, the command that regenerates the file."""
    import torch

    from wmbook.data.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match=f"missing.*{script}"):
        load(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(committed.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(CheckpointError, match=f"sha256.*{script}"):
        load(bad)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(CheckpointError, match="not a wmbook"):
        load(other, sha256=None)


def assert_refuses_bad_logs(load, path: Path, script: str) -> None:
    """``load(path, sha256=...)`` of a checkpoint just written at ``path`` (with its JSON log) refuses
    another sha256, a log that names other weights and a missing log (the message names ``script``).
    Leaves ``path`` without its log."""
    import json

    from wmbook.data.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="sha256"):
        load(path, sha256="0" * 64)
    log_path = path.with_suffix(".json")
    foreign = json.loads(log_path.read_text())
    foreign["sha256"] = "1" * 64
    log_path.write_text(json.dumps(foreign))
    with pytest.raises(CheckpointError, match="written for a checkpoint"):
        load(path, sha256=None)
    log_path.unlink()
    with pytest.raises(CheckpointError, match=f"missing.*{script}"):
        load(path, sha256=None)
