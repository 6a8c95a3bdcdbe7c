"""Distilling a sentiment classifier into a small BERT (page 5.2, "Distilling BERT").

The teacher is MiniLM-L6 (a pre-trained, itself distilled BERT) with a classification head
on its mean-pooled sentence vector (a small MLP). The head is trained only on labels the
students may also use: the first ``n`` sentences of a seeded transfer set of SST-2 training
sentences, for ``n`` in :data:`TEACHER_LABELS` (1,000 and 250, one head each). The labels of
the other transfer sentences are used by nobody but the "all labels" reference arm. The
committed script ``scripts/sst2_teacher.py`` runs MiniLM over the transfer set and the dev set
once, trains the heads (:func:`train_teacher_head`), and stores them with the teacher's logits
and the sentence indices in ``wmbook/data/checkpoints/sst2_teacher.pt``;
:func:`load_sst2_teacher` reads one head back after checking the file's sha256.

The students (:func:`run_student`) are trained over several seeds by ``scripts/sst2_students.py``
(:func:`train_students`), which stores their dev accuracies, the distilled student of the first
seed and a JSON training log (the loss at every step of each arm's first seed) in
``sst2_students.pt`` / ``sst2_students.json``; :func:`load_sst2_students` checks both sha256s.
Every arm sees one batch of :data:`BATCH_SIZE` sentences per step (one forward and backward pass
of the student); the distilled arm splits it between labelled sentences and soft targets.
The learning rate is constant, so ``steps=N`` repeats the first N steps of a longer run exactly
(on one machine): page 5.2 re-runs the first steps and compares them with the log.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch
from torch import Tensor, nn

from wmbook.data.checkpoint import CHECKPOINT_DIR, load_paired_log, verify_checkpoint

SST2_TEACHER_FILE = "sst2_teacher.pt"
#: sha256 of the committed file, as printed by ``scripts/sst2_teacher.py``.
SST2_TEACHER_SHA256 = "6e28a1ced2d82aa322de16b56b5ce0dde3ad1b0b8fb243b4aa07bee95f1cef85"
TRANSFER_SIZE = 10_000  # SST-2 training sentences the teacher labels with soft targets
#: the teacher heads: each trained on the labels of the first n transfer sentences only (the students' labels)
TEACHER_LABELS = (1000, 250)
TEACHER_BATCH = 128  # sentences per step of the head's training
TEACHER_LR = 1e-3


def teacher_head(d_in: int = 384, d_hidden: int = 256, n_classes: int = 2) -> nn.Sequential:
    """The teacher's head on MiniLM's mean-pooled sentence vector: Linear-ReLU-Linear."""
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.ReLU(), nn.Dropout(0.1), nn.Linear(d_hidden, n_classes))


def train_teacher_head(features: Tensor, labels: Tensor, steps: int, seed: int = 0,
                       batch_size: int = TEACHER_BATCH, lr: float = TEACHER_LR) -> nn.Sequential:
    r"""Train :func:`teacher_head` on fixed sentence vectors ``features`` (N, 384) and their ``labels`` (N,).

    ``steps`` AdamW steps (``lr``, weight decay 0.01) of the cross-entropy
    :math:`-\frac{1}{B}\sum_b \log \sigma(h(x_b))_{y_b}` on batches of ``batch_size`` drawn with
    replacement (seeded by ``seed``, as are the initial weights). Page 5.2 trains it on the
    labelled sentences the students also get, so the teacher knows no label they do not.
    Returns the head in eval mode.
    """
    import torch.nn.functional as F

    if features.ndim != 2 or labels.shape != (features.shape[0],) or len(labels) == 0:
        raise ValueError(f"features must be (N, d) and labels (N,) with N >= 1, got {tuple(features.shape)} "
                         f"and {tuple(labels.shape)}")
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    torch.manual_seed(seed)
    head = teacher_head(d_in=features.shape[1])
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=1e-2)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        b = torch.randint(0, len(labels), (batch_size,), generator=gen)
        loss = F.cross_entropy(head(features[b]), labels[b])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return head.eval()


def transfer_split(seed: int = 0, size: int = TRANSFER_SIZE) -> Tensor:
    """Indices of the transfer set in SST-2's training data (seeded, without replacement)."""
    from wmbook.data.loaders import load_sst2

    n = len(load_sst2()["train"])
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:size]


