"""How fast is this machine? A few training steps of a fixed small GPT, in tokens per second.

Machines of one kind differ by about 4× in speed, so a page's time budget is stated for a
reference machine: ``reference seconds = seconds × (this machine's speed / reference speed)``.
The workload is nanoGPT's CPU recipe for a character model — Hugging Face's
``GPT2LMHeadModel`` with 4 layers, 4 heads, d_model 128, T = 64, batch 12, AdamW — timed on
one thread: with two threads on a busy machine PyTorch's OpenMP workers wait on each other and
the workload ran 5–20× slower than the machine really is, while one thread slows only in
proportion to the load. The reference machine is the slowest of this kind we measured: 5.8k
tokens/s on two threads; on a quiet machine here one thread ran this workload at 0.63–0.73 of
the two-thread speed (three interleaved runs: 8.9k vs 12.2k, 10.0k vs 13.6k, 9.7k vs 15.5k
tokens/s), so the reference's one-thread speed is taken as 4,000 tokens/s (0.69 × 5.8k, rounded
down: a stricter budget). A page that fits 90 reference seconds fits 90 s there.
"""
from __future__ import annotations

import statistics
import time

REFERENCE_TOKENS_PER_SECOND = 4000.0  # one thread (see above)
BUDGET_REFERENCE_SECONDS = 90.0
BATCH, BLOCK, VOCAB = 12, 64, 65


def calibration_speed(steps: int = 6, warmup: int = 2) -> float:
    """Tokens per second of the reference workload on this machine (median of ``steps`` steps)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel
    from transformers.utils import logging

    logging.set_verbosity_error()
    gen = torch.Generator().manual_seed(0)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        cfg = GPT2Config(n_layer=4, n_head=4, n_embd=128, n_positions=BLOCK, vocab_size=VOCAB,
                         resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0)
        model = GPT2LMHeadModel(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randint(0, VOCAB, (BATCH, BLOCK), generator=gen)
    times = []
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for i in range(warmup + steps):
            t0 = time.perf_counter()
            model(x, labels=x).loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            if i >= warmup:
                times.append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(saved)
    return BATCH * BLOCK / statistics.median(times)


def reference_seconds(seconds: float, speed: float) -> float:
    """``seconds`` on this machine (``speed`` tokens/s) as seconds on the reference machine."""
    if speed <= 0:
        raise ValueError(f"speed must be > 0 tokens/s, got {speed}")
    return seconds * speed / REFERENCE_TOKENS_PER_SECOND
