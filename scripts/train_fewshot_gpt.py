"""Train the few-shot GPT of page 2.3 over several seeds and write seed 0's checkpoint with all seeds' log.

    python scripts/train_fewshot_gpt.py                          # the committed run: 5 seeds, ~30 min on a CPU
    python scripts/train_fewshot_gpt.py --steps 5 --seeds 2 --out /tmp/x.pt    # a smoke test
    python scripts/train_fewshot_gpt.py --stop-after 100 --seeds 1 --out /tmp/x.pt   # the committed run's start

The recipe is wmbook.lab.icl.FewShotRecipe: a 2-layer GPT trained on prompts of a corpus of 8
tasks (each a fixed scrambling of 16 symbols) with 6 demonstrations each, the loss on every
answer. The accuracy on the query appears suddenly, after a plateau whose length depends on the
seed, so the script trains ``--seeds`` seeds (``--seed``, ``--seed`` + 1, ...) and logs each
one's accuracy at 0..6 shots on the page's 2,000 prompts per shot count; the page reports
their mean and spread. The checkpoint (~0.5 MB) holds the weights of the first seed; its JSON
log next to it holds that seed's accuracy every ``eval_every`` steps, the loss of each of its
first 100 steps (the page re-runs them and compares), and every seed's results. Seeded and
deterministic on the CPU with a fixed thread count, so repeatable on one machine and library
versions; the sha256 of both files is printed, to record as FEW_SHOT_GPT_SHA256 and
FEW_SHOT_GPT_LOG_SHA256 in wmbook/lab/icl.py. The learning rate decays over ``--steps``, so a
shorter ``--steps`` is a different schedule; ``--stop-after N`` runs the first N steps of the
``--steps`` schedule instead. Options: ``--help`` (the shared command line of
scripts/_common.py, plus ``--seeds``).
"""
from __future__ import annotations

import platform
import sys
import time

import torch
from _common import parse, report_written, script_parser  # scripts/_common.py

from wmbook.data.checkpoint import CHECKPOINT_DIR
from wmbook.lab.icl import FEW_SHOT_GPT_FILE, FewShotRecipe, few_shot_accuracy, save_few_shot_gpt, train_few_shot_gpt

REPLAYED_STEPS = 100  # the log keeps the loss of each of the first steps, for the page to re-run


def parser():
    """The command line; its defaults are the committed run's."""
    p = script_parser(__doc__, steps=FewShotRecipe.steps, out=CHECKPOINT_DIR / FEW_SHOT_GPT_FILE, stop_after=True,
                      steps_help="training steps of each seed; the learning rate decays to 0 at the last one")
    p.add_argument("--seeds", type=int, default=5, metavar="N",
                   help="train seeds --seed .. --seed + N - 1; the checkpoint holds the first one's weights "
                        "(default: %(default)s)")
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = parse(p, argv)
    shots = range(FewShotRecipe.max_shots + 1)
    results, first = [], None
    t_all = time.perf_counter()
    for seed in range(args.seed, args.seed + args.seeds):
        recipe = FewShotRecipe(steps=args.steps, seed=seed, eval_every=min(FewShotRecipe.eval_every, args.steps))

        def log(r: dict, seed=seed) -> None:
            accs = "  ".join(f"{k} {v:.3f}" for k, v in r.items() if k.startswith("acc"))
            print(f"seed {seed}  step {r['step']:5d}  loss {r['loss']:.4f}  {accs}"
                  f"  ({time.perf_counter() - t0:.0f} s)", flush=True)

        t0 = time.perf_counter()
        model, history = train_few_shot_gpt(recipe, stop_after=args.stop_after, log=log)
        seconds = time.perf_counter() - t0
        accuracy = [round(few_shot_accuracy(lambda t: model(t).logits, recipe.tasks, k), 6) for k in shots]
        print(f"seed {seed}: accuracy at 0..{shots[-1]} shots {accuracy}  ({seconds:.0f} s)", flush=True)
        evals = [r for r in history.records if "acc0" in r]
        jump = next((r["step"] for r in evals if r["acc2"] >= 0.5), None)
        results.append({"seed": seed, "shots": accuracy, "acc2_above_half_at": jump,
                        "train_seconds": round(seconds, 1)})
        if first is None:
            first = (recipe, model, history)
    recipe, model, history = first
    losses = history.series("loss")[1][:REPLAYED_STEPS]
    extra = {"first_losses": [round(v, 6) for v in losses], "shots": list(shots), "seeds": results,
             **({"stop_after": args.stop_after} if args.stop_after is not None else {}),
             "train_seconds": round(time.perf_counter() - t_all, 1), "threads": args.threads,
             "torch": torch.__version__, "python": platform.python_version()}
    sha = save_few_shot_gpt(args.out, model, recipe, history, extra=extra)
    report_written(args.out, sha)
    return 0


if __name__ == "__main__":
    sys.exit(main())
