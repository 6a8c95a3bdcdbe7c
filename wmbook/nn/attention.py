"""Scaled dot-product attention, masks, and multi-head attention.

Explained and checked on page 4.1, "The mathematics of attention"
(``chapters/04/4_1_attention.ipynb``).

Conventions used throughout ``wmbook``:

* tensors are batch-first: ``(batch, seq, d_model)``;
* attention weights have shape ``(..., T_q, T_k)``: row ``i`` says how much
  query ``i`` reads from each key;
* a boolean mask is ``True`` where a query **may** attend to a key (the same
  convention as :func:`torch.nn.functional.scaled_dot_product_attention`,
  and the opposite of ``torch.nn.MultiheadAttention``'s ``attn_mask``);
  a floating-point mask is *added* to the scores (0 keeps, ``-inf`` removes);
* layers return their attention weights; called with ``need_weights=False`` they
  compute the same output with PyTorch's fused kernel (:func:`fused_attention`)
  and return ``None`` for the weights.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class AttentionResult(NamedTuple):
    """What attention returns: unpack it as ``output, weights = ...``."""

    output: Tensor  # (..., T_q, d_v)
    weights: Tensor | None  # (..., T_q, T_k), each row sums to 1; None if need_weights=False


def _check_inputs(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, temperature: float) -> None:
    """Raise a ``TypeError``/``ValueError`` that says what is wrong before any arithmetic runs."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() < 2:
            raise ValueError(f"{name} must have shape (..., seq, dim); got shape {tuple(t.shape)}")
        if not t.is_floating_point():
            raise ValueError(
                f"{name} has dtype {t.dtype}; attention needs floating-point q, k, v. "
                f"Token ids go through an embedding first; otherwise convert with {name}.float()"
            )
    if not (q.dtype == k.dtype == v.dtype):
        raise ValueError(
            f"q, k, v must share one dtype, got {q.dtype}, {k.dtype}, {v.dtype}; convert them, e.g. k.to(q.dtype)"
        )
    try:
        batch = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except RuntimeError:
        raise ValueError(
            f"the batch dimensions (all but the last two) of q {tuple(q.shape)}, k {tuple(k.shape)} and "
            f"v {tuple(v.shape)} do not match; give q, k and v the same leading (batch, head) sizes"
        ) from None
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"queries and keys must have the same last dimension d_k: "
            f"q is {tuple(q.shape)}, k is {tuple(k.shape)}"
        )
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"keys and values must have the same number of positions T_k: "
            f"k is {tuple(k.shape)}, v is {tuple(v.shape)}"
        )
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if mask is None:
        return
    if not isinstance(mask, Tensor):
        raise TypeError(f"mask must be a torch.Tensor, got {type(mask).__name__}")
    if mask.dtype != torch.bool and not mask.is_floating_point():
        raise TypeError(
            f"mask has dtype {mask.dtype}; use a bool mask (True = may attend) "
            "or a float mask that is added to the scores (0 or -inf)"
        )
    scores_shape = (*batch, q.shape[-2], k.shape[-2])  # (..., T_q, T_k)
    try:
        torch.broadcast_shapes(mask.shape, scores_shape)
    except RuntimeError:
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not broadcast to the scores' shape "
            f"{scores_shape} (..., T_q, T_k)"
        ) from None
    if mask.dtype == torch.bool and not mask.any(dim=-1).all():
        raise ValueError(
            "the mask leaves at least one query with no key to attend to "
            "(a row of all False); its softmax would be undefined. "
            "Check the padding lengths, or unmask at least one key per query."
        )
    if mask.is_floating_point() and (mask == float("-inf")).all(dim=-1).any():
        raise ValueError("the float mask removes every key for some query (a row of all -inf)")


