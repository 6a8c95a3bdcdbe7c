r"""Reading a long document within a fixed budget: truncation, a sliding window, retrieval.

Explained on page 8.2, "Challenges in reducing the load", section 8.2.1. A *needle task* built
from XQuAD (:func:`wmbook.data.loaders.load_squad`): a question's own paragraph (the needle) is
hidden at a random place among ``k`` other paragraphs (the haystack). A reader may keep only
``budget`` words of the document; it succeeds when the kept words contain the needle paragraph
whole (recall of the answer-bearing paragraph). Three ways to choose what to keep:

- **truncation**: the first ``budget`` words;
- **sliding window**: the last ``budget`` words (what a model that streams the text through a
  window of fixed size still holds at the end);
- **retrieval**: whole paragraphs (chunks) in the order of their BM25 score against the question,
  as many as fit in the budget (:func:`wmbook.lab.retrieval.bm25_scores`).

If the needle's place is uniform, truncation and the sliding window succeed with probability
about :math:`(B - \ell) / (L - \ell)` for a budget of :math:`B` words, a needle of :math:`\ell`
words and a document of :math:`L` words (:func:`position_chance`): the reference line.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

METHODS = ("truncation", "sliding window", "retrieval")


class NeedleDoc(NamedTuple):
    """One document: its paragraphs in order, the index of the needle, the question."""

    paragraphs: list[str]
    needle: int
    question: str
    question_id: int  # index of the question in the list given to :func:`make_needle_docs`
    paragraph_ids: list[int]  # index of each paragraph in the list of distinct paragraphs


def n_words(text: str) -> int:
    """Words of a text (split at white space): the budget's unit."""
    return len(text.split())


def make_needle_docs(contexts: Sequence[str], questions: Sequence[tuple[str, int]], k: int, n_docs: int,
                     seed: int = 0) -> list[NeedleDoc]:
    """``n_docs`` documents of ``k + 1`` paragraphs: a question's paragraph among ``k`` others.

    ``contexts`` are the distinct paragraphs, ``questions`` pairs (question, index of its paragraph).
    The questions, the other paragraphs and the needle's place are drawn with ``seed``.
    """
    if not 0 <= k < len(contexts):
        raise ValueError(f"k must be in 0..{len(contexts) - 1} (other paragraphs available), got {k}")
    if n_docs < 1 or n_docs > len(questions):
        raise ValueError(f"n_docs must be in 1..{len(questions)} (questions available), got {n_docs}")
    rng = np.random.default_rng(seed)
    docs = []
    for qi in rng.choice(len(questions), n_docs, replace=False):
        question, gold = questions[int(qi)]
        others = [int(j) for j in rng.permutation(len(contexts)) if j != gold][:k]
        pos = int(rng.integers(0, k + 1))
        ids = others[:pos] + [gold] + others[pos:]
        docs.append(NeedleDoc([contexts[j] for j in ids], pos, question, int(qi), ids))
    return docs


def kept_paragraphs(doc: NeedleDoc, method: str, budget: int, scores: np.ndarray | None = None) -> list[int]:
    """Indices (in ``doc.paragraphs``) of the paragraphs kept *whole* within ``budget`` words.

    ``scores`` (one per paragraph of the document) are needed for ``"retrieval"``.
    """
    lengths = [n_words(p) for p in doc.paragraphs]
    if method == "truncation":
        order = range(len(lengths))
    elif method == "sliding window":
        order = range(len(lengths) - 1, -1, -1)
    elif method == "retrieval":
        if scores is None or len(scores) != len(lengths):
            raise ValueError("retrieval needs one score per paragraph of the document")
        order = [int(i) for i in np.argsort(-np.asarray(scores), kind="stable")]
    else:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    kept, used = [], 0
    for i in order:
        if used + lengths[i] > budget:
            if method == "retrieval":
                continue  # a chunk that does not fit is skipped; a smaller one may still fit
            break  # truncation and the window keep a contiguous stretch
        kept.append(i)
        used += lengths[i]
    return sorted(kept)


def needle_recall(docs: Sequence[NeedleDoc], method: str, budget: int, scores: np.ndarray | None = None) -> float:
    """Share of documents whose needle paragraph is kept whole.

    ``scores`` for ``"retrieval"``: ``(n_questions, n_paragraphs)`` scores of every question against
    every distinct paragraph (rows indexed by ``question_id``, columns by ``paragraph_ids``).
    """
    hits = []
    for d in docs:
        s = None if scores is None else scores[d.question_id, d.paragraph_ids]
        hits.append(d.needle in kept_paragraphs(d, method, budget, s))
    return float(np.mean(hits))


def position_chance(doc_words: float, needle_words: float, budget: float) -> float:
    r"""Chance that a contiguous stretch of ``budget`` words holds a needle at a uniform place:
    :math:`\min(1, \max(0, (B - \ell) / (L - \ell)))`."""
    if doc_words <= needle_words:
        return 1.0 if budget >= needle_words else 0.0
    return float(min(1.0, max(0.0, (budget - needle_words) / (doc_words - needle_words))))


def attention_weight_bytes(n_tokens: int, n_heads: int, n_layers: int = 1, bytes_per_number: int = 4) -> int:
    r"""Bytes of the attention weights of ``n_layers`` layers: :math:`L \cdot H \cdot n^2 \cdot b` (arithmetic)."""
    if min(n_tokens, n_heads, n_layers, bytes_per_number) < 1:
        raise ValueError("n_tokens, n_heads, n_layers and bytes_per_number must all be >= 1")
    return n_layers * n_heads * n_tokens * n_tokens * bytes_per_number


__all__ = ["METHODS", "NeedleDoc", "n_words", "make_needle_docs", "kept_paragraphs", "needle_recall",
           "position_chance", "attention_weight_bytes"]
