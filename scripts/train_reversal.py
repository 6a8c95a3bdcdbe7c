"""Train the digit-reversal encoder-decoder of page 5.1 over several seeds and write the seed-0 model.

    python scripts/train_reversal.py                                   # the committed run, 5 seeds (~2.5 min of CPU time, one thread)
    python scripts/train_reversal.py --seeds 1 --stop-after 100 --out /tmp/r.pt   # the full run's start

For each of ``--seeds`` seeds (``--seed``, ``--seed`` + 1, ...) trains the encoder-decoder of
wmbook.lab.reversal (ReversalRecipe: 2 + 2 layers of width 64, batches of 64 strings of 3-9
digits, AdamW with 50 warm-up steps and cosine decay over ``--steps``) with teacher forcing,
decoding 200 held-out strings greedily every 100 steps; at the end, greedy exact match on the
1,000 held-out test strings, overall and by length. The cosine decay spans ``--steps``, so a
shorter ``--steps`` is a different schedule; ``--stop-after N`` runs the first N steps of the
``--steps`` schedule instead (``--stop-after 100`` reproduces the log's first record). Writes
the first seed's model after all steps and after 300 steps (~1.4 MB) and, next to them, the
JSON log (reversal.json: the first seed's batch loss at every step and held-out exact match
every 100 steps, every seed's results), and prints both
sha256s: record them as REVERSAL_SHA256 and REVERSAL_LOG_SHA256 in wmbook/lab/reversal.py.
Seeded and deterministic on the CPU. Options: ``--help`` (the shared command line of
scripts/_common.py, plus ``--seeds``).
"""
from __future__ import annotations

import dataclasses
import platform
import sys
import time

import torch
from _common import parse, report_written, script_parser  # scripts/_common.py

from wmbook.data.checkpoint import CHECKPOINT_DIR
from wmbook.lab.reversal import (EOS, BOS, L_MAX, L_MIN, PAD, REVERSAL_FILE, ReversalRecipe, exact_match,
                                 save_reversal, train_reversal)
from wmbook.nn.decoding import greedy_decode


def main(argv: list[str] | None = None) -> int:
    parser = script_parser(__doc__, steps=ReversalRecipe.steps, out=CHECKPOINT_DIR / REVERSAL_FILE, stop_after=True,
                           steps_help="training steps of each model (the length of the cosine schedule)")
    parser.add_argument("--seeds", type=int, default=5, help="models to train (default: %(default)s)")
    args = parse(parser, argv)
    recipe = dataclasses.replace(ReversalRecipe(), steps=args.steps)
    test_src, test_tgt = recipe.test()
    lengths = (test_src != PAD).sum(1)
    t0 = time.perf_counter()
    seeds, kept = [], None
    for seed in range(args.seed, args.seed + args.seeds):
        t1, c1 = time.perf_counter(), time.process_time()
        model, history, snapshots = train_reversal(seed, recipe, args.stop_after)
        seconds, cpu_seconds = time.perf_counter() - t1, time.process_time() - c1
        with torch.no_grad():
            ok = exact_match(greedy_decode(model, test_src, BOS, EOS, max_len=L_MAX + 1), test_tgt)
        result = {"seed": seed, "train_seconds": round(seconds, 1), "train_cpu_seconds": round(cpu_seconds, 1),
                  "final_loss": round(history.last("loss"), 6),
                  "test_acc": round(ok.float().mean().item(), 6),
                  "test_acc_by_length": {str(L): round(ok[lengths == L].float().mean().item(), 6)
                                         for L in range(L_MIN, L_MAX + 1)},
                  "val_exact_match": [[s, round(v, 6)] for s, v in zip(*history.series("exact_match"))]}
        seeds.append(result)
        if kept is None:
            kept = (model, snapshots.get(recipe.snapshot_step), history)
        print(f"seed {seed}: {len(history.series('loss')[0])} steps in {seconds:.0f} s ({cpu_seconds:.0f} s CPU), final loss "
              f"{result['final_loss']:.3f}, held-out exact match {result['test_acc']:.1%}  "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    model, snapshot, history = kept
    # the first seed's batch loss at every step (the page plots it and compares its live start with it)
    extra = {"loss": [round(v, 6) for v in history.series("loss")[1]], "seeds": seeds,
             "threads": args.threads, "torch": torch.__version__, "python": platform.python_version()}
    if args.stop_after is not None:
        extra["stop_after"] = args.stop_after
    sha = save_reversal(args.out, model, snapshot, recipe, history, extra)
    report_written(args.out, sha)
    return 0


if __name__ == "__main__":
    sys.exit(main())
