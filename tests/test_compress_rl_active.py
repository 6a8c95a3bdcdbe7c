"""Page 8.3: magnitude pruning (wmbook.lab.compression), REINFORCE with a KL penalty
(wmbook.lab.rl), active learning (wmbook.lab.active) and the labelling view (wmbook.view.labeling,
also in headless Chromium: the browser's model equals the Python twin on the labels clicked)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from wmbook.data.checkpoint import CheckpointError
from wmbook.lab import active, compression, rl
from wmbook.nn.gpt import GPT, GPTConfig
from wmbook.view.fragment import page_html
from wmbook.view.labeling import labeling_view


# ------------------------------------------------------------------ compression

def small_mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 5))


@pytest.mark.parametrize("amount", [0.0, 0.25, 0.5, 0.9])
def test_magnitude_prune_zeros_the_target_fraction_of_the_smallest_weights(amount):
    model = small_mlp()
    before = [m.weight.detach().clone() for m in model if isinstance(m, nn.Linear)]
    pruned = compression.magnitude_prune(model, amount)
    n = sum(w.numel() for w in before)
    assert compression.sparsity(pruned) == pytest.approx(round(amount * n) / n)
    assert all(torch.equal(w, m.weight) for w, m in zip(before, [m for m in model if isinstance(m, nn.Linear)]))
    all_w = torch.cat([w.abs().flatten() for w in before])
    kept = torch.cat([m.weight.detach().abs().flatten() for m in pruned if isinstance(m, nn.Linear)])
    if amount > 0:
        assert kept[kept > 0].min() >= all_w.sort().values[round(amount * n) - 1]
    assert not any(name.endswith("_orig") for name, _ in pruned.named_parameters())  # made permanent


def test_magnitude_prune_rejects_bad_input():
    with pytest.raises(ValueError, match="amount"):
        compression.magnitude_prune(small_mlp(), 1.0)
    with pytest.raises(ValueError, match="no nn.Linear"):
        compression.magnitude_prune(nn.Sequential(nn.ReLU()), 0.5)


def test_csr_bytes_is_the_arithmetic_of_the_docstring():
    lin = nn.Linear(4, 3)  # weight (3, 4), bias (3,)
    with torch.no_grad():
        lin.weight.zero_()
        lin.weight[0, 1] = 1.0
        lin.weight[2, 3] = -2.0
    assert compression.csr_bytes(lin) == 2 * 8 + (3 + 1) * 4 + 3 * 4
    assert compression.sparsity(lin) == 10 / 12


# ------------------------------------------------------------------ REINFORCE

def test_letter_reward_and_baseline():
    assert rl.letter_reward(["eek", "abc"], "e").tolist() == pytest.approx([2 / 3, 0.0])
    with pytest.raises(ValueError):
        rl.letter_reward(["a"], "ee")
    with pytest.raises(ValueError):
        rl.letter_reward([""], "e")
    r = torch.tensor([1.0, 2.0, 6.0])
    assert rl.leave_one_out_baseline(r).tolist() == [4.0, 3.5, 1.5]
    with pytest.raises(ValueError):
        rl.leave_one_out_baseline(torch.tensor([1.0]))


def test_exact_kl_matches_torch():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(2, 3, 7, generator=g).log_softmax(-1), torch.randn(2, 3, 7, generator=g).log_softmax(-1)
    ref = F.kl_div(b, a, log_target=True, reduction="none").sum(-1).mean(-1)
    assert torch.allclose(rl.exact_kl_per_char(a, b), ref, atol=1e-6)
    assert torch.allclose(rl.exact_kl_per_char(a, a), torch.zeros(2), atol=1e-7)


VOCAB = list("\nabe ")


def tiny_gpt() -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=len(VOCAB), n_ctx=16, d_model=16, n_heads=2, n_layers=1, dropout=0.0)).eval()


def enc(s):
    return [VOCAB.index(c) for c in s]


def dec(ids):
    return "".join(VOCAB[i] for i in ids)


def test_sample_and_token_logprobs_shapes():
    m = tiny_gpt()
    idx = rl.sample(m, enc("\n"), 3, 5, torch.Generator().manual_seed(0))
    assert idx.shape == (3, 6) and (idx[:, 0] == 0).all()
    taken, logp = rl.token_logprobs(m, idx, 1)
    assert taken.shape == (3, 5) and logp.shape == (3, 5, len(VOCAB))
    assert torch.allclose(logp.exp().sum(-1), torch.ones(3, 5), atol=1e-5)


def test_reinforce_raises_the_reward_and_leaves_the_reference_untouched():
    m = tiny_gpt()
    ref_state = {k: v.clone() for k, v in m.state_dict().items()}
    recipe = rl.ReinforceRecipe(length=8, batch_size=16, steps=30, lr=3e-2, beta=0.0)
    policy, hist = rl.reinforce(m, enc, dec, recipe)
    assert all(torch.equal(v, m.state_dict()[k]) for k, v in ref_state.items())
    assert np.mean([s.reward for s in hist[-5:]]) > np.mean([s.reward for s in hist[:5]]) + 0.1
    assert hist[0].kl < 1e-6 and hist[-1].kl > hist[0].kl
    # the first steps of a run repeat exactly (constant learning rate, seeded sampling)
    _, again = rl.reinforce(m, enc, dec, recipe, steps=3)
    assert [s.reward for s in again] == [s.reward for s in hist[:3]]


def test_reinforce_recipe_rejects_bad_settings():
    with pytest.raises(ValueError, match="one character"):
        rl.ReinforceRecipe(target="ee")
    with pytest.raises(ValueError, match="batch_size"):
        rl.ReinforceRecipe(batch_size=1)
    with pytest.raises(ValueError):
        rl.ReinforceRecipe(beta=-1)
    with pytest.raises(ValueError, match="n_ctx"):
        rl.reinforce(tiny_gpt(), enc, dec, rl.ReinforceRecipe(length=40, steps=1))


def test_save_policy_round_trip(tmp_path):
    m = tiny_gpt()
    sha = rl.save_policy(tmp_path / "p.pt", m, {"note": 1})
    runs = rl.load_reinforce(tmp_path / "p.pt", sha256=sha, log_sha256=None)
    assert runs.log["note"] == 1 and runs.log["sha256"] == sha
    for k, v in m.state_dict().items():
        assert torch.allclose(runs.policy.state_dict()[k], v.half().float())
    with pytest.raises(CheckpointError):
        rl.load_reinforce(tmp_path / "p.pt", sha256="0" * 64, log_sha256=None)


def test_the_committed_reinforce_log_loads_and_shows_hacking():
    runs = rl.load_reinforce()
    log = runs.log
    assert len(log["runs"]) == len(log["betas"]) * len(log["seeds"]) and len(log["seeds"]) >= 3
    end = {b: np.mean([r["kl"][-1] for r in log["runs"] if r["beta"] == b]) for b in log["betas"]}
    assert end[0.0] > 5 * end[log["betas"][0]]
    pts = rl.frontier(log)  # the frontier of page 8.3: the largest beta has the smallest KL and reward
    assert [p.beta for p in pts] == sorted(log["betas"]) and all(p.n_seeds == len(log["seeds"]) for p in pts)
    assert all(p.kl > pts[-1].kl and p.reward > pts[-1].reward for p in pts[:-1])
    assert pts[0].ref_ppl > 5 * pts[-1].ref_ppl  # hacked without the penalty, text with the largest beta



def test_frontier_is_the_mean_and_sd_over_seeds_of_the_last_steps():
    def run(beta, seed, rewards):
        return {"beta": beta, "seed": seed, "reward": rewards, "kl": [2 * x for x in rewards],
                "ref_ppl": [10 + x for x in rewards]}

    log = {"runs": [run(0.3, 0, [0.0, 0.2, 0.4]), run(0.3, 1, [9.0, 0.4, 0.6]),
                    run(0.0, 0, [0.0, 1.0, 1.0]), run(0.0, 1, [0.0, 0.8, 0.6]), run(0.0, 2, [0.0, 0.9, 0.8])]}
    pts = rl.frontier(log, last=2)
    assert [p.beta for p in pts] == [0.0, 0.3] and [p.n_seeds for p in pts] == [3, 2]
    ends0 = np.array([1.0, 0.7, 0.85])  # mean of the last 2 steps per seed; the first step is ignored
    assert pts[0].reward == pytest.approx(ends0.mean()) and pts[0].reward_sd == pytest.approx(ends0.std(ddof=1))
    assert pts[0].kl == pytest.approx(2 * ends0.mean()) and pts[0].kl_sd == pytest.approx(2 * ends0.std(ddof=1))
    assert pts[0].ref_ppl == pytest.approx(10 + ends0.mean()) and pts[0].ref_ppl_sd == pytest.approx(ends0.std(ddof=1))
    assert pts[1].reward == pytest.approx(0.4) and pts[1].reward_sd == pytest.approx(np.std([0.3, 0.5], ddof=1))
    one = rl.frontier({"runs": [run(1.0, 0, [0.1, 0.2])]}, last=1)[0]
    assert one.reward == pytest.approx(0.2) and np.isnan(one.reward_sd)
    with pytest.raises(ValueError, match="runs"):
        rl.frontier({"runs": []})
    with pytest.raises(ValueError, match="last"):
        rl.frontier(log, last=0)
    with pytest.raises(ValueError, match="fewer than"):
        rl.frontier(log, last=4)
    with pytest.raises(ValueError, match="lacks"):
        rl.frontier({"runs": [{"beta": 0.1, "reward": [0.1]}]}, last=1)


# ------------------------------------------------------------------ active learning

def blobs(n=400, d=5, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = rng.normal(size=(n, d)) + (2 * y[:, None] - 1) * 0.8
    return X, y


def test_least_confident_and_query():
    p = np.array([0.1, 0.5, 0.9, 0.45])
    assert active.least_confident(p).tolist() == pytest.approx([0.1, 0.5, 0.1, 0.45])
    rng = np.random.default_rng(0)
    assert active.query("uncertainty", p, 2, rng).tolist() == [1, 3]
    r = active.query("random", p, 3, rng)
    assert len(set(r.tolist())) == 3
    with pytest.raises(ValueError, match="strategy"):
        active.query("margin", p, 1, rng)
    with pytest.raises(ValueError, match="k must"):
        active.query("random", p, 5, rng)
    with pytest.raises(ValueError):
        active.least_confident(np.array([1.5]))


def test_initial_labels_hold_both_classes():
    y = np.array([0] * 50 + [1] * 2)
    idx = active.initial_labels(y, 3, seed=0)
    assert len(set(y[idx])) == 2 and len(set(idx.tolist())) == 3
    with pytest.raises(ValueError):
        active.initial_labels(np.zeros(10, int), 3, 0)


def test_learning_curve_learns_and_respects_budgets():
    X, y = blobs()
    Xt, yt = blobs(seed=1)
    for s in active.STRATEGIES:
        accs = active.learning_curve(X, y, Xt, yt, s, [4, 10, 40], seed=0)
        assert len(accs) == 3 and accs[-1] > 0.8
    assert active.full_data_accuracy(X, y, Xt, yt) > 0.85
    with pytest.raises(ValueError, match="budgets"):
        active.learning_curve(X, y, Xt, yt, "random", [10, 5], seed=0)
    with pytest.raises(ValueError, match="0/1"):
        active.learning_curve(X, y + 1, Xt, yt, "random", [4], seed=0)


def test_project_whitens_and_fit_logistic_gd_matches_sklearn():
    from sklearn.linear_model import LogisticRegression

    X, y = blobs(d=6)
    P, Q = active.project(X, X[:10], dims=3)
    assert np.allclose(P.std(0, ddof=1), 1) and np.allclose(P.mean(0), 0) and np.allclose(P[:10], Q)
    with pytest.raises(ValueError, match="dims"):
        active.project(X, dims=7)
    lam = 0.1
    w, b = active.fit_logistic_gd(P, y, l2=lam, steps=3000)
    sk = LogisticRegression(C=1 / (lam * len(y)), tol=1e-10, max_iter=10000).fit(P, y)
    assert np.allclose(w, sk.coef_[0], atol=1e-4) and b == pytest.approx(sk.intercept_[0], abs=1e-4)


# ------------------------------------------------------------------ the labelling view

def view_data(n=12, m=30):
    X, y = blobs(n=n + m, d=4)
    return [f"sentence {i} <b>&" for i in range(n)], X[:n], X[n:], y[n:]


def test_labeling_view_html_and_errors():
    texts, Xp, Xt, yt = view_data()
    v = labeling_view(texts, Xp, Xt, yt, full_acc=0.8, n_full=100)
    assert v.uid in v.html and "<script>" in v.html and "<b>" not in v.html.split("<script>")[1]
    with pytest.raises(ValueError, match="pool_X"):
        labeling_view(texts[:-1], Xp, Xt, yt, full_acc=0.8, n_full=100)
    with pytest.raises(ValueError, match="test_X"):
        labeling_view(texts, Xp, Xt[:, :2], yt, full_acc=0.8, n_full=100)
    with pytest.raises(ValueError, match="0/1"):
        labeling_view(texts, Xp, Xt, yt + 2, full_acc=0.8, n_full=100)


@pytest.mark.slow
def test_labeling_view_in_chromium_equals_the_python_twin(tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from browser import Browser

    texts, Xp, Xt, yt = view_data()
    v = labeling_view(texts, Xp, Xt, yt, full_acc=0.8, n_full=100)
    path = tmp_path / "label.html"
    path.write_text(page_html(v), encoding="utf-8")
    with Browser() as browser:
        page = browser.new_page(offline=True)
        page.goto(path.as_uri())
        page.wait_for(f"document.getElementById('{v.uid}').getAttribute('data-wmb-ready')")
        # the first question, with an untrained model (all p = 1/2): the first pool sentence
        assert "sentence 0 <b>&" in page.eval(f"document.getElementById('{v.uid}').textContent")
        for k, cls in enumerate(["positive", "negative", "positive", "negative", "negative"]):
            page.click(*page.center(f"#{v.uid} .wmb-lab-{cls}"))
            page.wait_for(f"document.getElementById('{v.uid}').getAttribute('data-wmb-labels') === '{k + 1}'")
        labelled = page.eval(f"document.getElementById('{v.uid}').getAttribute('data-wmb-labelled')")
        acc = float(page.eval(f"document.getElementById('{v.uid}').getAttribute('data-wmb-acc')"))
    pairs = [tuple(map(int, p.split(":"))) for p in labelled.split(",")]
    assert len({i for i, _ in pairs}) == 5 and [y for _, y in pairs] == [1, 0, 1, 0, 0]
    idx = [i for i, _ in pairs]
    P, T = np.round(Xp, 3), np.round(Xt, 3)  # the view stores 3 decimals
    w, b = active.fit_logistic_gd(P[idx], np.array([y for _, y in pairs]), l2=0.1, steps=300, lr=0.5)
    assert acc == pytest.approx(float(((T @ w + b > 0) == yt).mean()), abs=1e-6)  # toFixed(6)
