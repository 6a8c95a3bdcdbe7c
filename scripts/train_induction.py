"""Train the induction-head models of page 4.3 over several seeds and write the seed-0 models with every curve.

    python scripts/train_induction.py                              # the committed run (~3 min, one thread)
    python scripts/train_induction.py --seeds 1 --steps 100 --out /tmp/x.pt    # the start of seed 0

For each of ``--seeds`` seeds (``--seed``, ``--seed`` + 1, ...) trains the two-layer and the
one-layer attention-only model of wmbook.lab.induction (InductionRecipe: batches of 32
repeated-block sequences, AdamW at a constant learning rate 1e-3) for ``--steps`` steps,
measuring the loss on repeated tokens and on first occurrences of a fixed validation set every
50 steps; at the end, the ICL score and the best previous-token and induction head scores.
The learning rate is constant, so ``--steps N`` runs exactly the first N steps of the full run
(``--steps 100`` reproduces the log's records at steps 50 and 100). Writes the two models of
the first seed (~0.3 MB) and, next to them, the JSON log of all runs (induction_heads.json),
and prints both sha256s: record them as INDUCTION_SHA256 and INDUCTION_LOG_SHA256 in
wmbook/lab/induction.py. Seeded and deterministic on the CPU. Options: ``--help`` (the shared
command line of scripts/_common.py, plus ``--seeds``).
"""
from __future__ import annotations

import dataclasses
import platform
import sys
import time

import torch
from _common import parse, report_written, script_parser  # scripts/_common.py

from wmbook.data.checkpoint import CHECKPOINT_DIR
from wmbook.lab.induction import INDUCTION_FILE, InductionRecipe, run_summary, save_induction, train_induction


def main(argv: list[str] | None = None) -> int:
    parser = script_parser(__doc__, steps=InductionRecipe.steps, out=CHECKPOINT_DIR / INDUCTION_FILE,
                           steps_help="training steps of each model; fewer run the start of the full run")
    parser.add_argument("--seeds", type=int, default=5, help="seeds per model (default: %(default)s)")
    args = parse(parser, argv)
    recipe = dataclasses.replace(InductionRecipe(), steps=args.steps)
    t0 = time.perf_counter()
    runs, kept, seconds, cpu_seconds = [], {}, {}, {}
    for seed in range(args.seed, args.seed + args.seeds):
        for n_layers in (2, 1):
            t1, c1 = time.perf_counter(), time.process_time()
            model, history = train_induction(n_layers, seed, recipe)
            seconds.setdefault(str(n_layers), []).append(round(time.perf_counter() - t1, 1))
            cpu_seconds.setdefault(str(n_layers), []).append(round(time.process_time() - c1, 1))
            summary = run_summary(model, history, recipe)
            evals = [r for r in history.records if "repeat_loss" in r]
            runs.append({"n_layers": n_layers, "seed": seed, "evals": evals, "summary": summary})
            if seed == args.seed:
                kept[n_layers] = model
            print(f"seed {seed}, {n_layers} layer(s): repeated-token loss "
                  + " ".join(f"{r['repeat_loss']:.2f}" for r in evals[3::4])
                  + f"; drop at step {summary['drop_step']}, ICL score {summary['icl_score']:+.2f}"
                  + f"  ({time.perf_counter() - t0:.0f} s)", flush=True)
    extra = {"seeds": list(range(args.seed, args.seed + args.seeds)), "train_seconds": seconds,
             "train_cpu_seconds": cpu_seconds,
             "threads": args.threads, "torch": torch.__version__, "python": platform.python_version()}
    sha = save_induction(args.out, kept, recipe, runs, extra)
    report_written(args.out, sha)
    return 0


if __name__ == "__main__":
    sys.exit(main())
