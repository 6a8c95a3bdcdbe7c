"""Train the associative-recall GPT of page 5.3.3 and write its checkpoint.

    python scripts/train_recall_gpt.py                         # the full recipe
    python scripts/train_recall_gpt.py --max-steps 5 --out /tmp/r.pt   # a smoke test

A 2-layer GPT learns to answer "k_q -> v_q" from facts "k_1 v_1 ... k_N v_N" placed in its
context, fresh for every sequence (``wmbook.lab.icl``). Its induction circuit forms abruptly after
a plateau whose length varies from run to run (hundreds to thousands of steps on a CPU), too
long and too unpredictable for the page's time budget, hence this script. The run is seeded
and uses one CPU thread, so it is repeatable on the same machine and library versions. It
prints the sha256 to record as ``RECALL_GPT_SHA256`` in wmbook/lab/icl.py.
"""
from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

from wmbook.data.checkpoint import CHECKPOINT_DIR
from wmbook.lab.icl import RECALL_GPT_FILE, RecallRecipe, save_recall_gpt, train_recall_gpt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=CHECKPOINT_DIR / RECALL_GPT_FILE)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-steps", type=int, default=None, help="stop early (smoke tests)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    recipe = RecallRecipe(seed=args.seed)

    def log(r: dict) -> None:
        print(f"step {r['step']:5d}  phase {r['phase']}  loss {r['loss']:.3f}  "
              f"accuracy with 4 facts {r['acc4']:.3f}, with 8 facts {r['acc8']:.3f}", flush=True)

    t0 = time.perf_counter()
    model, records = train_recall_gpt(recipe, log, max_steps=args.max_steps)
    seconds = time.perf_counter() - t0
    meta = {"train_seconds": round(seconds, 1), "torch": str(torch.__version__),
            "python": platform.python_version()}
    sha = save_recall_gpt(args.out, model, recipe, records, meta)
    print(f"wrote {args.out} ({args.out.stat().st_size / 2**10:.0f} KiB) after {seconds:.0f} s")
    print(f"sha256 {sha}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
