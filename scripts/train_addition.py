"""Train tiny GPTs on multi-digit addition, with and without a scratchpad (page 8.2, section 8.2.2).

    python scripts/train_addition.py                                   # the committed run: 2 formats x 3 seeds
    python scripts/train_addition.py --seeds 1 --stop-after 20 --out /tmp/a.pt   # the first steps only

For each format (``direct``: ``a+b=`` then the sum; ``scratchpad``: ``a+b=`` then the digit-wise
steps, then ``=`` and the sum) and each of ``--seeds`` seeds (``--seed``, ``--seed`` + 1, ...)
trains the GPT of wmbook.lab.scratchpad (AdditionRecipe: 2 layers of width 64, batches of 32
problems with operands of 1-3 digits, AdamW, 50 warm-up steps and cosine decay over ``--steps``),
then measures greedy exact match of the final sum on 100 fixed problems for each operand length
1..5 (4 and 5 digits never seen in training). Writes every model (float16, ~1.3 MB together) and
the JSON log (addition_scratchpad.json: the batch loss of every step of every model, the accuracy
by length of every model, timings) and prints both sha256s: record them as ADDITION_SHA256 and
ADDITION_LOG_SHA256 in wmbook/lab/scratchpad.py. Seeded and deterministic on the CPU.
"""
from __future__ import annotations

import dataclasses
import platform
import sys
import time

import torch
from _common import parse, report_written, script_parser  # scripts/_common.py

from wmbook.lab.scratchpad import (ADDITION_FILE, FORMATS, AdditionRecipe, exact_match, save_addition, test_sets,
                                   train_addition)


def main(argv: list[str] | None = None) -> int:
    parser = script_parser(__doc__, steps=AdditionRecipe.steps, out=ADDITION_FILE, stop_after=True,
                           steps_help="training steps of each model (the length of the cosine schedule)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per format (default: %(default)s)")
    parser.add_argument("--test-problems", type=int, default=AdditionRecipe.n_test,
                        help="test problems per operand length (default: %(default)s)")
    args = parse(parser, argv)
    if args.test_problems < 1:
        parser.error("--test-problems must be >= 1")
    recipe = dataclasses.replace(AdditionRecipe(), steps=args.steps, n_test=args.test_problems)
    tests = test_sets(recipe)
    models, runs = {f: {} for f in FORMATS}, []
    t0 = time.perf_counter()
    for fmt in FORMATS:
        for seed in range(args.seed, args.seed + args.seeds):
            t1 = time.perf_counter()
            model, losses = train_addition(fmt, seed, recipe, args.stop_after)
            seconds = time.perf_counter() - t1
            acc = {str(n): sum(exact_match(model, pairs)) / len(pairs) for n, pairs in tests.items()}
            models[fmt][seed] = model
            runs.append({"format": fmt, "seed": seed, "train_seconds": round(seconds, 1),
                         "loss": [round(v, 6) for v in losses], "accuracy_by_digits": acc})
            print(f"{fmt} seed {seed}: {len(losses)} steps in {seconds:.0f} s, final loss {losses[-1]:.3f}, "
                  f"accuracy by digits {acc}  ({time.perf_counter() - t0:.0f} s)", flush=True)
    extra = {"runs": runs, "threads": args.threads, "torch": torch.__version__, "python": platform.python_version(),
             "stop_after": args.stop_after}
    sha = save_addition(args.out, models, recipe, extra)
    report_written(args.out, sha)
    return 0


if __name__ == "__main__":
    sys.exit(main())