class SST2Teacher(NamedTuple):
    transfer_idx: Tensor  # (N,) indices into SST-2 train
    transfer_logits: Tensor  # (N, 2) the teacher's logits on them
    dev_logits: Tensor  # (872, 2)
    head: nn.Sequential  # MiniLM mean-pooled vector -> logits
    info: dict  # n_labelled (the head's labels: the first n transfer sentences), accuracies, settings


def load_sst2_teacher(n_labelled: int = TEACHER_LABELS[0], path=None,
                      sha256: str | None = SST2_TEACHER_SHA256) -> SST2Teacher:
    """The committed MiniLM teacher of page 5.2 whose head saw the labels of the first ``n_labelled``
    transfer sentences (one of :data:`TEACHER_LABELS`): its head, its logits, its transfer set.

    ``info`` holds ``n_labelled``, ``train_acc`` (on those labelled sentences), ``dev_acc``,
    ``transfer_acc`` (on the whole transfer set, against labels the head never saw),
    ``transfer_size`` and ``steps``. Pass ``path`` (and ``sha256=None``) for a run of your own.
    """
    from pathlib import Path

    path = verify_checkpoint(Path(path) if path is not None else CHECKPOINT_DIR / SST2_TEACHER_FILE, sha256,
                             "python scripts/sst2_teacher.py  (a few minutes on a laptop CPU)",
                             where="wmbook/lab/distill_bert.py (SST2_TEACHER_SHA256)")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if n_labelled not in ckpt["heads"]:
        raise ValueError(f"no teacher head trained on {n_labelled} labels in {path}; "
                         f"there are heads for {sorted(ckpt['heads'])}")
    head = teacher_head()
    head.load_state_dict(ckpt["heads"][n_labelled])
    info = {"n_labelled": n_labelled, **ckpt["info"]["by_labels"][n_labelled],
            **{k: v for k, v in ckpt["info"].items() if k != "by_labels"}}
    return SST2Teacher(ckpt["transfer_idx"], ckpt["transfer_logits"][n_labelled].float(),
                       ckpt["dev_logits"][n_labelled].float(), head.eval(), info)


def load_sst2_teachers(path=None, sha256: str | None = SST2_TEACHER_SHA256) -> dict[int, SST2Teacher]:
    """Every head of the committed teacher file: ``{n_labelled: SST2Teacher}`` (:func:`load_sst2_teacher`)."""
    from pathlib import Path

    path = Path(path) if path is not None else CHECKPOINT_DIR / SST2_TEACHER_FILE
    heads = torch.load(verify_checkpoint(path, sha256, "python scripts/sst2_teacher.py",
                                         where="wmbook/lab/distill_bert.py (SST2_TEACHER_SHA256)"),
                       map_location="cpu", weights_only=True)["heads"]
    return {n: load_sst2_teacher(n, path, sha256) for n in sorted(heads, reverse=True)}


# --- the students ------------------------------------------------------------------------

MAX_LEN = 40  # tokens per sentence, [CLS] and [SEP] included (SST-2 sentences are short)
STUDENT_VOCAB = 6000


@dataclass
class StudentData:
    """Token ids of the transfer set and the dev set in a reduced vocabulary, with labels."""

    X: Tensor  # (N, MAX_LEN) small ids, right-padded with 0
    lengths: Tensor  # (N,)
    y: Tensor  # (N,) SST-2 labels of the transfer set
    dev_X: Tensor
    dev_lengths: Tensor
    dev_y: Tensor
    vocab_size: int


def student_data(teacher: SST2Teacher) -> StudentData:
    """Tokenise the teacher's transfer set and SST-2 dev with MiniLM's WordPiece, reduced to
    the :data:`STUDENT_VOCAB` most frequent ids of the transfer set (rest -> [UNK])."""
    from wmbook.nn.bert import minilm_tokenizer
    from wmbook.data.loaders import load_sst2
    from wmbook.lab.finetune import ReducedVocab, encode_texts, pad_batch

    sst2, tok = load_sst2(), minilm_tokenizer()
    rows = [sst2["train"][i] for i in teacher.transfer_idx.tolist()]
    raw = tok([s for s, _ in rows], truncation=True, max_length=MAX_LEN)["input_ids"]
    specials = [tok.pad_token_id, tok.unk_token_id, tok.cls_token_id, tok.sep_token_id]
    vocab = ReducedVocab.most_frequent(raw, STUDENT_VOCAB, specials=specials, unk=tok.unk_token_id)
    X, lengths = pad_batch([vocab.encode(s) for s in raw], pad=0, length=MAX_LEN)
    dev_X, dev_lengths = pad_batch(encode_texts([s for s, _ in sst2["dev"]], tok, vocab, MAX_LEN), 0, MAX_LEN)
    return StudentData(X, lengths, torch.tensor([y for _, y in rows]), dev_X, dev_lengths,
                       torch.tensor([y for _, y in sst2["dev"]]), len(vocab))


