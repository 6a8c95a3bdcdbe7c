"""Train page 3.3's character GPT at seven widths and three data budgets, for page 8.1's scaling-law fit.

    python scripts/train_char_gpt_scale.py                # the committed run (20-45 min, one thread)
    python scripts/train_char_gpt_scale.py --widths 32 --budgets 250 --stop-after 100 --out /tmp/s.pt  # its start

For each data budget of wmbook.lab.scale.SCALE_STEPS (250, 500 and 1000 steps of 12 windows of 64
characters: D = 192,000, 384,000 and 768,000 characters seen) and each width of SCALE_WIDTHS
(d_model 32 to 256, 4 layers and 4 heads: ~0.055 M to ~3.2 M parameters) trains the character GPT
of wmbook.lab.char_gpt on Tiny Shakespeare with page 1.1's recipe (AdamW 1e-3, 100 warm-up steps,
cosine decay to 1e-4 over that budget's steps), one seed (``--seed``), then scores it on the
whole validation split (nats per character). ``--steps`` is the largest budget; ``--budgets``
lists them all and overrides it (default: SCALE_STEPS). ``--stop-after N`` runs the first N steps of every
schedule. Writes the JSON log of every run (char_gpt_scale.json: N, non-embedding N, D, steps,
validation loss, seconds) and a checkpoint that holds only the smallest model of the smallest
budget (~0.2 MB; page 8.1 re-runs its first 100 steps against the log), and prints both
sha256s: record them as SCALE_SHA256 and SCALE_LOG_SHA256 in wmbook/lab/scale.py.
WMBOOK_DATA_DIR may point at the data. Seeded and deterministic on the CPU. Options: ``--help``.
"""
from __future__ import annotations

import platform
import sys
import time

import torch
from _common import parse, report_written, script_parser  # scripts/_common.py

from wmbook.data.loaders import load_tinyshakespeare
from wmbook.lab.scale import SCALE_FILE, SCALE_STEPS, SCALE_WIDTHS, save_size_sweep, train_scale_sweep


def parser():
    """The command line; its defaults are the committed run's."""
    p = script_parser(__doc__, steps=max(SCALE_STEPS), out=SCALE_FILE, stop_after=True,
                      steps_help="training steps of the largest data budget (a step: 12 windows of 64 characters)")
    p.add_argument("--widths", type=int, nargs="+", default=list(SCALE_WIDTHS), metavar="D",
                   help="model widths d_model to train (default: %(default)s)")
    p.add_argument("--budgets", type=int, nargs="+", default=None, metavar="STEPS",
                   help=f"steps of every data budget, ascending; overrides --steps (default: {list(SCALE_STEPS)} "
                        "with the default --steps, else just --steps)")
    return p


def checked_budgets(p, args) -> list[int]:
    """The data budgets (steps) of the run, after checking ``--widths``, ``--budgets`` and ``--stop-after``."""
    if any(d < 4 or d % 4 for d in args.widths):
        p.error("--widths must be multiples of 4 (4 heads)")
    budgets = args.budgets or (list(SCALE_STEPS) if args.steps == max(SCALE_STEPS) else [args.steps])
    if budgets != sorted(set(budgets)) or min(budgets) < 1:
        p.error(f"--budgets must be increasing positive step counts, got {budgets}")
    if args.stop_after is not None and args.stop_after > min(budgets):
        p.error(f"--stop-after must be in 1..{min(budgets)} (the smallest budget), got {args.stop_after}")
    return budgets


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = parse(p, argv)
    budgets, widths = checked_budgets(p, args), sorted(args.widths)
    t0 = time.perf_counter()
    runs = train_scale_sweep(load_tinyshakespeare(), widths, budgets, args.seed, args.stop_after,
                             log=lambda line: print(f"{line}  [{time.perf_counter() - t0:.0f} s]", flush=True))
    extra = {"budgets": budgets, "widths": widths, "seed": args.seed, "threads": args.threads,
             "torch": torch.__version__, "python": platform.python_version(),
             "total_seconds": round(time.perf_counter() - t0, 1)}
    if args.stop_after is not None:
        extra["stop_after"] = args.stop_after
    sha = save_size_sweep(args.out, runs, budgets[0], extra, keep=(widths[0],))
    report_written(args.out, sha)
    return 0


if __name__ == "__main__":
    sys.exit(main())
