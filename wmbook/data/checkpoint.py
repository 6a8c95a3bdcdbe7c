"""Small committed checkpoints: where they live and how they are verified before loading.

Training that does not fit in a page runs in a committed, seeded script under ``scripts/``;
its checkpoint (a few MB) ships inside the package, in ``wmbook/data/checkpoints/``, and the code
that loads it records its sha256, so a page never runs on a different file than the one its
text describes. A checkpoint's JSON training log (``<name>.json`` next to it, written by
:func:`save_with_log`) is hashed and checked the same way (:func:`load_log`). Used by :mod:`wmbook.lab.char_gpt` (page 3.3), :mod:`wmbook.lab.function_icl`
(page 2.3) and the SST-2 GPT of page 5.3.

The steps every loader shares are here once: :func:`verify_with_log` (a committed file or your
own, with its log), :func:`load_payload` (``torch.load`` and the ``"format"`` tag) and
:func:`load_paired_log` / :func:`check_paired` (the log must name these weights).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"


#: Names of the files in CHECKPOINT_DIR verified in this process (the stamps of a page record them).
_VERIFIED: set[str] = set()


def seed_file(committed: str | Path, seed: int) -> str | Path:
    """The committed file of one seed of a recipe: ``committed`` itself for seed 0 (the pages'
    example model), ``<stem>_seed<seed><suffix>`` beside it for the others (same type as given)."""
    if seed < 0 or int(seed) != seed:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if seed == 0:
        return committed
    path = Path(committed)
    named = path.with_name(f"{path.stem}_seed{seed}{path.suffix}")
    return named if isinstance(committed, Path) else str(named)


def verified_files() -> list[str]:
    """Names of the committed checkpoints and logs this process verified (and so loaded), sorted."""
    return sorted(_VERIFIED)


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, corrupt or not the one the code expects."""