def scaled_dot_product_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None = None,
    temperature: float = 1.0,
    dropout: float = 0.0,
) -> AttentionResult:
    r"""Attention as the guide writes it (4.1.1), with an optional mask and temperature.

    .. math::

        \mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt{d_k}\,\tau}\right) V

    Explained on page 4.1, "The mathematics of attention". Layers called with
    ``need_weights=False`` compute the same output with :func:`fused_attention`.

    Args:
        q: queries ``(..., T_q, d_k)``.
        k: keys ``(..., T_k, d_k)``.
        v: values ``(..., T_k, d_v)``.
        mask: optional, broadcastable to ``(..., T_q, T_k)``; bool ``True`` = may
            attend, or float added to the scores.
        temperature: ``τ > 0``; ``τ = 1`` is the guide's formula, larger
            spreads the weights, smaller sharpens them.
        dropout: probability of zeroing a weight before it multiplies ``V``
            (training only; pass 0 in evaluation). The returned weights are
            the ones before dropout.

    Returns:
        ``AttentionResult(output (..., T_q, d_v), weights (..., T_q, T_k))``.

    Raises:
        ValueError: on mismatched shapes or batch sizes, integer or mixed dtypes,
            a non-positive temperature, or a mask that leaves some query with no
            key to attend to.
        TypeError: on a non-tensor argument or a mask that is neither bool nor float.
    """
    _check_inputs(q, k, v, mask, temperature)
    d_k = q.shape[-1]
    scores = q @ k.transpose(-2, -1) / (math.sqrt(d_k) * temperature)  # (..., T_q, T_k)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
    weights = torch.softmax(scores, dim=-1)  # (..., T_q, T_k), each row sums to 1
    kept = F.dropout(weights, p=dropout)  # dropout=0 returns the weights themselves
    return AttentionResult(kept @ v, weights)  # output (..., T_q, d_v), weights before dropout


def fused_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None = None,
    temperature: float = 1.0,
    dropout: float = 0.0,
) -> Tensor:
    """``scaled_dot_product_attention(...).output`` from PyTorch's fused kernel, without the weights.

    :func:`torch.nn.functional.scaled_dot_product_attention` never keeps the
    ``(T_q, T_k)`` weights, which makes it faster and lighter, so it cannot return
    them: layers use it when called with ``need_weights=False``. Same arguments,
    checks, mask convention and dropout (on the weights, with ``dropout_p``).
    """
    _check_inputs(q, k, v, mask, temperature)
    scale = 1.0 / (math.sqrt(q.shape[-1]) * temperature)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout, scale=scale)


def causal_mask(T_q: int, T_k: int | None = None, device: torch.device | str | None = None) -> Tensor:
    """Boolean ``(T_q, T_k)`` mask: query ``i`` may attend to keys ``j <= i + (T_k - T_q)``.

    With ``T_k == T_q`` (the usual case) this is the lower triangle. With a
    cache of earlier keys (``T_k > T_q``) the last ``T_q`` positions are the queries.
    """
    T_k = T_q if T_k is None else T_k
    if T_q < 1 or T_k < T_q:
        raise ValueError(f"need 1 <= T_q <= T_k, got T_q={T_q}, T_k={T_k}")
    return torch.ones(T_q, T_k, dtype=torch.bool, device=device).tril(diagonal=T_k - T_q)


def padding_mask(lengths: Sequence[int] | Tensor, T: int | None = None) -> Tensor:
    """Boolean ``(B, 1, T)`` key mask from the true lengths of padded sequences.

    ``True`` marks real tokens. The middle axis of size 1 broadcasts over the
    queries, so ``padding_mask(...) & causal_mask(T)`` gives ``(B, T, T)``.
    """
    lengths = torch.as_tensor(lengths)
    if lengths.dim() != 1 or lengths.numel() == 0:
        raise ValueError(f"lengths must be a non-empty 1-D sequence, got shape {tuple(lengths.shape)}")
    if (lengths < 1).any():
        raise ValueError(f"every sequence needs at least one real token; got lengths {lengths.tolist()}")
    T = int(lengths.max()) if T is None else T
    if int(lengths.max()) > T:
        raise ValueError(f"a length ({int(lengths.max())}) exceeds the padded length T={T}")
    keep = torch.arange(T, device=lengths.device)[None, :] < lengths[:, None]  # (B, T)
    return keep[:, None, :]  # (B, 1, T)


@dataclass
class AttentionConfig:
    """Sizes of a multi-head attention layer (TransformerLens-style names)."""

    d_model: int = 64
    n_heads: int = 4
    dropout: float = 0.0
    bias: bool = True

    def __post_init__(self) -> None:
        if self.d_model < 1 or self.n_heads < 1:
            raise ValueError(f"d_model and n_heads must be positive, got {self.d_model}, {self.n_heads}")
        if self.d_model % self.n_heads:
            raise ValueError(
                f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}: "
                f"each head gets d_head = d_model / n_heads dimensions; choose n_heads among "
                f"{[h for h in range(1, self.d_model + 1) if self.d_model % h == 0][:12]}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads


