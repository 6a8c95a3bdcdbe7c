"""The original encoder-decoder Transformer, batch-first, built on :mod:`wmbook.nn.attention`.

Explained on page 3.1, "The Transformer architecture"; trained on page 5.1,
"A Transformer language model", which also runs the guide's own snippets
(:mod:`wmbook.book.guide_snippets`) next to these classes. Decoding (greedy and beam
search) lives in :mod:`wmbook.nn.decoding` and is re-exported here.

Every block returns its attention weights ``(B, n_heads, T_q, T_k)``; nothing is
stashed on a module. Masks are boolean, ``True`` = may attend.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from wmbook.nn.attention import AttentionConfig, MultiHeadAttention, causal_mask

ACTIVATIONS = {  # name -> constructor; "gelu" is exact (erf), "gelu_tanh" is GPT-2's "gelu_new"
    "relu": lambda: nn.ReLU(),
    "gelu": lambda: nn.GELU(),
    "gelu_tanh": lambda: nn.GELU(approximate="tanh"),
}


@dataclass
class TransformerConfig:
    """Sizes of an encoder-decoder Transformer (one vocabulary for source and target)."""

    vocab_size: int = 32
    d_model: int = 64
    n_heads: int = 4
    d_ff: int = 256
    n_layers: int = 2
    n_ctx: int = 64
    dropout: float = 0.1
    norm_first: bool = False  # False: post-LN as in Vaswani et al.; True: pre-LN as in GPT-2
    activation: str = "relu"  # "relu" (original), "gelu" (BERT), "gelu_tanh" (GPT-2)
    layer_norm_eps: float = 1e-5
    positions: str = "sinusoidal"  # or "learned"
    pad_id: int = 0

    def __post_init__(self) -> None:
        AttentionConfig(self.d_model, self.n_heads, self.dropout)  # checks d_model % n_heads and dropout
        for name in ("vocab_size", "d_ff", "n_layers", "n_ctx"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        if self.positions not in ("sinusoidal", "learned"):
            raise ValueError(f"positions must be 'sinusoidal' or 'learned', got {self.positions!r}")
        if not 0 <= self.pad_id < self.vocab_size:
            raise ValueError(f"pad_id={self.pad_id} must be a token id in [0, vocab_size={self.vocab_size})")

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    def attention(self) -> AttentionConfig:
        return AttentionConfig(self.d_model, self.n_heads, self.dropout)


def sinusoidal_positions(n_ctx: int, d_model: int) -> Tensor:
    r"""The fixed position codes of Vaswani et al. (page 3.1), shape ``(n_ctx, d_model)``.

    .. math::

        PE_{(pos, 2i)} = \sin\!\left(pos / 10000^{2i/d_{model}}\right), \quad
        PE_{(pos, 2i+1)} = \cos\!\left(pos / 10000^{2i/d_{model}}\right)
    """
    if n_ctx < 1 or d_model < 2 or d_model % 2:
        raise ValueError(f"need n_ctx >= 1 and an even d_model >= 2, got n_ctx={n_ctx}, d_model={d_model}")
    pos = torch.arange(n_ctx, dtype=torch.float32)[:, None]  # (n_ctx, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float32)  # (d_model/2,)
    angle = pos / 10000 ** (two_i / d_model)  # (n_ctx, d_model/2)
    pe = torch.zeros(n_ctx, d_model)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle)
    return pe


def init_weights(m: nn.Module) -> None:
    """BERT's and GPT-2's initialisation: N(0, 0.02) weights, zero biases (use ``model.apply``)."""
    if isinstance(m, (nn.Linear, nn.Embedding)):
        nn.init.normal_(m.weight, std=0.02)
    if isinstance(m, nn.Linear) and m.bias is not None:
        nn.init.zeros_(m.bias)


class FeedForward(nn.Module):
    r"""Position-wise feed-forward network: :math:`\mathrm{FFN}(x) = \phi(x W_{in} + b_{in}) W_{out} + b_{out}`.

    ``d_model -> d_ff -> d_model``; :math:`\phi` is ReLU in the original paper,
    GELU in BERT and GPT-2 (page 3.1). Dropout is applied by the block, on the output.
    """

    def __init__(self, d_model: int, d_ff: int, activation: str = "relu", bias: bool = True) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.W_in = nn.Linear(d_model, d_ff, bias=bias)
        self.act = ACTIVATIONS[activation]()
        self.W_out = nn.Linear(d_ff, d_model, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.W_out(self.act(self.W_in(x)))  # (B, T, d_model)


class EncoderBlockOutput(NamedTuple):
    hidden: Tensor  # (B, T, d_model)
    weights: Tensor  # (B, H, T, T)


class DecoderBlockOutput(NamedTuple):
    hidden: Tensor  # (B, T, d_model)
    self_weights: Tensor  # (B, H, T, T)
    cross_weights: Tensor  # (B, H, T, S)


class EncoderOutput(NamedTuple):
    hidden: Tensor  # (B, S, d_model)
    attentions: list[Tensor]  # per layer (B, H, S, S)


class DecoderOutput(NamedTuple):
    hidden: Tensor  # (B, T, d_model)
    self_attentions: list[Tensor]  # per layer (B, H, T, T)
    cross_attentions: list[Tensor]  # per layer (B, H, T, S)


class EncoderBlock(nn.Module):
    r"""Self-attention then FFN, each wrapped in a residual connection and a LayerNorm (page 3.1).

    Post-LN (``norm_first=False``, the original and BERT):
    :math:`x \leftarrow \mathrm{LN}(x + \mathrm{Sublayer}(x))`.
    Pre-LN (``norm_first=True``, GPT-2): :math:`x \leftarrow x + \mathrm{Sublayer}(\mathrm{LN}(x))`.
    Dropout is applied to each sublayer's output before the residual sum.
    """

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.attn = MultiHeadAttention(cfg.attention())
        self.ln_1 = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)
        self.ffn = FeedForward(cfg.d_model, cfg.d_ff, cfg.activation)
        self.ln_2 = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> EncoderBlockOutput:
        """``x`` (B, T, d_model); ``mask`` broadcastable to (B, T, T), True = may attend."""
        if self.cfg.norm_first:
            a, weights = self.attn(self.ln_1(x), mask=mask)
            x = x + self.drop(a)
            x = x + self.drop(self.ffn(self.ln_2(x)))
        else:
            a, weights = self.attn(x, mask=mask)
            x = self.ln_1(x + self.drop(a))
            x = self.ln_2(x + self.drop(self.ffn(x)))
        return EncoderBlockOutput(x, weights)


class DecoderBlock(EncoderBlock):
    """Masked self-attention, cross-attention to the encoder's ``memory``, then FFN (page 3.1)."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__(cfg)
        self.cross_attn = MultiHeadAttention(cfg.attention())
        self.ln_cross = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)

    def forward(  # type: ignore[override]
        self, x: Tensor, memory: Tensor, self_mask: Tensor | None = None, cross_mask: Tensor | None = None
    ) -> DecoderBlockOutput:
        """``x`` (B, T, d_model), ``memory`` (B, S, d_model); masks (B, T, T) and (B, 1, S)."""
        if self.cfg.norm_first:
            a, self_w = self.attn(self.ln_1(x), mask=self_mask)
            x = x + self.drop(a)
            c, cross_w = self.cross_attn(self.ln_cross(x), memory, mask=cross_mask)
            x = x + self.drop(c)
            x = x + self.drop(self.ffn(self.ln_2(x)))
        else:
            a, self_w = self.attn(x, mask=self_mask)
            x = self.ln_1(x + self.drop(a))
            c, cross_w = self.cross_attn(x, memory, mask=cross_mask)
            x = self.ln_cross(x + self.drop(c))
            x = self.ln_2(x + self.drop(self.ffn(x)))
        return DecoderBlockOutput(x, self_w, cross_w)


