"""Distilling a sentiment classifier into a small BERT (page 5.2, "Distilling BERT").

The teacher is MiniLM-L6 (a pre-trained, itself distilled BERT) with a classification head
trained on SST-2 sentences: its mean-pooled sentence vector goes through a small MLP. The
committed script ``scripts/sst2_teacher.py`` runs MiniLM over a transfer set of SST-2
training sentences and the dev set once, trains the head, and stores the head, the teacher's
logits and the sentence indices (about 100 KB) in ``wmbook/data/checkpoints/sst2_teacher.pt``;
:func:`load_sst2_teacher` reads it back after checking its sha256.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

from wmbook.data.checkpoint import CHECKPOINT_DIR, verify_checkpoint

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


def train_student(data: StudentData, teacher: SST2Teacher, arm: str, seed: int, n_labelled: int = 1000,
                  steps: int = 400, tau: float = 2.0, alpha: float = 0.5):
    """Train one student and return it.

    ``"labels"``: the labels of the first ``n_labelled`` transfer sentences only.
    ``"distilled"``: the same labels, plus the teacher's soft targets on the whole transfer set
    (:func:`wmbook.lab.distill.hinton_loss` without labels, weight ``1 - alpha``).
    ``"all labels"``: the true labels of the whole transfer set (what the soft targets stand in for).
    """
    import torch.nn.functional as F

    from wmbook.nn.train import train as run_training
    from wmbook.nn.bert_heads import BertForSequenceClassification
    from wmbook.lab.distill import hinton_loss
    from wmbook.nn.runtime import seed_everything, threads

    if arm not in ARMS:
        raise ValueError(f"arm must be one of {ARMS}, got {arm!r}")
    seed_everything(seed)
    gen = torch.Generator().manual_seed(seed)
    model = BertForSequenceClassification(student_config(data.vocab_size))
    n = len(data.y) if arm == "all labels" else n_labelled

    def loss(m, step):
        i = torch.randint(0, n, (64,), generator=gen)
        hard = F.cross_entropy(_batch_logits(m, data.X[i], data.lengths[i]), data.y[i])
        if arm != "distilled":
            return hard
        j = torch.randint(0, len(data.y), (64,), generator=gen)
        soft = hinton_loss(_batch_logits(m, data.X[j], data.lengths[j]), teacher.transfer_logits[j], None, tau=tau)
        return alpha * hard + (1 - alpha) * soft

    with threads(1):  # a tiny model: one thread is faster, and the run is repeatable
        run_training(model, loss, steps=steps, lr=2e-3, progress=False)
    return model.eval()


SST2_STUDENTS_FILE = "sst2_students.pt"
#: sha256 of the committed file, as printed by ``scripts/sst2_students.py``.
SST2_STUDENTS_SHA256 = "8f85ffcc0f0710bfad15506bfe1d8f68bd01c24f622ba97edf909bf51ae44cb4"


def load_sst2_students() -> dict:
    """Results of ``scripts/sst2_students.py``: per arm and seed the dev accuracy, and the
    state dict of the distilled student of seed 0."""
    path = verify_checkpoint(CHECKPOINT_DIR / SST2_STUDENTS_FILE, SST2_STUDENTS_SHA256,
                             "python scripts/sst2_students.py  (a few minutes on a laptop CPU)",
                             where="wmbook/lab/distill_bert.py (SST2_STUDENTS_SHA256)")
    return torch.load(path, map_location="cpu", weights_only=True)
