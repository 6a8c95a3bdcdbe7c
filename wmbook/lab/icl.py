r"""In-context associative recall: facts that live only in the context (page 5.3.3).

A sequence holds :math:`N` facts and then a query::

    k_1 v_1  k_2 v_2  ...  k_N v_N  k_q  ->  v_q

The keys of one sequence are distinct, drawn at random from ``n_keys`` key tokens; each value
is drawn at random from ``n_values`` value tokens; the query repeats one of the :math:`N`
keys, and the answer is the value that followed it. New facts are drawn for every sequence,
so no weight can store them: a model answers only by reading its context, with attention (an
*induction head* finds the earlier copy of the query key and copies the token after it,
{cite:p}`olsson2022context`). For training, several queries follow the facts, each but the
last with its answer, so one sequence teaches several answers.

:func:`associative_recall_batch` makes the data, :func:`recall_loss` trains on it,
:func:`recall_accuracy` scores a model, :class:`RecallRecipe` and :func:`train_recall_gpt`
train the page's GPT (run by ``scripts/train_recall_gpt.py``), :func:`load_recall_gpt` loads it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class RecallTask:
    """The token layout: keys are ids ``0 .. n_keys - 1``, values ``n_keys .. n_keys + n_values - 1``."""

    n_keys: int = 32
    n_values: int = 32

    def __post_init__(self) -> None:
        if self.n_keys < 1 or self.n_values < 2:
            raise ValueError(f"need n_keys >= 1 and n_values >= 2, got {self.n_keys}, {self.n_values}")

    @property
    def vocab_size(self) -> int:
        return self.n_keys + self.n_values

    @property
    def first_value(self) -> int:
        """Token id of value 0."""
        return self.n_keys

    @staticmethod
    def length(n_facts: int) -> int:
        """Tokens in a one-query sequence: ``2 N`` fact tokens and the query key."""
        return 2 * n_facts + 1

    def describe(self, tokens: Tensor) -> str:
        """A readable form of one sequence, e.g. ``k3 v17 k0 v2 k0``."""
        return " ".join(f"k{t}" if t < self.first_value else f"v{t - self.first_value}"
                        for t in tokens.tolist())


class RecallBatch(NamedTuple):
    tokens: Tensor  # (B, T): the facts, then the queries, each but the last followed by its answer
    answers: Tensor  # (B, Q): the value token of each queried key
    query_positions: Tensor  # (Q,): where the query keys are; each answer is the next token


def associative_recall_batch(
    task: RecallTask,
    batch_size: int,
    n_facts: int,
    n_queries: int = 1,
    generator: torch.Generator | None = None,
) -> RecallBatch:
    """``batch_size`` sequences ``k_1 v_1 ... k_N v_N  k_q1 v_q1 ... k_qQ`` of fresh random facts.

    Each query asks for one of the ``n_facts`` facts, at random (a fact may be asked twice); every
    query but the last is followed by its answer, so one sequence trains on ``n_queries`` answers.
    ``n_queries=1`` is the task of the page: N facts, one question.
    """
    if not 1 <= n_facts <= task.n_keys:
        raise ValueError(f"n_facts must be in 1..n_keys={task.n_keys} (keys are distinct), got {n_facts}")
    if n_queries < 1:
        raise ValueError(f"n_queries must be >= 1, got {n_queries}")
    B, N, Q, g = batch_size, n_facts, n_queries, generator
    keys = torch.rand(B, task.n_keys, generator=g).argsort(-1)[:, :N]  # (B, N), distinct
    values = torch.randint(0, task.n_values, (B, N), generator=g) + task.first_value
    asked = torch.randint(0, N, (B, Q), generator=g)  # (B, Q): the fact each query asks
    answers = values.gather(1, asked)  # (B, Q)
    facts = torch.stack([keys, values], dim=-1).reshape(B, 2 * N)  # k1 v1 k2 v2 ...
    queries = torch.stack([keys.gather(1, asked), answers], dim=-1).reshape(B, 2 * Q)
    tokens = torch.cat([facts, queries[:, :-1]], dim=1)  # (B, 2N+2Q-1): no last answer
    return RecallBatch(tokens, answers, 2 * N + 2 * torch.arange(Q))


def _logits(model: Callable, tokens: Tensor) -> Tensor:
    out = model(tokens)
    return out.logits if hasattr(out, "logits") else out  # a wmbook GPT returns GPTOutput


def recall_loss(model: Callable, batch: RecallBatch) -> Tensor:
    """Mean cross-entropy of the answers, each predicted at its query key's position."""
    logits = _logits(model, batch.tokens)[:, batch.query_positions]  # (B, Q, V)
    return F.cross_entropy(logits.flatten(0, 1), batch.answers.flatten())


