r"""GPT-2, exactly: pre-LN decoder-only Transformer with a KV cache.

Explained on page 3.3, "GPT"; built, checked against Hugging Face's ``GPT2LMHeadModel``
and trained on page 5.3, "GPT in PyTorch". Sampling lives in :mod:`wmbook.nn.sampling`
(:func:`~wmbook.nn.sampling.generate`).

A block is :math:`x \leftarrow x + \mathrm{Attn}(\mathrm{LN}_1(x))`,
:math:`x \leftarrow x + \mathrm{MLP}(\mathrm{LN}_2(x))`; the model is
:math:`\mathrm{logits} = \mathrm{LN}_f(h_L)\, W_{te}^\top` (tied embeddings).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from torch import Tensor, nn

from wmbook.nn.attention import AttentionConfig, causal_mask, fused_attention, scaled_dot_product_attention
from wmbook.nn.transformer import FeedForward, init_weights

KVCache = list[tuple[Tensor, Tensor]]  # per layer (k, v), each (B, H, T_past, d_head)


@dataclass
class GPTConfig:
    """Sizes of a GPT-2 model; the defaults are GPT-2 small (124M parameters)."""

    vocab_size: int = 50257
    n_ctx: int = 1024
    d_model: int = 768
    n_heads: int = 12
    n_layers: int = 12
    d_ff: int | None = None  # None: 4 * d_model
    dropout: float = 0.1
    layer_norm_eps: float = 1e-5
    bias: bool = True
    tie_weights: bool = True

    def __post_init__(self) -> None:
        AttentionConfig(self.d_model, self.n_heads, self.dropout)  # checks d_model % n_heads and dropout
        self.d_ff = 4 * self.d_model if self.d_ff is None else self.d_ff
        for name in ("vocab_size", "n_ctx", "n_layers", "d_ff"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    @classmethod
    def from_hf(cls, hf_config) -> GPTConfig:
        """From a ``transformers.GPT2Config``; refuses options this implementation does not have."""
        act = getattr(hf_config, "activation_function", "gelu_new")
        if act not in ("gelu_new", "gelu_pytorch_tanh"):
            raise ValueError(f"activation_function={act!r}: wmbook's GPT uses GELU's tanh approximation only")
        scaled = getattr(hf_config, "scale_attn_weights", True)
        if getattr(hf_config, "scale_attn_by_inverse_layer_idx", False) or not scaled:
            raise ValueError("only GPT-2's default attention scaling 1/sqrt(d_head) is implemented")
        return cls(
            vocab_size=hf_config.vocab_size, n_ctx=hf_config.n_positions, d_model=hf_config.n_embd,
            n_heads=hf_config.n_head, n_layers=hf_config.n_layer, d_ff=hf_config.n_inner,
            dropout=hf_config.resid_pdrop, layer_norm_eps=hf_config.layer_norm_epsilon,
            tie_weights=getattr(hf_config, "tie_word_embeddings", True),
        )


class CachedAttentionResult(NamedTuple):
    output: Tensor  # (B, T, d_model)
    weights: Tensor | None  # (B, H, T, T_past + T); None if need_weights=False
    present: tuple[Tensor, Tensor]  # (k, v) including the past, each (B, H, T_past + T, d_head)


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention with an optional cache of earlier keys and values.

    Same ``W_q, W_k, W_v, W_o`` as :class:`wmbook.nn.attention.MultiHeadAttention`;
    dropout is on the attention weights, as in GPT-2. The block passes the mask:
    ``causal_mask(T_q, T_past + T_q)``. With ``need_weights=False`` the heads come
    from PyTorch's fused kernel (:func:`~wmbook.nn.attention.fused_attention`):
    the same output, faster, and no weights.
    """

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.W_q = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.W_k = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.W_v = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.W_o = nn.Linear(cfg.d_model, cfg.d_model, bias=cfg.bias)
        self.attn_drop = nn.Dropout(cfg.dropout)

    def _split(self, x: Tensor) -> Tensor:
        B, T, _ = x.shape
        return x.view(B, T, self.cfg.n_heads, self.cfg.d_head).transpose(1, 2)  # (B, H, T, d_head)

    def forward(
        self, x: Tensor, mask: Tensor | None, past: tuple[Tensor, Tensor] | None = None, need_weights: bool = True
    ) -> CachedAttentionResult:
        """``x`` (B, T, d_model); ``past`` the cached (k, v) of earlier positions, or None."""
        q, k, v = self._split(self.W_q(x)), self._split(self.W_k(x)), self._split(self.W_v(x))
        if past is not None:
            k = torch.cat([past[0], k], dim=2)  # (B, H, T_past + T, d_head)
            v = torch.cat([past[1], v], dim=2)  # (B, H, T_past + T, d_head)
        p = self.attn_drop.p if self.training else 0.0  # dropout on the weights, as GPT-2 does
        if need_weights:
            heads, weights = scaled_dot_product_attention(q, k, v, mask=mask, dropout=p)  # (B, H, T, d_head)
        else:  # PyTorch's fused kernel: the same heads, the weights are never kept
            heads, weights = fused_attention(q, k, v, mask=mask, dropout=p), None
        B, H, T, d_head = heads.shape
        concat = heads.transpose(1, 2).reshape(B, T, H * d_head)  # (B, T, d_model)
        return CachedAttentionResult(self.W_o(concat), weights, (k, v))


