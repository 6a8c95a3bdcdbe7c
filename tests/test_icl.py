"""wmbook.lab.icl: the associative-recall task of page 5.3.3, its scoring, and the recall GPT."""
import math

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


def test_few_shot_best_accuracy_is_the_bayes_optimal_guess():
    """Against a brute-force count over the same prompts: keep the tasks that agree with every
    demonstration, guess the output most of them give the query."""
    from wmbook.lab.icl import FewShotTasks, few_shot_best_accuracy

    tasks = FewShotTasks(n_inputs=5, n_tasks=4, seed=3)
    perms = tasks.permutations().tolist()
    for k in (0, 1, 3):
        b = tasks.batch(300, k, generator=torch.Generator().manual_seed(11))
        total = 0.0
        for row in b.tokens.tolist():
            pairs = [(row[p - 2], row[p] - tasks.n_inputs) for p in b.y_positions.tolist()]
            *demos, (xq, _) = pairs
            left = [t for t in range(tasks.n_tasks) if all(perms[t][x] == y for x, y in demos)]
            answers = [perms[t][xq] for t in left]
            total += max(answers.count(a) for a in set(answers)) / len(left)
        assert few_shot_best_accuracy(tasks, k, n=300, seed=11) == pytest.approx(total / 300, abs=1e-12)
    # one task: nothing to select, always right; k = 0 on the page's corpus: the most common output
    assert few_shot_best_accuracy(FewShotTasks(n_inputs=5, n_tasks=1), 0, n=50) == 1.0
    page = FewShotTasks()
    counts = torch.stack([torch.bincount(page.permutations()[:, x], minlength=16) for x in range(16)])
    assert few_shot_best_accuracy(page, 0, n=20000) == pytest.approx(
        counts.max(-1).values.sum().item() / (16 * page.n_tasks), abs=0.01)


def _tiny_recipe(**kw):
    from wmbook.lab.icl import FewShotRecipe

    return FewShotRecipe(**{"n_inputs": 6, "n_tasks": 3, "max_shots": 2, "d_model": 16, "n_heads": 2,
                            "n_ctx": 12, "batch_size": 8, "steps": 6, "warmup": 2, "eval_every": 3,
                            "eval_prompts": 20, **kw})


def test_few_shot_training_is_seeded_and_stop_after_replays_its_start():
    from wmbook.lab.icl import train_few_shot_gpt

    recipe = _tiny_recipe()
    _, full = train_few_shot_gpt(recipe)
    _, again = train_few_shot_gpt(recipe)
    _, start = train_few_shot_gpt(recipe, stop_after=4)
    _, other = train_few_shot_gpt(_tiny_recipe(seed=1))
    losses = full.series("loss")
    assert losses[0] == list(range(6)) and losses == again.series("loss")
    assert start.series("loss")[1] == losses[1][:4]  # the same schedule, stopped
    assert other.series("loss")[1] != losses[1]
    assert full.series("acc2")[0] == [3, 6] and start.series("acc0")[0] == [3, 4]
    assert all(0 <= a <= 1 for a in full.series("acc1")[1])
    with pytest.raises(ValueError, match="stop_after"):
        train_few_shot_gpt(recipe, stop_after=7)
    with pytest.raises(ValueError, match="n_ctx"):
        _tiny_recipe(n_ctx=10)


def test_few_shot_checkpoint_round_trip_and_refusals(tmp_path):
    from wmbook.data.checkpoint import CheckpointError
    from wmbook.lab.icl import load_few_shot_gpt, save_few_shot_gpt, train_few_shot_gpt

    recipe = _tiny_recipe()
    model, history = train_few_shot_gpt(recipe)
    sha = save_few_shot_gpt(tmp_path / "f.pt", model, recipe, history, extra={"note": 1})
    loaded = load_few_shot_gpt(tmp_path / "f.pt", sha256=sha)
    assert loaded.recipe == recipe and loaded.log["note"] == 1 and loaded.log["sha256"] == sha
    assert [r["step"] for r in loaded.log["evals"]] == [3, 6]
    x = recipe.tasks.batch(4, 2).tokens
    with torch.no_grad():
        assert torch.equal(loaded.model(x).logits, model(x).logits)
    with pytest.raises(CheckpointError, match="sha256"):
        load_few_shot_gpt(tmp_path / "f.pt", sha256="0" * 64)
    log = (tmp_path / "f.json").read_text().replace(sha, "1" * 64)
    (tmp_path / "f.json").write_text(log)
    with pytest.raises(CheckpointError, match="other weights"):
        load_few_shot_gpt(tmp_path / "f.pt", sha256=sha)