@torch.no_grad()
def recall_accuracy(
    model: Callable,
    task: RecallTask,
    n_facts: int,
    n_seqs: int = 1000,
    seed: int = 0,
    batch_size: int = 500,
    n_queries: int = 1,
) -> float:
    """Fraction of ``n_seqs`` fresh sequences (seeded) whose **last** query the model answers (top token).

    With ``n_queries=1`` this is the page's task; more queries push the last one to later positions
    (it sits at position ``2 n_facts + 2 n_queries - 2``) while the number of facts stays the same.
    """
    was_training = getattr(model, "training", False)
    if was_training:
        model.eval()
    g = torch.Generator().manual_seed(seed)
    correct = 0
    for start in range(0, n_seqs, batch_size):
        b = associative_recall_batch(task, min(batch_size, n_seqs - start), n_facts, n_queries, g)
        correct += (_logits(model, b.tokens)[:, -1].argmax(-1) == b.answers[:, -1]).sum().item()
    if was_training:
        model.train()
    return correct / n_seqs


@dataclass
class RecallRecipe:
    """How the page's recall GPT is trained (``scripts/train_recall_gpt.py``).

    Two phases, one optimiser (AdamW, no weight decay, so rows of the position table that
    training never reaches keep their random initial values). Phase 1 uses short contexts
    (2-4 facts, ``phase1_pairs`` key-value pairs in all), where the induction circuit forms
    soonest; it ends once one-query accuracy with 4 facts reaches ``switch_accuracy`` (checked
    every ``eval_every`` steps). Phase 2 trains on 1..``max_facts`` facts in contexts of
    ``pairs`` pairs, i.e. ``2 * pairs - 1`` tokens: the trained context length.
    """

    n_keys: int = 32
    n_values: int = 32
    d_model: int = 64
    n_heads: int = 2
    n_layers: int = 2
    d_ff: int = 4  # a vestigial MLP: attention has to do the work
    n_ctx: int = 64
    batch_size: int = 128
    lr: float = 1e-3
    warmup: int = 50
    phase1_pairs: int = 8
    phase1_max_steps: int = 6000
    switch_accuracy: float = 0.9
    pairs: int = 16
    max_facts: int = 8
    phase2_steps: int = 3000
    eval_every: int = 100
    seed: int = 0

    @property
    def task(self) -> RecallTask:
        return RecallTask(self.n_keys, self.n_values)

    @property
    def trained_length(self) -> int:
        """The longest context seen in training, in tokens."""
        return 2 * self.pairs - 1

    def model_config(self):
        from wmbook.nn.gpt import GPTConfig

        return GPTConfig(vocab_size=self.task.vocab_size, n_ctx=self.n_ctx, d_model=self.d_model,
                         n_heads=self.n_heads, n_layers=self.n_layers, d_ff=self.d_ff, dropout=0.0)


