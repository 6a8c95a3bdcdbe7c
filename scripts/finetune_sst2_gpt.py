"""Fine-tune the small GPT of page 5.3.2 on SST-2, and train the same model from scratch, over seeds.

    WMBOOK_DATA_DIR=/work/shared/data python scripts/finetune_sst2_gpt.py   # the committed run, 1-2 min
    python scripts/finetune_sst2_gpt.py --seeds 1 --steps 2 --out /tmp/f.pt  # a smoke test

The labelled data are page 5.3.2's: ``wmbook.lab.finetune.sst2_finetune_split()`` (4,000 SST-2
training sentences drawn with seed 0, and the 872 dev sentences), encoded as on the page
(MiniLM's WordPiece tokens in the pre-trained GPT's reduced vocabulary, at most 64 tokens). For
both starts of ``wmbook.lab.finetune.fine_tune_gpt`` -- the committed pre-trained GPT
(``sst2_gpt.pt``) and random weights of the same configuration -- and each of ``--seeds`` seeds
(``--seed``, ``--seed`` + 1, ...), trains the whole classifier for ``--steps`` steps (the recipe
of ``FineTuneRecipe``) and records its dev accuracy. Writes wmbook/data/checkpoints/sst2_finetune.pt
(the accuracies and the recipe) and, next to it, sst2_finetune.json (every run's dev accuracy and
its training loss at every step) and prints both sha256s: record them as SST2_FINETUNE_SHA256 and
SST2_FINETUNE_LOG_SHA256 in wmbook/lab/finetune.py.

Each run is seeded and on one thread (``fine_tune_gpt`` fixes it; ``--threads`` applies to the
rest), and the learning rate is constant after its warm-up: ``--steps N`` repeats the first N
steps of the committed runs exactly on one machine (page 5.3 re-runs the first steps of seed 0
and compares them with the log). Options: ``--help`` (the shared command line of
scripts/_common.py, plus ``--seeds``).
"""
from __future__ import annotations

import dataclasses
import platform
import time

import torch
from _common import parse, report_written, script_parser  # scripts/_common.py

import wmbook
from wmbook.data.checkpoint import CHECKPOINT_DIR
from wmbook.lab.finetune import (SST2_FINETUNE_FILE, FineTuneRecipe, encode_texts, fine_tune_runs, load_sst2_gpt,
                                 save_finetune_runs, sst2_finetune_split)
from wmbook.nn.bert import minilm_tokenizer

MAX_LEN = 64  # tokens per sentence, [CLS] and [SEP] included (the GPT's n_ctx)


def parser():
    """The command line; its defaults are the committed run's."""
    recipe = FineTuneRecipe()
    p = script_parser(__doc__, steps=recipe.steps, out=CHECKPOINT_DIR / SST2_FINETUNE_FILE,
                      steps_help=f"training steps of each run (batches of {recipe.batch_size} sentences)")
    p.add_argument("--seeds", type=int, default=recipe.seeds, help="runs per start (default: %(default)s)")
    return p


def main(argv: list[str] | None = None) -> int:
    command_line = parser()
    args = parse(command_line, argv)
    recipe = dataclasses.replace(FineTuneRecipe(), steps=args.steps, seeds=args.seeds, seed=args.seed)
    t0 = time.time()
    pre, tok = load_sst2_gpt(), minilm_tokenizer()
    split = sst2_finetune_split()
    x_train, x_dev = (encode_texts([s for s, _ in split[name]], tok, pre.vocab, max_len=MAX_LEN)
                      for name in ("train", "dev"))
    y_train, y_dev = (torch.tensor([y for _, y in split[name]]) for name in ("train", "dev"))
    print(f"{len(x_train):,} training / {len(x_dev):,} dev sentences; {recipe}", flush=True)
    results = fine_tune_runs(pre.model, x_train, y_train, x_dev, y_dev, recipe,
                             report=lambda line: print(f"{line}  ({time.time() - t0:.0f} s)", flush=True))
    seconds = time.time() - t0
    sha = save_finetune_runs(args.out, results, recipe, wmbook.count_parameters(pre.model),
                             {"train_seconds": round(seconds, 1), "threads": args.threads,
                              "n_train": len(x_train), "n_dev": len(x_dev), "max_len": MAX_LEN,
                              "torch": str(torch.__version__), "python": platform.python_version()})
    report_written(args.out, sha, seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