def student_config(vocab_size: int):
    """The student: a 2-layer, 64-wide BERT (about 1/50 of MiniLM's parameters)."""
    from wmbook.nn.bert import BertConfig

    return BertConfig(vocab_size=vocab_size, d_model=64, n_heads=2, n_layers=2, d_ff=128, n_ctx=MAX_LEN,
                      dropout=0.1)


def _batch_logits(model, X: Tensor, lengths: Tensor) -> Tensor:
    T = int(lengths.max())  # trim the padding the whole batch shares
    mask = (torch.arange(T)[None, :] < lengths[:, None]).long()  # (B, T): 1 = real token
    return model(X[:, :T], mask).logits


@torch.no_grad()
def student_accuracy(model, data: StudentData) -> float:
    model.eval()
    return (_batch_logits(model, data.dev_X, data.dev_lengths).argmax(-1) == data.dev_y).float().mean().item()


ARMS = ("labels", "distilled", "all labels")
BATCH_SIZE = 64  # sentences per step, every arm ("distilled": half labelled, half soft targets)
LR = 2e-3  # AdamW, constant (no warm-up, no decay): a shorter run is the start of a longer one


class StudentRun(NamedTuple):
    """What :func:`run_student` returns."""

    model: nn.Module  # a BertForSequenceClassification, in eval mode
    history: "History"  # wmbook.nn.train.History: the batch loss (and lr) at every step


def run_student(data: StudentData, teacher: SST2Teacher, arm: str, seed: int, n_labelled: int = 1000,
                steps: int = 400, tau: float = 2.0, alpha: float = 0.5) -> StudentRun:
    r"""Train one student and return it with its loss history.

    Every arm takes one batch of :data:`BATCH_SIZE` sentences per step (one forward and one
    backward pass of the student); the teacher's logits are precomputed, so no arm runs the
    teacher while it trains.

    ``"labels"``: the labels of the first ``n_labelled`` transfer sentences only (64 per step).
    ``"distilled"``: the same labels for half of each batch (32 sentences, drawn from the first
    ``n_labelled``) and the teacher's soft targets for the other half (32 drawn from the whole
    transfer set): :math:`L = \alpha\,\mathrm{CE}(y, \sigma(z_s)) + (1-\alpha)\,\tau^2\,
    \mathrm{CE}(\sigma(z_t/\tau), \sigma(z_s/\tau))`, each term the mean over its half
    (:func:`wmbook.lab.distill.hinton_loss` without labels for the soft term). The teacher's head
    must have been trained on the same ``n_labelled`` labels (``teacher.info["n_labelled"]``).
    ``"all labels"``: the true labels of the whole transfer set (what the soft targets stand in for).

    Seeded (weights, batches, dropout) and on one thread, so a run repeats exactly on one machine;
    the learning rate is constant, so ``steps=N`` is exactly the first N steps of a longer run.
    """
    import torch.nn.functional as F

    from wmbook.nn.train import train as run_training
    from wmbook.nn.bert_heads import BertForSequenceClassification
    from wmbook.lab.distill import hinton_loss
    from wmbook.nn.runtime import seed_everything, threads

    if arm not in ARMS:
        raise ValueError(f"arm must be one of {ARMS}, got {arm!r}")
    if not 0 < n_labelled <= len(data.y):
        raise ValueError(f"n_labelled must be in 1..{len(data.y)}, got {n_labelled}")
    seen = teacher.info.get("n_labelled")
    if arm == "distilled" and seen != n_labelled:
        raise ValueError(f"the teacher's head was trained on {seen} labels, the student gets {n_labelled}: "
                         f"distil from the teacher of the same labels (load_sst2_teacher({n_labelled}))")
    seed_everything(seed)
    gen = torch.Generator().manual_seed(seed)
    model = BertForSequenceClassification(student_config(data.vocab_size))
    n = len(data.y) if arm == "all labels" else n_labelled
    half = BATCH_SIZE // 2

    def loss(m, step):
        if arm != "distilled":
            i = torch.randint(0, n, (BATCH_SIZE,), generator=gen)
            return F.cross_entropy(_batch_logits(m, data.X[i], data.lengths[i]), data.y[i])
        i = torch.randint(0, n, (half,), generator=gen)  # labelled
        j = torch.randint(0, len(data.y), (BATCH_SIZE - half,), generator=gen)  # soft targets
        both = torch.cat([i, j])
        z = _batch_logits(m, data.X[both], data.lengths[both])  # one pass over the 64 sentences
        hard = F.cross_entropy(z[:half], data.y[i])
        soft = hinton_loss(z[half:], teacher.transfer_logits[j], None, tau=tau)
        return alpha * hard + (1 - alpha) * soft

    with threads(1):  # a tiny model: one thread is faster, and the run is repeatable
        history = run_training(model, loss, steps=steps, lr=LR, progress=False)
    return StudentRun(model.eval(), history)