def train_recall_gpt(recipe: RecallRecipe, log: Callable[[dict], None] | None = None,
                     max_steps: int | None = None):
    """Train a :class:`wmbook.nn.gpt.GPT` on associative recall; returns ``(model, records)``.

    ``records`` holds one dict per evaluation: step, phase, training loss and one-query
    accuracy with 4 and 8 facts. ``max_steps`` cuts the run short (smoke tests).
    """
    from wmbook.nn.gpt import GPT
    from wmbook.nn.train import optimizer_step

    torch.manual_seed(recipe.seed)
    g = torch.Generator().manual_seed(recipe.seed)
    task, model = recipe.task, GPT(recipe.model_config())
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=0.0)
    records: list[dict] = []
    step, phase, phase2_start = 0, 1, None
    limit = recipe.phase1_max_steps + recipe.phase2_steps if max_steps is None else max_steps
    model.train()
    while step < limit:
        if phase == 1:
            n = int(torch.randint(2, 5, (1,), generator=g))
            batch = associative_recall_batch(task, recipe.batch_size, n, recipe.phase1_pairs - n, g)
        else:
            n = int(torch.randint(1, recipe.max_facts + 1, (1,), generator=g))
            batch = associative_recall_batch(task, recipe.batch_size, n, recipe.pairs - n, g)
        loss = recall_loss(model, batch)
        optimizer_step(opt, loss, recipe.lr * min(1.0, (step + 1) / recipe.warmup), model.parameters(), 1.0)
        step += 1
        if step % recipe.eval_every == 0:
            r = {"step": step, "phase": phase, "loss": round(loss.item(), 4),
                 "acc4": recall_accuracy(model, task, 4, n_seqs=500, seed=123),
                 "acc8": recall_accuracy(model, task, 8, n_seqs=500, seed=123)}
            records.append(r)
            if log:
                log(r)
            if phase == 1 and (r["acc4"] >= recipe.switch_accuracy or step >= recipe.phase1_max_steps):
                phase = 2
                limit = min(limit, step + recipe.phase2_steps)
    model.eval()
    return model, records


RECALL_GPT_FILE = "recall_gpt.pt"
RECALL_GPT_SHA256 = "fc390ff8e66ee2e362d2983f0efd4baff02ad84714c03e34df8c3722dc0b1050"
"""sha256 of ``wmbook/data/checkpoints/recall_gpt.pt``, as printed by ``scripts/train_recall_gpt.py``."""
_REGENERATE = "python scripts/train_recall_gpt.py  (a few minutes on a CPU)"


#: The recipe's other training seeds (page 5.3.3 quotes every seed): ``{seed: sha256}`` of
#: ``wmbook/data/checkpoints/recall_gpt_seed{seed}.pt``, written by
#: ``python scripts/train_recall_gpt.py --seed S --out wmbook/data/checkpoints/recall_gpt_seedS.pt``.
RECALL_GPT_SEEDS_SHA256: dict[int, str] = {
    1: "8c73a541141a1b547f1a6980abdf5616c8fba86a879e001959ef4ae5033c4e89",
    2: "5acc2d5666594efbacf9c7b41e6452dc94bc163d58e5d3af0347017795bfa744",
}


def recall_gpt_file(seed: int = 0) -> str:
    """The committed checkpoint of one seed: ``recall_gpt.pt`` for seed 0, ``recall_gpt_seed{seed}.pt`` otherwise."""
    from wmbook.data.checkpoint import seed_file

    return seed_file(RECALL_GPT_FILE, seed)


class RecallGPT(NamedTuple):
    model: object  # a wmbook.nn.gpt.GPT in eval mode
    recipe: RecallRecipe
    records: list  # the training log: step, phase, loss, acc4, acc8
    meta: dict


def save_recall_gpt(path, model, recipe: RecallRecipe, records: list, meta: dict | None = None) -> str:
    """Write weights (float32), recipe and training log; returns the file's sha256."""
    from dataclasses import asdict
    from pathlib import Path

    from wmbook.data.checkpoint import file_sha256

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"recipe": asdict(recipe), "state_dict": model.state_dict(), "records": records,
                "meta": dict(meta or {})}, path)
    return file_sha256(path)


def load_recall_gpt(path=None, sha256: str | None = RECALL_GPT_SHA256) -> RecallGPT:
    """The recall GPT of page 5.3.3 (``wmbook/data/checkpoints/recall_gpt.pt``), checked against its sha256."""
    from wmbook.data.checkpoint import CHECKPOINT_DIR, verify_checkpoint
    from wmbook.nn.gpt import GPT

    path = verify_checkpoint(path if path is not None else CHECKPOINT_DIR / RECALL_GPT_FILE, sha256,
                             _REGENERATE, where="wmbook/lab/icl.py (RECALL_GPT_SHA256)")
    blob = torch.load(path, map_location="cpu", weights_only=True)
    recipe = RecallRecipe(**blob["recipe"])
    model = GPT(recipe.model_config())
    model.load_state_dict(blob["state_dict"])
    return RecallGPT(model.eval(), recipe, blob["records"], blob["meta"])


