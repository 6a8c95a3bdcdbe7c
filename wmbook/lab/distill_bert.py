"""Distilling a sentiment classifier into a small BERT (page 5.2, "Distilling BERT").

The teacher is MiniLM-L6 (a pre-trained, itself distilled BERT) with a classification head
trained on SST-2 sentences: its mean-pooled sentence vector goes through a small MLP. The
committed script ``scripts/sst2_teacher.py`` runs MiniLM over a transfer set of SST-2
training sentences and the dev set once, trains the head, and stores the head, the teacher's
logits and the sentence indices (about 100 KB) in ``wmbook/data/checkpoints/sst2_teacher.pt``;
:func:`load_sst2_teacher` reads it back after checking its sha256.

The students (:func:`run_student`) are trained over several seeds by ``scripts/sst2_students.py``
(:func:`train_students`), which stores their dev accuracies, the distilled student of the first
seed and a JSON training log (the loss at every step of each arm's first seed) in
``sst2_students.pt`` / ``sst2_students.json``; :func:`load_sst2_students` checks both sha256s.
The learning rate is constant, so ``steps=N`` repeats the first N steps of a longer run exactly
(on one machine): page 5.2 re-runs the first steps and compares them with the log.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch
from torch import Tensor, nn

from wmbook.data.checkpoint import CHECKPOINT_DIR, CheckpointError, file_sha256, load_log, verify_checkpoint

SST2_TEACHER_FILE = "sst2_teacher.pt"
#: sha256 of the committed file, as printed by ``scripts/sst2_teacher.py``.
SST2_TEACHER_SHA256 = "13bc0758e79e7ae70cd68992eff583c96c2cae109716fcdcae3d4e0d33153da0"
TRANSFER_SIZE = 10_000  # SST-2 training sentences the teacher labels with soft targets


def teacher_head(d_in: int = 384, d_hidden: int = 256, n_classes: int = 2) -> nn.Sequential:
    """The teacher's head on MiniLM's mean-pooled sentence vector: Linear-ReLU-Linear."""
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.ReLU(), nn.Dropout(0.1), nn.Linear(d_hidden, n_classes))


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
    info: dict  # accuracies and settings recorded by the script


def load_sst2_teacher() -> SST2Teacher:
    """The committed MiniLM teacher of page 5.2 (its head, its logits, its transfer set)."""
    path = verify_checkpoint(CHECKPOINT_DIR / SST2_TEACHER_FILE, SST2_TEACHER_SHA256,
                             "python scripts/sst2_teacher.py  (a few minutes on a laptop CPU)",
                             where="wmbook/lab/distill_bert.py (SST2_TEACHER_SHA256)")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    head = teacher_head()
    head.load_state_dict(ckpt["head"])
    return SST2Teacher(ckpt["transfer_idx"], ckpt["transfer_logits"].float(), ckpt["dev_logits"].float(),
                       head.eval(), ckpt["info"])


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
BATCH_SIZE = 64  # sentences per batch (and as many again for the soft targets of "distilled")
LR = 2e-3  # AdamW, constant (no warm-up, no decay): a shorter run is the start of a longer one


class StudentRun(NamedTuple):
    """What :func:`run_student` returns."""

    model: nn.Module  # a BertForSequenceClassification, in eval mode
    history: "History"  # wmbook.nn.train.History: the batch loss (and lr) at every step


def run_student(data: StudentData, teacher: SST2Teacher, arm: str, seed: int, n_labelled: int = 1000,
                steps: int = 400, tau: float = 2.0, alpha: float = 0.5) -> StudentRun:
    r"""Train one student and return it with its loss history.

    ``"labels"``: the labels of the first ``n_labelled`` transfer sentences only.
    ``"distilled"``: the same labels, plus the teacher's soft targets on the whole transfer set:
    :math:`L = \alpha\,\mathrm{CE}(y, \sigma(z_s)) + (1-\alpha)\,\tau^2\,\mathrm{CE}(\sigma(z_t/\tau), \sigma(z_s/\tau))`
    (:func:`wmbook.lab.distill.hinton_loss` without labels, weight ``1 - alpha``), each term on its
    own batch of :data:`BATCH_SIZE` sentences.
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
    seed_everything(seed)
    gen = torch.Generator().manual_seed(seed)
    model = BertForSequenceClassification(student_config(data.vocab_size))
    n = len(data.y) if arm == "all labels" else n_labelled

    def loss(m, step):
        i = torch.randint(0, n, (BATCH_SIZE,), generator=gen)
        hard = F.cross_entropy(_batch_logits(m, data.X[i], data.lengths[i]), data.y[i])
        if arm != "distilled":
            return hard
        j = torch.randint(0, len(data.y), (BATCH_SIZE,), generator=gen)
        soft = hinton_loss(_batch_logits(m, data.X[j], data.lengths[j]), teacher.transfer_logits[j], None, tau=tau)
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


