"""Benchmarks: wmbook's GPT against Hugging Face's GPT-2, the KV cache, and attention vs length.

``make bench`` runs ``python benchmarks/run.py``. It prints Markdown tables and writes them,
with the machine they ran on, to ``benchmarks/results.md``:

1. one training step (forward, cross-entropy, backward, gradient clipping, AdamW) of
   wmbook's ``GPT`` against ``transformers.GPT2LMHeadModel`` at nanoGPT's CPU recipe
   (4 layers, 4 heads, d_model 128, T 64, batch 12, vocabulary 65, no dropout), and at
   T 256, batch 6. Both models hold the same weights (``GPT.from_hf``), use torch's AdamW
   and the same batch. wmbook runs with ``need_weights=False`` (PyTorch's fused attention,
   as Hugging Face's default "sdpa" does); a third column keeps the attention weights;
2. greedy generation of 256 new tokens with the KV cache against recomputing every step;
3. attention alone vs sequence length: the formula written out (``scaled_dot_product_attention``,
   which forms the ``(T, T)`` weights) against the fused kernel (``fused_attention``).

The variants of each table run interleaved (A B C, C B A, ...) in one process, so a load on
the machine slows them alike; the tables give medians after warm-up steps, and ratios.
``--quick`` is a seconds-long smoke run (``tests/test_bench.py``); it writes nothing unless
``--out`` is given.
"""
from __future__ import annotations

import argparse
import copy
import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without `pip install -e .` too

from wmbook.lab.measure import can_measure_peak_memory, count_parameters, peak_memory  # noqa: E402
from wmbook.lab.measure import format_sig as sig  # noqa: E402
from wmbook.nn.attention import fused_attention, scaled_dot_product_attention  # noqa: E402
from wmbook.nn.gpt import GPT  # noqa: E402
from wmbook.nn.sampling import generate  # noqa: E402

VOCAB, N_LAYERS, N_HEADS, D_MODEL = 65, 4, 4, 128  # nanoGPT's shakespeare_char CPU recipe
MiB = 2**20


def interleaved(fns: dict[str, Callable[[], object]], rounds: int, warmup: int) -> dict[str, list[float]]:
    """Seconds per call of each function, called in turn (order reversed every other round)."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for r in range(warmup + rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            t0 = time.perf_counter()
            fns[name]()
            dt = time.perf_counter() - t0
            if r >= warmup:
                times[name].append(dt)
    return times


def ms(seconds: list[float]) -> float:
    return 1e3 * statistics.median(seconds)


def markdown(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---:" for _ in headers) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def machine(threads: int) -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import transformers

    load = " / ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return (
        f"{cpu}, {os.cpu_count()} cores; torch {torch.__version__} with {threads} thread{'s' * (threads != 1)}; "
        f"transformers {transformers.__version__}; Python {platform.python_version()}; "
        f"load average (1/5/15 min) at the start {load}"
    )


# ------------------------------------------------------------------ 1. training step vs Hugging Face

def gpt_pair(T: int) -> tuple[GPT, torch.nn.Module]:
    """wmbook's GPT and Hugging Face's GPT2LMHeadModel with the same configuration and weights."""
    import transformers

    hf_cfg = transformers.GPT2Config(
        vocab_size=VOCAB, n_positions=T, n_embd=D_MODEL, n_layer=N_LAYERS, n_head=N_HEADS,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=None, eos_token_id=None,
    )
    ref = transformers.GPT2LMHeadModel(hf_cfg)
    ours = GPT.from_hf(ref)
    cfg = ours.cfg
    assert (cfg.n_layers, cfg.n_heads, cfg.d_model, cfg.d_ff, cfg.n_ctx, cfg.vocab_size, cfg.dropout) == (
        N_LAYERS, N_HEADS, D_MODEL, 4 * D_MODEL, T, VOCAB, 0.0), cfg
    assert count_parameters(ours) == count_parameters(ref), (count_parameters(ours), count_parameters(ref))
    return ours.train(), ref.train()


def train_step(model: torch.nn.Module, forward: Callable, x: torch.Tensor, y: torch.Tensor) -> Callable[[], float]:
    """One nanoGPT step: forward, cross-entropy, backward, clip to norm 1, AdamW."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step() -> float:
        logits = forward(model, x)  # (B, T, vocab)
        loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), y.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    return step


