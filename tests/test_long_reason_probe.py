"""Page 8.2: wmbook.lab.long_text, wmbook.lab.scratchpad, wmbook.lab.probes."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from wmbook.lab import long_text as lt
from wmbook.lab import probes as pr
from wmbook.lab import scratchpad as sp
from wmbook.nn.gpt import GPT, GPTConfig


# ----------------------------------------------------------------------------- long_text

def _docs():
    contexts = [" ".join([f"w{i}"] * 10) for i in range(6)]  # six paragraphs of 10 words
    questions = [(f"q{i} w{i}", i) for i in range(6)]
    return contexts, questions


def test_needle_docs_hold_the_gold_paragraph_once():
    contexts, questions = _docs()
    docs = lt.make_needle_docs(contexts, questions, k=3, n_docs=6, seed=1)
    assert len(docs) == 6
    for d in docs:
        gold = questions[d.question_id][1]
        assert len(d.paragraphs) == 4 and d.paragraph_ids.count(gold) == 1
        assert d.paragraph_ids[d.needle] == gold and d.paragraphs[d.needle] == contexts[gold]
    with pytest.raises(ValueError, match="k must be"):
        lt.make_needle_docs(contexts, questions, k=6, n_docs=1)
    with pytest.raises(ValueError, match="n_docs"):
        lt.make_needle_docs(contexts, questions, k=1, n_docs=7)


def test_kept_paragraphs_by_method():
    d = lt.NeedleDoc(["a " * 10, "b " * 5, "c " * 10, "d " * 10], needle=2, question="c", question_id=0,
                     paragraph_ids=[0, 1, 2, 3])
    assert lt.kept_paragraphs(d, "truncation", 20) == [0, 1]
    assert lt.kept_paragraphs(d, "sliding window", 20) == [2, 3]
    assert lt.kept_paragraphs(d, "retrieval", 15, scores=np.array([0.0, 1.0, 3.0, 2.0])) == [1, 2]
    with pytest.raises(ValueError, match="method must be"):
        lt.kept_paragraphs(d, "summary", 10)
    with pytest.raises(ValueError, match="one score per paragraph"):
        lt.kept_paragraphs(d, "retrieval", 10)


def test_needle_recall_and_chance():
    contexts, questions = _docs()
    docs = lt.make_needle_docs(contexts, questions, k=5, n_docs=6, seed=0)
    scores = np.eye(6)  # question i matches paragraph i only
    assert lt.needle_recall(docs, "retrieval", 10, scores) == 1.0
    assert lt.needle_recall(docs, "truncation", 60) == 1.0
    assert lt.needle_recall(docs, "truncation", 9) == 0.0
    assert lt.position_chance(100, 10, 55) == pytest.approx(0.5)
    assert lt.position_chance(100, 10, 5) == 0.0 and lt.position_chance(100, 10, 200) == 1.0


def test_attention_weight_bytes():
    assert lt.attention_weight_bytes(512, 12, 6) == 6 * 12 * 512 * 512 * 4
    with pytest.raises(ValueError):
        lt.attention_weight_bytes(0, 12)


# ----------------------------------------------------------------------------- scratchpad

def test_scratchpad_steps_compute_the_sum():
    assert sp.scratch_steps(957, 68) == "7805;5612;9010;"
    assert sp.target(957, 68, "scratchpad") == "7805;5612;9010;=1025$"
    assert sp.target(957, 68, "direct") == "1025$"
    for a, b in [(0, 0), (9, 1), (999, 999), (12345, 6)]:
        steps = sp.scratch_steps(a, b).split(";")[:-1]
        digits = [int(s[3]) for s in steps]
        carry_out = (int(steps[-1][0]) + int(steps[-1][1]) + int(steps[-1][2])) // 10
        assert int("".join(map(str, ([carry_out] if carry_out else []) + digits[::-1]))) == a + b
    assert sp.scratch_tokens(3) == len(sp.scratch_steps(100, 100)) + 1
    with pytest.raises(ValueError, match="fmt"):
        sp.target(1, 2, "cot")
    with pytest.raises(ValueError, match="not in the addition vocabulary"):
        sp.encode("1-2")


def test_draw_operands_and_batches():
    gen = torch.Generator().manual_seed(0)
    pairs = sp.draw_operands(200, 2, 3, gen)
    assert all(10 <= a <= 999 and 10 <= b <= 999 for a, b in pairs)
    same = sp.draw_operands(50, 4, 4, gen, same_length=True)
    assert all(len(str(a)) == len(str(b)) == 4 for a, b in same)
    x, y = sp.make_batch([(12, 5), (999, 999)], "scratchpad", 48, torch.Generator().manual_seed(1))
    assert x.shape == y.shape and x.shape[0] == 2 and x.shape[1] <= 48
    x0, _ = sp.make_batch([(12, 5), (999, 999)], "scratchpad", 48, torch.Generator().manual_seed(1), max_offset=0)
    assert x0.shape[1] == len("999+999=" + sp.target(999, 999, "scratchpad")) - 1
    assert sp.decode(x0[1]) == ("999+999=" + sp.target(999, 999, "scratchpad"))[:-1]  # inputs: all but the last
    answer = [sp.VOCAB[int(t)] for t in y[0] if t != -100]
    assert "".join(answer) == sp.target(12, 5, "scratchpad")
    with pytest.raises(ValueError, match="n_ctx"):
        sp.make_batch([(99999, 99999)], "scratchpad", 20)


def test_training_lowers_the_loss_and_exact_match_reads_the_answer():
    recipe = sp.AdditionRecipe(steps=30, d_model=32, n_layers=1, n_test=4)
    model, losses = sp.train_addition("direct", 0, recipe)
    assert len(losses) == 30 and losses[-1] < losses[0]
    again = sp.train_addition("direct", 0, recipe, stop_after=5)[1]
    assert again == losses[:5]  # seeded: the first steps repeat
    assert sp.answer_of("7805;=1025$") == "1025" and sp.answer_of("10") is None
    ok = sp.exact_match(model, [(1, 2), (3, 4)])
    assert len(ok) == 2 and all(isinstance(v, bool) for v in ok)
    tests = sp.test_sets(recipe)
    assert sorted(tests) == [1, 2, 3, 4, 5] and all(len(v) == 4 for v in tests.values())


def test_save_and_load_addition(tmp_path):
    recipe = sp.AdditionRecipe(steps=2, d_model=32, n_layers=1)
    models = {f: {0: sp.train_addition(f, 0, recipe)[0]} for f in sp.FORMATS}
    path = tmp_path / "a.pt"
    sha = sp.save_addition(path, models, recipe, {"runs": []})
    run = sp.load_addition(path, sha256=sha)
    assert set(run.models) == set(sp.FORMATS) and run.log["sha256"] == sha
    x = torch.tensor([sp.encode("12+3=")])
    for f in sp.FORMATS:
        ref = models[f][0](x).logits
        assert torch.allclose(run.models[f][0](x).logits, ref, atol=5e-2)
    with pytest.raises(Exception, match="sha256"):
        sp.load_addition(path, sha256="0" * 64)


# ----------------------------------------------------------------------------- probes

def test_entity_labels_and_control_labels():
    words, labels = pr.entity_labels([[("I", "O"), ("love", "O"), ("Paris", "B-location")]])
    assert words == [["I", "love", "Paris"]] and labels[0].tolist() == [0, 0, 1]
    w = ["a", "b", "A", "c", "b"] * 20
    y = np.array([0, 1, 0, 0, 1] * 20)
    c = pr.control_labels(w, y, seed=0)
    by_type = {}
    for word, lab in zip(w, c):
        by_type.setdefault(word.lower(), set()).add(int(lab))
    assert all(len(v) == 1 for v in by_type.values())  # one label per word type
    with pytest.raises(ValueError):
        pr.control_labels(w[:3], y, 0)


def test_probe_accuracy_separable_and_random():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 5))
    y = (X[:, 0] > 0).astype(int)
    assert pr.probe_accuracy(X[:300], y[:300], X[300:], y[300:]) > 0.95
    noise = rng.integers(0, 2, 400)
    assert pr.probe_accuracy(X[:300], noise[:300], X[300:], noise[300:]) < 0.7


def test_steer_sample_forces_the_word():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=6, n_ctx=32, d_model=16, n_heads=2, n_layers=1, dropout=0.0)).eval()
    word = [3, 4, 5]
    new, logp = pr.steer_sample(model, [0, 1], word, float("inf"), n_new=8, n_samples=5, seed=0, boundary_ids=[0, 1])
    assert new.shape == logp.shape == (5, 8) and (logp <= 0).all()
    assert all(row[:3] == word for row in new.tolist())  # forced from the first step (prompt ends at a boundary)
    free, _ = pr.steer_sample(model, [0, 1], word, 0.0, n_new=8, n_samples=5, seed=0)
    assert free.shape == (5, 8)
    assert pr.contains_word(["a cat", "dog"], "cat").tolist() == [True, False]
    with pytest.raises(ValueError, match="word_ids is empty"):
        pr.steer_sample(model, [0], [], 1.0, 2, 1, 0)


def test_ablate_head_changes_only_inside_the_block():
    from transformers import BertConfig, BertModel

    cfg = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=4, intermediate_size=32,
                     attn_implementation="eager")
    model = BertModel(cfg).eval()
    ids = torch.tensor([[1, 5, 7, 9, 2]])
    with torch.no_grad():
        before = model(ids).last_hidden_state
        with pr.ablate_head(model, 1, 2):
            during = model(ids).last_hidden_state
        after = model(ids).last_hidden_state
    assert not torch.allclose(before, during) and torch.equal(before, after)
    with pytest.raises(ValueError, match="layer must be"):
        with pr.ablate_head(model, 2, 0):
            pass