def train_students(data: StudentData, teacher: SST2Teacher, recipe: StudentsRecipe = StudentsRecipe(),
                   report: Callable[[str], None] | None = None) -> dict:
    """Every run of ``recipe`` (:meth:`StudentsRecipe.runs`), as :func:`save_sst2_students` stores them.

    Returns ``{"accuracy": {arm: [dev accuracy per seed]}, "fewer_labels": {"n_labelled": n,
    "accuracy": {arm: [...]}}, "steps": ..., "distilled_seed0": state dict of the distilled
    student of the first seed (or None), "loss_curves": {curve_key: [loss per step]} for the
    first seed of every arm}``. ``report`` gets a line per run.
    """
    out = {"accuracy": {}, "fewer_labels": {"n_labelled": recipe.fewer_labels, "accuracy": {}},
           "steps": recipe.steps, "distilled_seed0": None, "loss_curves": {}}
    for arm, n, seed in recipe.runs():
        run = run_student(data, teacher, arm, seed, n_labelled=n, steps=recipe.steps, tau=recipe.tau,
                          alpha=recipe.alpha)
        acc = student_accuracy(run.model, data)
        table = out["accuracy"] if n == recipe.n_labelled else out["fewer_labels"]["accuracy"]
        table.setdefault(arm, []).append(acc)
        if seed == recipe.seed:
            out["loss_curves"][curve_key(arm, n, seed)] = [round(v, 6) for v in run.history.series("loss")[1]]
            if arm == "distilled" and n == recipe.n_labelled:
                out["distilled_seed0"] = {k: v.clone() for k, v in run.model.state_dict().items()}
        if report:
            report(f"{arm:10s} {n:5d} labels, seed {seed}: dev accuracy {acc:.4f}")
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
SST2_STUDENTS_SHA256 = "13169c9e79d6fc67e5e385389ff79697f5c12a21e8e0febe2b0e319fd9d5345f"
#: sha256 of its training log (``sst2_students.json``), as printed by the same script.
SST2_STUDENTS_LOG_SHA256 = "978e74352c18eda800a52d5804dbc46e654fc6083bec2d5ea89bca3126dfc4aa"
_STUDENTS_REGENERATE = "python scripts/sst2_students.py  (5-10 minutes on a laptop CPU)"


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
    log_path = path.with_suffix(".json")
    results["log"] = load_log(log_path, SST2_STUDENTS_LOG_SHA256 if sha256 == SST2_STUDENTS_SHA256 else None,
                              _STUDENTS_REGENERATE, where="wmbook/lab/distill_bert.py (SST2_STUDENTS_LOG_SHA256)")
    if results["log"].get("sha256") != (sha256 or file_sha256(path)):
        raise CheckpointError(f"training log {log_path} was written for a checkpoint with sha256 "
                              f"{results['log'].get('sha256')}, not for {path}; regenerate both with: "
                              f"{_STUDENTS_REGENERATE}")
    return results