def train_student(data: StudentData, teacher: SST2Teacher, arm: str, seed: int, n_labelled: int = 1000,
                  steps: int = 400, tau: float = 2.0, alpha: float = 0.5):
    """Train one student (:func:`run_student`) and return the model only."""
    return run_student(data, teacher, arm, seed, n_labelled, steps, tau, alpha).model


@dataclass(frozen=True)
class StudentsRecipe:
    """The runs of ``scripts/sst2_students.py`` (its defaults are the committed file's)."""

    steps: int = 400
    seeds: int = 5  # seeds seed, seed + 1, ...
    seed: int = 0
    arms: tuple = ARMS
    n_labelled: int = 1000
    fewer_labels: int = 250  # the "labels" and "distilled" arms again with this many labels (0: not run)
    tau: float = 2.0
    alpha: float = 0.5
    batch_size: int = BATCH_SIZE
    lr: float = LR

    def __post_init__(self) -> None:
        if self.steps < 1 or self.seeds < 1 or self.seed < 0:
            raise ValueError(f"steps and seeds must be >= 1 and seed >= 0, got {self}")
        if not self.arms or set(self.arms) - set(ARMS):
            raise ValueError(f"arms must be some of {ARMS}, got {self.arms}")
        object.__setattr__(self, "arms", tuple(a for a in ARMS if a in self.arms))

    def runs(self) -> list[tuple[str, int, int]]:
        """``(arm, n_labelled, seed)`` of every run, in the order they are trained."""
        seeds = range(self.seed, self.seed + self.seeds)
        runs = [(arm, self.n_labelled, s) for arm in self.arms for s in seeds]
        if self.fewer_labels:
            runs += [(arm, self.fewer_labels, s) for arm in ("labels", "distilled") if arm in self.arms
                     for s in seeds]
        return runs


def curve_key(arm: str, n_labelled: int, seed: int) -> str:
    """The key of a loss curve in the students' log, e.g. ``"distilled/1000/0"``."""
    return f"{arm}/{n_labelled}/{seed}"


def _train_one(data: StudentData, teacher: SST2Teacher, arm: str, n: int, seed: int, recipe: StudentsRecipe,
               keep_model: bool) -> tuple[float, list[float], dict | None]:
    """One run of :func:`train_students`: (dev accuracy, loss per step, the state dict if ``keep_model``)."""
    run = run_student(data, teacher, arm, seed, n_labelled=n, steps=recipe.steps, tau=recipe.tau, alpha=recipe.alpha)
    state = {k: v.clone() for k, v in run.model.state_dict().items()} if keep_model else None
    return student_accuracy(run.model, data), [round(v, 6) for v in run.history.series("loss")[1]], state


