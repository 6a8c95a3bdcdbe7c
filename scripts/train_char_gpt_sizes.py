"""Train page 3.3's character GPT at four widths and several seeds, for page 1.1's loss-versus-size plot.

    python scripts/train_char_gpt_sizes.py                      # the committed run (10-30 min, one thread)
    python scripts/train_char_gpt_sizes.py --seeds 1 --steps 600 --stop-after 100 --out /tmp/s.pt  # its start

For each width of wmbook.lab.scale.SWEEP_WIDTHS (d_model 16, 32, 64, 128; 4 layers and 4 heads
each) and each of ``--seeds`` seeds (``--seed``, ``--seed`` + 1, ...) trains the character GPT of
wmbook.lab.char_gpt on Tiny Shakespeare with the same recipe (batches of 12 windows of 64
characters, AdamW 1e-3, 100 warm-up steps, cosine decay to 1e-4 over ``--steps``): the runs of one
seed see the same batches, so only the width differs. After training, the loss on the whole
validation split (nats per character). ``--stop-after N`` runs the first N steps of the ``--steps``
schedule (``--stop-after 100 --widths 16 --seeds 1`` reproduces the log's records of the first run at
steps 0 and 100). Writes the
first seed's model of each width (~4 MB) and, next to it, the JSON log of every run
(char_gpt_sizes.json), and prints both sha256s: record them as SIZES_SHA256 and SIZES_LOG_SHA256
in wmbook/lab/scale.py. WMBOOK_DATA_DIR may point at the data. Seeded and deterministic on the
CPU. Options: ``--help`` (the shared command line of scripts/_common.py, plus ``--seeds`` and
``--widths``).
"""
from __future__ import annotations

import platform
import sys
import time

import torch
from _common import parse, report_written, script_parser  # scripts/_common.py

from wmbook.data.loaders import load_tinyshakespeare
from wmbook.lab.scale import SIZES_FILE, SWEEP_SEEDS, SWEEP_STEPS, SWEEP_WIDTHS, save_size_sweep, train_size_sweep


def parser():
    """The command line; its defaults are the committed run's."""
    p = script_parser(__doc__, steps=SWEEP_STEPS, out=SIZES_FILE, stop_after=True,
                      steps_help="training steps of each model (the length of the cosine schedule)")
    p.add_argument("--seeds", type=int, default=SWEEP_SEEDS, help="seeds per width (default: %(default)s)")
    p.add_argument("--widths", type=int, nargs="+", default=list(SWEEP_WIDTHS), metavar="D",
                   help="model widths d_model to train (default: %(default)s)")
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = parse(p, argv)
    if any(d < 4 or d % 4 for d in args.widths):
        p.error("--widths must be multiples of 4 (4 heads)")
    corpus = load_tinyshakespeare()
    t0 = time.perf_counter()
    runs = train_size_sweep(corpus, args.widths, range(args.seed, args.seed + args.seeds), args.steps,
                            args.stop_after, log=lambda line: print(f"{line}  [{time.perf_counter() - t0:.0f} s]",
                                                                     flush=True))
    extra = {"steps": args.steps, "threads": args.threads, "torch": torch.__version__,
             "python": platform.python_version(), "total_seconds": round(time.perf_counter() - t0, 1)}
    if args.stop_after is not None:
        extra["stop_after"] = args.stop_after
    sha = save_size_sweep(args.out, runs, args.steps, extra)
    report_written(args.out, sha)
    return 0


if __name__ == "__main__":
    sys.exit(main())