class BlockOutput(NamedTuple):
    hidden: Tensor  # (B, T, d_model)
    weights: Tensor | None  # (B, H, T, T_k); None if need_weights=False
    present: tuple[Tensor, Tensor]  # this layer's (k, v) including the past, (B, H, T_k, d_head)


class Block(nn.Module):
    """One GPT-2 block (pre-LN), page 3.3."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)
        self.mlp = FeedForward(cfg.d_model, cfg.d_ff, activation="gelu_tanh", bias=cfg.bias)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(
        self, x: Tensor, mask: Tensor | None, past: tuple[Tensor, Tensor] | None = None, need_weights: bool = True
    ) -> BlockOutput:
        a, weights, present = self.attn(self.ln_1(x), mask, past, need_weights)
        x = x + self.drop(a)
        x = x + self.drop(self.mlp(self.ln_2(x)))
        return BlockOutput(x, weights, present)


@dataclass
class GPTOutput:
    """``logits`` (B, T, vocab_size); ``attentions``: per layer (B, H, T, T_past + T),
    or None when ``need_weights=False``; ``past_key_values``: per layer (k, v) when
    ``use_cache=True``, else None."""

    logits: Tensor
    attentions: list[Tensor] | None = field(default_factory=list)
    past_key_values: KVCache | None = None


class GPT(nn.Module):
    """GPT-2 language model (page 3.3; page 5.3). ``forward(idx)`` -> :class:`GPTOutput`."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.wpe = nn.Embedding(cfg.n_ctx, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.apply(init_weights)
        for block in self.blocks:  # GPT-2 scales the residual projections by 1/sqrt(2 n_layers)
            for lin in (block.attn.W_o, block.mlp.W_out):
                nn.init.normal_(lin.weight, std=0.02 / math.sqrt(2 * cfg.n_layers))
        if cfg.tie_weights:
            self.lm_head.weight = self.wte.weight

    def forward(
        self, idx: Tensor, past_key_values: KVCache | None = None, use_cache: bool = False,
        need_weights: bool = True,
    ) -> GPTOutput:
        """``idx`` (B, T) token ids; with ``past_key_values`` they continue the cached sequence.

        ``need_weights=False`` (for training and generation) skips the attention weights:
        every layer then uses PyTorch's fused attention kernel, and ``attentions`` is None.
        """
        if not isinstance(idx, Tensor) or idx.dim() != 2 or idx.dtype not in (torch.long, torch.int):
            got = f"{tuple(idx.shape)} {idx.dtype}" if isinstance(idx, Tensor) else type(idx).__name__
            raise ValueError(
                f"idx must be integer token ids of shape (batch, seq), got {got}; for one sequence use idx[None]"
            )
        bad = idx[(idx < 0) | (idx >= self.cfg.vocab_size)]
        if bad.numel():
            raise ValueError(
                f"token id {int(bad[0])} is outside [0, vocab_size={self.cfg.vocab_size}); check the tokenizer"
            )
        if past_key_values is not None and len(past_key_values) != self.cfg.n_layers:
            raise ValueError(
                f"past_key_values has {len(past_key_values)} layers, the model has {self.cfg.n_layers}"
            )
        B, T = idx.shape
        T_past = 0 if past_key_values is None else past_key_values[0][0].shape[2]
        if T_past + T > self.cfg.n_ctx:
            raise ValueError(
                f"sequence length {T_past + T} (cached {T_past} + new {T}) exceeds n_ctx={self.cfg.n_ctx}: "
                f"keep only the last {self.cfg.n_ctx} tokens (idx[:, -n_ctx:]) and drop the cache"
            )
        pos = torch.arange(T_past, T_past + T, device=idx.device)  # (T,)
        x = self.drop(self.wte(idx) + self.wpe(pos))  # (B, T, d_model)
        mask = causal_mask(T, T_past + T, device=idx.device)  # (T, T_past + T)
        attentions, presents = [], []
        for block, past in zip(self.blocks, past_key_values or [None] * len(self.blocks)):
            x, weights, present = block(x, mask, past, need_weights)
            attentions.append(weights)
            presents.append(present)
        logits = self.lm_head(self.ln_f(x))  # (B, T, vocab_size)
        return GPTOutput(logits, attentions if need_weights else None, presents if use_cache else None)

    @classmethod
    def from_hf(cls, hf_model_or_state_dict, config: GPTConfig | None = None) -> GPT:
        """A GPT holding the weights of a Hugging Face ``GPT2Model``/``GPT2LMHeadModel`` (or its state dict)."""
        if isinstance(hf_model_or_state_dict, nn.Module):
            config = config or GPTConfig.from_hf(hf_model_or_state_dict.config)
            sd = hf_model_or_state_dict.state_dict()
        elif config is None:
            raise ValueError("a bare state dict does not say the model's sizes: pass config=GPTConfig(...)")
        else:
            sd = hf_model_or_state_dict
        model = cls(config)
        load_hf_gpt2_state_dict(model, sd)
        return model.eval()


