r"""Scoring attention heads: which heads of a model do what, measured rather than eyeballed.

Used on page 2.1, "Attention" (``chapters/02/2_1_attention.ipynb``), to find heads of
all-MiniLM-L6-v2 that look at the previous token, at ``[SEP]``, at another copy of
the same word, at a syntactic partner, or from a pronoun to its antecedent.

Every score is a mean of attention weights over a set of *rows*: a row is a query
position :math:`i` and a set of key positions :math:`S_i`, and the row's value is
the weight the head puts on those keys,

.. math::

    \mathrm{score}(\ell, h) = \frac{1}{|R|} \sum_{(i, S_i) \in R} \; \sum_{j \in S_i} w^{(\ell, h)}_{ij},

so a score lies in :math:`[0, 1]` and is 1 for a head that puts all its weight
where the rule says. For example the previous-token score uses
:math:`S_i = \{i - 1\}`. Scores are computed for every layer and head at once,
shape ``(n_layers, n_heads)``; :func:`top_heads` ranks them.

An *example* is anything :func:`wmbook.view.explorer.attention_view` accepts as one
example: an :class:`~wmbook.lab.attentions.AttentionExample` (what
:func:`~wmbook.lab.attentions.minilm_attentions` returns), a dict with ``tokens`` and
``attentions``, or a ``(tokens, attentions)`` pair. Every scoring function takes
one example or a list of them; over a list it averages the per-example scores
(examples without a single scoring row are skipped).
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, NamedTuple, Sequence

import numpy as np

from wmbook.lab.attentions import DEFAULT_SPECIAL_TOKENS, _field, _is_pair, _stack_attentions

Rows = list[tuple[int, list[int]]]  # (query position, key positions)


class HeadScore(NamedTuple):
    """One head and its score, as :func:`top_heads` returns them."""

    layer: int
    head: int
    score: float


def _unpack(example: Any) -> tuple[list[str], np.ndarray]:
    """``(tokens, weights (n_layers, n_heads, T, T))`` of one example."""
    if _is_pair(example):
        tokens, att = example
    else:
        tokens, att = _field(example, "tokens"), _field(example, "attentions")
    if tokens is None or att is None:
        raise TypeError(
            "an example needs tokens and attentions: an AttentionExample, a dict or a "
            f"(tokens, attentions) pair; got {type(example).__name__}"
        )
    tokens = list(tokens)
    w = _stack_attentions(att, "example")  # (L, H, T, T)
    if w.shape[-1] != len(tokens) or w.shape[-2] != len(tokens):
        raise ValueError(f"{len(tokens)} tokens but attentions of shape {w.shape}")
    n_real = _field(example, "n_real")
    if n_real is not None:  # score real tokens only
        tokens, w = tokens[: int(n_real)], w[:, :, : int(n_real), : int(n_real)]
    return tokens, w


def _examples(examples: Any) -> list:
    if _is_pair(examples) or hasattr(examples, "tokens") or isinstance(examples, dict):
        return [examples]
    return list(examples)


def attention_to(examples: Any, rows: Callable[[list[str]], Rows]) -> np.ndarray:
    """The mean weight on the keys each row names: ``(n_layers, n_heads)``.

    ``rows(tokens)`` returns the rows of one example: ``[(i, [j, ...]), ...]``.
    Averaged over the examples that have at least one row.
    """
    per_example = []
    for ex in _examples(examples):
        tokens, w = _unpack(ex)
        T = len(tokens)
        rs = rows(tokens)
        for i, keys in rs:
            if not 0 <= i < T or not keys or any(not 0 <= j < T for j in keys):
                raise ValueError(f"row (query {i}, keys {keys}) is outside the {T} tokens or has no key")
        if rs:
            per_example.append(np.mean([w[:, :, i, keys].sum(-1) for i, keys in rs], axis=0))
    if not per_example:
        raise ValueError("no example has a row to score (e.g. no repeated token, or no such token)")
    return np.mean(per_example, axis=0)


def offset_score(examples: Any, offset: int, special: Sequence[str] = DEFAULT_SPECIAL_TOKENS) -> np.ndarray:
    """Mean weight from each token to the token ``offset`` places away (``-1``: the previous one).

    Rows whose query or key is a special token (``[CLS]``, ``[SEP]``, ...) are left out,
    so a head that parks its weight on ``[CLS]`` does not count as looking back.
    """
    if offset == 0:
        raise ValueError("offset 0 is the token itself; use a non-zero offset")
    special = set(special)

    def rows(tokens: list[str]) -> Rows:
        T = len(tokens)
        return [(i, [i + offset]) for i in range(T) if 0 <= i + offset < T
                and tokens[i] not in special and tokens[i + offset] not in special]

    return attention_to(examples, rows)


def previous_token_score(examples: Any, special: Sequence[str] = DEFAULT_SPECIAL_TOKENS) -> np.ndarray:
    """Mean weight on the previous token, :math:`S_i = \\{i-1\\}` (special tokens left out)."""
    return offset_score(examples, -1, special)


def next_token_score(examples: Any, special: Sequence[str] = DEFAULT_SPECIAL_TOKENS) -> np.ndarray:
    """Mean weight on the next token, :math:`S_i = \\{i+1\\}` (special tokens left out)."""
    return offset_score(examples, +1, special)


def token_attention_score(
    examples: Any, target: str | Iterable[str] = "[SEP]", special: Sequence[str] = DEFAULT_SPECIAL_TOKENS
) -> np.ndarray:
    """Mean weight from every ordinary token to the tokens equal to ``target`` (e.g. ``"[SEP]"``).

    Queries that are special tokens themselves are left out.
    """
    targets = {target} if isinstance(target, str) else set(target)
    special = set(special)

    def rows(tokens: list[str]) -> Rows:
        keys = [j for j, t in enumerate(tokens) if t in targets]
        if not keys:
            return []
        return [(i, keys) for i, t in enumerate(tokens) if t not in special and t not in targets]

    return attention_to(examples, rows)


def same_token_score(
    examples: Any, special: Sequence[str] = DEFAULT_SPECIAL_TOKENS, ignore: Iterable[str] = ()
) -> np.ndarray:
    """Mean weight from a token to the *other* occurrences of the same token.

    Only tokens that occur more than once are queries; special tokens and the
    tokens in ``ignore`` (e.g. punctuation) are left out.
    """
    skip = set(special) | set(ignore)

    def rows(tokens: list[str]) -> Rows:
        out = []
        for i, t in enumerate(tokens):
            others = [j for j, u in enumerate(tokens) if u == t and j != i]
            if t not in skip and others:
                out.append((i, others))
        return out

    return attention_to(examples, rows)


def pair_score(examples: Any, pairs: Sequence[tuple[int, int]] | Callable[[list[str]], Sequence]) -> np.ndarray:
    """Mean weight from query ``i`` to key ``j`` over the given ``(i, j)`` pairs.

    ``pairs`` is a list of position pairs (one example), or a function
    ``tokens -> pairs`` (for a list of examples). Use :func:`find_token` to name
    positions by their words, e.g. ``[(find_token(t, "the"), find_token(t, "fox"))]``.
    """
    def rows(tokens: list[str]) -> Rows:
        ps = pairs(tokens) if callable(pairs) else pairs
        return [(int(i), [int(j)]) for i, j in ps]

    return attention_to(examples, rows)


def find_token(tokens: Sequence[str], word: str, nth: int = 0) -> int:
    """Position of the ``nth`` (0-based) occurrence of ``word`` among ``tokens``."""
    hits = [i for i, t in enumerate(tokens) if t == word]
    if len(hits) <= nth:
        raise ValueError(
            f"{word!r} occurs {len(hits)} time(s) in the tokens, so occurrence {nth} does not exist; "
            f"tokens: {list(tokens)}"
        )
    return hits[nth]


def top_heads(scores: Any, k: int = 3) -> list[HeadScore]:
    """The ``k`` heads with the largest scores, best first: ``[HeadScore(layer, head, score), ...]``."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2:
        raise ValueError(f"scores must be (n_layers, n_heads), got shape {s.shape}")
    order = np.argsort(-s, axis=None, kind="stable")[:k]
    return [HeadScore(int(l), int(h), float(s[l, h])) for l, h in zip(*np.unravel_index(order, s.shape))]
