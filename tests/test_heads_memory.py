"""Head scores (wmbook/lab/heads.py) and the key-value memory read (wmbook/lab/memory.py), page 2.1."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from wmbook.lab import heads
from wmbook.lab.attentions import AttentionExample
from wmbook.lab.memory import hard_read_capacity, kv_recall, kv_recall_accuracy, make_memory

TOKENS = ["[CLS]", "the", "cat", "saw", "the", "dog", "[SEP]"]


def planted(T: int = 7) -> np.ndarray:
    """(2 layers, 3 heads, T, T): a previous-token head, a [SEP] head, a same-token head; the rest uniform."""
    w = np.full((2, 3, T, T), 1.0 / T)
    w[0, 0] = np.eye(T, k=-1)
    w[0, 0, 0, 0] = 1.0
    w[0, 1] = 0.0
    w[0, 1, :, T - 1] = 1.0
    w[1, 2] = np.eye(T)
    w[1, 2, 1] = np.eye(T)[4]  # "the" (1) -> the other "the" (4), and back
    w[1, 2, 4] = np.eye(T)[1]
    return w


def test_planted_heads_are_found():
    ex = AttentionExample(TOKENS, torch.tensor(planted()))
    prev = heads.previous_token_score(ex)
    assert prev.shape == (2, 3) and prev[0, 0] == pytest.approx(1.0)
    assert heads.top_heads(prev, 1)[0][:2] == (0, 0)
    # uniform heads put 1/T on the previous token
    assert prev[1, 0] == pytest.approx(1 / 7)
    sep = heads.token_attention_score(ex, "[SEP]")
    assert heads.top_heads(sep, 1)[0] == heads.HeadScore(0, 1, 1.0)
    same = heads.same_token_score(ex)
    assert heads.top_heads(same, 1)[0] == heads.HeadScore(1, 2, 1.0)
    nxt = heads.next_token_score(ex)
    assert nxt[0, 0] == 0.0
    pair = heads.pair_score(ex, [(heads.find_token(TOKENS, "the", 1), heads.find_token(TOKENS, "the"))])
    assert pair[1, 2] == 1.0 and pair[0, 0] == 0.0


def test_scores_by_hand_and_averaging_over_examples():
    rng = np.random.default_rng(0)
    w = rng.random((1, 2, 5, 5))
    w /= w.sum(-1, keepdims=True)
    toks = ["[CLS]", "a", "b", "c", "[SEP]"]
    # previous token, special tokens left out: queries b (2) and c (3) only
    expected = (w[0, :, 2, 1] + w[0, :, 3, 2]) / 2
    assert np.allclose(heads.previous_token_score((toks, w))[0], expected)
    expected_sep = w[0, :, 1:4, 4].mean(-1)
    assert np.allclose(heads.token_attention_score({"tokens": toks, "attentions": w})[0], expected_sep)
    other = w[:, :, ::-1, ::-1].copy()
    both = heads.previous_token_score([(toks, w), (toks, other)])
    one, two = heads.previous_token_score((toks, w)), heads.previous_token_score((toks, other))
    assert np.allclose(both, (one + two) / 2)


def test_errors_are_clear():
    ex = (TOKENS, planted())
    with pytest.raises(ValueError, match="occurs 2 time"):
        heads.find_token(TOKENS, "the", 2)
    with pytest.raises(ValueError, match="no example has a row"):
        heads.same_token_score((["[CLS]", "a", "b", "[SEP]"], np.full((1, 1, 4, 4), 0.25)))
    with pytest.raises(ValueError, match="outside"):
        heads.pair_score(ex, [(0, 9)])
    with pytest.raises(ValueError, match="offset 0"):
        heads.offset_score(ex, 0)
    with pytest.raises(ValueError, match="7 tokens"):
        heads.previous_token_score((TOKENS, planted(6)[:, :, :6, :6]))
    with pytest.raises(ValueError, match="n_layers, n_heads"):
        heads.top_heads(np.zeros(3))


def test_padding_is_not_scored():
    w = planted()
    padded = AttentionExample(TOKENS[:5] + ["[PAD]", "[PAD]"], w, n_real=5)
    with pytest.raises(ValueError, match="no example has a row"):
        heads.token_attention_score(padded, "[PAD]")  # padding is cut before scoring
    expected = (w[1, 0, 2, 1] + w[1, 0, 3, 2] + w[1, 0, 4, 3]) / 3  # queries cat, saw, the
    assert heads.previous_token_score(padded)[1, 0] == pytest.approx(expected)


def test_memory_shapes_and_one_hot_values():
    keys, values, labels = make_memory(6, 4, 3, torch.Generator().manual_seed(0))
    assert keys.shape == (6, 4) and values.shape == (6, 3) and labels.shape == (6,)
    assert torch.equal(values.argmax(-1), labels) and torch.equal(values.sum(-1), torch.ones(6))


def test_recall_matches_a_hand_written_read():
    """kv_recall is softmax(qK^T / (sqrt(d_k) tau)) V, checked against torch's fused kernel."""
    n, d, C, sigma, tau = 50, 8, 5, 0.3, 0.5
    g = torch.Generator().manual_seed(3)
    keys, values, labels = make_memory(n, d, C, g)
    items = torch.randperm(n, generator=g)[:20]
    q = keys[items] + sigma * torch.randn(20, d, generator=g)
    ref = torch.nn.functional.scaled_dot_product_attention(
        q[None], keys[None], values[None], scale=1 / (math.sqrt(d) * tau))[0]
    expected = (ref.argmax(-1) == labels[items]).float().mean().item()
    assert kv_recall(n, d, n_labels=C, noise=sigma, temperature=tau, n_queries=20, seed=3).accuracy == expected


