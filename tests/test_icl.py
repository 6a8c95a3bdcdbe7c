"""wmbook.lab.icl: the associative-recall task of page 5.3.3, its scoring, and the recall GPT."""
import math
import subprocess
import sys

import pytest
import torch

from wmbook.data.checkpoint import file_sha256
from wmbook.lab.icl import (
    RECALL_GPT_SHA256, RecallRecipe, RecallTask, associative_recall_batch, load_recall_gpt,
    recall_accuracy, recall_loss, save_recall_gpt, train_recall_gpt,
)
from tests.conftest import ROOT

TASK = RecallTask(8, 10)


def oracle(tokens):
    """Reads the context like a perfect induction head: the token after the last earlier copy
    of the final key. Returns one-hot logits (B, T, V) at the last position."""
    B, T = tokens.shape
    logits = torch.zeros(B, T, TASK.vocab_size)
    for b in range(B):
        q = tokens[b, -1].item()
        j = max(i for i in range(T - 1) if tokens[b, i].item() == q)
        logits[b, -1, tokens[b, j + 1]] = 1.0
    return logits


def test_layout_and_describe():
    assert TASK.vocab_size == 18 and TASK.first_value == 8 and TASK.length(3) == 7
    assert TASK.describe(torch.tensor([0, 8, 7, 17, 0])) == "k0 v0 k7 v9 k0"
    with pytest.raises(ValueError, match="n_keys"):
        RecallTask(0, 4)


def test_one_query_batch_is_the_pages_task():
    g = torch.Generator().manual_seed(0)
    b = associative_recall_batch(TASK, 200, 5, generator=g)
    assert b.tokens.shape == (200, 11) and b.answers.shape == (200, 1)
    assert b.query_positions.tolist() == [10]
    keys, values = b.tokens[:, 0:10:2], b.tokens[:, 1:10:2]
    assert (keys < TASK.first_value).all() and (values >= TASK.first_value).all()
    assert all(len(set(row.tolist())) == 5 for row in keys)  # distinct keys
    hit = keys == b.tokens[:, -1:]  # the query is one of the keys, exactly once
    assert (hit.sum(-1) == 1).all()
    assert torch.equal(values[hit], b.answers[:, 0])  # the answer is that key's value
    assert len({tuple(r) for r in b.tokens.tolist()}) > 190  # fresh facts per sequence


def test_several_queries_carry_their_answers():
    b = associative_recall_batch(TASK, 50, 3, n_queries=4, generator=torch.Generator().manual_seed(1))
    assert b.tokens.shape == (50, 2 * 3 + 2 * 4 - 1)
    assert b.query_positions.tolist() == [6, 8, 10, 12]
    assert torch.equal(b.tokens[:, [7, 9, 11]], b.answers[:, :3])  # answers follow queries
    for p, q in zip(b.query_positions.tolist(), range(4)):
        sub = b.tokens[:, : p + 1]
        assert torch.equal(oracle(sub)[:, -1].argmax(-1), b.answers[:, q])


def test_batch_errors():
    with pytest.raises(ValueError, match="n_facts"):
        associative_recall_batch(TASK, 2, 9)  # more facts than distinct keys
    with pytest.raises(ValueError, match="n_queries"):
        associative_recall_batch(TASK, 2, 3, n_queries=0)


def test_accuracy_and_loss_score_an_oracle_and_a_guesser():
    assert recall_accuracy(oracle, TASK, 4, n_seqs=300) == 1.0
    constant = lambda t: torch.nn.functional.one_hot(  # noqa: E731 - always answers value 0
        torch.full(t.shape, TASK.first_value), TASK.vocab_size).float()
    acc = recall_accuracy(constant, TASK, 4, n_seqs=2000)
    assert abs(acc - 1 / TASK.n_values) < 0.03  # chance
    assert recall_accuracy(constant, TASK, 4, n_seqs=500, seed=3) == recall_accuracy(
        constant, TASK, 4, n_seqs=500, seed=3)
    b = associative_recall_batch(TASK, 16, 4, n_queries=3, generator=torch.Generator().manual_seed(2))
    assert recall_loss(lambda t: 50 * oracle_all(t), b) < 1e-6
    assert recall_loss(lambda t: torch.zeros(*t.shape, TASK.vocab_size), b).item() == pytest.approx(
        torch.log(torch.tensor(float(TASK.vocab_size))).item(), rel=1e-6)


