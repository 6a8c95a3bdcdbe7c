"""Train the character-level GPT of page 3.3 on Tiny Shakespeare and write its checkpoint.

    python scripts/train_char_gpt.py                   # the full recipe, 3 seeds: ~17 minutes on one thread
    python scripts/train_char_gpt.py --seeds 1 --steps 5 --out /tmp/x.pt   # a smoke test

The recipe is nanoGPT's CPU recipe for shakespeare_char (see wmbook/lab/char_gpt.py). The run
is seeded and uses a fixed number of CPU threads, so it is repeatable on the same machine
and library versions. It writes the checkpoint (float32 weights + config + vocabulary,
~3 MB), a JSON log next to it (train/val loss every 100 steps), and prints the sha256 of
both, to record as CHAR_GPT_SHA256 and CHAR_GPT_LOG_SHA256 in wmbook/lab/char_gpt.py.
WMBOOK_DATA_DIR may point at the data. The learning rate decays over the recipe's fixed
``lr_decay_steps`` (2,000), so ``--steps N`` runs exactly the first N steps of the full recipe
(``--steps 100`` reproduces the log's records at steps 0 and 100). ``--seeds K`` trains the
recipe from K seeds (``--seed``, ``--seed`` + 1, ...), so that the page can quote the spread of
the result (mean ± sd); the checkpoint is the first seed's model, the log's ``evals`` are its
evaluations, and the log's ``seeds`` list every seed's evaluations, validation loss on the
whole validation split and training time. Options: ``--help`` (the shared command line of
scripts/_common.py, plus ``--seeds``).
"""
from __future__ import annotations

import sys

from _common import parse, report_written, script_parser, train_char_gpt_seeds  # scripts/_common.py

from wmbook.lab.char_gpt import CHAR_GPT_FILE, CharGPTRecipe, save_char_gpt
from wmbook.data.loaders import load_tinyshakespeare


def parser():
    """The command line; its defaults are the committed run's."""
    p = script_parser(__doc__, steps=CharGPTRecipe.steps, out=CHAR_GPT_FILE,
                      steps_help="training steps; fewer run the start of the full recipe (same schedule)")
    p.add_argument("--seeds", type=int, default=3, help="models to train, from --seed on (default: %(default)s)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parse(parser(), argv)
    corpus = load_tinyshakespeare()
    model, recipe, history, extra = train_char_gpt_seeds(
        corpus, lambda seed: CharGPTRecipe(steps=args.steps, seed=seed,
                                           eval_every=min(CharGPTRecipe.eval_every, args.steps)),
        range(args.seed, args.seed + args.seeds), args.threads)
    sha = save_char_gpt(args.out, model, corpus.vocab, recipe, history, extra=extra)
    report_written(args.out, sha)
    return 0


if __name__ == "__main__":
    sys.exit(main())