def bench_training(settings: list[tuple[int, int]], rounds: int, warmup: int) -> tuple[str, dict[int, float], str]:
    rows, ratios, impl = [], {}, ""
    for T, B in settings:
        torch.manual_seed(0)
        ours, ref = gpt_pair(T)
        kept, impl = copy.deepcopy(ours), ref.config._attn_implementation
        x, y = torch.randint(0, VOCAB, (2, B, T)).unbind(0)  # timing does not depend on the token values
        with torch.no_grad():  # same weights, same batch: the same loss before any step
            a = F.cross_entropy(ours(x, need_weights=False).logits.view(-1, VOCAB), y.view(-1))
            b = F.cross_entropy(ref(input_ids=x, use_cache=False).logits.view(-1, VOCAB), y.view(-1))
        assert abs(a.item() - b.item()) < 1e-4, (a.item(), b.item())
        steps = {
            "wmbook": train_step(ours, lambda m, x: m(x, need_weights=False).logits, x, y),
            "transformers": train_step(ref, lambda m, x: m(input_ids=x, use_cache=False).logits, x, y),
            "wmbook_weights": train_step(kept, lambda m, x: m(x).logits, x, y),
        }
        t = interleaved(steps, rounds, warmup)
        paired = [a / b for a, b in zip(t["wmbook"], t["transformers"])]  # same round, same load
        ratio = statistics.median(paired)
        q1, _, q3 = statistics.quantiles(paired, n=4) if len(paired) > 1 else (ratio, ratio, ratio)
        ratios[T] = ratio
        rows.append([
            f"{T}", f"{B}", f"{count_parameters(ours):,}", sig(ms(t['wmbook'])), sig(ms(t['transformers'])),
            f"{ratio:.2f} ({q1:.2f}–{q3:.2f})", f"{sig(1 / ratio)}×", sig(ms(t['wmbook_weights'])),
        ])
        print(f"  training T={T}: wmbook {ms(t['wmbook']):.1f} ms, transformers {ms(t['transformers']):.1f} ms",
              file=sys.stderr)
    headers = ["T", "batch", "parameters", "wmbook (ms/step)", "transformers (ms/step)",
               "time ratio (IQR)", "wmbook speed vs transformers",
               "wmbook, weights kept (ms/step)"]
    return markdown(headers, rows), ratios, impl


# ------------------------------------------------------------------ 2. KV-cache generation

def bench_generation(new_tokens: int, prompt_len: int, rounds: int, warmup: int) -> str:
    import transformers

    torch.manual_seed(0)
    n_ctx = prompt_len + new_tokens
    cfg = transformers.GPT2Config(vocab_size=VOCAB, n_positions=n_ctx, n_embd=D_MODEL, n_layer=N_LAYERS,
                                  n_head=N_HEADS, bos_token_id=None, eos_token_id=None)
    model = GPT.from_hf(transformers.GPT2LMHeadModel(cfg)).eval()
    prompt = torch.randint(0, VOCAB, (1, prompt_len))
    cached = generate(model, prompt, new_tokens, temperature=0, use_cache=True)
    assert torch.equal(cached, generate(model, prompt, new_tokens, temperature=0, use_cache=False))
    t = interleaved({
        "cache": lambda: generate(model, prompt, new_tokens, temperature=0, use_cache=True),
        "recompute": lambda: generate(model, prompt, new_tokens, temperature=0, use_cache=False),
    }, rounds, warmup)
    rows = [[f"{new_tokens}", f"{prompt_len}", sig(ms(t['cache'])), sig(ms(t['recompute'])),
             f"{sig(ms(t['recompute']) / ms(t['cache']))}×", "yes"]]
    headers = ["new tokens", "prompt", "KV cache (ms)", "recompute (ms)", "speed-up", "same tokens"]
    return markdown(headers, rows)


# ------------------------------------------------------------------ 3. attention vs length