class _Stack(nn.Module):
    def __init__(self, cfg: TransformerConfig, block: type[EncoderBlock]) -> None:
        super().__init__()
        self.cfg = cfg
        if cfg.positions == "sinusoidal":
            self.register_buffer("pe", sinusoidal_positions(cfg.n_ctx, cfg.d_model), persistent=False)
        else:
            self.pe = nn.Parameter(torch.randn(cfg.n_ctx, cfg.d_model) * 0.02)
        self.blocks = nn.ModuleList(block(cfg) for _ in range(cfg.n_layers))
        # pre-LN leaves the residual stream un-normalised, so it needs a final LayerNorm
        self.ln_f = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps) if cfg.norm_first else nn.Identity()
        self.drop = nn.Dropout(cfg.dropout)

    def add_positions(self, x: Tensor) -> Tensor:
        if x.dim() != 3 or x.shape[-1] != self.cfg.d_model:
            raise ValueError(f"expected embeddings (batch, seq, d_model={self.cfg.d_model}), got {tuple(x.shape)}")
        if x.shape[1] > self.cfg.n_ctx:
            raise ValueError(
                f"sequence of length {x.shape[1]} is longer than n_ctx={self.cfg.n_ctx}; "
                "truncate it or build the model with a larger n_ctx"
            )
        return self.drop(x + self.pe[: x.shape[1]])  # (B, T, d_model)