def test_the_committed_few_shot_gpt_selects_the_task_from_its_demonstrations():
    from wmbook.lab.icl import (FEW_SHOT_GPT_SHA256, few_shot_accuracy, few_shot_best_accuracy,
                                load_few_shot_gpt)

    fs = load_few_shot_gpt()  # checks FEW_SHOT_GPT_SHA256 and FEW_SHOT_GPT_LOG_SHA256
    assert file_sha256(ROOT / "wmbook" / "data" / "checkpoints" / "fewshot_gpt.pt") == FEW_SHOT_GPT_SHA256
    log, tasks = fs.log, fs.recipe.tasks
    assert fs.recipe.seed == 0 and fs.log["seeds"][0]["seed"] == 0 and len(log["seeds"]) >= 3
    assert len(log["first_losses"]) == 100 and log["recipe"]["steps"] == fs.recipe.steps
    acc = {k: few_shot_accuracy(lambda t: fs.model(t).logits, tasks, k) for k in (0, 2)}
    # the page's numbers: this evaluation is the log's seed 0 (a prediction on a tie may flip)
    assert acc[0] == pytest.approx(log["seeds"][0]["shots"][0], abs=0.005)
    assert acc[2] == pytest.approx(log["seeds"][0]["shots"][2], abs=0.005)
    assert acc[2] > acc[0] + 0.5 and acc[2] > few_shot_best_accuracy(tasks, 2) - 0.05
    # no shot: no better than the most common answer (up to the sampling error of 2,000 prompts, ~0.01)
    assert acc[0] < few_shot_best_accuracy(tasks, 0) + 0.03


def _run_fewshot_script(*args):
    import subprocess
    import sys

    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "train_fewshot_gpt.py"), *args],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    return run


def test_the_fewshot_script_writes_a_checkpoint_and_a_log_of_every_seed(tmp_path):
    from wmbook.lab.icl import load_few_shot_gpt

    out = tmp_path / "f.pt"
    run = _run_fewshot_script("--steps", "3", "--seeds", "2", "--seed", "4", "--out", str(out))
    sha = run.stdout.split("\nsha256 ")[-1].split()[0]
    fs = load_few_shot_gpt(out, sha256=sha)
    assert fs.recipe.seed == 4 and fs.recipe.steps == 3
    assert [s["seed"] for s in fs.log["seeds"]] == [4, 5] and fs.log["shots"] == list(range(7))
    assert len(fs.log["first_losses"]) == 3 and all(len(s["shots"]) == 7 for s in fs.log["seeds"])
    assert file_sha256(out.with_suffix(".json")) == run.stdout.split("log sha256 ")[-1].split()[0]


@pytest.mark.slow  # ~20 s: 100 training steps and the evaluation on 14,000 prompts
def test_the_fewshot_script_repeats_the_start_of_the_committed_log(tmp_path):
    from wmbook.lab.icl import load_few_shot_gpt

    committed = load_few_shot_gpt().log
    out = tmp_path / "f.pt"
    _run_fewshot_script("--stop-after", "100", "--seeds", "1", "--out", str(out))
    got = load_few_shot_gpt(out, sha256=None).log
    assert got["recipe"] == committed["recipe"] and got["stop_after"] == 100
    # seeded: bit for bit on one machine; on another CPU only the order of additions changes
    # (~1e-7 per operation, ~1e-5 after a hundred steps at most), far below what a change moves
    assert got["first_losses"] == pytest.approx(committed["first_losses"], rel=1e-3)


def test_every_committed_recall_seed_is_the_recipe_with_its_seed():
    from dataclasses import replace

    from wmbook.lab.icl import RECALL_GPT_SEEDS_SHA256, load_recall_gpt_seeds, recall_gpt_file

    assert recall_gpt_file(0) == "recall_gpt.pt" and recall_gpt_file(3) == "recall_gpt_seed3.pt"
    runs = load_recall_gpt_seeds()
    assert list(runs) == [0, *sorted(RECALL_GPT_SEEDS_SHA256)]
    for seed, run in runs.items():
        assert run.recipe == replace(runs[0].recipe, seed=seed)
        assert run.records[-1]["phase"] == 2  # every run reached the longer contexts