@torch.no_grad()
def bench_attention(lengths: list[int], rounds: int, warmup: int) -> str:
    rows = []
    memory = can_measure_peak_memory()
    for n in lengths:
        q, k, v = torch.randn(3, 1, 8, n, 64).unbind(0)  # (batch, heads, n, d_head), as on page 4.1
        naive = lambda: scaled_dot_product_attention(q, k, v).output  # noqa: E731
        fused = lambda: fused_attention(q, k, v)  # noqa: E731
        t = interleaved({"naive": naive, "fused": fused}, rounds, warmup)
        diff = (naive() - fused()).abs().max().item()
        mem = [sig(peak_memory(f) / MiB) if memory else "n/a" for f in (naive, fused)]
        rows.append([f"{n}", f"{8 * n * n * 4 / MiB:.1f}", sig(ms(t['naive'])), sig(ms(t['fused'])),
                     f"{sig(ms(t['naive']) / ms(t['fused']))}×", *mem, f"{diff:.0e}"])
    headers = ["T", "weights (MiB)", "naive (ms)", "fused (ms)", "fused speed-up",
               "naive peak (MiB)", "fused peak (MiB)", "max abs diff"]
    return markdown(headers, rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=30, help="timed training steps per model (default 30)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--out", type=Path, default=None,
                        help="results file (default benchmarks/results.md; --quick writes only with --out)")
    parser.add_argument("--quick", action="store_true", help="a seconds-long smoke run with tiny repeats")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.threads < 1:
        parser.error("--repeats and --threads must be >= 1")
    out = args.out if args.out is not None or args.quick else ROOT / "benchmarks" / "results.md"
    torch.set_num_threads(args.threads)
    try:
        import transformers
    except ImportError:
        parser.error("the reference needs transformers: pip install -r requirements.txt")
    transformers.logging.set_verbosity_error()

    quick = args.quick
    rounds, warmup = (1, 1) if quick else (args.repeats, 5)
    gen_rounds = 1 if quick else max(3, args.repeats // 10)
    new_tokens = 16 if quick else 256
    lengths = [128, 256] if quick else [256, 512, 1024, 2048, 4096]
    started = datetime.datetime.now(datetime.timezone.utc)
    header = machine(args.threads)

    print("training steps ...", file=sys.stderr)
    training, ratios, impl = bench_training([(64, 12), (256, 6)], rounds, warmup)
    print("generation ...", file=sys.stderr)
    generation = bench_generation(new_tokens, 64, gen_rounds, 1)
    print("attention ...", file=sys.stderr)
    attention = bench_attention(lengths, 3 if quick else 7, 1)

    load = " / ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    shown = [a for a in (sys.argv[1:] if argv is None else argv) if a != "--out" and Path(a) != out]
    command = " ".join(["python benchmarks/run.py", *shown])
    over = "" if quick else f" over {rounds} steps after {warmup} warm-up steps"
    verdict = ", ".join(f"T={T}: {sig(1 / r)}×" for T, r in ratios.items())
    text = f"""# Benchmarks

`{command}`, {started:%Y-%m-%d %H:%M} UTC (`make bench` runs `python benchmarks/run.py`).

**Machine:** {header}.

Variants of a table run interleaved in one process (order reversed every other round), so a load
on the machine slows them alike; times are medians{over}, shown to two significant figures. Load average at the end: {load}.

## 1. Training step: wmbook's `GPT` vs `transformers.GPT2LMHeadModel`

nanoGPT's CPU recipe: {N_LAYERS} layers, {N_HEADS} heads, d_model {D_MODEL}, vocabulary {VOCAB}, no dropout,
n_ctx = T. Same weights (`GPT.from_hf`, parameter counts asserted equal, same first loss), same batch,
one step = forward, cross-entropy, backward, clip to norm 1, `torch.optim.AdamW`. wmbook runs with
`need_weights=False` (PyTorch's fused attention; transformers runs its default, "{impl}"); the last
column is wmbook keeping the attention weights (softmax(QKᵀ/√d_k) formed explicitly, the book's pages).
Time ratio = wmbook's step time / transformers' step time in the same round, median over the rounds
(interquartile range in brackets; below 1: wmbook is faster). wmbook's speed: {verdict}.

{training}

## 2. Generation: KV cache vs recomputation

wmbook's `generate` (greedy), same model sizes, n_ctx = prompt + new tokens, batch 1.

{generation}

## 3. Attention alone vs sequence length: naive vs fused

One sequence, 8 heads, d_head 64, no mask, no gradient. Naive: `scaled_dot_product_attention`
(forms the (T, T) weights); fused: `fused_attention` (`F.scaled_dot_product_attention`). Peak memory
is the extra resident memory of one call (`wmbook.lab.measure.peak_memory`).

{attention}
"""
    print(text)
    if out is not None:
        out.write_text(text)
        print(f"written to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
