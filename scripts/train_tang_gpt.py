"""Train the character GPT of page 6.3 (section 6.3.3) on the Tang quatrains and write its checkpoint.

    python scripts/train_tang_gpt.py                                  # the committed run: 2 seeds, 12-20 min each on one thread
    python scripts/train_tang_gpt.py --seeds 1 --steps 3 --out /tmp/t.pt   # a quick check

The corpus is wmbook.lab.poetry.tang_corpus (1,946 quatrains, one a line as L1，L2。L3，L4。,
shuffled with seed 0, 10 % of the poems held out); the recipe is wmbook.lab.poetry.tang_recipe
(page 3.3's character GPT with 3 layers and dropout 0.1), trained with
wmbook.lab.char_gpt.train_char_gpt. The learning rate decays over the recipe's fixed
lr_decay_steps, so ``--steps N`` runs exactly the first N steps of the full recipe. ``--seeds K``
trains K seeds (--seed, --seed + 1, ...); the checkpoint (float16 weights, ~2 MB) is the first
seed's model, the JSON log next to it holds its evaluations and every seed's. Prints both sha256s:
record them as TANG_GPT_SHA256 and TANG_GPT_LOG_SHA256 in wmbook/lab/poetry.py.
WMBOOK_DATA_DIR may point at the data. Seeded and deterministic on the CPU.
"""
from __future__ import annotations

import sys

from _common import parse, report_written, script_parser, train_char_gpt_seeds  # scripts/_common.py

from wmbook.lab.poetry import TANG_GPT_FILE, save_tang_gpt, tang_corpus, tang_recipe


def parser():
    """The command line; its defaults are the committed run's."""
    p = script_parser(__doc__, steps=tang_recipe().steps, out=TANG_GPT_FILE,
                      steps_help="training steps; fewer run the start of the full recipe (same schedule)")
    p.add_argument("--seeds", type=int, default=2, help="models to train, from --seed on (default: %(default)s)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parse(parser(), argv)
    corpus = tang_corpus()
    model, recipe, history, extra = train_char_gpt_seeds(
        corpus, lambda seed: tang_recipe(steps=args.steps, seed=seed, eval_every=min(100, args.steps)),
        range(args.seed, args.seed + args.seeds), args.threads)
    sha = save_tang_gpt(args.out, model, corpus.vocab, recipe, history, extra=extra)
    report_written(args.out, sha)
    return 0


if __name__ == "__main__":
    sys.exit(main())