def load_recall_gpt_seeds() -> dict[int, RecallGPT]:
    """Every committed seed of the recall recipe, ``{seed: RecallGPT}``, seed 0 first, each sha256-checked.

    Seed 0 is :func:`load_recall_gpt`'s model; the others are listed in ``RECALL_GPT_SEEDS_SHA256``.
    Raises :class:`ValueError` if a checkpoint's recipe is not the committed recipe with its own seed.
    """
    from dataclasses import replace

    from wmbook.data.checkpoint import CHECKPOINT_DIR

    runs = {0: load_recall_gpt()}
    for seed, sha in sorted(RECALL_GPT_SEEDS_SHA256.items()):
        runs[seed] = load_recall_gpt(CHECKPOINT_DIR / recall_gpt_file(seed), sha256=sha)
    for seed, run in runs.items():
        if run.recipe != replace(runs[0].recipe, seed=seed):
            raise ValueError(f"the checkpoint of seed {seed} was trained with another recipe: {run.recipe}")
    return runs


__all__ = ["RECALL_GPT_SEEDS_SHA256", "RECALL_GPT_SHA256", "RecallBatch", "RecallGPT", "RecallRecipe", "RecallTask",
           "associative_recall_batch", "load_recall_gpt", "load_recall_gpt_seeds", "recall_accuracy",
           "recall_gpt_file", "recall_loss",
           "save_recall_gpt", "train_recall_gpt"]


# --- few-shot prompting over a corpus of tasks (page 2.3) ---------------------------------------
# FewShotTasks makes the prompts, few_shot_loss trains on them, few_shot_accuracy scores a model and
# few_shot_best_accuracy the best any learner can do; FewShotRecipe and train_few_shot_gpt train the
# page's GPT (run by scripts/train_fewshot_gpt.py over several seeds), load_few_shot_gpt loads it.

class FewShotBatch(NamedTuple):
    tokens: Tensor  # (B, 4 (k + 1)): [BOS] x1 -> y1 ; x2 -> y2 ; ... ; xq -> yq
    y_positions: Tensor  # (k + 1,) where the answers stand; the last one is the query's
    tasks: Tensor  # (B,) which task generated each prompt


@dataclass(frozen=True)
class FewShotTasks:
    """A corpus of ``n_tasks`` tasks, each a fixed random permutation of ``n_inputs`` symbols.

    A prompt shows ``k`` demonstrations ``x -> task(x)`` of one task, then a query ``x_q ->``.
    The tasks themselves are learnable in the weights (there are few of them); *which* task a
    prompt is about is known only from its demonstrations — the setting of few-shot prompting,
    where a model recognises a task it met in training from the examples in its prompt.
    Tokens: inputs ``0..n-1``, outputs ``n..2n-1``, then ``->``, ``;`` and ``[BOS]``.
    """

    n_inputs: int = 16
    n_tasks: int = 8
    seed: int = 100

    @property
    def arrow(self) -> int:
        return 2 * self.n_inputs

    @property
    def semicolon(self) -> int:
        return 2 * self.n_inputs + 1

    @property
    def bos(self) -> int:
        return 2 * self.n_inputs + 2

    @property
    def vocab_size(self) -> int:
        return 2 * self.n_inputs + 3

    def permutations(self) -> Tensor:
        """``(n_tasks, n_inputs)``: row t maps input x to output ``row[x]`` (seeded, fixed)."""
        return torch.stack([torch.randperm(self.n_inputs, generator=torch.Generator().manual_seed(self.seed + t))
                            for t in range(self.n_tasks)])

    def batch(self, batch: int, k: int, generator: torch.Generator | None = None) -> FewShotBatch:
        """``batch`` prompts with ``k`` demonstrations each (and one query)."""
        if batch < 1 or k < 0:
            raise ValueError(f"need batch >= 1 and k >= 0, got {batch}, {k}")
        tasks = torch.randint(0, self.n_tasks, (batch,), generator=generator)
        xs = torch.randint(0, self.n_inputs, (batch, k + 1), generator=generator)
        ys = self.permutations()[tasks[:, None], xs] + self.n_inputs  # (B, k + 1) output tokens
        parts = [torch.full((batch, 1), self.bos)]
        for i in range(k + 1):
            parts += [xs[:, i:i + 1], torch.full((batch, 1), self.arrow), ys[:, i:i + 1]]
            if i < k:
                parts.append(torch.full((batch, 1), self.semicolon))
        y_positions = torch.tensor([4 * i + 3 for i in range(k + 1)])  # [BOS] x -> y ; ...
        return FewShotBatch(torch.cat(parts, dim=1), y_positions, tasks)