class Encoder(_Stack):
    """``n_layers`` encoder blocks over embedded tokens; positions are added here."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__(cfg, EncoderBlock)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> EncoderOutput:
        """``x`` (B, S, d_model) embedded tokens; ``mask`` (B, 1, S) marks real tokens."""
        x, attentions = self.add_positions(x), []
        for block in self.blocks:
            x, w = block(x, mask)
            attentions.append(w)
        return EncoderOutput(self.ln_f(x), attentions)


class Decoder(_Stack):
    """``n_layers`` decoder blocks over embedded target tokens; positions are added here."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__(cfg, DecoderBlock)

    def forward(self, x: Tensor, memory: Tensor, self_mask=None, cross_mask=None) -> DecoderOutput:
        x, self_ws, cross_ws = self.add_positions(x), [], []
        for block in self.blocks:
            x, sw, cw = block(x, memory, self_mask, cross_mask)
            self_ws.append(sw)
            cross_ws.append(cw)
        return DecoderOutput(self.ln_f(x), self_ws, cross_ws)


@dataclass
class Seq2SeqOutput:
    """What :class:`EncoderDecoder` returns; attention lists hold one ``(B, H, T_q, T_k)`` per layer."""

    logits: Tensor  # (B, T, vocab_size)
    encoder_attentions: list[Tensor] = field(default_factory=list)
    decoder_self_attentions: list[Tensor] = field(default_factory=list)
    cross_attentions: list[Tensor] = field(default_factory=list)


@dataclass
class Encoded:
    """The encoder's output, kept for decoding: ``memory`` (B, S, d_model) and its key mask (B, 1, S)."""

    memory: Tensor
    src_mask: Tensor
    attentions: list[Tensor]


class EncoderDecoder(nn.Module):
    r"""Sequence-to-sequence Transformer (page 3.1; trained on page 5.1).

    Token embeddings are scaled by :math:`\sqrt{d_{model}}` as in the paper. Masks
    are built from ``cfg.pad_id``: the encoder and the cross-attention ignore
    source padding; the decoder's self-attention is causal and ignores target padding.
    """

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.src_embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.tgt_embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size)

    def _check_ids(self, name: str, ids: Tensor) -> None:
        if not isinstance(ids, Tensor) or ids.dim() != 2 or ids.dtype not in (torch.long, torch.int):
            got = f"{tuple(ids.shape)} {ids.dtype}" if isinstance(ids, Tensor) else type(ids).__name__
            raise ValueError(f"{name} must be integer token ids of shape (batch, seq), got {got}")
        bad = ids[(ids < 0) | (ids >= self.cfg.vocab_size)]
        if bad.numel():
            raise ValueError(
                f"{name} holds token id {int(bad[0])} "
                f"outside [0, vocab_size={self.cfg.vocab_size}); check the tokenizer matches the model"
            )
        if (ids[:, 0] == self.cfg.pad_id).any():
            raise ValueError(
                f"{name} starts with pad_id={self.cfg.pad_id} in some row: pad at the end, not the start"
            )

    def encode(self, src: Tensor) -> Encoded:
        """Run the encoder once on ``src`` (B, S); decoding reuses the result at every step."""
        self._check_ids("src", src)
        src_mask = (src != self.cfg.pad_id)[:, None, :]  # (B, 1, S): True = real token
        x = self.src_embed(src) * math.sqrt(self.cfg.d_model)  # (B, S, d_model)
        memory, attentions = self.encoder(x, src_mask)
        return Encoded(memory, src_mask, attentions)

    def decode(self, tgt: Tensor, enc: Encoded) -> Seq2SeqOutput:
        """Logits for every target position given ``tgt`` (B, T) so far and the encoded source."""
        self._check_ids("tgt", tgt)
        T = tgt.shape[1]
        self_mask = causal_mask(T, device=tgt.device) & (tgt != self.cfg.pad_id)[:, None, :]  # (B, T, T)
        x = self.tgt_embed(tgt) * math.sqrt(self.cfg.d_model)  # (B, T, d_model)
        x, self_ws, cross_ws = self.decoder(x, enc.memory, self_mask, enc.src_mask)
        return Seq2SeqOutput(self.lm_head(x), enc.attentions, self_ws, cross_ws)

    def forward(self, src: Tensor, tgt: Tensor) -> Seq2SeqOutput:
        """``src`` (B, S) and ``tgt`` (B, T) token ids -> logits (B, T, vocab_size) and attentions."""
        if src.shape[0] != tgt.shape[0]:
            raise ValueError(f"src and tgt batch sizes differ: {tuple(src.shape)} vs {tuple(tgt.shape)}")
        return self.decode(tgt, self.encode(src))



