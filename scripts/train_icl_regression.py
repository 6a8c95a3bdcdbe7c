"""Train the in-context linear-regression Transformer of page 2.3 (Garg et al. 2022, CPU-sized).

    python scripts/train_icl_regression.py                 # the committed checkpoint (~3 min)
    python scripts/train_icl_regression.py --steps 5 --out /tmp/x.pt                 # a smoke test
    python scripts/train_icl_regression.py --stop-after 201 --out /tmp/x.pt           # the full run's start
    python scripts/train_icl_regression.py --seed 1 --out wmbook/data/checkpoints/icl_linreg_seed1.pt  # another seed

Seeded and deterministic on the CPU. Prompts hold 1..max_k examples (a curriculum grows
the maximum during the first half of ``--steps``, so a shorter ``--steps`` is a different
curriculum; ``--stop-after N`` runs the first N steps of the ``--steps`` curriculum instead:
``--stop-after 201`` reproduces the log's records at steps 0, 100 and 200). Writes the
checkpoint with its training log (the batch loss every 100 steps and at the last step,
stored inside the .pt), and prints its sha256 (record it as ICL_REGRESSOR_SHA256 in
wmbook/lab/function_icl.py). Page 2.3 quotes the mean ± sd over several seeds of the same
recipe: the committed seed 0 (``icl_linreg.pt``, the page's example model) and the seeds
s = 1, 2, ... run with ``--seed s --out wmbook/data/checkpoints/icl_linreg_seed{s}.pt`` (their
sha256 in ICL_REGRESSOR_SEEDS_SHA256). Options: ``--help`` (the shared command line of
scripts/_common.py, plus ``--batch`` and ``--lr``).
"""
from __future__ import annotations

import hashlib
import time

import torch
from _common import parse, script_parser  # scripts/_common.py

from wmbook.data.checkpoint import CHECKPOINT_DIR
from wmbook.lab.function_icl import (ICL_REGRESSOR_FILE, ICLRegressor, ICLRegressorConfig, linear_prompts,
                                     save_regressor)

DEFAULT_OUT = CHECKPOINT_DIR / ICL_REGRESSOR_FILE


def parser():
    """The command line; its defaults are the committed run's."""
    p = script_parser(__doc__, steps=6000, out=DEFAULT_OUT, stop_after=True,
                      steps_help="training steps (batches of prompts); the curriculum spans the first half")
    p.add_argument("--batch", type=int, default=64, help="prompts per step (default: %(default)s)")
    p.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate (default: %(default)s)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parse(parser(), argv)

    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    cfg = ICLRegressorConfig()
    model = ICLRegressor(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr)
    # the keys of the committed log's config (the threads are fixed, not recorded)
    config = {"steps": args.steps, "batch": args.batch, "lr": args.lr, "seed": args.seed, "out": str(args.out)}
    if args.stop_after is not None:
        config["stop_after"] = args.stop_after
    log = {"step": [], "loss": [], "config": config}
    last = args.steps if args.stop_after is None else args.stop_after
    t0 = time.time()
    for step in range(last):
        # curriculum: the longest prompt grows from 3 to max_k examples over the first half
        k_max = min(cfg.max_k, 3 + (cfg.max_k - 3) * step // max(1, args.steps // 2))
        p = linear_prompts(args.batch, k_max, cfg.d, generator=gen)
        pred = model(p.xs, p.ys)
        loss = ((pred - p.ys) ** 2).mean() / cfg.d  # every position is a prompt with fewer examples
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 100 == 0 or step == last - 1:
            log["step"].append(step)
            log["loss"].append(loss.item())
            print(f"step {step:5d}  k_max {k_max:2d}  loss {loss.item():.3f}  {time.time() - t0:.0f} s", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_regressor(model.eval(), args.out, log)
    print("wrote", args.out, "sha256", hashlib.sha256(args.out.read_bytes()).hexdigest())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
