"""Tests for wmbook.lab.limits (page 9.3) and wmbook.lab.weat (page 9.5)."""
from __future__ import annotations

import itertools
import math
import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from wmbook.lab import limits, weat
from wmbook.nn.gpt import GPT, GPTConfig


@pytest.fixture(scope="module")
def tiny_gpt():
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=11, n_ctx=16, d_model=16, n_heads=2, n_layers=2, dropout=0.0)).eval()


# ------------------------------------------------------------------------------------------ limits
def test_entropy_nats_closed_forms():
    V = 7
    assert limits.entropy_nats(torch.zeros(V)).item() == pytest.approx(math.log(V), abs=1e-12)
    peaked = torch.full((V,), -1e4)
    peaked[2] = 0.0
    assert limits.entropy_nats(peaked).item() == pytest.approx(0.0, abs=1e-9)
    p = torch.tensor([0.5, 0.25, 0.25], dtype=torch.float64)
    assert limits.entropy_nats(p.log()).item() == pytest.approx(1.5 * math.log(2), abs=1e-12)


def test_token_surprisal_matches_cross_entropy(tiny_gpt):
    ids = [1, 5, 3, 7, 2, 9]
    got = limits.token_surprisal(tiny_gpt, ids)
    with torch.no_grad():
        logits = tiny_gpt(torch.tensor([ids[:-1]])).logits[0]
    ref = F.cross_entropy(logits.double(), torch.tensor(ids[1:]), reduction="none")
    assert got.shape == (5,)
    assert torch.allclose(got, ref, atol=1e-6)
    with pytest.raises(ValueError, match="n_ctx"):
        limits.token_surprisal(tiny_gpt, list(range(11)) * 2)
    with pytest.raises(ValueError, match="at least 2"):
        limits.token_surprisal(tiny_gpt, [3])


def test_sample_with_confidence_shapes_and_reproducibility(tiny_gpt):
    prompts = torch.tensor([[1, 2, 3], [4, 5, 6]])
    a = limits.sample_with_confidence(tiny_gpt, prompts, 20, n_samples=3, generator=torch.Generator().manual_seed(1))
    b = limits.sample_with_confidence(tiny_gpt, prompts, 20, n_samples=3, generator=torch.Generator().manual_seed(1))
    assert a.ids.shape == a.entropy.shape == a.prob.shape == (6, 20)  # window of 16 slides past the end
    assert torch.equal(a.ids, b.ids)
    assert ((a.prob > 0) & (a.prob <= 1)).all()
    assert ((a.entropy >= 0) & (a.entropy <= math.log(11) + 1e-9)).all()
    one = limits.sample_with_confidence(tiny_gpt, [1, 2], 4)
    assert one.ids.shape == (1, 4)
    with pytest.raises(ValueError):
        limits.sample_with_confidence(tiny_gpt, [], 4)
    with pytest.raises(ValueError):
        limits.sample_with_confidence(tiny_gpt, [1], 4, temperature=0)


def test_fabricated_names():
    names = limits.fabricated_names(20, seed=3, avoid=["BABA"])
    assert len(names) == len(set(names)) == 20
    assert all(n.isupper() and 5 <= len(n) <= 9 for n in names)
    assert names == limits.fabricated_names(20, seed=3, avoid=["BABA"])
    few = limits.fabricated_names(50, seed=0, min_len=2, max_len=2, avoid=["BA", "BE"])
    assert "BA" not in few and "BE" not in few
    with pytest.raises(ValueError):
        limits.fabricated_names(0, seed=0)


def test_speaker_prompts():
    text = "A:\nhello there\n\nB:\nyes indeed my lord\n\nC:\nno\n"
    prompts = limits.speaker_prompts(text, ["XY", "ROMEO"], 16, seed=0)
    assert [len(p) for p in prompts] == [16, 16]
    assert prompts[0].endswith("\n\nXY:\n") and prompts[1].endswith("\n\nROMEO:\n")
    with pytest.raises(ValueError, match="length"):
        limits.speaker_prompts(text, ["ROMEO"], 8, seed=0)
    with pytest.raises(ValueError, match="blank line"):
        limits.speaker_prompts("no boundary here at all", ["X"], 8, seed=0)