def oracle_all(tokens):
    """The oracle at every prefix (for the multi-query loss)."""
    out = torch.zeros(*tokens.shape, TASK.vocab_size)
    for t in range(2, tokens.shape[1] + 1):
        sub = tokens[:, :t]
        if (sub[:, -1] < TASK.first_value).all() and all(
                (sub[b, :-1] == sub[b, -1]).any() for b in range(len(sub))):
            out[:, t - 1] = oracle(sub)[:, -1]
    return out


def test_recipe_training_and_checkpoint_round_trip(tmp_path):
    recipe = RecallRecipe(eval_every=2, phase2_steps=2)
    assert recipe.trained_length == 31 and recipe.model_config().vocab_size == 64
    model, records = train_recall_gpt(recipe, max_steps=4)
    assert [r["step"] for r in records] == [2, 4] and all(0 <= r["acc4"] <= 1 for r in records)
    sha = save_recall_gpt(tmp_path / "r.pt", model, recipe, records, {"note": "test"})
    loaded = load_recall_gpt(tmp_path / "r.pt", sha256=sha)
    assert loaded.recipe == recipe and loaded.records == records and loaded.meta == {"note": "test"}
    x = associative_recall_batch(recipe.task, 2, 3).tokens
    with torch.no_grad():
        assert torch.equal(loaded.model(x).logits, model(x).logits)
    with pytest.raises(Exception, match="sha256"):
        load_recall_gpt(tmp_path / "r.pt", sha256="0" * 64)


def test_the_script_runs(tmp_path):
    out = tmp_path / "r.pt"
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "train_recall_gpt.py"), "--max-steps", "3",
                          "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split("sha256 ")[-1].strip() == file_sha256(out)
    assert load_recall_gpt(out, sha256=None).recipe == RecallRecipe()


def test_the_committed_model_recalls_from_its_context():
    rec = load_recall_gpt()  # checks RECALL_GPT_SHA256
    assert file_sha256(ROOT / "wmbook" / "data" / "checkpoints" / "recall_gpt.pt") == RECALL_GPT_SHA256
    task = rec.recipe.task
    assert recall_accuracy(rec.model, task, 4, n_seqs=300) > 0.95
    assert recall_accuracy(rec.model, task, 24, n_seqs=300) < 0.5  # past the trained length
    assert any(r["phase"] == 2 for r in rec.records)


def test_few_shot_prompts_follow_their_task():
    from wmbook.lab.icl import FewShotTasks, few_shot_accuracy, few_shot_loss

    tasks = FewShotTasks(n_inputs=6, n_tasks=3)
    b = tasks.batch(10, 4, generator=torch.Generator().manual_seed(0))
    assert b.tokens.shape == (10, 4 * 5) and b.tokens[:, 0].eq(tasks.bos).all()
    perms = tasks.permutations()
    for row, t in zip(b.tokens, b.tasks):
        for p in b.y_positions.tolist():
            x, arrow, y = row[p - 2], row[p - 1], row[p]
            assert arrow == tasks.arrow and y == perms[t, x] + tasks.n_inputs
    # an oracle that knows the task scores 1; the loss of a uniform guess is ln V
    def oracle(tokens):
        out = torch.full((*tokens.shape, tasks.vocab_size), -10.0)
        for i, row in enumerate(tokens):
            t = b_all.tasks[i]
            for j in range(1, tokens.shape[1]):
                if row[j] == tasks.arrow:
                    out[i, j, perms[t, row[j - 1]] + tasks.n_inputs] = 10.0
        return out
    b_all = tasks.batch(50, 2, generator=torch.Generator().manual_seed(7))
    assert few_shot_accuracy(oracle, tasks, k=2, n=50, seed=7) == 1.0
    uniform = lambda tokens: torch.zeros(*tokens.shape, tasks.vocab_size)  # noqa: E731
    assert abs(few_shot_loss(uniform, b).item() - math.log(tasks.vocab_size)) < 1e-5
    with pytest.raises(ValueError):
        tasks.batch(0, 1)