class MultiHeadAttention(nn.Module):
    r"""Multi-head attention as the guide writes it (4.1.2).

    .. math::

        \mathrm{MultiHead}(Q, K, V) = \mathrm{Concat}(\mathrm{head}_1, \dots, \mathrm{head}_h) W^O,
        \quad \mathrm{head}_i = \mathrm{Attention}(Q W_i^Q, K W_i^K, V W_i^V)

    The per-head matrices :math:`W_i^Q` (``d_model × d_head``) are stored side by
    side in one ``nn.Linear`` per role (``W_q``, ``W_k``, ``W_v``), which is the
    same thing computed in one matrix product. ``forward`` returns the output and
    the per-head weights ``(B, n_heads, T_q, T_k)`` (``None`` when called with
    ``need_weights=False``); nothing is stashed on the module.
    """

    def __init__(self, cfg: AttentionConfig | None = None, **kwargs) -> None:
        super().__init__()
        if cfg is not None and kwargs:
            raise TypeError("pass either an AttentionConfig or keyword sizes, not both")
        self.cfg = cfg = cfg if cfg is not None else AttentionConfig(**kwargs)
        self.W_q = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.W_k = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.W_v = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.W_o = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)

    def _split_heads(self, x: Tensor) -> Tensor:
        B, T, _ = x.shape
        return x.view(B, T, self.cfg.n_heads, self.cfg.d_head).transpose(1, 2)  # (B, H, T, d_head)

    def _check_input(self, name: str, x: Tensor) -> None:
        if x.dim() != 3:
            raise ValueError(
                f"{name} must have shape (batch, seq, d_model); got {tuple(x.shape)}. "
                "For a single sequence use x.unsqueeze(0)."
            )
        if x.shape[-1] != self.cfg.d_model:
            raise ValueError(
                f"{name} has last dimension {x.shape[-1]} but this layer has d_model={self.cfg.d_model}"
            )
        if not x.is_floating_point():
            raise ValueError(
                f"{name} has dtype {x.dtype}; the layer takes float vectors (batch, seq, d_model): "
                "turn token ids into vectors with an nn.Embedding first"
            )

    def forward(
        self,
        query: Tensor,
        key: Tensor | None = None,
        value: Tensor | None = None,
        mask: Tensor | None = None,
        temperature: float = 1.0,
        need_weights: bool = True,
    ) -> AttentionResult:
        """Self-attention with ``forward(x)``; cross-attention with ``forward(x, memory)``.

        ``mask`` broadcasts to ``(B, n_heads, T_q, T_k)``; a 3-D mask
        ``(B, T_q, T_k)`` is applied to every head. With ``need_weights=False``
        the heads come from :func:`fused_attention` (faster, same output) and
        the returned weights are ``None``.
        """
        key = query if key is None else key
        value = key if value is None else value
        for name, x in (("query", query), ("key", key), ("value", value)):
            self._check_input(name, x)
        if key.shape[:2] != value.shape[:2] or query.shape[0] != key.shape[0]:
            raise ValueError(
                f"batch and key lengths disagree: query {tuple(query.shape)}, "
                f"key {tuple(key.shape)}, value {tuple(value.shape)}; query, key and value need "
                "the same batch size, key and value the same length"
            )
        if mask is not None and mask.dim() == 3:
            mask = mask[:, None]  # (B, 1, T_q, T_k): the same mask for every head
        q = self._split_heads(self.W_q(query))  # (B, H, T_q, d_head)
        k = self._split_heads(self.W_k(key))  # (B, H, T_k, d_head)
        v = self._split_heads(self.W_v(value))  # (B, H, T_k, d_head)
        p = self.cfg.dropout if self.training else 0.0  # dropout on the weights, as in the paper's code
        if need_weights:
            heads, weights = scaled_dot_product_attention(q, k, v, mask=mask, temperature=temperature, dropout=p)
        else:  # PyTorch's fused kernel: the same heads, the weights are never kept
            heads, weights = fused_attention(q, k, v, mask=mask, temperature=temperature, dropout=p), None
        B, H, T_q, d_head = heads.shape
        concat = heads.transpose(1, 2).reshape(B, T_q, H * d_head)  # (B, T_q, d_model)
        return AttentionResult(self.W_o(concat), weights)


def to_torch_multihead(mha: MultiHeadAttention) -> nn.MultiheadAttention:
    """A ``torch.nn.MultiheadAttention`` holding the same weights, for parity checks."""
    cfg = mha.cfg
    ref = nn.MultiheadAttention(cfg.d_model, cfg.n_heads, bias=cfg.bias, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([mha.W_q.weight, mha.W_k.weight, mha.W_v.weight]))
        ref.out_proj.weight.copy_(mha.W_o.weight)
        if cfg.bias:
            ref.in_proj_bias.copy_(torch.cat([mha.W_q.bias, mha.W_k.bias, mha.W_v.bias]))
            ref.out_proj.bias.copy_(mha.W_o.bias)
    return ref.eval()
