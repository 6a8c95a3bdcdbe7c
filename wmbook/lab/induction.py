r"""Induction heads: the smallest model that learns in context, and the data that teaches it.

Explained on page 4.3, "The mathematics of in-context learning" (after Elhage et
al. 2021 and Olsson et al. 2022). A sequence is a random block of tokens repeated
with a random period; once a token has been seen, the token that followed it
last time predicts the next one. A two-layer attention-only Transformer learns
this with a *previous-token head* in layer 1 and an *induction head* in layer 2:

.. math::
    \text{if } x_{t} = x_{j} \text{ for some } j < t,\ \text{predict } x_{t+1} = x_{j+1}.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

from wmbook.nn.attention import AttentionConfig, MultiHeadAttention, causal_mask


def repeated_blocks(batch: int, length: int, vocab: int, min_period: int = 8, max_period: int = 32,
                    generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Random tokens repeated with a random period per sequence.

    Returns ``(tokens, copyable)``: ``tokens`` is ``(batch, length)``;
    ``copyable[b, t]`` is True where token ``t`` is a repeat (``t >= period``),
    i.e. where it can be predicted by copying from earlier in the context.
    """
    if not 1 <= min_period <= max_period < length:
        raise ValueError(f"need 1 <= min_period <= max_period < length; got {min_period}, {max_period}, {length}")
    if vocab < 2:
        raise ValueError(f"vocab must be >= 2, got {vocab}")
    periods = torch.randint(min_period, max_period + 1, (batch,), generator=generator)
    base = torch.randint(0, vocab, (batch, max_period), generator=generator)
    pos = torch.arange(length)
    idx = pos[None, :] % periods[:, None]  # (batch, length): position within the block
    tokens = base.gather(1, idx)
    copyable = pos[None, :] >= periods[:, None]
    return tokens, copyable


@dataclass
class AttnOnlyConfig:
    """An attention-only Transformer: no MLPs, no layer norms (as in Elhage et al. 2021)."""

    vocab_size: int = 64
    n_ctx: int = 64
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2

    def __post_init__(self) -> None:
        AttentionConfig(self.d_model, self.n_heads)  # checks divisibility


class AttnOnlyOutput(NamedTuple):
    logits: Tensor  # (B, T, vocab)
    attentions: list[Tensor]  # per layer (B, H, T, T)


class AttnOnlyTransformer(nn.Module):
    """Token + learned position embeddings, ``n_layers`` causal attention layers with residuals, unembedding."""

    def __init__(self, cfg: AttnOnlyConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos = nn.Embedding(cfg.n_ctx, cfg.d_model)
        self.layers = nn.ModuleList(
            MultiHeadAttention(AttentionConfig(cfg.d_model, cfg.n_heads)) for _ in range(cfg.n_layers))
        self.unembed = nn.Linear(cfg.d_model, cfg.vocab_size)

    def forward(self, tokens: Tensor) -> AttnOnlyOutput:
        if tokens.dim() != 2:
            raise ValueError(f"tokens must be (batch, seq); got {tuple(tokens.shape)}")
        T = tokens.shape[1]
        if T > self.cfg.n_ctx:
            raise ValueError(f"sequence of {T} tokens is longer than n_ctx={self.cfg.n_ctx}")
        if tokens.min() < 0 or tokens.max() >= self.cfg.vocab_size:
            raise ValueError(f"token ids must lie in [0, {self.cfg.vocab_size})")
        x = self.embed(tokens) + self.pos(torch.arange(T, device=tokens.device))  # (B, T, d_model)
        mask = causal_mask(T, device=tokens.device)
        attentions = []
        for layer in self.layers:
            out, weights = layer(x, mask=mask)
            x = x + out  # the residual stream
            attentions.append(weights)
        return AttnOnlyOutput(self.unembed(x), attentions)


def induction_scores(attentions: list[Tensor], tokens: Tensor, copyable: Tensor) -> tuple[Tensor, Tensor]:
    """Per layer and head: mean attention to the previous token, and to the induction target.

    For a repeated token at ``t`` with period ``p``, the induction target is
    ``t - p + 1`` (the token that followed its previous occurrence). Returns two
    ``(n_layers, n_heads)`` tensors: previous-token scores and induction scores.
    """
    B, T = tokens.shape
    # period of each sequence: the first position where copyable becomes True
    periods = copyable.float().argmax(dim=1)  # (B,)
    t = torch.arange(T)
    prev, ind = [], []
    for weights in attentions:  # (B, H, T, T)
        w = weights.detach()
        prev.append(w[:, :, t[1:], t[1:] - 1].mean(dim=(0, 2)))  # (H,)
        rows, cols, bidx = [], [], []
        for b in range(B):
            p = int(periods[b])
            ts = torch.arange(p, T)
            rows.append(ts)
            cols.append(ts - p + 1)
            bidx.append(torch.full_like(ts, b))
        r, c, bb = torch.cat(rows), torch.cat(cols), torch.cat(bidx)
        ind.append(w[bb, :, r, c].mean(dim=0))  # (H,)
    return torch.stack(prev), torch.stack(ind)
