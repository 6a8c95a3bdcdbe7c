r"""Passage retrieval: BM25, dense (MiniLM) and hybrid rankings; recall@k, MRR and bootstrap intervals.

Explained on page 6.2, "Question answering" (section 6.2.2). Given a question :math:`q` and
passages :math:`p_1, \dots, p_N`, each retriever gives scores :math:`s(q, p_i)` and ranks the
passages by them.

*BM25* (Robertson & Zaragoza 2009), Lucene's variant as ``bm25s`` computes it, sums over the
question's terms :math:`t` that occur in the passage:

.. math:: s(q, p) = \sum_{t \in q} \mathrm{idf}(t)\,
          \frac{f_{t,p}}{f_{t,p} + k_1 \bigl(1 - b + b\,|p| / \overline{|p|}\bigr)},
          \qquad \mathrm{idf}(t) = \ln\Bigl(1 + \frac{N - n_t + 0.5}{n_t + 0.5}\Bigr),

with :math:`f_{t,p}` the term's count in the passage, :math:`|p|` its length in terms,
:math:`n_t` the number of passages containing :math:`t`, :math:`k_1 = 1.5`, :math:`b = 0.75`
(Lucene drops the constant factor :math:`k_1 + 1` of the original numerator, which does not change
the ranking; a term repeated in the question counts each time).

*Dense* retrieval scores by the cosine of sentence embeddings, :math:`s(q, p) = e_q^\top e_p`
(MiniLM's mean-pooled, L2-normalised vectors, :mod:`wmbook.lab.sentence`).

*Hybrid*: each retriever's scores are min-max normalised over the passages of one question and
mixed, :math:`s = w\,\tilde s_{\mathrm{BM25}} + (1 - w)\,\tilde s_{\mathrm{dense}}`, with
:math:`w` chosen on questions that are not used to report the result. Reciprocal-rank fusion,
:math:`\sum_r 1 / (60 + \mathrm{rank}_r)` (Cormack et al. 2009), is the other common choice.

If the gold passage has rank :math:`r_i` for question :math:`i` (ties count against it), then
:math:`\mathrm{recall@}k = \frac1n \sum_i [r_i \le k]` and :math:`\mathrm{MRR} = \frac1n \sum_i 1 / r_i`.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
import torch

STOPWORDS = "en"  # bm25s's English stop-word list; no stemming
DENSE_MAX_LENGTH = 256  # word pieces per text (all-MiniLM-L6-v2 was trained with 256)


# ----------------------------------------------------------------------------- BM25


def bm25_index(passages: Sequence[str], k1: float = 1.5, b: float = 0.75):
    """A ``bm25s.BM25`` index of ``passages`` (lower case, words of 2+ characters, English stop words removed)."""
    import bm25s

    if isinstance(passages, str) or not passages:
        raise ValueError("passages must be a non-empty list of strings")
    index = bm25s.BM25(k1=k1, b=b, method="lucene")
    index.index(bm25s.tokenize(list(passages), stopwords=STOPWORDS, show_progress=False), show_progress=False)
    return index


def bm25_tokens(texts: Sequence[str]) -> list[list[str]]:
    """The terms BM25 sees in each text (the same tokenisation as :func:`bm25_index`)."""
    import bm25s

    return bm25s.tokenize(list(texts), stopwords=STOPWORDS, return_ids=False, show_progress=False)


def stop_words() -> list[str]:
    """The English stop words BM25 leaves out here (``bm25s``'s list)."""
    from bm25s.stopwords import STOPWORDS_EN

    return sorted(STOPWORDS_EN)


def bm25_scores(index, queries: Sequence[str]) -> np.ndarray:
    """``(Q, N)`` BM25 scores of every query against every indexed passage."""
    return np.stack([index.get_scores(toks) if toks else np.zeros(index.scores["num_docs"], np.float32)
                     for toks in bm25_tokens(queries)]).astype(np.float64)


def bm25_formula(passage_tokens: Sequence[Sequence[str]], query_tokens: Sequence[str], k1: float = 1.5,
                 b: float = 0.75) -> np.ndarray:
    """BM25 (Lucene's idf) computed from the formula above, ``(N,)``: the independent check of ``bm25s``."""
    N = len(passage_tokens)
    lengths = np.array([len(p) for p in passage_tokens], dtype=np.float64)
    avg = lengths.mean()
    out = np.zeros(N)
    for t in query_tokens:  # a term repeated in the query counts each time, as in bm25s
        f = np.array([list(p).count(t) for p in passage_tokens], dtype=np.float64)
        n_t = (f > 0).sum()
        if n_t == 0:
            continue
        idf = np.log(1 + (N - n_t + 0.5) / (n_t + 0.5))
        out += idf * f / (f + k1 * (1 - b + b * lengths / avg))
    return out


def bm25_index_bytes(index) -> int:
    """Bytes of the BM25 index's sparse score matrix (the arrays ``data``, ``indices``, ``indptr``)."""
    return int(sum(index.scores[k].nbytes for k in ("data", "indices", "indptr")))


# ----------------------------------------------------------------------------- dense and hybrid


def dense_scores(queries: torch.Tensor, passages: torch.Tensor) -> np.ndarray:
    """``(Q, N)`` cosine similarities of query and passage embeddings (``(Q, d)``, ``(N, d)``)."""
    from wmbook.lab.sentence import cosine_matrix

    return cosine_matrix(queries.float(), passages.float()).double().numpy()


def minmax(scores: np.ndarray) -> np.ndarray:
    """Each row scaled to [0, 1] (a constant row becomes 0)."""
    lo, hi = scores.min(axis=1, keepdims=True), scores.max(axis=1, keepdims=True)
    return (scores - lo) / np.where(hi > lo, hi - lo, 1.0)


def hybrid_scores(sparse: np.ndarray, dense: np.ndarray, weight: float) -> np.ndarray:
    """``weight * minmax(sparse) + (1 - weight) * minmax(dense)``, row by row."""
    if sparse.shape != dense.shape:
        raise ValueError(f"score matrices differ in shape: {sparse.shape} vs {dense.shape}")
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must be in [0, 1], got {weight}")
    return weight * minmax(sparse) + (1 - weight) * minmax(dense)


def rrf_scores(*score_matrices: np.ndarray, k: int = 60) -> np.ndarray:
    """Reciprocal-rank fusion: ``sum_r 1 / (k + rank_r)`` over the retrievers (rank 1 = best)."""
    total = 0.0
    for s in score_matrices:
        ranks = np.argsort(np.argsort(-s, axis=1, kind="stable"), axis=1) + 1
        total = total + 1.0 / (k + ranks)
    return total


# ----------------------------------------------------------------------------- metrics


def gold_ranks(scores: np.ndarray, gold: Sequence[int]) -> np.ndarray:
    """Rank (1 = top) of each question's gold passage; a tie with another passage counts against it."""
    gold = np.asarray(gold)
    if scores.ndim != 2 or len(gold) != scores.shape[0]:
        raise ValueError(f"scores must be (Q, N) with one gold index per row; got {scores.shape} and {len(gold)}")
    g = scores[np.arange(len(gold)), gold][:, None]
    return (scores >= g).sum(axis=1)  # the gold passage itself and every other one scoring >= it


def recall_at_k(ranks: np.ndarray, k: int) -> float:
    """Share of questions whose gold passage is among the top ``k``."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return float((np.asarray(ranks) <= k).mean())


def mrr(ranks: np.ndarray) -> float:
    """Mean reciprocal rank of the gold passage."""
    return float((1.0 / np.asarray(ranks, dtype=np.float64)).mean())


class Interval(NamedTuple):
    mean: float
    lo: float  # 2.5th percentile of the bootstrap means
    hi: float  # 97.5th percentile


def bootstrap_ci(values: np.ndarray, n_boot: int = 2000, seed: int = 0, groups: Sequence | None = None) -> Interval:
    """The mean of ``values`` with a 95 % percentile-bootstrap interval.

    With ``groups`` (e.g. each question's paragraph) whole groups are resampled (a cluster
    bootstrap): questions on one paragraph are not independent draws.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) < 2:
        raise ValueError("values must be a 1-D array of at least 2 per-question numbers")
    rng = np.random.default_rng(seed)
    if groups is None:
        idx = rng.integers(0, len(values), size=(n_boot, len(values)))
        means = values[idx].mean(axis=1)
    else:
        _, g = np.unique(np.asarray(groups), return_inverse=True)
        if len(g) != len(values):
            raise ValueError(f"{len(g)} groups for {len(values)} values")
        sums, counts = np.bincount(g, values), np.bincount(g)
        pick = rng.integers(0, len(sums), size=(n_boot, len(sums)))
        means = sums[pick].sum(axis=1) / counts[pick].sum(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return Interval(float(values.mean()), float(lo), float(hi))


def paired_difference_ci(a: np.ndarray, b: np.ndarray, **kw) -> Interval:
    """Mean of ``a - b`` (two systems on the same questions) with its bootstrap interval."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired values must have one shape, got {a.shape} and {b.shape}")
    return bootstrap_ci(a - b, **kw)


# ----------------------------------------------------------------------------- the committed dense index


def dense_index_file(span_qa_file):
    """Where ``scripts/train_span_qa.py`` writes the dense index: next to its checkpoint, ``<stem>_dense_index.pt``."""
    from pathlib import Path

    path = Path(span_qa_file)
    return path.with_name(f"{path.stem}_dense_index.pt")


#: sha256 of the committed dense index, ``span_qa_dense_index.pt`` (written by ``scripts/train_span_qa.py``).
DENSE_INDEX_SHA256 = "b125429d51b59a0859d3b6447e41b26649623d0b611844a98f54f71ab16724ac"
DENSE_INDEX_REGENERATE = "python scripts/train_span_qa.py --index-only"


class DenseIndex(NamedTuple):
    passages: torch.Tensor  # (N, d) float16, L2-normalised
    questions: torch.Tensor  # (Q, d) float16
    question_ids: list[str]
    max_length: int
    passage_texts: list[str]


def build_dense_index(encoder, tokenizer, passages: Sequence[str], questions: Sequence[str],
                      max_length: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """MiniLM embeddings (mean-pooled, normalised, float32) of the passages and the questions."""
    from wmbook.lab.sentence import encode

    return (encode(encoder, tokenizer, list(passages), max_length=max_length),
            encode(encoder, tokenizer, list(questions), max_length=max_length))


def load_dense_index(path, sha256: str | None, regenerate: str, where: str = "") -> DenseIndex:
    """The committed dense index (written by ``scripts/train_span_qa.py``), sha256-verified."""
    from wmbook.data.checkpoint import verify_checkpoint

    blob = torch.load(verify_checkpoint(path, sha256, regenerate, where), weights_only=True)
    return DenseIndex(blob["passages"], blob["questions"], list(blob["question_ids"]), int(blob["max_length"]),
                      list(blob["passage_texts"]))