def test_recall_behaves_like_a_memory():
    # few pairs, wide keys, no noise: perfect; chance level when the keys carry no information
    assert kv_recall_accuracy(8, 64, noise=0.0) == 1.0
    crowded = kv_recall(4096, 2, n_labels=10, noise=2.0, n_queries=2000)
    assert crowded.accuracy < 0.2 and crowded.chance == 0.1
    # more pairs -> lower recall; wider keys -> higher recall; sharper reads -> higher recall
    small, big = kv_recall(16, 16, noise=1.0, n_queries=2000), kv_recall(2048, 16, noise=1.0, n_queries=2000)
    assert small.accuracy > big.accuracy + 0.2 and small.target_weight > big.target_weight
    assert kv_recall_accuracy(1024, 64, noise=1.0) > kv_recall_accuracy(1024, 16, noise=1.0) + 0.2
    assert kv_recall_accuracy(4096, 32, temperature=0.25) > kv_recall_accuracy(4096, 32, temperature=1.0)
    assert hard_read_capacity(8, 0.5) == pytest.approx(math.exp(8 / 2.5))


def test_recall_argument_checks():
    for kwargs, match in (({"n_pairs": 0}, "n_pairs"), ({"n_labels": 1}, "n_labels"),
                          ({"noise": -1.0}, "noise"), ({"temperature": 0.0}, "temperature")):
        args = {"n_pairs": 4, "d_k": 4, **kwargs}
        with pytest.raises(ValueError, match=match):
            kv_recall(**args)


def test_recall_over_memories_is_the_mean_and_sd_of_kv_recall():
    from wmbook.lab.memory import recall_over_memories

    r = recall_over_memories(16, 8, n_memories=5, n_queries=40, first_seed=3, noise=0.5)
    each = [kv_recall(16, 8, n_queries=40, seed=3 + m, noise=0.5) for m in range(5)]
    acc = np.array([e.accuracy for e in each])
    assert r.n_pairs == 16 and r.n_memories == 5
    assert r.mean == pytest.approx(acc.mean()) and r.sd == pytest.approx(acc.std(ddof=1))
    assert r.target_weight == pytest.approx(np.mean([e.target_weight for e in each]))
    with pytest.raises(ValueError, match="n_memories"):
        recall_over_memories(16, 8, n_memories=1)


def test_recall_curve_stops_below_the_level():
    from wmbook.lab.memory import recall_curve

    full = recall_curve(4, [2, 8, 32, 128], n_memories=3, n_queries=50)
    assert [r.n_pairs for r in full] == [2, 8, 32, 128]
    stopped = recall_curve(4, [2, 8, 32, 128], stop_below=0.8, n_memories=3, n_queries=50)
    first_below = next(i for i, r in enumerate(full) if r.mean < 0.8)
    assert len(stopped) == first_below + 1 and stopped[-1].mean == full[first_below].mean
    with pytest.raises(ValueError, match="increasing"):
        recall_curve(4, [8, 2])


def test_capacity_interpolates_on_a_log_scale():
    from wmbook.lab.memory import capacity

    # 0.9 lies halfway between 1.0 at N=4 and 0.8 at N=16: the geometric mean, 8
    assert capacity([2, 4, 16], [1.0, 1.0, 0.8], 0.9) == pytest.approx(8.0)
    assert capacity([2, 4], [1.0, 0.95], 0.9) is None  # never drops to the level
    assert capacity([2, 4], [0.85, 0.5], 0.9) is None  # starts below it
    assert capacity([4, 8], [0.9, 0.5], 0.9) == pytest.approx(4.0)
    with pytest.raises(ValueError, match="length"):
        capacity([2, 4], [1.0])


def test_learn_to_read_gradients_and_learning():
    """Page 4.1: without 1/sqrt(d_k) the first gradient at W_Q is larger, at the right key's score smaller."""
    from wmbook.lab.memory import learn_to_read

    kw = dict(steps=40, eval_every=20, n_test=200, seed=0)
    scaled, unscaled = learn_to_read(64, scaled=True, **kw), learn_to_read(64, scaled=False, **kw)
    assert scaled.steps == [0, 20, 40] and scaled.chance == 1 / 8
    # same initial weights and held-out set: the same start (argmax of the scores is scale-free)
    assert scaled.accuracy[0] == unscaled.accuracy[0]
    assert unscaled.max_weight[0] > scaled.max_weight[0] + 0.2  # saturation
    assert unscaled.grad_wq > scaled.grad_wq and unscaled.grad_right < scaled.grad_right
    assert scaled.accuracy[-1] > scaled.accuracy[0] + 0.3  # it learns
    with pytest.raises(ValueError, match="n_pairs"):
        learn_to_read(8, n_pairs=100)
    with pytest.raises(ValueError, match="steps"):
        learn_to_read(8, steps=0)


def test_learn_to_read_score_gradient_by_hand():
    """The softmax backward the docstring states: dL/ds_j = a_j (g_j - sum_l a_l g_l)."""
    s = torch.randn(5, 8, requires_grad=True)
    g = torch.randn(5, 8)
    a = torch.softmax(s, -1)
    (a * g).sum().backward()
    expected = a * (g - (a * g).sum(-1, keepdim=True))
    assert torch.allclose(s.grad, expected.detach(), atol=1e-6)
