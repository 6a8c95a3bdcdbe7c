"""Pre-train the tiny BERT of page 3.2 with masked language modelling on WikiText-2.

    python scripts/train_tiny_mlm.py                   # the full recipe, ~5 minutes on a CPU
    python scripts/train_tiny_mlm.py --steps 5 --out /tmp/x.pt   # a smoke test

The recipe is wmbook.lab.mlm.MLMRecipe: a 2-layer BERT of width 64 over MiniLM's WordPiece
pieces restricted to the 2,000 most frequent, trained on WikiText-2's 'valid' split and
evaluated on a fixed masking of its 'test' split. The run is seeded and uses a fixed number of
CPU threads, so it is repeatable on the same machine and library versions. It writes the
checkpoint (~1 MB), a JSON log next to it (held-out evaluation every 100 steps), and prints
the sha256 of both, to record as TINY_MLM_SHA256 and TINY_MLM_LOG_SHA256 in wmbook/lab/mlm.py.
WMBOOK_DATA_DIR may point at the data. The learning rate decays over ``--steps``, so a shorter
``--steps`` is a different (shorter) schedule; ``--stop-after N`` runs the first N steps of the
``--steps`` schedule instead (``--stop-after 200`` reproduces the log's records at steps 0, 100
and 200). Options: ``--help`` (the shared command line of scripts/_common.py).

    python scripts/train_tiny_mlm.py --stop-after 200 --out /tmp/x.pt   # the full run's start

Page 3.2 quotes its curves (the plateau's length, the final accuracy and loss) as mean ± sd
over the committed seed 0 (the page's model) and the other seeds of the same recipe, each run as

    python scripts/train_tiny_mlm.py --seed 1 --out wmbook/data/checkpoints/tiny_mlm_wikitext2_seed1.pt

(their sha256 go into TINY_MLM_SEED{s}_SHA256 and TINY_MLM_SEED{s}_LOG_SHA256 in wmbook/lab/mlm.py).
"""
from __future__ import annotations

import platform
import sys
import time

import torch
from _common import parse, report_written, script_parser  # scripts/_common.py

from wmbook.nn.bert import minilm_tokenizer
from wmbook.lab.mlm import (TINY_MLM_FILE, MLMRecipe, save_tiny_mlm, train_tiny_mlm, unigram_baseline,
                        wikitext_mlm_data)


def parser():
    """The command line; its defaults are the committed run's."""
    return script_parser(__doc__, steps=MLMRecipe.steps, out=TINY_MLM_FILE, stop_after=True,
                         steps_help="training steps; the learning rate decays to its minimum at the last one")


def main(argv: list[str] | None = None) -> int:
    args = parse(parser(), argv)
    recipe = MLMRecipe(steps=args.steps, seed=args.seed,
                       eval_every=min(MLMRecipe.eval_every, args.steps))
    data = wikitext_mlm_data(minilm_tokenizer(), recipe.k, recipe.seq_len)
    base = unigram_baseline(data)
    print(f"unigram baseline: loss {base['loss']:.4f}, accuracy at [MASK] {base['mask_acc']:.4f}")

    def log(r: dict) -> None:
        print(f"step {r['step']:5d}  held-out loss {r['test_loss']:.4f}  "
              f"[MASK] acc {r['test_mask_acc']:.4f}  kept acc {r['test_keep_acc']:.4f}"
              f"  ({r['seconds']:.0f} s)", flush=True)

    t0 = time.perf_counter()
    model, history = train_tiny_mlm(data, recipe, log=log, stop_after=args.stop_after)
    train_seconds = time.perf_counter() - t0
    extra = {"unigram": {k: round(v, 6) for k, v in base.items()},
             **({"stop_after": args.stop_after} if args.stop_after is not None else {}),
             "train_seconds": round(train_seconds, 1), "threads": args.threads,
             "torch": torch.__version__, "python": platform.python_version()}
    sha = save_tiny_mlm(args.out, model, data.vocab, recipe, history, extra=extra)
    report_written(args.out, sha)
    return 0


if __name__ == "__main__":
    sys.exit(main())