_IGNORED = (".attn.bias", ".attn.masked_bias")  # causal-mask buffers in older transformers, not weights


@torch.no_grad()
def load_hf_gpt2_state_dict(model: GPT, sd: dict[str, Tensor]) -> None:
    """Copy Hugging Face GPT-2 weights into ``model``; every tensor must be used.

    HF's ``Conv1D`` stores weights as ``(in, out)``, the transpose of ``nn.Linear``;
    ``attn.c_attn`` holds W_q, W_k, W_v side by side and is split in three.
    Raises ValueError listing missing, unexpected or mis-shaped tensors.
    """
    sd = {k.removeprefix("transformer."): v for k, v in sd.items() if not k.endswith(_IGNORED)}
    d = model.cfg.d_model
    out: dict[str, Tensor] = {}
    used: set[str] = set()

    def take(name: str) -> Tensor:
        if name not in sd:
            raise ValueError(
                f"the Hugging Face state dict has no {name!r}; is it a GPT-2 with {model.cfg.n_layers} layers?"
            )
        used.add(name)
        return sd[name]

    for name in ("wte.weight", "wpe.weight", "ln_f.weight", "ln_f.bias"):
        out[name] = take(name)
    for i in range(model.cfg.n_layers):
        h, b = f"h.{i}.", f"blocks.{i}."
        for ln in ("ln_1", "ln_2"):
            out[b + ln + ".weight"], out[b + ln + ".bias"] = take(h + ln + ".weight"), take(h + ln + ".bias")
        W = take(h + "attn.c_attn.weight").T  # Conv1D (d, 3d) -> Linear (3d, d)
        for part, w in zip(("W_q", "W_k", "W_v"), W.split(d, dim=0)):  # each (d, d)
            out[f"{b}attn.{part}.weight"] = w
        if model.cfg.bias:
            for part, bias in zip(("W_q", "W_k", "W_v"), take(h + "attn.c_attn.bias").split(d)):
                out[f"{b}attn.{part}.bias"] = bias
        for src, dst in (("attn.c_proj", "attn.W_o"), ("mlp.c_fc", "mlp.W_in"), ("mlp.c_proj", "mlp.W_out")):
            out[f"{b}{dst}.weight"] = take(f"{h}{src}.weight").T  # Conv1D (in, out) -> Linear (out, in)
            if model.cfg.bias:
                out[f"{b}{dst}.bias"] = take(f"{h}{src}.bias")
    if "lm_head.weight" in sd:
        head = take("lm_head.weight")
        if model.cfg.tie_weights and not torch.equal(head, out["wte.weight"]):
            raise ValueError(
                "lm_head.weight differs from wte.weight but the config ties them: use tie_weights=False"
            )
        out["lm_head.weight"] = head
    elif not model.cfg.tie_weights:
        raise ValueError("tie_weights=False but the state dict has no lm_head.weight")
    if model.cfg.tie_weights:
        out["lm_head.weight"] = out["wte.weight"]
    unexpected = sorted(set(sd) - used)
    if unexpected:
        raise ValueError(f"tensors not mapped onto wmbook's GPT: {unexpected[:10]}")
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    shapes = [
        f"{k}: {tuple(v.shape)} vs {expected[k]}"
        for k, v in out.items()
        if k in expected and tuple(v.shape) != expected[k]
    ]
    if shapes:
        raise ValueError(f"shape mismatch (check the config): {shapes[:10]}")
    result = model.load_state_dict(out, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(f"missing: {result.missing_keys[:10]}, unexpected: {result.unexpected_keys[:10]}")



__all__ = [
    "Block", "BlockOutput", "CachedAttentionResult", "CausalSelfAttention",
    "GPT", "GPTConfig", "GPTOutput", "KVCache", "load_hf_gpt2_state_dict",
]
