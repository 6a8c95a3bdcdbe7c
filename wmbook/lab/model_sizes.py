r"""Parameter counts of BERT, GPT-2 and RoBERTa from their published configurations (page 7.2).

Every count is a formula in the configuration's hyper-parameters — vocabulary :math:`V`,
positions :math:`P`, segment types :math:`S`, layers :math:`L`, width :math:`d` (``d_model``),
feed-forward width :math:`d_{ff}` — and is checked on page 7.2 (and in the tests) to equal the
number of parameters Hugging Face ``transformers`` instantiates for the same configuration on
PyTorch's *meta* device (shapes only: no memory, no weights downloaded).

One encoder or decoder layer (attention :math:`W_q, W_k, W_v, W_o` with biases, the two-layer MLP
with biases, two LayerNorms of :math:`2d` each) holds

.. math:: p_{layer} = 4d^2 + 4d + 2\,d\,d_{ff} + d_{ff} + d + 4d = 4d^2 + 2\,d\,d_{ff} + d_{ff} + 9d .

* **BERT / RoBERTa** (``BertModel`` / ``RobertaModel``, with the pooler):
  :math:`(V + P + S)\,d + 2d + L\,p_{layer} + d^2 + d`
  (token, position and segment embeddings, their LayerNorm, the layers, the pooler
  :math:`\tanh(W h_{[CLS]} + b)`).
* **GPT-2** (``GPT2Model``; ``GPT2LMHeadModel`` adds nothing, its output layer *is* the token
  embedding): :math:`(V + P)\,d + L\,p_{layer} + 2d` (the final LayerNorm). Same formula as
  :func:`wmbook.lab.scale.gpt_parameters` of page 1.1.

The published configurations (:data:`PUBLISHED`): BERT {cite}`devlin2019bert` Table/section 3
(base: L 12, d 768, 12 heads; large: L 24, d 1024, 16 heads; WordPiece vocabulary of 30,522 in the
released uncased checkpoints; 512 positions; 2 segment types); GPT-2 {cite}`radford2019language`
Table 2 (d 768/1024/1280/1600 for 12/24/36/48 layers; vocabulary 50,257; context 1,024); RoBERTa
{cite}`liu2019roberta` (BERT-base/large shapes, byte-level BPE vocabulary of 50K units — 50,265 in
the released checkpoints — and 514 positions, 1 segment type in the released configuration).
:data:`PUBLISHED_MILLIONS` holds the sizes the papers state, in millions.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelShape:
    """The hyper-parameters that fix a model's parameter count.

    ``family`` is ``"bert"``, ``"roberta"`` or ``"gpt2"``; ``n_positions`` the learned positions
    (:math:`P`); ``type_vocab_size`` the segment types (:math:`S`, 0 for GPT-2).
    """

    name: str
    family: str
    vocab_size: int
    n_positions: int
    n_layers: int
    d_model: int
    n_heads: int
    d_ff: int
    type_vocab_size: int = 0

    def __post_init__(self) -> None:
        if self.family not in ("bert", "roberta", "gpt2"):
            raise ValueError(f"family must be 'bert', 'roberta' or 'gpt2', got {self.family!r}")
        for k in ("vocab_size", "n_positions", "n_layers", "d_model", "n_heads", "d_ff"):
            v = getattr(self, k)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{k} must be a positive integer, got {v!r}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} must be divisible by n_heads={self.n_heads}")
        if self.family == "gpt2" and self.type_vocab_size:
            raise ValueError("GPT-2 has no segment embeddings: type_vocab_size must be 0")
        if self.family != "gpt2" and self.type_vocab_size < 1:
            raise ValueError(f"{self.family} needs type_vocab_size >= 1")

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads


def _bert(name, L, d, h, family="bert", V=30522, P=512, S=2):
    return ModelShape(name, family, V, P, L, d, h, 4 * d, S)


def _gpt2(name, L, d, h):
    return ModelShape(name, "gpt2", 50257, 1024, L, d, h, 4 * d)


#: The published configurations (see the module docstring for the sources).
PUBLISHED: dict[str, ModelShape] = {
    "BERT-base": _bert("BERT-base", 12, 768, 12),
    "BERT-large": _bert("BERT-large", 24, 1024, 16),
    "GPT-2 small": _gpt2("GPT-2 small", 12, 768, 12),
    "GPT-2 medium": _gpt2("GPT-2 medium", 24, 1024, 16),
    "GPT-2 large": _gpt2("GPT-2 large", 36, 1280, 20),
    "GPT-2 XL": _gpt2("GPT-2 XL", 48, 1600, 25),
    "RoBERTa-base": _bert("RoBERTa-base", 12, 768, 12, "roberta", V=50265, P=514, S=1),
    "RoBERTa-large": _bert("RoBERTa-large", 24, 1024, 16, "roberta", V=50265, P=514, S=1),
}

#: Sizes as the papers state them, in millions: BERT (Devlin et al. 2019, section 3), GPT-2
#: (Radford et al. 2019, Table 2), RoBERTa-large (Liu et al. 2019, section 5: "355M parameters";
#: the paper gives no figure for a base model).
PUBLISHED_MILLIONS: dict[str, float] = {
    "BERT-base": 110, "BERT-large": 340, "GPT-2 small": 117, "GPT-2 medium": 345, "GPT-2 large": 762,
    "GPT-2 XL": 1542, "RoBERTa-large": 355,
}


def layer_parameters(d_model: int, d_ff: int) -> int:
    r""":math:`4d^2 + 2\,d\,d_{ff} + d_{ff} + 9d`: one Transformer layer with biases and two LayerNorms."""
    d, f = d_model, d_ff
    return 4 * d * d + 2 * d * f + f + 9 * d


def parameter_breakdown(shape: ModelShape) -> dict[str, int]:
    """The count by part: ``embeddings`` (with their LayerNorm for BERT/RoBERTa), ``layers``,
    ``head`` (the pooler of BERT/RoBERTa, the final LayerNorm of GPT-2) and ``total``."""
    d = shape.d_model
    layers = shape.n_layers * layer_parameters(d, shape.d_ff)
    if shape.family == "gpt2":
        emb = (shape.vocab_size + shape.n_positions) * d
        head = 2 * d
    else:
        emb = (shape.vocab_size + shape.n_positions + shape.type_vocab_size) * d + 2 * d
        head = d * d + d
    return {"embeddings": emb, "layers": layers, "head": head, "total": emb + layers + head}


def count_by_formula(shape: ModelShape) -> int:
    """Total parameters by formula (see the module docstring)."""
    return parameter_breakdown(shape)["total"]


def hf_config(shape: ModelShape):
    """The ``transformers`` configuration (``BertConfig``, ``GPT2Config`` or ``RobertaConfig``) of ``shape``."""
    import transformers

    if shape.family == "gpt2":
        return transformers.GPT2Config(vocab_size=shape.vocab_size, n_positions=shape.n_positions,
                                       n_embd=shape.d_model, n_layer=shape.n_layers, n_head=shape.n_heads,
                                       n_inner=shape.d_ff)
    cls = transformers.BertConfig if shape.family == "bert" else transformers.RobertaConfig
    return cls(vocab_size=shape.vocab_size, max_position_embeddings=shape.n_positions, hidden_size=shape.d_model,
               num_hidden_layers=shape.n_layers, num_attention_heads=shape.n_heads, intermediate_size=shape.d_ff,
               type_vocab_size=shape.type_vocab_size)


def count_in_transformers(shape: ModelShape, lm_head: bool = False) -> int:
    """Parameters of the ``transformers`` model built from :func:`hf_config` on the meta device
    (shapes only: nothing is allocated or downloaded). ``lm_head=True`` builds GPT-2's
    ``GPT2LMHeadModel`` (tied output layer) instead of ``GPT2Model``; tied tensors count once."""
    import torch
    import transformers

    cfg = hf_config(shape)
    if shape.family == "gpt2":
        cls = transformers.GPT2LMHeadModel if lm_head else transformers.GPT2Model
    elif lm_head:
        raise ValueError("lm_head=True is for GPT-2 only")
    else:
        cls = transformers.BertModel if shape.family == "bert" else transformers.RobertaModel
    with torch.device("meta"):
        model = cls(cfg)
    return sum(p.numel() for p in model.parameters())  # parameters() yields a tied tensor once


def kv_bytes_per_token(shape: ModelShape, bytes_per_value: int = 2) -> int:
    r"""Bytes of keys and values one token leaves in every layer: :math:`2 \cdot L \cdot d \cdot b`
    (arithmetic; :func:`wmbook.lab.measure.kv_cache_bytes` with :math:`H \cdot d_{head} = d`)."""
    from wmbook.lab.measure import kv_cache_bytes

    return kv_cache_bytes(shape.n_layers, shape.n_heads, shape.d_head, 1, 1, bytes_per_value)


__all__ = ["ModelShape", "PUBLISHED", "PUBLISHED_MILLIONS", "count_by_formula", "count_in_transformers", "measured_kv_cache_bytes",
           "hf_config", "kv_bytes_per_token", "layer_parameters", "parameter_breakdown"]


def measured_kv_cache_bytes(model, n_tokens: int) -> int:
    """Bytes of the key–value cache a ``transformers`` decoder (e.g. ``GPT2LMHeadModel``) really
    holds after reading ``n_tokens`` random tokens (batch 1): the sum over its cache's tensors.
    The check of :func:`kv_bytes_per_token` × ``n_tokens`` on page 7.2."""
    import torch

    if n_tokens < 1 or n_tokens > model.config.n_positions:
        raise ValueError(f"n_tokens must be in 1..{model.config.n_positions}, got {n_tokens}")
    ids = torch.randint(model.config.vocab_size, (1, n_tokens), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = model(ids, use_cache=True)
    cache = getattr(out, "cache", None) or out.past_key_values
    if hasattr(cache, "layers"):
        tensors = [t for layer in cache.layers for t in (layer.keys, layer.values)]
    else:  # older transformers: a tuple of (key, value) per layer
        tensors = [t for kv in cache for t in kv]
    return sum(t.numel() * t.element_size() for t in tensors)