def train_students(data: StudentData, teacher, recipe: StudentsRecipe = StudentsRecipe(),
                   report: Callable[[str], None] | None = None, jobs: int = 1) -> dict:
    """Every run of ``recipe`` (:meth:`StudentsRecipe.runs`), as :func:`save_sst2_students` stores them.

    ``teacher``: ``{n_labelled: SST2Teacher}`` (:func:`load_sst2_teachers`), so that a student with
    n labels distils from the head trained on the same n labels; a single :class:`SST2Teacher`
    serves every run. ``jobs > 1`` trains that many students at a time in worker processes
    (each on one thread, seeded: the results are those of ``jobs=1``).

    Returns ``{"accuracy": {arm: [dev accuracy per seed]}, "fewer_labels": {"n_labelled": n,
    "accuracy": {arm: [...]}}, "steps": ..., "distilled_seed0": state dict of the distilled
    student of the first seed (or None), "loss_curves": {curve_key: [loss per step]} for the
    first seed of every arm}``. ``report`` gets a line per run.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    out = {"accuracy": {}, "fewer_labels": {"n_labelled": recipe.fewer_labels, "accuracy": {}},
           "steps": recipe.steps, "distilled_seed0": None, "loss_curves": {}}
    runs = recipe.runs()
    calls = [(data, teacher[n] if isinstance(teacher, dict) else teacher, arm, n, seed, recipe,
              arm == "distilled" and n == recipe.n_labelled and seed == recipe.seed) for arm, n, seed in runs]
    if jobs == 1:
        results = (_train_one(*c) for c in calls)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"))
        results = (f.result() for f in [pool.submit(_train_one, *c) for c in calls])  # in the order of runs
    try:
        for (arm, n, seed), (acc, curve, state) in zip(runs, results, strict=True):
            table = out["accuracy"] if n == recipe.n_labelled else out["fewer_labels"]["accuracy"]
            table.setdefault(arm, []).append(acc)
            if seed == recipe.seed:
                out["loss_curves"][curve_key(arm, n, seed)] = curve
            if state is not None:
                out["distilled_seed0"] = state
            if report:
                report(f"{arm:10s} {n:5d} labels, seed {seed}: dev accuracy {acc:.4f}")
    finally:
        if jobs > 1:
            pool.shutdown(cancel_futures=True)
    return out


def save_sst2_students(path, results: dict, recipe: StudentsRecipe, extra: dict | None = None) -> str:
    """Write :func:`train_students`' results: the ``.pt`` (accuracies, steps, the kept student) and,
    next to it, the JSON log (recipe, one ``evals`` record per run with its dev accuracy, the loss
    curves, ``extra``). Returns the ``.pt``'s sha256."""
    from wmbook.data.checkpoint import save_with_log
    from wmbook.nn.train import History

    payload = {k: results[k] for k in ("accuracy", "fewer_labels", "steps", "distilled_seed0")}
    records = [{"step": recipe.steps, "arm": arm, "n_labelled": n, "seed": recipe.seed + i, "dev_acc": acc}
               for table, n in ((results["accuracy"], recipe.n_labelled),
                                (results["fewer_labels"]["accuracy"], recipe.fewer_labels))
               for arm, accs in table.items() for i, acc in enumerate(accs)]
    n_parameters = sum(v.numel() for v in (results["distilled_seed0"] or {}).values()) or None
    return save_with_log(path, payload, History(records), recipe, n_parameters, "dev_acc",
                         {"loss_curves": results["loss_curves"], **(extra or {})})


SST2_STUDENTS_FILE = "sst2_students.pt"
#: sha256 of the committed file, as printed by ``scripts/sst2_students.py``.
SST2_STUDENTS_SHA256 = "d08c2b5314cdbbb43d42e843ca2602e939f365d28003e32ee3a0f8e24d58a471"
#: sha256 of its training log (``sst2_students.json``), as printed by the same script.
SST2_STUDENTS_LOG_SHA256 = "bdc3c06dc8698f0ed0ec708c6433d206f92f437a5ad2c58193e8a529bd2547fa"
_STUDENTS_REGENERATE = "python scripts/sst2_students.py --jobs 3  (25 students; about 25 minutes on a busy 2-core CPU)"


def load_sst2_students(path=None, sha256: str | None = SST2_STUDENTS_SHA256) -> dict:
    """Results of ``scripts/sst2_students.py``, sha256-checked with their training log.

    ``{"accuracy": {arm: [dev accuracy per seed]}, "fewer_labels": {"n_labelled": 250, "accuracy":
    {"labels": [...], "distilled": [...]}}, "steps": 400, "distilled_seed0": the distilled student's
    state dict (first seed), "log": the JSON log}``; the log holds the recipe, every run's dev
    accuracy (``evals``) and the loss at every step of each arm's first seed (``loss_curves``,
    keys :func:`curve_key`). Pass ``path`` (and ``sha256=None``) for a run of your own.
    """
    from pathlib import Path

    path = verify_checkpoint(Path(path) if path is not None else CHECKPOINT_DIR / SST2_STUDENTS_FILE, sha256,
                             _STUDENTS_REGENERATE, where="wmbook/lab/distill_bert.py (SST2_STUDENTS_SHA256)")
    results = torch.load(path, map_location="cpu", weights_only=True)
    results["log"] = load_paired_log(path, sha256, SST2_STUDENTS_LOG_SHA256 if sha256 == SST2_STUDENTS_SHA256 else None,
                                     _STUDENTS_REGENERATE, where="wmbook/lab/distill_bert.py (SST2_STUDENTS_LOG_SHA256)")
    return results
