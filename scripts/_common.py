"""What the training scripts share: their command line and a repeatable CPU set-up."""
from __future__ import annotations

import argparse
from pathlib import Path

import torch


def training_args(doc: str, steps: int, out: Path, argv: list[str] | None = None) -> argparse.Namespace:
    """Parse ``--steps --out --seed --threads``; fix the thread count and make torch deterministic."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--steps", type=int, default=steps, help="training steps (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=out,
                        help="checkpoint to write; the log goes next to it as .json")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads (fixed for repeatability; default: %(default)s)")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be >= 1")
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    return args
