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


class MemoryRecall(NamedTuple):
    """Recall of :func:`kv_recall` over many random memories of one size (see :func:`recall_over_memories`)."""

    n_pairs: int  # N, the pairs stored in each memory
    mean: float  # mean over the memories of each memory's recall
    sd: float  # standard deviation over the memories (ddof = 1)
    target_weight: float  # mean attention weight on the queried pair
    n_memories: int


def recall_over_memories(
    n_pairs: int, d_k: int, n_memories: int = 50, n_queries: int = 100, first_seed: int = 0, **kwargs
) -> MemoryRecall:
    r"""Recall of ``n_memories`` independent random memories of ``n_pairs`` pairs, mean ± sd.

    Page 2.1, "How much can a soft memory hold?". Memory :math:`m` is
    ``kv_recall(n_pairs, d_k, n_queries=n_queries, seed=first_seed + m, **kwargs)``
    (its own keys, labels and query noise); its recall :math:`p_m` is the fraction of its
    ``n_queries`` noisy reads that return the stored label. Returns
    :math:`\bar p = \frac1M\sum_m p_m` and :math:`\mathrm{sd} = \sqrt{\frac{1}{M-1}\sum_m (p_m - \bar p)^2}`,
    the spread from one memory to the next (plus the sampling noise of ``n_queries`` reads).
    """
    if isinstance(n_memories, bool) or not isinstance(n_memories, int) or n_memories < 2:
        raise ValueError(f"n_memories must be an int >= 2 (a spread needs two), got {n_memories!r}")
    runs = [kv_recall(n_pairs, d_k, n_queries=n_queries, seed=first_seed + m, **kwargs)
            for m in range(n_memories)]
    acc = torch.tensor([r.accuracy for r in runs], dtype=torch.float64)
    weight = sum(r.target_weight for r in runs) / n_memories
    return MemoryRecall(n_pairs, acc.mean().item(), acc.std().item(), weight, n_memories)


def recall_curve(
    d_k: int, n_grid: list[int], stop_below: float | None = None, **kwargs
) -> list[MemoryRecall]:
    """:func:`recall_over_memories` for each ``N`` of ``n_grid`` (increasing), at key width ``d_k``.

    With ``stop_below``, the sweep stops after the first ``N`` whose mean recall is below it
    (larger memories only recall less, and cost more). Page 2.1.
    """
    if list(n_grid) != sorted(set(n_grid)) or not n_grid:
        raise ValueError(f"n_grid must be increasing and non-empty, got {n_grid!r}")
    out = []
    for n in n_grid:
        out.append(recall_over_memories(n, d_k, **kwargs))
        if stop_below is not None and out[-1].mean < stop_below:
            break
    return out


def capacity(ns: list[int], recalls: list[float], level: float = 0.9) -> float | None:
    r"""The number of pairs at which mean recall falls to ``level``, interpolated on a log scale.

    Page 2.1. Between the first pair of neighbours with :math:`p_0 \ge \text{level} > p_1`,

    .. math::

        N^\ast = N_0 \,(N_1 / N_0)^{(p_0 - \text{level}) / (p_0 - p_1)} .

    Returns ``None`` when the curve does not cross ``level`` (it never drops below it, or
    starts below it).
    """
    if len(ns) != len(recalls):
        raise ValueError(f"ns and recalls differ in length: {len(ns)} vs {len(recalls)}")
    if recalls and recalls[0] < level:
        return None
    for n0, a0, n1, a1 in zip(ns, recalls, ns[1:], recalls[1:]):
        if a0 >= level > a1:
            return n0 * (n1 / n0) ** ((a0 - level) / (a0 - a1))
    return None


def hard_read_capacity(d_k: int, noise: float = 0.5) -> float:
    r"""The closed-form scale :math:`\exp(d_k / (2(1+\sigma^2)))` at which arg-max reads start to fail.

    A rough order of magnitude (it ignores constants), not a threshold to the item.
    """
    return math.exp(d_k / (2 * (1 + noise**2)))


class ReadLearning(NamedTuple):
    """What :func:`learn_to_read` measured: a learning curve and the gradients at the start."""

    steps: list[int]  # the steps at which the held-out set was read
    accuracy: list[float]  # fraction of held-out queries whose largest weight is on the right key
    max_weight: list[float]  # mean largest attention weight of a query
    grad_wq: float  # Frobenius norm of dL/dW_Q on the first batch, before any step
    grad_q: float  # mean norm of dL/dq (one query per example) on the first batch
    grad_right: float  # mean |dL/ds| at the right key's score on the first batch
    chance: float  # 1 / n_pairs: the right key picked at random


