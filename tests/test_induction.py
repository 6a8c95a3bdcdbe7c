"""Induction-head data, the attention-only model and its scores (page 4.3); the page's training
run, its checkpoint and log; the KV-cache formula."""
import json
import math
from typing import NamedTuple

import pytest
import torch
import torch.nn.functional as F

import wmbook
from wmbook.data.checkpoint import CHECKPOINT_DIR, CheckpointError, file_sha256
from wmbook.lab.induction import (INDUCTION_FILE, INDUCTION_LOG_SHA256, INDUCTION_SHA256, AttnOnlyConfig,
                                  AttnOnlyTransformer, InductionRecipe, copy_losses, drop_step, icl_score,
                                  induction_scores, load_induction, repeated_blocks, run_summary, save_induction,
                                  train_induction)
from wmbook.lab.measure import kv_cache_bytes


def test_repeated_blocks_repeat_with_their_period():
    g = torch.Generator().manual_seed(0)
    tokens, copyable = repeated_blocks(64, 40, 10, 4, 12, generator=g)
    assert tokens.shape == copyable.shape == (64, 40)
    assert tokens.min() >= 0 and tokens.max() < 10
    for b in range(64):
        p = int(copyable[b].float().argmax())
        assert 4 <= p <= 12 and not copyable[b, :p].any() and copyable[b, p:].all()
        assert torch.equal(tokens[b, p:], tokens[b, :-p])
    with pytest.raises(ValueError, match="max_period < length"):
        repeated_blocks(2, 10, 5, 4, 10)


def test_attention_only_model_is_causal_and_checks_input():
    model = AttnOnlyTransformer(AttnOnlyConfig(vocab_size=11, n_ctx=16, d_model=16, n_heads=2, n_layers=2))
    x = torch.randint(0, 11, (2, 10))
    out = model(x)
    assert out.logits.shape == (2, 10, 11) and len(out.attentions) == 2
    assert out.attentions[0].shape == (2, 2, 10, 10)
    x2 = x.clone()
    x2[:, -1] = (x2[:, -1] + 1) % 11
    assert torch.allclose(model(x2).logits[:, :-1], out.logits[:, :-1])
    with pytest.raises(ValueError, match="longer than n_ctx"):
        model(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match="token ids"):
        model(torch.full((1, 3), 11))


def test_induction_scores_find_planted_heads():
    tokens, copyable = repeated_blocks(4, 20, 30, 5, 8, generator=torch.Generator().manual_seed(1))
    T = 20
    prev = torch.zeros(4, 1, T, T)
    prev[:, 0, 0, 0] = 1
    prev[:, 0, torch.arange(1, T), torch.arange(T - 1)] = 1  # attends to the previous token
    ind = torch.full((4, 1, T, T), 0.0)
    periods = copyable.float().argmax(1)
    for b in range(4):
        p = int(periods[b])
        for t in range(T):
            ind[b, 0, t, t - p + 1 if t >= p else 0] = 1  # attends to the induction target
    p_scores, i_scores = induction_scores([prev, ind], tokens, copyable)
    assert p_scores[0, 0] == 1 and i_scores[1, 0] == 1
    assert i_scores[0, 0] < 0.5 and p_scores[1, 0] < 0.5