def file_sha256(path: str | Path) -> str:
    """sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_checkpoint(path: str | Path, sha256: str | None, regenerate: str, where: str = "") -> Path:
    """Return ``path`` once it exists and (unless ``sha256`` is None) has that sha256.

    ``regenerate`` is the command that rebuilds the file and ``where`` names the constant that
    records its hash; both go into the error message.
    """
    return _verify(path, sha256, regenerate, where, "checkpoint")


def load_log(path: str | Path, sha256: str | None, regenerate: str, where: str = "") -> dict:
    """The JSON training log at ``path`` (next to its checkpoint), verified like the weights.

    The log must exist, (unless ``sha256`` is None) have that sha256, exactly as
    :func:`verify_checkpoint` checks a checkpoint, and hold a JSON object. A missing, tampered
    or unreadable log raises :class:`CheckpointError` naming the file and ``regenerate``, the
    command that rewrites it (with its checkpoint); ``where`` names the constant that records
    its hash. Never returns ``{}`` in place of a log.
    """
    import json

    path = _verify(path, sha256, regenerate, where, "training log")
    try:
        log = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise CheckpointError(f"training log {path} cannot be read ({e}); regenerate it with: {regenerate}") from e
    if not isinstance(log, dict):
        raise CheckpointError(f"training log {path} is not a JSON object; regenerate it with: {regenerate}")
    return log


def load_payload(path: str | Path, fmt: str, what: str, regenerate: str) -> dict:
    """``torch.load`` a verified checkpoint (on the CPU, tensors only) that must be a dict tagged
    ``"format": fmt``; ``what`` names the kind of checkpoint in the error.

    Raises :class:`CheckpointError` (``<path> is not a wmbook <what> checkpoint; regenerate it
    with: <regenerate>``) when the file holds anything else.
    """
    import torch

    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != fmt:
        raise CheckpointError(f"{path} is not a wmbook {what} checkpoint; regenerate it with: {regenerate}")
    return payload


def load_paired_log(path: str | Path, sha256: str | None, log_sha256: str | None, regenerate: str,
                    where: str = "") -> dict:
    """The JSON training log next to the checkpoint ``path`` (``<name>.json``), read with
    :func:`load_log` (checked against ``log_sha256``, None: not checked), that must name this
    checkpoint: its ``"sha256"`` must be ``sha256`` or, when that is None, the file's own sha256.

    Raises :class:`CheckpointError` when the log is missing, altered or was written for other weights.
    """
    log = load_log(Path(path).with_suffix(".json"), log_sha256, regenerate, where)
    check_paired(log, path, sha256, regenerate)
    return log


def check_paired(log: dict, path: str | Path, sha256: str | None, regenerate: str) -> None:
    """Refuse a training log written for other weights: ``log["sha256"]`` must be ``sha256`` or, when
    that is None, the sha256 of the checkpoint file ``path``. Raises :class:`CheckpointError`."""
    path = Path(path)
    if log.get("sha256") != (sha256 or file_sha256(path)):
        raise CheckpointError(f"training log {path.with_suffix('.json')} was written for a checkpoint with sha256 "
                              f"{log.get('sha256')}, not for {path}; regenerate both with: {regenerate}")


def verify_with_log(path: str | Path | None, sha256: str | None, log_sha256: str | None, *, committed: Path,
                    committed_sha256: str, committed_log_sha256: str, regenerate: str, constant: str,
                    module: str) -> tuple[Path, dict]:
    """Verify a checkpoint and load its JSON log; return ``(path, log)``.

    ``path=None`` is the ``committed`` file; there ``sha256="committed"`` and ``log_sha256="committed"``
    stand for ``committed_sha256`` and ``committed_log_sha256``. For any other ``path``, "committed"
    means "not checked" (None). The errors name the constants ``<constant>_SHA256`` and
    ``<constant>_LOG_SHA256`` in ``module`` and the command ``regenerate``.
    """
    is_committed = path is None
    path = Path(path) if path is not None else Path(committed)
    if sha256 == "committed":
        sha256 = committed_sha256 if is_committed else None
    if log_sha256 == "committed":
        log_sha256 = committed_log_sha256 if is_committed else None
    verify_checkpoint(path, sha256, regenerate, f"{constant}_SHA256 in {module}")
    log = load_log(path.with_suffix(".json"), log_sha256, regenerate, f"{constant}_LOG_SHA256 in {module}")
    return path, log


def _verify(path: str | Path, sha256: str | None, regenerate: str, where: str, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} {path} is missing; regenerate it with: {regenerate}")
    if sha256 is not None:
        actual = file_sha256(path)
        if actual != sha256:
            raise CheckpointError(
                f"{what} {path} has sha256 {actual}, expected {sha256}: it is corrupt, was edited or "
                f"was rewritten by a new run. Regenerate it with: {regenerate}, then record the sha256 it prints"
                + (f" in {where}." if where else ".")
            )
    if path.resolve().parent == CHECKPOINT_DIR:
        _VERIFIED.add(path.name)
    return path


def save_with_log(path: str | Path, payload: dict, history, recipe, n_parameters: int, eval_key: str,
                  extra: dict | None = None) -> str:
    """Write ``payload`` with ``torch.save`` and, next to it, a ``.json`` training log; return the sha256.

    The log holds the file name and hash, the recipe (a dataclass), the parameter count and every
    record of ``history`` (a :class:`wmbook.nn.train.History`) that has ``eval_key``, rounded to 6 digits.
    """
    import dataclasses
    import json

    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)
    sha = file_sha256(path)
    evals = [r for r in history.records if eval_key in r]
    log = {"checkpoint": path.name, "sha256": sha, "recipe": dataclasses.asdict(recipe),
           "parameters": n_parameters,
           "evals": [{k: round(v, 6) if isinstance(v, float) else v for k, v in r.items()} for r in evals],
           **(extra or {})}
    path.with_suffix(".json").write_text(json.dumps(log, indent=1) + "\n", encoding="utf-8")
    return sha
