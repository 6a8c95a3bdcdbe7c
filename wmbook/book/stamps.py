"""Stamps: what produced a page's stored outputs, so the tests can tell when they are stale.

``tools/execute.py`` runs a page and records in its metadata (``metadata.wmbook``):

* ``code_stamp`` — a sha256 over the source of the ``wmbook`` modules the page imported,
  their asset folders, every ``__init__.py`` and the committed checkpoints and JSON training
  logs the page loaded (``checkpoints``): editing a log or retraining a model makes the pages
  that use it stale, and only those;
* ``cells_stamp`` — a sha256 of the page's code cells;
* ``versions`` — Python, torch, numpy and transformers that computed the outputs;
* ``seconds``, ``calibration`` and ``reference_seconds`` — how long the run took, how fast
  the machine was (:mod:`wmbook.book.calibrate`) and the time scaled to the reference machine.
"""
from __future__ import annotations

import hashlib
import platform
import sys
from pathlib import Path
from typing import Iterable

PACKAGE = Path(__file__).resolve().parents[1]
_STAMPED_SUFFIXES = (".py", ".js", ".css", ".json", ".pt")
CHECKPOINT_MODULE = "data.checkpoint"
CHECKPOINT_FOLDER = "data/checkpoints"
VERSIONED = ("torch", "numpy", "transformers")


def loaded_modules() -> list[str]:
    """The ``wmbook`` submodules imported in this process, e.g. ``["nn.attention", "view.plot"]``."""
    return sorted(name.split(".", 1)[1] for name in sys.modules
                  if name.startswith("wmbook.") and not name.endswith("__init__"))


def _owner(rel: Path) -> str:
    """The module a file belongs to: ``view/explorer_assets/x.js`` -> ``view.explorer``."""
    parts = list(rel.with_suffix("").parts)
    for i, part in enumerate(parts):
        if part.endswith("_assets"):
            return ".".join(parts[:i] + [part[: -len("_assets")]])
    return ".".join(parts)


def stamped_files(root: Path, modules: Iterable[str] | None,
                  checkpoints: Iterable[str] | None = None) -> list[Path]:
    """The files whose content a page's outputs depend on (all of them with ``modules=None``).

    ``checkpoints`` names the files of ``data/checkpoints`` the page loaded; ``None`` means all
    of them when the page imported :mod:`wmbook.data.checkpoint`.
    """
    wanted = None if modules is None else set(modules)
    loaded = None if checkpoints is None else set(checkpoints)
    files = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.suffix not in _STAMPED_SUFFIXES or "__pycache__" in path.parts:
            continue
        rel = path.relative_to(root)
        if rel.as_posix().startswith(CHECKPOINT_FOLDER + "/"):
            if wanted is None or (path.name in loaded if loaded is not None else CHECKPOINT_MODULE in wanted):
                files.append(path)
        elif wanted is None or rel.name == "__init__.py" or _owner(rel) in wanted:
            files.append(path)
    return files


def code_stamp(root: str | Path | None = None, modules: Iterable[str] | None = None,
               checkpoints: Iterable[str] | None = None) -> str:
    """A short sha256 of the files :func:`stamped_files` selects (line endings normalised)."""
    root = Path(root) if root is not None else PACKAGE
    h = hashlib.sha256()
    for path in stamped_files(root, modules, checkpoints):
        data = path.read_bytes()
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update((data if path.suffix == ".pt" else data.replace(b"\r\n", b"\n")) + b"\0")
    return h.hexdigest()[:16]


def cells_stamp(nb) -> str:
    """A short sha256 of a notebook's code cells' sources (so an edited cell shows as stale)."""
    h = hashlib.sha256()
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            src = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            h.update(src.strip().encode() + b"\0")
    return h.hexdigest()[:16]


def versions() -> dict[str, str]:
    """Versions of Python and of the libraries whose arithmetic the stored outputs depend on."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "missing"
    return out


class ForeignWmbook(RuntimeError):
    """The kernel that ran a page imported a wmbook that is not the checkout's."""


def check_wmbook_location(report: dict, root: str | Path) -> None:
    """Raise :class:`ForeignWmbook` unless the kernel's ``wmbook`` lies in the checkout ``root``."""
    where, root = Path(report["wmbook_file"]).resolve(), Path(root).resolve()
    if root not in where.parents:
        raise ForeignWmbook(f"the kernel imported wmbook from {where}, not from the checkout {root}: "
                            f"run `pip install -e {root}` in the environment of the kernel")


def kernel_report() -> dict:
    """What a kernel that ran a page reports about itself (the probe of ``tools/execute.py`` and the tests)."""
    import wmbook

    checkpoints = sys.modules.get("wmbook.data.checkpoint")
    return {"wmbook_file": str(Path(wmbook.__file__).resolve()), "modules": loaded_modules(),
            "checkpoints": checkpoints.verified_files() if checkpoints else [], "versions": versions()}
