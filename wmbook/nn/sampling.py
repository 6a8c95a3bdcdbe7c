r"""Text generation for :class:`wmbook.nn.gpt.GPT`: greedy, temperature, top-k and top-p sampling.

Explained on page 3.3, "GPT", and used on page 5.3, "GPT in PyTorch". Each step draws
:math:`x_{t+1} \sim \mathrm{softmax}(z_t / \tau)` from the last position's logits
:math:`z_t`, optionally keeping only the ``top_k`` largest logits and/or the smallest
set of tokens whose probabilities sum to at least ``top_p`` (nucleus sampling).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:
    from wmbook.nn.gpt import GPT


def filter_logits(logits: Tensor, top_k: int | None = None, top_p: float | None = None) -> Tensor:
    """Set to ``-inf`` the logits (B, V) that top-k / top-p sampling may not pick."""
    if top_k is not None:
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1 (or None), got {top_k}")
        kth = logits.topk(min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None:
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1] (or None), got {top_p}")
        sorted_logits, order = logits.sort(dim=-1, descending=True)  # (B, V)
        probs = sorted_logits.softmax(dim=-1)
        # drop a token when the tokens ranked above it already reach top_p (the first is always kept)
        drop_sorted = probs.cumsum(dim=-1) - probs >= top_p  # (B, V)
        drop = drop_sorted.scatter(-1, order, drop_sorted)  # back to vocabulary order
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def next_token_logits(model: GPT, idx: Tensor, past=None, use_cache: bool = True, need_weights: bool = True):
    """One decoding step: the logits :math:`z_t` of the token after ``idx`` (B, T), as float32 (B, V),
    and the KV cache to pass to the next step.

    With ``use_cache=True`` the first call (``past=None``) runs the whole prompt and later calls
    only the newest token, reusing the cached keys and values (the text must fit in ``n_ctx``);
    with ``use_cache=False`` the model re-reads the last ``n_ctx`` tokens (the returned cache is
    None). ``need_weights=False`` skips the attention weights (PyTorch's fused kernel; only then is
    the option passed to ``model``). Shared by :func:`generate`,
    :func:`wmbook.lab.generation.sample_with_logprobs` and :func:`wmbook.lab.rl.sample`.
    """
    options = {} if need_weights else {"need_weights": False}
    if use_cache:
        out = model(idx if past is None else idx[:, -1:], past_key_values=past, use_cache=True, **options)
        return out.logits[:, -1].float(), out.past_key_values
    out = model(idx[:, -model.cfg.n_ctx:], **options)
    return out.logits[:, -1].float(), None


@torch.no_grad()
def generate(
    model: GPT,
    idx: Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    use_cache: bool = True,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Append ``max_new_tokens`` tokens to ``idx`` (B, T); returns (B, T + max_new_tokens).

    ``temperature=0`` is greedy (argmax). With ``use_cache=True`` the prompt is run
    once and each new token reuses the cached keys and values, so a step costs
    O(T) instead of O(T^2); the whole sequence must then fit in ``n_ctx``. With
    ``use_cache=False`` the model re-reads the last ``n_ctx`` tokens at every step.
    """
    if idx.dim() != 2 or idx.shape[1] < 1:
        raise ValueError(
            f"idx must be (batch, seq) with seq >= 1, got {tuple(idx.shape)}; for one prompt use idx[None]"
        )
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 = greedy), got {temperature}")
    n_ctx = model.cfg.n_ctx
    if use_cache and idx.shape[1] + max_new_tokens - 1 > n_ctx:
        raise ValueError(
            f"prompt ({idx.shape[1]}) + max_new_tokens ({max_new_tokens}) do not fit in n_ctx={n_ctx} "
            "with a KV cache (learned positions cannot slide); use use_cache=False, which keeps "
            "the last n_ctx tokens, or generate fewer tokens"
        )
    was_training = model.training
    model.eval()
    past = None
    for _ in range(max_new_tokens):
        logits, past = next_token_logits(model, idx, past, use_cache)  # (B, V)
        if temperature == 0:
            nxt = logits.argmax(dim=-1, keepdim=True)  # (B, 1)
        else:
            probs = filter_logits(logits / temperature, top_k, top_p).softmax(dim=-1)  # (B, V)
            nxt = torch.multinomial(probs, 1, generator=generator)  # (B, 1)
        idx = torch.cat([idx, nxt], dim=1)  # (B, T + 1)
    model.train(was_training)
    return idx
