"""Seeding and device choice: the two things every page does first.

Explained on page 4.1 ("The mathematics of attention"), section "Setup".
"""
from __future__ import annotations

import os
import random

import numpy as np
import torch

_DEVICES = ("cpu", "cuda", "mps")


def seed_everything(seed: int = 0) -> int:
    """Seed Python's, NumPy's and PyTorch's random number generators.

    Returns the seed, so a page can print or glue it. Seeding makes a run
    repeatable on the same machine and library versions; results may still
    differ in the last digits across devices (CPU vs CUDA vs MPS).
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    return seed


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def get_device(prefer: str | None = None) -> torch.device:
    """Choose where tensors live.

    ``prefer=None`` picks CUDA if present, then Apple's MPS, then the CPU.
    The environment variable ``WMBOOK_DEVICE`` overrides the automatic choice.
    Asking for a device that is not available raises an error that says
    which devices are.
    """
    prefer = prefer or os.environ.get("WMBOOK_DEVICE") or None
    available = ["cpu"]
    if torch.cuda.is_available():
        available.insert(0, "cuda")
    if _mps_available():
        available.insert(len(available) - 1, "mps")
    if prefer is None:
        return torch.device(available[0])
    kind = str(prefer).split(":")[0]
    if kind not in _DEVICES:
        raise ValueError(f"unknown device {prefer!r}: use one of {', '.join(_DEVICES)}")
    if kind not in available:
        raise RuntimeError(
            f"device {prefer!r} is not available on this machine; available: {', '.join(available)}"
        )
    return torch.device(prefer)


class threads:
    """Context manager: run a block with ``n`` PyTorch CPU threads, then restore.

    Tiny models (a few thousand parameters) train much faster on one thread:
    splitting small matrix products across cores costs more than it saves,
    especially on a busy machine. ``with wmbook.threads(1): wmbook.train(...)``.
    """

    def __init__(self, n: int) -> None:
        if n < 1:
            raise ValueError(f"need at least one thread, got {n}")
        self.n = n
        self.saved: int | None = None

    def __enter__(self) -> "threads":
        self.saved = torch.get_num_threads()
        torch.set_num_threads(self.n)
        return self

    def __exit__(self, *exc) -> None:
        torch.set_num_threads(self.saved)