def few_shot_loss(model: Callable[[Tensor], Tensor], b: FewShotBatch) -> Tensor:
    """Cross-entropy of the answers (every ``y``, each predicted from the tokens before it)."""
    logits = model(b.tokens[:, :-1])  # (B, T - 1, V): position t predicts token t + 1
    return F.cross_entropy(logits[:, b.y_positions - 1].reshape(-1, logits.shape[-1]),
                           b.tokens[:, b.y_positions].reshape(-1))


@torch.no_grad()
def few_shot_accuracy(model: Callable[[Tensor], Tensor], tasks: FewShotTasks, k: int, n: int = 2000,
                      seed: int = 7) -> float:
    """Accuracy on the query of ``n`` fresh prompts with ``k`` demonstrations."""
    b = tasks.batch(n, k, generator=torch.Generator().manual_seed(seed))
    logits = model(b.tokens[:, :-1])
    q = int(b.y_positions[-1])
    return (logits[:, q - 1].argmax(-1) == b.tokens[:, q]).float().mean().item()


@torch.no_grad()
def few_shot_best_accuracy(tasks: FewShotTasks, k: int, n: int = 2000, seed: int = 7) -> float:
    r"""The best accuracy any learner can reach on the prompts :func:`few_shot_accuracy` draws (same ``n``, ``seed``).

    The tasks are equally likely. The ``k`` demonstrations rule out every task that maps one of
    them differently; of the tasks :math:`T` that remain (the true one always does), the best
    guess for the query :math:`x_q` is the output most of them give, right with probability

    .. math::

        \max_y \frac{|\{t \in T : t(x_q) = y\}|}{|T|},

    averaged here over the prompts. With ``k = 0`` no task is ruled out: the guess is the output
    most tasks give for :math:`x_q`. Page 2.3 draws it as the ceiling of the few-shot curve.
    """
    b = tasks.batch(n, k, generator=torch.Generator().manual_seed(seed))
    perms = tasks.permutations()  # (n_tasks, n_inputs)
    xs = b.tokens[:, b.y_positions - 2]  # (n, k + 1): the inputs, the query's last
    ys = b.tokens[:, b.y_positions] - tasks.n_inputs  # (n, k + 1): their outputs
    outs = perms[:, xs]  # (n_tasks, n, k + 1): what each task would answer
    consistent = (outs[:, :, :k] == ys[None, :, :k]).all(-1)  # (n_tasks, n)
    votes = F.one_hot(outs[:, :, k], tasks.n_inputs) * consistent[..., None]  # (n_tasks, n, n_inputs)
    return (votes.sum(0).max(-1).values.double() / consistent.sum(0).double()).mean().item()