def test_two_layer_model_learns_to_copy_quickly_on_an_easy_setting():
    """Overfit check: a short period, small vocab; copyable-token loss must fall well below chance."""
    wmbook.seed_everything(0)
    g = torch.Generator().manual_seed(0)
    model = AttnOnlyTransformer(AttnOnlyConfig(vocab_size=16, n_ctx=16, d_model=32, n_heads=2, n_layers=2))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread avoids contention
    try:
        def loss(m, step):
            x, _ = repeated_blocks(16, 16, 16, 3, 5, generator=g)
            return F.cross_entropy(m(x[:, :-1]).logits.reshape(-1, 16), x[:, 1:].reshape(-1))

        wmbook.train(model, loss, steps=300, lr=3e-3, progress=False)
    finally:
        torch.set_num_threads(threads)
    x, c = repeated_blocks(64, 16, 16, 3, 5, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        nll = F.cross_entropy(model(x[:, :-1]).logits.reshape(-1, 16), x[:, 1:].reshape(-1), reduction="none")
    copy_loss = nll.view(64, 15)[c[:, 1:]].mean().item()
    assert copy_loss < 1.0  # chance is ln 16 = 2.77


def test_kv_cache_bytes():
    assert kv_cache_bytes(12, 12, 64, bytes_per_value=2) == 36 * 1024  # GPT-2 small, fp16
    assert kv_cache_bytes(32, 32, 128, n_tokens=4096) == 2 * 2**30  # Llama-2-7B, 2 GiB at 4096 tokens
    with pytest.raises(ValueError, match="n_layers"):
        kv_cache_bytes(-1, 1, 1)


# --------------------------------------------------------------- the page's training run

TINY = InductionRecipe(vocab_size=16, n_ctx=16, d_model=16, n_heads=2, min_period=3, max_period=5,
                       batch_size=8, steps=12, eval_every=4, val_size=16)


class _Out(NamedTuple):
    logits: torch.Tensor


class _Copier(torch.nn.Module):
    """A perfect copier for sequences of one known period: the token one period back, else uniform."""

    def __init__(self, period: int, vocab: int) -> None:
        super().__init__()
        self.period, self.vocab = period, vocab

    def forward(self, tokens):
        B, T = tokens.shape
        logits = torch.zeros(B, T, self.vocab)
        for t in range(self.period - 1, T):  # position t predicts token t + 1 = token t + 1 - period
            logits[torch.arange(B), t, tokens[:, t + 1 - self.period]] = 50.0
        return _Out(logits)


def test_copy_losses_and_icl_score_of_a_perfect_copier():
    tokens, copyable = repeated_blocks(8, 32, 16, 4, 4, generator=torch.Generator().manual_seed(0))
    copier = _Copier(4, 16)
    losses = copy_losses(copier, tokens, copyable)
    assert losses["repeat_loss"] < 1e-6
    assert losses["first_loss"] == pytest.approx(math.log(16), abs=1e-5)  # uniform: chance
    assert icl_score(copier, tokens, late=20, early=3) == pytest.approx(-math.log(16), abs=1e-5)


def test_drop_step():
    assert drop_step([50, 100, 150], [4.0, 1.9, 0.5]) == 100
    assert drop_step([50, 100], [4.0, 3.0]) is None
    assert drop_step([50, 100], [4.0, 3.0], threshold=3.5) == 100


def test_recipe_data_is_fixed():
    recipe = InductionRecipe()
    tokens, copyable = recipe.validation()
    again, _ = recipe.validation()
    assert tokens.shape == copyable.shape == (recipe.val_size, recipe.n_ctx) and torch.equal(tokens, again)
    ref, _ = repeated_blocks(128, 64, 64, generator=torch.Generator().manual_seed(99))
    assert torch.equal(tokens, ref)  # the validation set page 4.3 always used


def test_a_shorter_run_is_the_start_of_the_longer_one():
    """Constant learning rate: ``steps=N`` repeats the first N steps of any longer run exactly."""
    with wmbook.threads(1):
        short, h_short = train_induction(2, seed=3, recipe=TINY, steps=8)
        full, h_full = train_induction(2, seed=3, recipe=TINY)
    assert h_short.series("loss")[1] == h_full.series("loss")[1][:8]
    assert h_short.series("repeat_loss") == ([4, 8], h_full.series("repeat_loss")[1][:2])
    assert h_full.series("repeat_loss")[0] == [4, 8, 12] and not full.training
    _, h_other = train_induction(2, seed=4, recipe=TINY, steps=8)
    assert h_other.series("loss")[1] != h_short.series("loss")[1]  # the seed matters


def test_save_and_load_a_run(tmp_path):
    with wmbook.threads(1):
        models, runs = {}, []
        for n_layers in (2, 1):
            model, history = train_induction(n_layers, seed=0, recipe=TINY)
            summary = run_summary(model, history, TINY)
            assert len(summary["prev_score"]) == len(summary["induction_score"]) == n_layers
            models[n_layers] = model
            runs.append({"n_layers": n_layers, "seed": 0, "summary": summary,
                         "evals": [r for r in history.records if "repeat_loss" in r]})
    path = tmp_path / "ind.pt"
    sha = save_induction(path, models, TINY, runs, {"seeds": [0]})
    assert sha == file_sha256(path)
    run = load_induction(path, sha256=sha)
    assert run.recipe == TINY and set(run.models) == {1, 2}
    tokens, _ = TINY.validation()
    for n, model in models.items():
        assert torch.equal(run.models[n](tokens).logits, model(tokens).logits)
    log = run.log
    assert [(r["n_layers"], r["step"]) for r in log["evals"]] == [(2, 4), (2, 8), (2, 12), (1, 4), (1, 8), (1, 12)]
    assert [s["n_layers"] for s in log["summaries"]] == [2, 1] and log["parameters"] == {
        str(n): wmbook.count_parameters(m) for n, m in models.items()}
    with pytest.raises(CheckpointError, match="sha256"):
        load_induction(path, sha256="0" * 64)
    data = json.loads(path.with_suffix(".json").read_text())
    data["sha256"] = "1" * 64  # a log written for another checkpoint
    path.with_suffix(".json").write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match="written for a checkpoint"):
        load_induction(path, sha256=None)
    path.with_suffix(".json").unlink()
    with pytest.raises(CheckpointError, match="missing.*train_induction.py"):
        load_induction(path, sha256=None)


