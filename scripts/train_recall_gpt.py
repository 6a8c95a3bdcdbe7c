"""Train the associative-recall GPT of page 5.3.3 and write its checkpoint.

    python scripts/train_recall_gpt.py                         # the full recipe
    python scripts/train_recall_gpt.py --steps 5 --out /tmp/r.pt   # a smoke test

A 2-layer GPT learns to answer "k_q -> v_q" from facts "k_1 v_1 ... k_N v_N" placed in its
context, fresh for every sequence (``wmbook.lab.icl``). Its induction circuit forms abruptly after
a plateau whose length varies from run to run (hundreds to thousands of steps on a CPU), too
long and too unpredictable for the page's time budget, hence this script. The run is seeded
and uses one CPU thread, so it is repeatable on the same machine and library versions. It
prints the sha256 to record as ``RECALL_GPT_SHA256`` in wmbook/lab/icl.py. The page also shows the
recipe's other seeds: ``--seed S --out wmbook/data/checkpoints/recall_gpt_seedS.pt``, each sha256
recorded in ``RECALL_GPT_SEEDS_SHA256``. Its training log
(step, phase, loss, accuracy with 4 and 8 facts, every 100 steps) is stored inside the .pt.

The run has no fixed length: phase 1 lasts until the recall accuracy with 4 facts reaches 0.9
(at most ``phase1_max_steps``), phase 2 then runs ``phase2_steps`` more. ``--steps N`` caps
the total at N steps (default: phase1_max_steps + phase2_steps = 9,000, which the recipe never
exceeds, i.e. no cap); nothing else depends on it, so ``--steps 300`` runs exactly the first
300 steps of the full run and reproduces its records at steps 100, 200 and 300. Options:
``--help`` (the shared command line of scripts/_common.py).
"""
from __future__ import annotations

import platform
import time

import torch
from _common import parse, script_parser  # scripts/_common.py

from wmbook.data.checkpoint import CHECKPOINT_DIR
from wmbook.lab.icl import RECALL_GPT_FILE, RecallRecipe, save_recall_gpt, train_recall_gpt


def parser():
    """The command line; its defaults are the committed run's."""
    return script_parser(__doc__, steps=RecallRecipe.phase1_max_steps + RecallRecipe.phase2_steps,
                         out=CHECKPOINT_DIR / RECALL_GPT_FILE,
                         steps_help="at most this many training steps; the recipe itself stops "
                                    "phase2_steps after it switches to phase 2")


def main(argv: list[str] | None = None) -> int:
    args = parse(parser(), argv)
    recipe = RecallRecipe(seed=args.seed)

    def log(r: dict) -> None:
        print(f"step {r['step']:5d}  phase {r['phase']}  loss {r['loss']:.3f}  "
              f"accuracy with 4 facts {r['acc4']:.3f}, with 8 facts {r['acc8']:.3f}", flush=True)

    t0 = time.perf_counter()
    model, records = train_recall_gpt(recipe, log, max_steps=args.steps)  # the default cap is the recipe's own limit
    seconds = time.perf_counter() - t0
    meta = {"train_seconds": round(seconds, 1), "torch": str(torch.__version__),
            "python": platform.python_version()}
    sha = save_recall_gpt(args.out, model, recipe, records, meta)
    print(f"wrote {args.out} ({args.out.stat().st_size / 2**10:.0f} KiB) after {seconds:.0f} s")
    print(f"sha256 {sha}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