@dataclass(frozen=True)
class FewShotRecipe:
    """How the few-shot GPT of page 2.3 is trained (``scripts/train_fewshot_gpt.py``).

    The model is a :class:`wmbook.nn.gpt.GPT` (``n_layers`` x ``d_model``, ``n_heads`` heads,
    no dropout). Every step draws ``batch_size`` prompts of :class:`FewShotTasks` with
    ``max_shots`` demonstrations; the loss is :func:`few_shot_loss`, on every answer, so one
    prompt trains the model with 0, 1, ..., ``max_shots`` shots at once. AdamW (weight decay
    ``weight_decay``), the learning rate of :func:`wmbook.nn.train.warmup_cosine` (a linear
    warm-up over ``warmup`` steps, then a cosine decay to 0 at ``steps``), gradients clipped to
    norm 1. The accuracy at ``eval_shots`` (0, 1, 2 and ``max_shots``) shots is logged every
    ``eval_every`` steps (on ``eval_prompts`` fixed prompts per shot count).
    """

    n_inputs: int = 16
    n_tasks: int = 8
    task_seed: int = 100
    max_shots: int = 6
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    n_ctx: int = 32
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 0.1
    warmup: int = 200
    steps: int = 5000
    eval_every: int = 250
    eval_prompts: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.eval_every < 1:
            raise ValueError(f"need steps >= 1 and eval_every >= 1, got {self.steps}, {self.eval_every}")
        if 4 * (self.max_shots + 1) - 1 > self.n_ctx:
            raise ValueError(f"prompts of {self.max_shots} shots need n_ctx >= {4 * (self.max_shots + 1) - 1}")

    @property
    def tasks(self) -> FewShotTasks:
        return FewShotTasks(self.n_inputs, self.n_tasks, self.task_seed)

    @property
    def eval_shots(self) -> tuple[int, ...]:
        """The shot counts whose accuracy training logs: 0, 1, 2 and ``max_shots``."""
        return tuple(sorted({k for k in (0, 1, 2) if k <= self.max_shots} | {self.max_shots}))

    def model_config(self):
        from wmbook.nn.gpt import GPTConfig

        return GPTConfig(vocab_size=self.tasks.vocab_size, n_ctx=self.n_ctx, d_model=self.d_model,
                         n_heads=self.n_heads, n_layers=self.n_layers, dropout=0.0)


def train_few_shot_gpt(recipe: FewShotRecipe, stop_after: int | None = None,
                       log: Callable[[dict], None] | None = None):
    """Train the few-shot GPT of ``recipe``; returns ``(model, history)`` (a :class:`wmbook.nn.train.History`).

    Seeded by ``recipe.seed`` (the initial weights and the prompts), so a run repeats bit for bit
    on one machine and thread count. ``history`` holds the batch loss of every step (``loss``, at
    ``step`` 0, 1, ...) and, every ``eval_every`` steps and at the last, the accuracy on the query
    at each of ``recipe.eval_shots`` shots (``acc0``, ``acc1``, ...; ``step`` = steps done).
    ``stop_after`` runs only the first steps of the ``recipe.steps`` schedule (the page re-runs
    the start of the committed run this way); ``log`` receives each accuracy record.
    """
    from wmbook.nn.gpt import GPT
    from wmbook.nn.train import History, optimizer_step, warmup_cosine

    torch.manual_seed(recipe.seed)
    gen = torch.Generator().manual_seed(recipe.seed)
    tasks, model = recipe.tasks, GPT(recipe.model_config())
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    history = History()
    last = recipe.steps if stop_after is None else stop_after
    if not 1 <= last <= recipe.steps:
        raise ValueError(f"stop_after must be in 1..{recipe.steps}, got {stop_after}")
    model.train()
    for step in range(last):
        loss = few_shot_loss(lambda t: model(t).logits, tasks.batch(recipe.batch_size, recipe.max_shots, gen))
        optimizer_step(opt, loss, warmup_cosine(step, recipe.lr, recipe.warmup, recipe.steps), model.parameters(), 1.0)
        history.log(step, loss=loss.item())
        if (step + 1) % recipe.eval_every == 0 or step + 1 == last:
            model.eval()
            accs = {f"acc{k}": few_shot_accuracy(lambda t: model(t).logits, tasks, k, n=recipe.eval_prompts)
                    for k in recipe.eval_shots}
            model.train()
            history.log(step + 1, **accs)
            if log:
                log({"step": step + 1, "loss": loss.item(), **accs})
    model.eval()
    return model, history


