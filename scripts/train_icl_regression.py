"""Train the in-context linear-regression Transformer of page 2.3 (Garg et al. 2022, CPU-sized).

    python scripts/train_icl_regression.py                 # the committed checkpoint (~3 min)
    python scripts/train_icl_regression.py --steps 5 --out /tmp/x.pt

Seeded and deterministic on the CPU. Prompts hold 1..max_k examples (a curriculum grows
the maximum during the first half). Writes the checkpoint with its training log, and
prints its sha256 (record it in wmbook/data/checkpoints.py).
"""
from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path

import torch

from wmbook.lab.function_icl import ICLRegressor, ICLRegressorConfig, linear_prompts, save_regressor

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "wmbook" / "data" / "checkpoints" / "icl_linreg.pt"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(args.seed)
    cfg = ICLRegressorConfig()
    model = ICLRegressor(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr)
    log = {"step": [], "loss": [], "config": vars(args) | {"out": str(args.out)}}
    t0 = time.time()
    for step in range(args.steps):
        # curriculum: the longest prompt grows from 3 to max_k examples over the first half
        k_max = min(cfg.max_k, 3 + (cfg.max_k - 3) * step // max(1, args.steps // 2))
        p = linear_prompts(args.batch, k_max, cfg.d, generator=gen)
        pred = model(p.xs, p.ys)
        loss = ((pred - p.ys) ** 2).mean() / cfg.d  # every position is a prompt with fewer examples
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 100 == 0 or step == args.steps - 1:
            log["step"].append(step)
            log["loss"].append(loss.item())
            print(f"step {step:5d}  k_max {k_max:2d}  loss {loss.item():.3f}  {time.time() - t0:.0f} s", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_regressor(model.eval(), args.out, log)
    print("wrote", args.out, "sha256", hashlib.sha256(args.out.read_bytes()).hexdigest())


if __name__ == "__main__":
    main()