def test_the_committed_run():
    """The committed checkpoint and log (sha256-checked) hold what page 4.3 says: over every seed the
    two-layer model learns to copy (repeated-token loss < 1 nat after a drop below 2 nats), the
    one-layer model does not (> 2.5 nats), and first occurrences stay at chance."""
    assert file_sha256(CHECKPOINT_DIR / INDUCTION_FILE) == INDUCTION_SHA256
    assert file_sha256((CHECKPOINT_DIR / INDUCTION_FILE).with_suffix(".json")) == INDUCTION_LOG_SHA256
    run = load_induction()
    log = run.log
    assert run.recipe == InductionRecipe() and len(log["seeds"]) >= 3
    by = {n: [s for s in log["summaries"] if s["n_layers"] == n] for n in (2, 1)}
    assert [s["seed"] for s in by[2]] == [s["seed"] for s in by[1]] == log["seeds"]
    for s in by[2]:
        assert s["repeat_loss"] < 1.0 and s["drop_step"] is not None and s["first_loss"] > 4.0
        assert s["induction_score"][1] > 0.3 and s["icl_score"] < -2.0
    for s in by[1]:
        assert s["repeat_loss"] > 2.5 and s["drop_step"] is None
    steps = [r["step"] for r in log["evals"] if r["n_layers"] == 2 and r["seed"] == 0]
    assert steps == list(range(50, run.recipe.steps + 1, 50))


def test_the_committed_log_starts_where_a_live_run_starts():
    """The first 100 steps of seed 0, re-run here: the log's records at steps 50 and 100, rtol 1e-3
    (the runs are seeded; another CPU changes only the order of float additions)."""
    run = load_induction()
    with wmbook.threads(1):
        _, history = train_induction(2, seed=0, steps=100)
    rows = [r for r in run.log["evals"] if r["n_layers"] == 2 and r["seed"] == 0][:2]
    for (step, rep), (_, first), row in zip(zip(*history.series("repeat_loss")),
                                            zip(*history.series("first_loss")), rows, strict=True):
        assert step == row["step"]
        assert rep == pytest.approx(row["repeat_loss"], rel=1e-3)
        assert first == pytest.approx(row["first_loss"], rel=1e-3)


def test_context_bag_loss_is_the_log_of_the_distinct_tokens_seen():
    from wmbook.lab.induction import context_bag_loss

    # one block of 3 distinct tokens repeated: every repeat is guessed among 3 tokens -> ln 3
    tokens = torch.tensor([[5, 1, 7, 5, 1, 7, 5]])
    copyable = torch.arange(7)[None] >= 3
    assert context_bag_loss(tokens, copyable) == pytest.approx(math.log(3))
    # a duplicate inside the block: 2 distinct tokens before the first repeat, whatever the period
    tokens = torch.tensor([[2, 2, 3, 2, 2, 3]])
    copyable = torch.arange(6)[None] >= 3
    assert context_bag_loss(tokens, copyable) == pytest.approx(math.log(2))
    with pytest.raises(ValueError, match="both be"):
        context_bag_loss(tokens, copyable[:, :-1])
