"""REINFORCE on the Shakespeare character GPT toward a letter-frequency reward, for five KL-penalty weights (page 8.3).

    python scripts/train_reinforce.py                                  # the committed runs (~5 min, one thread)
    python scripts/train_reinforce.py --seeds 1 --steps 3 --out /tmp/r.pt   # a quick check

For each of ``--seeds`` seeds (``--seed``, ``--seed`` + 1, ...) and each KL weight in ``--betas``
(default 0.3, 0 (without the penalty), 0.03, 0.1 and 1.0: the reward-KL frontier of page 8.3; 0.3
first, so the stored policy is the same as with the earlier default of 0.3 and 0) runs
wmbook.lab.rl.reinforce (ReinforceRecipe: 16 samples of 48 characters per step after a newline,
reward = the fraction of letters "e", leave-one-out baseline, Adam with a constant learning rate 1e-4) for ``--steps`` steps from the
committed character GPT of page 3.3. The learning rate is constant, so ``--steps N`` repeats the
first N steps of a longer run. Writes the first seed's policy with the first beta (float16,
~1.6 MB) and, next to it, the JSON log (every run's reward, KL per character and reference
perplexity at every step; four samples before and after each run), and prints both sha256s:
record them as REINFORCE_SHA256 and REINFORCE_LOG_SHA256 in wmbook/lab/rl.py.
Seeded and deterministic on the CPU. Options: ``--help`` (the shared command line of
scripts/_common.py, plus ``--seeds`` and ``--betas``).
"""
from __future__ import annotations

import dataclasses
import platform
import sys
import time

import torch
from _common import parse, report_written, script_parser  # scripts/_common.py

from wmbook.lab.char_gpt import load_char_gpt
from wmbook.lab.rl import REINFORCE_FILE, ReinforceRecipe, reinforce, sample_texts, save_policy

SAMPLE_SEED = 1234  # the seed of the samples shown before and after
BETAS = (ReinforceRecipe.beta, 0.0, 0.03, 0.1, 1.0)  # the committed KL weights; the first is stored
N_SAMPLES = 4


def main(argv: list[str] | None = None) -> int:
    parser = script_parser(__doc__, steps=ReinforceRecipe.steps, out=REINFORCE_FILE,
                           steps_help="REINFORCE steps of each run (constant learning rate)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per KL weight (default: %(default)s)")
    parser.add_argument("--betas", type=float, nargs="+", default=list(BETAS),
                        help="KL weights; the first seed of the first is stored (default: %(default)s)")
    args = parse(parser, argv)
    g = load_char_gpt()
    base = dataclasses.replace(ReinforceRecipe(), steps=args.steps)
    before = sample_texts(g.model, g.encode, g.decode, base.prompt, N_SAMPLES, base.length, SAMPLE_SEED)
    runs, kept, t0 = [], None, time.perf_counter()
    for beta in args.betas:
        for seed in range(args.seed, args.seed + args.seeds):
            recipe = dataclasses.replace(base, beta=beta, seed=seed)
            t1 = time.perf_counter()
            policy, hist = reinforce(g.model, g.encode, g.decode, recipe)
            after = sample_texts(policy, g.encode, g.decode, base.prompt, N_SAMPLES, base.length, SAMPLE_SEED)
            runs.append({"beta": beta, "seed": seed, "seconds": round(time.perf_counter() - t1, 1),
                         **{k: [round(getattr(s, k), 6) for s in hist] for k in ("reward", "kl", "ref_ppl", "loss")},
                         "samples_after": after})
            if kept is None:
                kept = policy
            print(f"beta {beta} seed {seed}: reward {hist[0].reward:.3f} -> {hist[-1].reward:.3f}, KL/char "
                  f"{hist[-1].kl:.3f}, reference perplexity {hist[0].ref_ppl:.2f} -> {hist[-1].ref_ppl:.2f}  "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
    log = {"recipe": dataclasses.asdict(base), "betas": args.betas, "seeds": list(range(args.seed, args.seed + args.seeds)),
           "sample_seed": SAMPLE_SEED, "samples_before": before, "runs": runs, "threads": args.threads,
           "torch": torch.__version__, "python": platform.python_version()}
    sha = save_policy(args.out, kept, log)
    report_written(args.out, sha)
    return 0


if __name__ == "__main__":
    sys.exit(main())