_TORCH_ACTIVATIONS = {  # our name -> what nn.TransformerEncoderLayer accepts (same function)
    "relu": lambda: "relu",
    "gelu": lambda: "gelu",
    # not nn.GELU(approximate="tanh"): PyTorch's inference fast path (torch 2.13) sees an
    # nn.GELU and runs the exact GELU; a plain function keeps the layer on the slow, exact path
    "gelu_tanh": lambda: functools.partial(F.gelu, approximate="tanh"),
}


def _torch_layer_kwargs(cfg: TransformerConfig) -> dict:
    return dict(
        d_model=cfg.d_model, nhead=cfg.n_heads, dim_feedforward=cfg.d_ff, dropout=cfg.dropout,
        activation=_TORCH_ACTIVATIONS[cfg.activation](), layer_norm_eps=cfg.layer_norm_eps,
        batch_first=True, norm_first=cfg.norm_first,
    )


def _copy_attention(ours: MultiHeadAttention, theirs: nn.MultiheadAttention) -> None:
    from wmbook.nn.attention import to_torch_multihead

    theirs.load_state_dict(to_torch_multihead(ours).state_dict())


def _copy_ffn_and_norms(block: EncoderBlock, layer: nn.Module, norms: dict[str, str]) -> None:
    layer.linear1.load_state_dict(block.ffn.W_in.state_dict())
    layer.linear2.load_state_dict(block.ffn.W_out.state_dict())
    for ours, theirs in norms.items():
        getattr(layer, theirs).load_state_dict(getattr(block, ours).state_dict())


def to_torch_encoder_layer(block: EncoderBlock) -> nn.TransformerEncoderLayer:
    """A ``torch.nn.TransformerEncoderLayer`` holding ``block``'s weights, for parity checks (page 5.1).

    Same sizes, ``norm_first``, activation and LayerNorm epsilon, and ``batch_first=True``.
    Masks use the opposite convention there: pass ``src_key_padding_mask=~keep`` (True = ignore).
    Returned in eval mode.
    """
    if not isinstance(block, EncoderBlock) or isinstance(block, DecoderBlock):
        raise TypeError(f"expected a wmbook EncoderBlock, got {type(block).__name__}")
    layer = nn.TransformerEncoderLayer(**_torch_layer_kwargs(block.cfg))
    with torch.no_grad():
        _copy_attention(block.attn, layer.self_attn)
        _copy_ffn_and_norms(block, layer, {"ln_1": "norm1", "ln_2": "norm2"})
    return layer.eval()


def to_torch_decoder_layer(block: DecoderBlock) -> nn.TransformerDecoderLayer:
    """A ``torch.nn.TransformerDecoderLayer`` holding ``block``'s weights, for parity checks (page 5.1).

    ``norm1`` / ``norm2`` / ``norm3`` there are our ``ln_1`` (self-attention),
    ``ln_cross`` (cross-attention) and ``ln_2`` (FFN). Pass the causal mask as
    ``tgt_mask=~causal_mask(T)`` and source padding as ``memory_key_padding_mask=~keep``.
    """
    if not isinstance(block, DecoderBlock):
        raise TypeError(f"expected a wmbook DecoderBlock, got {type(block).__name__}")
    layer = nn.TransformerDecoderLayer(**_torch_layer_kwargs(block.cfg))
    with torch.no_grad():
        _copy_attention(block.attn, layer.self_attn)
        _copy_attention(block.cross_attn, layer.multihead_attn)
        _copy_ffn_and_norms(block, layer, {"ln_1": "norm1", "ln_cross": "norm2", "ln_2": "norm3"})
    return layer.eval()


__all__ = [
    "Decoder", "DecoderBlock", "DecoderBlockOutput", "DecoderOutput", "Encoded", "Encoder",
    "EncoderBlock", "EncoderBlockOutput", "EncoderDecoder", "EncoderOutput", "FeedForward", "Seq2SeqOutput",
    "TransformerConfig", "sinusoidal_positions",
    "to_torch_decoder_layer", "to_torch_encoder_layer",
]
