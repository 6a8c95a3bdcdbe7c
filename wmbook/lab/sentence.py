r"""Sentence embeddings from a BERT encoder: pooling, encoding in batches, similarity search.

Explained on page 3.2, "BERT" (sections 3.2.1 and 3.2.3). A sentence of :math:`n` tokens
leaves the encoder as :math:`n` vectors :math:`h_1, \dots, h_n`; a *sentence embedding* pools
them into one. MiniLM-L6 (all-MiniLM-L6-v2) was trained with **mean pooling** over the real
tokens followed by L2 normalisation (Sentence-BERT, Reimers & Gurevych 2019):

.. math:: e = \frac{u}{\lVert u \rVert}, \qquad u = \frac{\sum_t m_t h_t}{\sum_t m_t},

where :math:`m_t = 1` for a real token and 0 for padding. BERT's own pooler,
:math:`\tanh(W h_{[CLS]} + b)`, is the other choice (``pooling="pooler"``).
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
from torch import Tensor
from torch.nn import functional as F

POOLINGS = ("mean", "pooler", "cls")


def mean_pool(hidden: Tensor, attention_mask: Tensor) -> Tensor:
    """Average of the real tokens' vectors: ``hidden`` (B, T, d), ``attention_mask`` (B, T) -> (B, d)."""
    if hidden.dim() != 3 or attention_mask.shape != hidden.shape[:2]:
        raise ValueError(f"hidden must be (B, T, d) and attention_mask (B, T); got "
                         f"{tuple(hidden.shape)} and {tuple(attention_mask.shape)}")
    m = attention_mask.to(hidden.dtype).unsqueeze(-1)  # (B, T, 1)
    return (hidden * m).sum(1) / m.sum(1).clamp_min(1e-9)  # (B, d)


def encode(
    model,
    tokenizer,
    sentences: Sequence[str],
    pooling: str = "mean",
    normalize: bool = True,
    batch_size: int = 64,
    max_length: int = 256,
) -> Tensor:
    """One vector per sentence, ``(len(sentences), d_model)``, in the order given.

    ``model`` is a :class:`wmbook.nn.bert.BertModel` (or anything with the same call and output);
    ``tokenizer`` its Hugging Face tokenizer. Sentences are sorted by length before batching,
    so little padding is computed; the result does not depend on the batching (up to float
    rounding). ``pooling``: ``"mean"`` (MiniLM's training recipe), ``"pooler"``
    (``tanh(W h_[CLS] + b)``) or ``"cls"`` (the raw [CLS] vector). ``max_length`` truncates
    (all-MiniLM-L6-v2 was trained with 256).
    """
    return encode_many(model, tokenizer, sentences, (pooling,), normalize, batch_size, max_length)[pooling]


@torch.no_grad()
def encode_many(
    model,
    tokenizer,
    sentences: Sequence[str],
    poolings: Sequence[str] = ("mean", "pooler"),
    normalize: bool = True,
    batch_size: int = 64,
    max_length: int = 256,
) -> dict[str, Tensor]:
    """Like :func:`encode`, with several poolings from one pass: ``{pooling: (N, d_model)}``."""
    bad = [p for p in poolings if p not in POOLINGS]
    if bad or not poolings:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {bad or poolings!r}")
    if isinstance(sentences, str):
        raise TypeError("encode takes a list of sentences; wrap a single sentence in a list")
    if not sentences:
        raise ValueError("encode needs at least one sentence")
    was_training = model.training
    model.eval()
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
    parts: dict[str, list[Tensor]] = {p: [] for p in poolings}
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        batch = tokenizer([sentences[i] for i in idx], padding=True, truncation=True,
                          max_length=max_length, return_tensors="pt")
        res = model(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))
        for p in poolings:
            if p == "mean":
                vec = mean_pool(res.last_hidden_state, batch["attention_mask"])  # (b, d)
            elif p == "pooler":
                vec = res.pooler_output  # (b, d)
            else:
                vec = res.last_hidden_state[:, 0]  # (b, d)
            parts[p].append(F.normalize(vec, dim=-1) if normalize else vec)
    model.train(was_training)
    inverse = torch.argsort(torch.tensor(order))  # back to the order given
    return {p: torch.cat(v)[inverse] for p, v in parts.items()}  # each (N, d)


def cosine_matrix(a: Tensor, b: Tensor | None = None) -> Tensor:
    r"""Cosine similarities :math:`C_{ij} = a_i \cdot b_j / (\lVert a_i \rVert \lVert b_j \rVert)`.

    ``a`` (N, d), ``b`` (M, d) or None (= ``a``) -> (N, M).
    """
    b = a if b is None else b
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"expected (N, d) and (M, d) with the same d; got {tuple(a.shape)}, {tuple(b.shape)}")
    return F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T


class SearchResult(NamedTuple):
    scores: Tensor  # (Q, k) cosine similarities, best first
    indices: Tensor  # (Q, k) rows of the library


def nearest(queries: Tensor, library: Tensor, k: int = 1, exclude_self: bool = False) -> SearchResult:
    """The ``k`` library rows most similar (cosine) to each query row.

    ``exclude_self=True`` (queries *are* the library, leave-one-out) never returns row i for query i.
    """
    if not 1 <= k <= library.shape[0] - int(exclude_self):
        raise ValueError(f"k must be in [1, {library.shape[0] - int(exclude_self)}], got {k}")
    sims = cosine_matrix(queries, library)  # (Q, N)
    if exclude_self:
        if queries.shape != library.shape:
            raise ValueError("exclude_self needs the queries to be the library itself")
        sims = sims.masked_fill(torch.eye(len(sims), dtype=torch.bool), float("-inf"))
    scores, indices = sims.topk(k, dim=-1)
    return SearchResult(scores, indices)