FEW_SHOT_GPT_FILE = "fewshot_gpt.pt"
FEW_SHOT_GPT_SHA256 = "c1e1ba743d313e44dacc215ca6e02ed3ad02023fe947dbb721031c8783edf114"
"""sha256 of ``wmbook/data/checkpoints/fewshot_gpt.pt`` (seed 0's weights), as printed by ``scripts/train_fewshot_gpt.py``."""
FEW_SHOT_GPT_LOG_SHA256 = "b856bdf6f73acdcc0f5481ed447f458627581c25a189fcbe5b47b6eaa2506fc7"
"""sha256 of its JSON log ``fewshot_gpt.json`` (all seeds' accuracy), as printed by the script."""
_FEW_SHOT_REGENERATE = "python scripts/train_fewshot_gpt.py  (5 seeds, about 30 minutes on a CPU)"


class FewShotGPT(NamedTuple):
    model: object  # a wmbook.nn.gpt.GPT in eval mode
    recipe: FewShotRecipe
    log: dict  # the JSON training log: evals, first_losses, seeds, ...


def save_few_shot_gpt(path, model, recipe: FewShotRecipe, history, extra: dict | None = None) -> str:
    """Write the weights (float32) and recipe, and the JSON log next to them; returns the sha256 of the weights.

    The log (:func:`wmbook.data.checkpoint.save_with_log`) holds the accuracy records of
    ``history`` and ``extra`` (the script adds the first steps' losses and every seed's results).
    """
    from dataclasses import asdict

    from wmbook.data.checkpoint import save_with_log

    n_params = sum(p.numel() for p in model.parameters())
    return save_with_log(path, {"recipe": asdict(recipe), "state_dict": model.state_dict()}, history, recipe,
                         n_params, eval_key="acc0", extra=extra)


def load_few_shot_gpt(path=None, sha256: str | None = FEW_SHOT_GPT_SHA256) -> FewShotGPT:
    """The few-shot GPT of page 2.3 and its log, both checked against their sha256.

    Default: ``wmbook/data/checkpoints/fewshot_gpt.pt`` with ``FEW_SHOT_GPT_SHA256`` and its log
    with ``FEW_SHOT_GPT_LOG_SHA256``; another ``path`` is checked against ``sha256`` (None: not
    checked), and its log's hash is not checked, only that the log names these weights.
    """
    from pathlib import Path

    from wmbook.data.checkpoint import CHECKPOINT_DIR, CheckpointError, load_log, verify_checkpoint
    from wmbook.nn.gpt import GPT

    committed = path is None
    path = verify_checkpoint(CHECKPOINT_DIR / FEW_SHOT_GPT_FILE if committed else Path(path), sha256,
                             _FEW_SHOT_REGENERATE, where="wmbook/lab/icl.py (FEW_SHOT_GPT_SHA256)")
    log = load_log(path.with_suffix(".json"), FEW_SHOT_GPT_LOG_SHA256 if committed else None, _FEW_SHOT_REGENERATE,
                   where="wmbook/lab/icl.py (FEW_SHOT_GPT_LOG_SHA256)")
    if sha256 is not None and log.get("sha256") != sha256:
        raise CheckpointError(f"the log next to {path} describes other weights (sha256 {log.get('sha256')}); "
                              f"regenerate both with: {_FEW_SHOT_REGENERATE}")
    blob = torch.load(path, map_location="cpu", weights_only=True)
    recipe = FewShotRecipe(**blob["recipe"])
    model = GPT(recipe.model_config())
    model.load_state_dict(blob["state_dict"])
    return FewShotGPT(model.eval(), recipe, log)


__all__ += ["FEW_SHOT_GPT_FILE", "FEW_SHOT_GPT_LOG_SHA256", "FEW_SHOT_GPT_SHA256",
            "FewShotBatch", "FewShotGPT", "FewShotRecipe", "FewShotTasks", "few_shot_accuracy",
            "few_shot_best_accuracy", "few_shot_loss", "load_few_shot_gpt", "save_few_shot_gpt",
            "train_few_shot_gpt"]