def test_extend_positions(tiny_gpt):
    x = torch.randint(0, 11, (2, 24), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = tiny_gpt(x[:, :16]).logits
        for fill in ("random", "cyclic", "last"):
            ext = limits.extend_positions(tiny_gpt, 24, fill, torch.Generator().manual_seed(0))
            assert ext.cfg.n_ctx == 24 and ext.wpe.weight.shape == (24, 16)
            out = ext(x).logits
            assert out.shape == (2, 24, 11)
            assert torch.allclose(out[:, :16], ref, atol=1e-5)
    cyc = limits.extend_positions(tiny_gpt, 24, "cyclic")
    assert torch.equal(cyc.wpe.weight[16:24], tiny_gpt.wpe.weight[:8])
    assert tiny_gpt.cfg.n_ctx == 16  # the original is untouched
    with pytest.raises(ValueError, match="must exceed"):
        limits.extend_positions(tiny_gpt, 16)
    with pytest.raises(ValueError, match="fill"):
        limits.extend_positions(tiny_gpt, 20, "zeros")


def test_add_typo():
    rng = random.Random(0)
    for _ in range(50):
        s = "the quick brown foxes jumped over lazy dogs"
        t = limits.add_typo(s, rng)
        diff = [(a, b) for a, b in zip(s.split(), t.split()) if a != b]
        assert len(diff) == 1
        a, b = diff[0]
        assert sorted(a) == sorted(b) and a[0] == b[0] and a[-1] == b[-1]
    assert limits.add_typo("a an to", random.Random(0)) == "a an to"
    assert limits.add_typo("aaaa", random.Random(0)) == "aaaa"  # no swap changes it


def test_sum_problems():
    probs = limits.sum_problems(40, seed=1, n_choices=10)
    assert probs == limits.sum_problems(40, seed=1, n_choices=10)
    for p in probs:
        assert len(set(p["choices"])) == 10
        assert p["choices"][p["answer"]] == p["a"] + p["b"]
        assert all(20 <= c <= 198 for c in p["choices"])
    with pytest.raises(ValueError):
        limits.sum_problems(5, seed=0, lo=1, hi=2, n_choices=10)


def test_sum_choices_picks_the_identical_sentence():
    """With the answer template equal to the question template, the right choice is the question itself."""
    from wmbook.nn.bert import BertModel, minilm_tokenizer

    model, tok = BertModel.from_minilm(), minilm_tokenizer()
    probs = limits.sum_problems(6, seed=0, n_choices=4)
    probs = [{**p, "question_sum": p["a"] + p["b"]} for p in probs]
    picks = limits.sum_choices(model, tok, probs, question="The answer is {question_sum}.", answer="The answer is {c}.")
    assert picks.tolist() == [p["answer"] for p in probs]
    with pytest.raises(ValueError):
        limits.sum_choices(model, tok, [])


class _CountingModel:
    """Predicts next token = last token + 1 (mod V): continues ``arange`` text perfectly."""

    def __init__(self, V=10, n_ctx=8):
        self.cfg = SimpleNamespace(n_ctx=n_ctx)
        self.V = V

    def __call__(self, x, need_weights=False):
        logits = F.one_hot((x + 1) % self.V, self.V).float()
        return SimpleNamespace(logits=logits)


def test_verbatim_lengths():
    m = _CountingModel()
    ids = torch.arange(100) % 10
    assert limits.verbatim_lengths(m, ids, [0, 13, 50], 5, 12).tolist() == [12, 12, 12]
    broken = ids.clone()
    broken[13 + 5 + 3] = 0  # the 4th continued token differs from the model's prediction
    if ids[21] == 0:
        broken[21] = 1
    assert limits.verbatim_lengths(m, broken, [13], 5, 12).tolist() == [3]
    with pytest.raises(ValueError):
        limits.verbatim_lengths(m, ids, [95], 5, 12)
    with pytest.raises(ValueError):
        limits.verbatim_lengths(m, ids, [0], 9, 2)  # prefix longer than n_ctx


def test_injection_hits():
    lib = torch.eye(4)
    q = torch.tensor([[1.0, 0.1, 0, 0], [0, 0, 1.0, 0]])
    assert limits.injection_hits(q, lib, planted=0, k=1).tolist() == [True, False]
    assert limits.injection_hits(q, lib, planted=1, k=2).tolist() == [True, False]
    with pytest.raises(ValueError):
        limits.injection_hits(q, lib, planted=4)


# ------------------------------------------------------------------------------------------ weat
def _independent_weat(X, Y, A, B):
    """Loops over items, straight from Caliskan et al.'s definitions (no shared code with weat.py)."""
    def cos(u, v):
        return float(np.dot(u, v) / math.sqrt(np.dot(u, u) * np.dot(v, v)))

    def s(w):
        return sum(cos(w, a) for a in A) / len(A) - sum(cos(w, b) for b in B) / len(B)

    sx, sy = [s(x) for x in X], [s(y) for y in Y]
    allv = sx + sy
    mean = sum(allv) / len(allv)
    sd = math.sqrt(sum((v - mean) ** 2 for v in allv) / (len(allv) - 1))
    d = (sum(sx) / len(sx) - sum(sy) / len(sy)) / sd
    observed = sum(sx) - sum(sy)
    total = hits = 0
    for part in itertools.combinations(range(len(allv)), len(sx)):
        xi = sum(allv[i] for i in part)
        stat = xi - (sum(allv) - xi)
        hits += stat >= observed - 1e-12
        total += 1
    return sx, sy, d, hits / total


def test_weat_matches_an_independent_implementation():
    rng = np.random.default_rng(0)
    X, Y, A, B = (rng.normal(size=(n, 12)) for n in (5, 5, 6, 4))
    X[:, 0] += 1.0  # X leans towards A's direction
    A[:, 0] += 1.0
    sx, sy, d, p = _independent_weat(X, Y, A, B)
    assert np.allclose(weat.association(X, A, B), sx, atol=1e-12)
    assert np.allclose(weat.association(Y, A, B), sy, atol=1e-12)
    res = weat.weat(X, Y, A, B, n_permutations=10_000)
    assert res.exact and (res.n_x, res.n_y) == (5, 5)
    assert res.d == pytest.approx(d, abs=1e-12)
    assert res.p == pytest.approx(p, abs=1e-12)


def test_weat_closed_form_toy():
    """a = e1, b = e2, w = (cos t, sin t): s(w) = cos t - sin t. Two X items above both Y items: p = 1/C(4,2)."""
    ang = np.array([0.1, 0.3, 1.2, 1.4])
    W = np.stack([np.cos(ang), np.sin(ang)], 1)
    s = np.cos(ang) - np.sin(ang)
    A, B = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
    res = weat.weat(W[:2], W[2:], A, B)
    assert res.p == pytest.approx(1 / 6) and res.exact
    assert res.d == pytest.approx((s[:2].mean() - s[2:].mean()) / s.std(ddof=1), abs=1e-12)
    assert weat.effect_size(s[:2], s[2:], ddof=0) == pytest.approx((s[:2].mean() - s[2:].mean()) / s.std(), abs=1e-12)


def test_permutation_p_agrees_with_scipy_and_sampling():
    from scipy.stats import permutation_test

    rng = np.random.default_rng(1)
    sx, sy = rng.normal(0.3, 1, 7), rng.normal(0, 1, 7)
    p_exact, exact = weat.permutation_p(sx, sy, n_permutations=10_000)
    assert exact
    ref = permutation_test((sx, sy), lambda a, b: a.sum() - b.sum(), permutation_type="independent",
                           alternative="greater", n_resamples=np.inf).pvalue
    assert p_exact == pytest.approx(ref, abs=1e-12)
    p_mc, exact_mc = weat.permutation_p(sx, sy, n_permutations=3000, seed=0)  # C(14, 7) = 3432 > 3000
    assert not exact_mc
    assert abs(p_mc - p_exact) < 4 * math.sqrt(p_exact * (1 - p_exact) / 3000) + 1e-3
    assert p_mc == weat.permutation_p(sx, sy, n_permutations=3000, seed=0)[0]  # seeded
    with pytest.raises(ValueError):
        weat.permutation_p([], sy)


def test_weat_input_errors():
    with pytest.raises(ValueError, match="sizes differ"):
        weat.association(np.ones((2, 3)), np.ones((2, 4)), np.ones((2, 3)))
    with pytest.raises(ValueError):
        weat.association(np.ones(3), np.ones((2, 3)), np.ones((2, 3)))
    with pytest.raises(ValueError):
        weat.effect_size([1.0], [], ddof=1)


def test_word_lists_and_templates():
    sizes = {k: tuple(len(v) for v in t[:4]) for k, t in weat.WEAT_TESTS.items()}
    assert sizes["WEAT 1"] == (25, 25, 25, 25)
    assert sizes["WEAT 3"] == (32, 32, 25, 25)
    assert sizes["WEAT 6"] == sizes["WEAT 7"] == sizes["WEAT 8"] == (8, 8, 8, 8)
    assert weat.templates_for("Amy") == weat.NAME_TEMPLATES
    assert weat.sentences_for("aster")[0] == "This is an aster."
    assert "A man is a person." in weat.sentences_for("man")
    assert "It is a flea." in weat.sentences_for("flea")
    assert weat.sentences_for("she")[0] == "She is here."
    assert weat.sentences_for("children")[0] == "These are children."
    assert weat.fill("The {w} is here.", "rose") == "The rose is here."
    with pytest.raises(ValueError):
        weat.templates_for("")


def test_verbatim_lengths_cached_equals_sliding(tiny_gpt):
    """The KV-cache path (prefix + new <= n_ctx) gives the same greedy continuation as recomputing."""
    ids = torch.randint(0, 11, (300,), generator=torch.Generator().manual_seed(0))
    starts = [0, 40, 100, 200]
    cached = limits.verbatim_lengths(tiny_gpt, ids, starts, 6, 10)  # 16 = n_ctx: cached
    with torch.no_grad():
        x = ids[torch.tensor(starts)[:, None] + torch.arange(6)]
        for _ in range(10):
            x = torch.cat([x, tiny_gpt(x[:, -16:]).logits[:, -1].argmax(-1, keepdim=True)], 1)
    truth = ids[torch.tensor(starts)[:, None] + 6 + torch.arange(10)]
    ref = (x[:, 6:] == truth).long().cumprod(1).sum(1)
    assert torch.equal(cached, ref)
    # a prefix that equals the model's own greedy text is continued to the end
    own = x[0]
    assert limits.verbatim_lengths(tiny_gpt, own, [0], 6, 10).tolist() == [10]


def test_sample_with_confidence_cached_equals_sliding(tiny_gpt):
    """Same draws with and without the KV cache: 4 + 8 tokens fit n_ctx = 16, 4 + 20 do not."""
    prompts = torch.tensor([[1, 2, 3, 4], [5, 6, 7, 8]])
    short = limits.sample_with_confidence(tiny_gpt, prompts, 8, generator=torch.Generator().manual_seed(3))
    long = limits.sample_with_confidence(tiny_gpt, prompts, 20, generator=torch.Generator().manual_seed(3))
    assert torch.equal(short.ids, long.ids[:, :8])  # the first 8 steps fit the window in both runs
    assert torch.allclose(short.entropy, long.entropy[:, :8], atol=1e-5)
    assert torch.allclose(short.prob, long.prob[:, :8], atol=1e-5)