def learn_to_read(
    d_k: int,
    scaled: bool = True,
    steps: int = 150,
    seed: int = 0,
    n_symbols: int = 64,
    n_pairs: int = 8,
    n_labels: int = 8,
    batch: int = 64,
    lr: float = 1e-3,
    gain: float = 10.0,
    eval_every: int = 25,
    n_test: int = 1000,
) -> ReadLearning:
    r"""Learn :math:`W_Q, W_K` so that a query finds its key, with or without the :math:`1/\sqrt{d_k}`.

    Page 4.1, "Why divide by :math:`\sqrt{d_k}`?". Each of ``n_symbols`` symbols has a fixed
    random embedding :math:`e \in \mathbb{R}^{d_k}` (entries :math:`\mathcal{N}(0, 1)`). An example
    stores ``n_pairs`` distinct symbols :math:`e_1..e_N`, each with a label :math:`y_j` (one of
    ``n_labels``), and asks for the label of one of them, :math:`e_i`. The read is one head,

    .. math::

        s_j = \frac{(e_i W_Q) \cdot (e_j W_K)}{c}, \quad a = \mathrm{softmax}(s), \quad
        r = \sum_j a_j\, \mathrm{onehot}(y_j), \quad
        L = \mathrm{CE}(\mathrm{gain} \cdot r,\; y_i),

    with :math:`c = \sqrt{d_k}` (``scaled``, the guide's formula) or :math:`c = 1`. :math:`W_Q, W_K`
    start as :math:`\mathcal{N}(0, 1/d_k)` entries, so :math:`q, k` have unit-variance entries;
    they are the only parameters, trained with Adam (``lr``) on fresh batches. The loss reaches
    the scores only through the read: :math:`\partial L/\partial s_j = a_j (g_j - \sum_l a_l g_l)`
    with :math:`g_j = \partial L / \partial r \cdot \mathrm{onehot}(y_j)`, so a key whose weight is
    near 0 gets almost no gradient. Accuracy: the fraction of ``n_test`` held-out queries (drawn
    from ``seed + 10_000``) whose largest weight is on the right key; chance is ``1 / n_pairs``.
    """
    for name, value in (("d_k", d_k), ("steps", steps), ("n_pairs", n_pairs), ("batch", batch),
                        ("eval_every", eval_every), ("n_test", n_test)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if n_pairs > n_symbols:
        raise ValueError(f"n_pairs ({n_pairs}) cannot exceed n_symbols ({n_symbols})")
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(n_symbols, d_k, generator=g)  # (S, d_k), fixed
    w_q = torch.nn.Parameter(torch.randn(d_k, d_k, generator=g) / math.sqrt(d_k))
    w_k = torch.nn.Parameter(torch.randn(d_k, d_k, generator=g) / math.sqrt(d_k))
    opt = torch.optim.Adam([w_q, w_k], lr=lr)
    c = math.sqrt(d_k) if scaled else 1.0

    def draw(n: int, gen: torch.Generator):
        syms = torch.rand(n, n_symbols, generator=gen).argsort(-1)[:, :n_pairs]  # (n, N) distinct
        labels = torch.randint(n_labels, (n, n_pairs), generator=gen)  # (n, N)
        right = torch.randint(n_pairs, (n,), generator=gen)  # (n,) which pair is asked for
        return syms, labels, right

    def read(syms, labels, right, q_all=None):
        q_all = emb @ w_q if q_all is None else q_all  # (S, d_k): every symbol's query
        q = q_all[syms.gather(1, right[:, None])]  # (n, 1, d_k)
        k = (emb @ w_k)[syms]  # (n, N, d_k)
        s = (q @ k.transpose(1, 2))[:, 0] / c  # (n, N)
        a = torch.softmax(s, dim=-1)
        r = (a[:, None] @ torch.nn.functional.one_hot(labels, n_labels).float())[:, 0]  # (n, C)
        loss = torch.nn.functional.cross_entropy(gain * r, labels.gather(1, right[:, None])[:, 0])
        return loss, s, a, q

    test = draw(n_test, torch.Generator().manual_seed(seed + 10_000))
    out_steps, accuracy, max_weight = [], [], []
    grads = {}
    for step in range(steps + 1):
        if step % eval_every == 0 or step == steps:
            with torch.no_grad():
                _, _, a, _ = read(*test)
            out_steps.append(step)
            accuracy.append((a.argmax(-1) == test[2]).float().mean().item())
            max_weight.append(a.max(-1).values.mean().item())
        if step == steps:
            break
        syms, labels, right = draw(batch, g)
        loss, s, _, q = read(syms, labels, right)
        if step == 0:
            s.retain_grad()
            q.retain_grad()
        opt.zero_grad()
        loss.backward()
        if step == 0:
            grads["wq"] = w_q.grad.norm().item()
            grads["q"] = q.grad.norm(dim=-1).mean().item()
            grads["right"] = s.grad.gather(1, right[:, None]).abs().mean().item()
        opt.step()
    return ReadLearning(out_steps, accuracy, max_weight, grads["wq"], grads["q"], grads["right"],
                        1.0 / n_pairs)
