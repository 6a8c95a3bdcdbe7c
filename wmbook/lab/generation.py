r"""Decoding knobs and what they do to generated text (page 6.3, section 6.3.2).

:func:`sample_with_logprobs` is :func:`wmbook.nn.sampling.generate` (same filters, same draws
for the same generator) that also records, for every generated token, its log-probability
under the model's *unfiltered* distribution at temperature 1. From the samples:

* **distinct-n** (Li et al. 2016): distinct word n-grams / all word n-grams, pooled over the
  samples of one setting (diversity across samples);
* **repetition rate** (seq-rep-n, Welleck et al. 2020): per sample,
  :math:`1 - \#\text{distinct n-grams} / \#\text{n-grams}` of its words, averaged (loops inside a sample);
* **self-perplexity**: :math:`\exp\big(-\frac{1}{N}\sum_t \log p_\theta(x_t \mid x_{<t})\big)` of the
  generated characters under the model itself (how "expected" the text is to the model).

:func:`name_recall` measures prompting as working memory: a name is mentioned, ``d`` characters
later its first letters come again; how likely does the model complete it, compared with a
prompt that never mentioned it, and does that change when the mention leaves the window?
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import Tensor

from wmbook.nn.sampling import filter_logits, next_token_logits


@dataclass(frozen=True)
class Decoding:
    """One decoding setting: ``temperature`` (0 = greedy), ``top_k``, ``top_p`` (None = off)."""

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0 (0 = greedy), got {self.temperature}")

    @property
    def label(self) -> str:
        if self.temperature == 0:
            return "greedy"
        parts = [f"T={self.temperature:g}"]
        if self.top_k is not None:
            parts.append(f"k={self.top_k}")
        if self.top_p is not None:
            parts.append(f"p={self.top_p:g}")
        return ", ".join(parts)


@torch.no_grad()
def sample_with_logprobs(model, idx: Tensor, max_new_tokens: int, decoding: Decoding = Decoding(),
                         generator: torch.Generator | Sequence[torch.Generator] | None = None,
                         mask_fn: Callable[[Tensor], Tensor] | None = None) -> tuple[Tensor, Tensor]:
    """Generate like :func:`wmbook.nn.sampling.generate`; return ``(ids (B, T + n), logp (B, n))``.

    ``logp[b, t]`` is :math:`\\log p_\\theta(x_t \\mid x_{<t})` of the t-th generated token under the
    unfiltered softmax at temperature 1 (the model's own view of its sample; with ``mask_fn``, of
    the masked, renormalised one). When prompt and continuation fit in ``n_ctx`` a KV cache is used
    (as ``generate(use_cache=True)``), otherwise the window slides (as ``use_cache=False``). ``mask_fn(ids)`` may return a bool mask (B, V) of
    allowed tokens (constrained decoding; see :mod:`wmbook.lab.poetry`). ``generator`` may be a list
    of G generators: the rows are then G equal groups (e.g. seeds), group g drawing from generator g,
    so one batched forward pass serves several seeds; each group draws what it would draw alone.
    """
    if idx.dim() != 2 or idx.shape[1] < 1:
        raise ValueError(f"idx must be (batch, seq) with seq >= 1, got {tuple(idx.shape)}")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    gens = list(generator) if isinstance(generator, (list, tuple)) else [generator]
    if idx.shape[0] % len(gens):
        raise ValueError(f"{idx.shape[0]} rows cannot be split into {len(gens)} equal groups, one per generator")
    n_ctx = model.cfg.n_ctx
    cache = idx.shape[1] + max_new_tokens - 1 <= n_ctx  # the whole text fits: reuse keys and values
    was_training = model.training
    model.eval()
    logps, past = [], None
    for _ in range(max_new_tokens):
        logits, past = next_token_logits(model, idx, past, cache)  # (B, V)
        if mask_fn is not None:
            allowed = mask_fn(idx)  # (B, V) bool
            logits = logits.masked_fill(~allowed, float("-inf"))
        if decoding.temperature == 0:
            nxt = logits.argmax(dim=-1, keepdim=True)
        else:
            probs = filter_logits(logits / decoding.temperature, decoding.top_k, decoding.top_p).softmax(dim=-1)
            nxt = torch.cat([torch.multinomial(p, 1, generator=g)
                             for p, g in zip(probs.chunk(len(gens)), gens)])  # (B, 1)
        logps.append(logits.log_softmax(dim=-1).gather(1, nxt))  # (B, 1)
        idx = torch.cat([idx, nxt], dim=1)
    model.train(was_training)
    return idx, (torch.cat(logps, dim=1) if logps else torch.zeros(idx.shape[0], 0))


_WORD = re.compile(r"[A-Za-z']+")


def words(text: str) -> list[str]:
    """Lower-cased words (letters and apostrophes) of ``text``."""
    return [w.lower() for w in _WORD.findall(text)]


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    """All n-grams of ``tokens`` in order (empty if there are fewer than n tokens)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct word n-grams / all word n-grams, pooled over ``texts`` (Li et al. 2016); nan if none."""
    grams = [g for t in texts for g in ngrams(words(t), n)]
    return len(set(grams)) / len(grams) if grams else float("nan")


def repetition_rate(texts: Sequence[str], n: int = 2) -> float:
    """Mean over texts of ``1 - distinct/all`` word n-grams inside each text (seq-rep-n); texts with
    no n-gram are left out; nan if none has one."""
    rates = []
    for t in texts:
        g = ngrams(words(t), n)
        if g:
            rates.append(1 - len(set(g)) / len(g))
    return sum(rates) / len(rates) if rates else float("nan")


def self_perplexity(logp: Tensor) -> float:
    """:math:`\\exp(-\\text{mean}\\log p)` over all generated tokens (``logp`` from :func:`sample_with_logprobs`)."""
    if logp.numel() == 0:
        raise ValueError("no generated tokens: logp is empty")
    return math.exp(-logp.float().mean().item())


def decoding_sweep(model, encode, decode, prompt: str, settings: Sequence[Decoding], seeds: Sequence[int],
                   n_samples: int = 10, n_new: int = 57, n: int = 1) -> list[dict]:
    """For every setting and seed: ``n_samples`` continuations of ``prompt`` (``n_new`` characters)
    and their distinct-1, distinct-2, seq-rep-``n`` and self-perplexity. One row per (setting, seed).
    The default length fills the 64-character window of page 3.3's model after a 7-character prompt
    (so the KV cache is used)."""
    rows = []
    idx = torch.tensor([encode(prompt)] * (n_samples * len(seeds)))  # one group of rows per seed
    for dec in settings:
        ids, logp = sample_with_logprobs(model, idx, n_new, dec,
                                         generator=[torch.Generator().manual_seed(s) for s in seeds])
        for i, seed in enumerate(seeds):
            part = slice(i * n_samples, (i + 1) * n_samples)
            texts = [decode(r[len(prompt):]) for r in ids[part].tolist()]
            rows.append({"setting": dec.label, "temperature": dec.temperature, "top_k": dec.top_k,
                         "top_p": dec.top_p, "seed": seed, **text_metrics(texts, n),
                         "self_ppl": self_perplexity(logp[part]), "example": texts[0]})
    return rows


def text_metrics(texts: Sequence[str], n: int = 1) -> dict:
    """distinct-1, distinct-2 (pooled) and seq-rep-``n`` (per text, averaged) of ``texts``."""
    return {"distinct_1": distinct_n(texts, 1), "distinct_2": distinct_n(texts, 2), "rep": repetition_rate(texts, n)}


@torch.no_grad()
def continuation_logprob(model, encode, prompt: str, continuation: str) -> float:
    r""":math:`\log p_\theta(\text{continuation} \mid \text{prompt})`, every character read with the
    last ``n_ctx`` characters before it (the sliding window of :func:`sample_with_logprobs`)."""
    if not continuation:
        raise ValueError("continuation must not be empty")
    ids = encode(prompt + continuation)
    n_ctx, start = model.cfg.n_ctx, len(ids) - len(continuation)
    if start < 1:
        raise ValueError("prompt must not be empty")
    windows = torch.stack([torch.tensor(ids[max(0, t - n_ctx):t] if t >= n_ctx else
                                        ids[:t] + [0] * (n_ctx - t)) for t in range(start, len(ids))])
    last = torch.tensor([min(t, n_ctx) - 1 for t in range(start, len(ids))])  # position predicting ids[t]
    logp = model(windows).logits.float().log_softmax(dim=-1)  # (n, T, V); right padding is never read
    return sum(logp[j, last[j], ids[t]].item() for j, t in enumerate(range(start, len(ids))))


def name_prompt(name: str, filler: str, cue: int = 2, opener: str = "Good",
                mention: str | None = None) -> tuple[str, int]:
    """``"<opener> <mention>, <filler>\\nI pray you, <name[:cue]>"`` (``mention`` defaults to ``name``) and
    the distance in characters from the end of the mention to the end of the prompt (where the rest
    of the name is due)."""
    if not 0 < cue < len(name):
        raise ValueError(f"cue must be in 1..{len(name) - 1} for the name {name!r}, got {cue}")
    mention = name if mention is None else mention
    prompt = f"{opener} {mention}, {filler}\nI pray you, {name[:cue]}"
    return prompt, len(prompt) - len(opener) - 1 - len(mention)


@torch.no_grad()
def name_recall(model, encode, name: str, filler: str, lengths: Sequence[int], cue: int = 2,
                control: str = "sir") -> list[dict]:
    r"""Does the model complete a name it was told ``d`` characters ago?

    For every length L the prompt of :func:`name_prompt` carries ``filler[:L]`` between the name's
    mention and its cue (the first ``cue`` letters). ``p_context`` is the per-character probability
    of the rest of the name, :math:`\exp(\frac{1}{m}\log p_\theta(\text{rest} \mid \text{prompt}))`;
    ``p_control`` the same when the mention is ``control`` instead of the name (nothing to recall).
    One row per length with ``distance``; ``in_window`` says whether any of the mention is among the
    last ``n_ctx`` characters when the first letter after the cue is predicted (``distance < n_ctx``;
    later letters see even less of it).
    """
    rows = []
    rest = name[cue:]
    for L in lengths:
        if L > len(filler):
            raise ValueError(f"length {L} exceeds the filler ({len(filler)} characters)")
        prompt, distance = name_prompt(name, filler[:L], cue)
        ctrl, _ = name_prompt(name, filler[:L], cue, mention=control)
        rows.append({"length": L, "distance": distance, "in_window": distance < model.cfg.n_ctx,
                     "p_context": math.exp(continuation_logprob(model, encode, prompt, rest) / len(rest)),
                     "p_control": math.exp(continuation_logprob(model, encode, ctrl, rest) / len(rest))})
    return rows
