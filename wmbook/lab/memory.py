r"""Attention as a content-addressable memory: store key–value pairs, read with a noisy key.

Explained on page 2.1, "Attention" (``chapters/02/2_1_attention.ipynb``). A memory
holds :math:`N` pairs :math:`(k_j, v_j)`; a read with query :math:`q` returns

.. math::

    r(q) = \mathrm{softmax}\!\left(\frac{q K^\top}{\sqrt{d_k}\,\tau}\right) V ,

the guide's attention formula for one query (:func:`wmbook.scaled_dot_product_attention`,
with temperature :math:`\tau`). :func:`kv_recall` measures how often such a read
returns the right value: the keys are random, :math:`k_j \sim \mathcal{N}(0, I_{d_k})`;
each value is the one-hot code of a label drawn uniformly from ``n_labels`` labels;
the query for item :math:`i` is its key plus noise,
:math:`q = k_i + \sigma \varepsilon` with :math:`\varepsilon \sim \mathcal{N}(0, I_{d_k})`;
the read is correct when the largest entry of :math:`r(q)` is item :math:`i`'s label.

Why capacity is finite: the matching score is about :math:`\sqrt{d_k}` (the
query's own key), each of the :math:`N-1` others is about
:math:`\mathcal{N}(0, 1 + \sigma^2)`, and the largest of them grows like
:math:`\sqrt{2(1+\sigma^2)\ln N}`. A hard (arg-max) read therefore fails once
:math:`N \approx \exp(d_k / (2(1+\sigma^2)))`; a soft read at :math:`\tau = 1`
fails earlier, because the many small weights of the distractors add up
(:func:`hard_read_capacity` is that closed form).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch

from wmbook.nn.attention import scaled_dot_product_attention


class KVRecall(NamedTuple):
    """What :func:`kv_recall` measured (means over the queries)."""

    accuracy: float  # fraction of reads whose largest label is the stored one
    target_weight: float  # attention weight on the queried pair itself
    chance: float  # accuracy of a guess: 1 / n_labels


def make_memory(
    n_pairs: int, d_k: int, n_labels: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random keys ``(n_pairs, d_k)``, one-hot values ``(n_pairs, n_labels)`` and the labels ``(n_pairs,)``."""
    keys = torch.randn(n_pairs, d_k, generator=generator)  # (N, d_k)
    labels = torch.randint(n_labels, (n_pairs,), generator=generator)  # (N,)
    values = torch.nn.functional.one_hot(labels, n_labels).float()  # (N, n_labels)
    return keys, values, labels


def kv_recall(
    n_pairs: int,
    d_k: int,
    n_labels: int = 10,
    noise: float = 0.5,
    temperature: float = 1.0,
    n_queries: int = 512,
    seed: int = 0,
) -> KVRecall:
    r"""Store ``n_pairs`` random key–value pairs, read each of ``n_queries`` with a noisy key.

    Args:
        n_pairs: :math:`N`, the number of stored pairs.
        d_k: width of the keys.
        n_labels: number of distinct values (one-hot labels); chance is ``1 / n_labels``.
        noise: :math:`\sigma`, the standard deviation of the noise added to the key
            (the key's own entries have standard deviation 1).
        temperature: :math:`\tau` of the read; 1 is the guide's
            :math:`\mathrm{softmax}(qK^\top/\sqrt{d_k})`, smaller is sharper.
        n_queries: how many stored items are queried (with replacement when
            ``n_queries > n_pairs``).
        seed: the keys, labels, queried items and noise are drawn from it.

    Returns:
        :class:`KVRecall` (accuracy, mean weight on the queried pair, chance).
    """
    for name, value in (("n_pairs", n_pairs), ("d_k", d_k), ("n_queries", n_queries)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if isinstance(n_labels, bool) or not isinstance(n_labels, int) or n_labels < 2:
        raise ValueError(f"n_labels must be an int >= 2, got {n_labels!r}")
    if not noise >= 0:
        raise ValueError(f"noise must be >= 0, got {noise!r}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    g = torch.Generator().manual_seed(seed)
    keys, values, labels = make_memory(n_pairs, d_k, n_labels, g)
    if n_queries <= n_pairs:
        items = torch.randperm(n_pairs, generator=g)[:n_queries]  # (n_queries,)
    else:
        items = torch.randint(n_pairs, (n_queries,), generator=g)
    queries = keys[items] + noise * torch.randn(n_queries, d_k, generator=g)  # (n_queries, d_k)
    read, weights = scaled_dot_product_attention(queries, keys, values, temperature=temperature)
    # read: (n_queries, n_labels), weights: (n_queries, n_pairs)
    correct = read.argmax(-1) == labels[items]
    target = weights.gather(-1, items[:, None]).squeeze(-1)
    return KVRecall(correct.float().mean().item(), target.mean().item(), 1.0 / n_labels)


def kv_recall_accuracy(n_pairs: int, d_k: int, **kwargs) -> float:
    """Only the accuracy of :func:`kv_recall` (same arguments)."""
    return kv_recall(n_pairs, d_k, **kwargs).accuracy


def hard_read_capacity(d_k: int, noise: float = 0.5) -> float:
    r"""The closed-form scale :math:`\exp(d_k / (2(1+\sigma^2)))` at which arg-max reads start to fail.

    A rough order of magnitude (it ignores constants), not a threshold to the item.
    """
    return math.exp(d_k / (2 * (1 + noise**2)))
