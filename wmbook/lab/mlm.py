r"""Masked-language-model pre-training at small scale: a smaller vocabulary, packed sequences,
and the MLM loss computed only where a prediction is required.

Explained on page 3.2, "BERT" (section 3.2.2). The masking itself (80/10/10) is
:func:`wmbook.nn.bert_heads.mask_tokens`. The MLM loss is the cross-entropy over the selected
positions :math:`\mathcal{M}` only:

.. math:: \mathcal{L}_{MLM} = -\frac{1}{|\mathcal{M}|} \sum_{t \in \mathcal{M}} \log p(x_t \mid \tilde x),

so the vocabulary projection is needed only at those ~15 % of positions; computing it there
alone (as the original BERT code does with ``masked_lm_positions``) gives the same loss as
:class:`wmbook.nn.bert_heads.BertForPreTraining` with ``labels`` and saves most of the head's work.

The page's tiny BERT (:class:`MLMRecipe`: 2 layers, width 64, WordPiece pieces of MiniLM's
tokenizer restricted to the 2,000 most frequent) is pre-trained on WikiText-2 by
``scripts/train_tiny_mlm.py``, which writes ``wmbook/data/checkpoints/tiny_mlm_wikitext2.pt``;
:func:`load_tiny_mlm` reads it back and checks its sha256. The page runs the first steps of
the same recipe live (:func:`train_tiny_mlm` with ``stop_after``).
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import torch
from torch import Tensor
from torch.nn import functional as F

from wmbook.nn.bert import BertConfig
from wmbook.nn.bert_heads import BertForPreTraining, MaskedBatch, mask_tokens
from wmbook.data.checkpoint import (CHECKPOINT_DIR, load_paired_log, load_payload, save_with_log, seed_file,
                                    verify_checkpoint)
from wmbook.nn.train import History, optimizer_step, warmup_cosine

#: Where the committed checkpoint lives (inside the installed package).
TINY_MLM_FILE = CHECKPOINT_DIR / "tiny_mlm_wikitext2.pt"
#: sha256 of the committed checkpoint, as printed by ``scripts/train_tiny_mlm.py``.
TINY_MLM_SHA256 = "dd6edb98d83d6d57686ff91f65c0c7734efcf0ef5162a2ea6568ec0b3af31f39"
#: sha256 of its training log (``tiny_mlm_wikitext2.json``), as printed by the same script.
TINY_MLM_LOG_SHA256 = "81c5e7b983b8a27f3cf670788f9d77b2dee922d48e0d4425a65e4da0d79c86cd"
_REGENERATE = "python scripts/train_tiny_mlm.py  (about 5 minutes on a laptop CPU)"
# The other committed seeds of the same recipe (``scripts/train_tiny_mlm.py --seed s --out
# wmbook/data/checkpoints/tiny_mlm_wikitext2_seed{s}.pt``): page 3.2 quotes its curves' plateau and
# final accuracy as mean ± sd over seed 0 and these. Seed 0's checkpoint stays the page's model.
TINY_MLM_SEED1_SHA256 = "462dbfb8a20a356b0f07f2cc6d2b4d7621183888cad6a1445c711b9abde5b97c"
TINY_MLM_SEED1_LOG_SHA256 = "5530aac7ac4da8bfccc5c3a78677f052a90b92929e0d869f44510a28174b8f01"
TINY_MLM_SEED2_SHA256 = "578abc1f036c6337142726be56414c022ec74728530a080707a06d2cd3cada7d"
TINY_MLM_SEED2_LOG_SHA256 = "ab30ad6441ccdcd897f2c5ed4358eb353624c701af7632762927e17c70e6f2db"
TINY_MLM_SEED3_SHA256 = "528f47e5c1ecb6a8baaf992ffcc8c8501f1537386e3c1f71ea3bfff688ae7f08"
TINY_MLM_SEED3_LOG_SHA256 = "f7d5a84e502ebfd2df26e88f398f36e2b902583bb1b1a2f874355f976201440b"
TINY_MLM_SEED4_SHA256 = "da8ba7dc3f784837c655af85815bd604719ef578c8fad7e9ca00c277a21c5e1f"
TINY_MLM_SEED4_LOG_SHA256 = "707da62436f8d096887b2a6eae6bd03d9367438e3ac3ace7c5eb0e99d2ab1e61"
#: seed -> (sha256 of the checkpoint, sha256 of its log), for every committed seed but 0.
TINY_MLM_SEEDS_SHA256: dict[int, tuple[str, str]] = {
    1: (TINY_MLM_SEED1_SHA256, TINY_MLM_SEED1_LOG_SHA256),
    2: (TINY_MLM_SEED2_SHA256, TINY_MLM_SEED2_LOG_SHA256),
    3: (TINY_MLM_SEED3_SHA256, TINY_MLM_SEED3_LOG_SHA256),
    4: (TINY_MLM_SEED4_SHA256, TINY_MLM_SEED4_LOG_SHA256),
}


@dataclass
class TopKVocab:
    """The special tokens plus the ``k`` most frequent other ids of a corpus, renumbered 0, 1, ...

    ``ids[j]`` is the original (tokenizer) id of new id ``j``; the special tokens come first, in
    the order given. Every other original id maps to the new id of ``unk_id``. A small model
    with a 30,522-entry output layer would spend most of its compute there; this keeps the
    frequent word pieces and lets rare ones become ``[UNK]``.
    """

    ids: Tensor  # (V_small,) original id of each new id
    unk: int  # new id of the unknown token

    @classmethod
    def from_corpus(cls, corpus: Tensor, k: int, special_ids: Sequence[int], unk_id: int) -> TopKVocab:
        special_ids = list(special_ids)
        if unk_id not in special_ids:
            raise ValueError(f"unk_id={unk_id} must be one of special_ids={special_ids}")
        if len(set(special_ids)) != len(special_ids):
            raise ValueError(f"special_ids has duplicates: {special_ids}")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        corpus = corpus.flatten()
        counts = torch.bincount(corpus, minlength=max(int(corpus.max()) + 1, max(special_ids) + 1))
        counts[special_ids] = -1  # never pick a special token as a "word"
        k = min(k, int((counts > 0).sum()))
        top = counts.topk(k).indices  # most frequent first (ties: torch's order)
        ids = torch.cat([torch.tensor(special_ids, dtype=torch.long), top.long()])
        return cls(ids=ids, unk=special_ids.index(unk_id))

    @property
    def size(self) -> int:
        return len(self.ids)

    def new_id(self, original_id: int) -> int:
        """New id of one original id (``unk`` if it was not kept)."""
        hit = (self.ids == original_id).nonzero()
        return int(hit[0, 0]) if len(hit) else self.unk

    def encode(self, original: Tensor) -> Tensor:
        """Original ids (any shape) -> new ids; ids not kept become ``unk``."""
        size = max(int(self.ids.max()), int(original.max()) if original.numel() else 0) + 1
        lut = torch.full((size,), self.unk, dtype=torch.long)
        lut[self.ids] = torch.arange(self.size)
        return lut[original]

    def decode(self, new: Tensor) -> Tensor:
        """New ids -> original ids (for the tokenizer's ``decode``)."""
        if new.numel() and (new.min() < 0 or new.max() >= self.size):
            raise ValueError(f"new ids must be in [0, {self.size})")
        return self.ids[new]


def pack_sequences(stream: Tensor, seq_len: int, cls_id: int, sep_id: int) -> Tensor:
    """Cut a 1-D token stream into ``[CLS] x_1 ... x_{seq_len-2} [SEP]`` rows: (N, seq_len).

    The tail that does not fill a row is dropped. Rows cross sentence and paragraph
    boundaries, as in RoBERTa's FULL-SENTENCES packing.
    """
    if stream.dim() != 1:
        raise ValueError(f"stream must be 1-D, got shape {tuple(stream.shape)}")
    if seq_len < 3:
        raise ValueError(f"seq_len must be >= 3 (room for [CLS], a token and [SEP]), got {seq_len}")
    body = seq_len - 2
    n = len(stream) // body
    if n == 0:
        raise ValueError(f"the stream has {len(stream)} tokens, fewer than one row of {body}")
    rows = stream[: n * body].view(n, body)  # (N, seq_len - 2)
    cls = torch.full((n, 1), cls_id, dtype=stream.dtype)
    sep = torch.full((n, 1), sep_id, dtype=stream.dtype)
    return torch.cat([cls, rows, sep], dim=1)  # (N, seq_len)


class MLMResult(NamedTuple):
    loss: Tensor  # scalar: mean cross-entropy over the selected positions
    logits: Tensor  # (n_selected, vocab_size)
    targets: Tensor  # (n_selected,) the original ids
    correct: int  # how many argmax predictions equal the targets


def masked_lm_loss(model, inputs: Tensor, labels: Tensor, attention_mask: Tensor | None = None) -> MLMResult:
    """MLM loss of a :class:`wmbook.nn.bert_heads.BertForPreTraining` on the positions where
    ``labels != -100``, with the vocabulary projection computed at those positions only."""
    selected = labels != -100  # (B, T)
    if not selected.any():
        raise ValueError("no position is selected (all labels are -100); mask some tokens first")
    hidden = model.bert(inputs, attention_mask).last_hidden_state  # (B, T, d_model)
    logits = model.cls.predictions(hidden[selected])  # (n_selected, V)
    targets = labels[selected]  # (n_selected,)
    loss = F.cross_entropy(logits, targets)
    correct = int((logits.argmax(-1) == targets).sum())
    return MLMResult(loss, logits, targets, correct)


# ------------------------------------------------------------------ WikiText-2 for a tiny BERT

def wikitext_plain(line: str) -> str:
    """WikiText-2's tokenized text back to plain text for a WordPiece tokenizer.

    ``" @-@ "`` -> ``"-"``, ``" @,@ "`` -> ``","``, ``" @.@ "`` -> ``"."``, and the corpus's
    ``<unk>`` (a word outside its vocabulary) -> ``[UNK]``, which BERT tokenizers keep whole.
    """
    for a, b in ((" @-@ ", "-"), (" @,@ ", ","), (" @.@ ", "."), ("<unk>", "[UNK]")):
        line = line.replace(a, b)
    return line


def special_ids(tokenizer) -> list[int]:
    """``[PAD]``, ``[UNK]``, ``[CLS]``, ``[SEP]``, ``[MASK]`` ids of a BERT tokenizer, in that order."""
    return [tokenizer.pad_token_id, tokenizer.unk_token_id, tokenizer.cls_token_id,
            tokenizer.sep_token_id, tokenizer.mask_token_id]


class MLMData(NamedTuple):
    """What :func:`wikitext_mlm_data` returns; ids in ``*_rows`` and ``held`` are the small vocabulary's."""

    streams: dict[str, Tensor]  # split -> 1-D original token ids (no special tokens)
    vocab: TopKVocab
    train_rows: Tensor  # (N, seq_len) from the 'valid' split
    test_rows: Tensor  # (M, seq_len) from the 'test' split
    held: MaskedBatch  # one fixed, seeded masking of test_rows (the held-out targets)
    unigram: Tensor  # (V,) frequency of each piece in train_rows; 0 for the special tokens
    mask_id: int  # small-vocabulary ids of [MASK] and of all special tokens
    special: list[int]


def wikitext_mlm_data(tokenizer, k: int = 2000, seq_len: int = 32, n_test_rows: int = 512,
                      lines: dict[str, list[str]] | None = None, seed: int = 1) -> MLMData:
    """WikiText-2 'valid' (training) and 'test' (held out), tokenized and packed for MLM.

    The train split is not in the book's offline data, hence 'valid' for training. ``lines``
    defaults to :func:`wmbook.data.loaders.load_wikitext2`'s.
    """
    if lines is None:
        from wmbook.data.loaders import load_wikitext2

        lines = load_wikitext2(("valid", "test"))
    streams = {}
    for split in ("valid", "test"):
        enc = tokenizer([wikitext_plain(s) for s in lines[split]], add_special_tokens=False)
        streams[split] = torch.tensor([i for ids in enc["input_ids"] for i in ids])
    specials = special_ids(tokenizer)
    vocab = TopKVocab.from_corpus(streams["valid"], k, specials, unk_id=tokenizer.unk_token_id)
    new = {i: vocab.new_id(i) for i in specials}
    rows = {split: pack_sequences(vocab.encode(streams[split]), seq_len, new[tokenizer.cls_token_id],
                                  new[tokenizer.sep_token_id]) for split in streams}
    special_new = [new[i] for i in specials]
    mask_id = new[tokenizer.mask_token_id]
    test_rows = rows["test"][:n_test_rows]
    held = mask_tokens(test_rows, vocab.size, mask_id, special_new,
                       generator=torch.Generator().manual_seed(seed))
    counts = torch.bincount(rows["valid"].flatten(), minlength=vocab.size).double()
    counts[special_new] = 0
    return MLMData(streams, vocab, rows["valid"], test_rows, held, (counts / counts.sum()).float(),
                   mask_id, special_new)


# ------------------------------------------------------------------ recipe, training, evaluation

@dataclass
class MLMRecipe:
    """The tiny BERT of page 3.2 and how it is pre-trained (MLM only, as RoBERTa)."""

    k: int = 2000  # most frequent pieces kept (plus the 5 special tokens)
    seq_len: int = 32  # [CLS] + 30 pieces + [SEP]
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    d_ff: int = 256
    batch_size: int = 32
    steps: int = 12000
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup: int = 100
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    unigram_bias: bool = True  # start the output bias at log p_unigram
    eval_every: int = 100
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("k", "d_model", "n_heads", "n_layers", "d_ff", "batch_size", "steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.seq_len < 3:
            raise ValueError(f"seq_len must be >= 3, got {self.seq_len}")
        if not 0 < self.min_lr <= self.lr:
            raise ValueError(f"need 0 < min_lr <= lr, got min_lr={self.min_lr}, lr={self.lr}")

    def model_config(self, vocab_size: int) -> BertConfig:
        return BertConfig(vocab_size=vocab_size, d_model=self.d_model, n_heads=self.n_heads,
                          n_layers=self.n_layers, d_ff=self.d_ff, n_ctx=self.seq_len, dropout=0.0)

    def lr_at(self, step: int) -> float:
        """Linear warm-up, then cosine decay from ``lr`` to ``min_lr`` at the last step."""
        return warmup_cosine(step, self.lr, self.warmup, self.steps, self.min_lr)


@torch.no_grad()
def evaluate_mlm(model: BertForPreTraining, data: MLMData) -> dict[str, float]:
    """Held-out loss and accuracy on ``data.held``: over all targets and by what the input shows.

    ``mask_*``: targets shown as ``[MASK]`` (80 %) — the only ones where the model must use the
    context; ``keep_acc``: targets left unchanged (10 %), which the model can simply copy;
    ``random_acc``: targets replaced by a random piece (10 %).
    """
    was_training = model.training
    model.eval()
    res = masked_lm_loss(model, data.held.inputs, data.held.labels)
    shown = data.held.inputs[data.held.labels != -100]  # (n_selected,) what the input showed
    kinds = {"mask": shown == data.mask_id, "keep": shown == res.targets}
    kinds["random"] = ~kinds["mask"] & ~kinds["keep"]
    right = res.logits.argmax(-1) == res.targets
    out = {"loss": res.loss.item(), "acc": right.float().mean().item(),
           "mask_loss": F.cross_entropy(res.logits[kinds["mask"]], res.targets[kinds["mask"]]).item()}
    for name, sel in kinds.items():
        out[f"{name}_acc"] = right[sel].float().mean().item()
    model.train(was_training)
    return out


def unigram_baseline(data: MLMData) -> dict[str, float]:
    """The context-free model, scored like :func:`evaluate_mlm`: every target predicted from its
    training frequency alone (so it ignores what the input shows)."""
    shown = data.held.inputs[data.held.labels != -100]
    targets = data.held.labels[data.held.labels != -100]
    kinds = {"mask": shown == data.mask_id, "keep": shown == targets}
    kinds["random"] = ~kinds["mask"] & ~kinds["keep"]
    right = targets == data.unigram.argmax()
    nll = -data.unigram[targets].log()
    out = {"loss": nll.mean().item(), "acc": right.float().mean().item(),
           "mask_loss": nll[kinds["mask"]].mean().item()}
    for name, sel in kinds.items():
        out[f"{name}_acc"] = right[sel].float().mean().item()
    return out


def train_tiny_mlm(
    data: MLMData, recipe: MLMRecipe | None = None, log: Callable[[dict], None] | None = None,
    stop_after: int | None = None,
) -> tuple[BertForPreTraining, History]:
    """Pre-train a :class:`BertForPreTraining` with MLM on ``data.train_rows`` (seeded: repeatable).

    Each step draws ``batch_size`` random rows and masks them afresh (80/10/10); AdamW with the
    recipe's schedule; gradient clipping. :func:`evaluate_mlm` runs at step 0, every
    ``eval_every`` steps and at the end; ``log(record)`` sees each evaluation record.
    Evaluation keys carry a ``test_`` prefix (``test_mask_acc``, ...).
    ``stop_after`` ends the run early *on the same schedule*, so the first steps of the full
    recipe can be reproduced exactly. Returns the model (eval mode) and its History.
    """
    recipe = recipe or MLMRecipe()
    if data.vocab.size != recipe.k + len(data.special) or data.train_rows.shape[1] != recipe.seq_len:
        raise ValueError(f"the data were prepared with a vocabulary of {data.vocab.size} and rows of "
                         f"{data.train_rows.shape[1]}; the recipe needs k={recipe.k} (+ specials) and "
                         f"seq_len={recipe.seq_len}")
    last = recipe.steps if stop_after is None else min(stop_after, recipe.steps)
    torch.manual_seed(recipe.seed)
    model = BertForPreTraining(recipe.model_config(data.vocab.size))
    if recipe.unigram_bias:
        with torch.no_grad():
            model.cls.predictions.decoder.bias.copy_(data.unigram.clamp_min(1e-6).log())
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    gen = torch.Generator().manual_seed(recipe.seed)
    history = History()
    t0 = time.perf_counter()

    def evaluate(step: int) -> None:
        held_out = {f"test_{k}": v for k, v in evaluate_mlm(model, data).items()}
        history.log(step, **held_out, seconds=time.perf_counter() - t0)
        if log is not None:
            log(history.records[-1])

    model.train()
    for step in range(last):
        if recipe.eval_every and step % recipe.eval_every == 0:
            evaluate(step)
        rows = data.train_rows[torch.randint(len(data.train_rows), (recipe.batch_size,), generator=gen)]
        batch = mask_tokens(rows, data.vocab.size, data.mask_id, data.special, generator=gen)
        loss = masked_lm_loss(model, batch.inputs, batch.labels).loss
        optimizer_step(opt, loss, recipe.lr_at(step), model.parameters(), recipe.grad_clip)
        history.log(step, loss=loss.item(), lr=recipe.lr_at(step))
    evaluate(last)
    return model.eval(), history


# ------------------------------------------------------------------ the committed checkpoint

def save_tiny_mlm(path: str | Path, model: BertForPreTraining, vocab: TopKVocab, recipe: MLMRecipe,
                  history: History, extra: dict | None = None) -> str:
    """Write the checkpoint (float32 weights, config, vocabulary ids, recipe) and, next to it,
    ``<name>.json`` with the recipe and the evaluation records. Returns the sha256 of the .pt."""
    state = {k: v.detach().float().contiguous().clone() for k, v in model.state_dict().items()
             if k != "cls.predictions.decoder.weight"}  # tied to the word embeddings: stored once
    payload = {"format": "wmbook-tiny-mlm-1", "config": dataclasses.asdict(model.bert.cfg),
               "vocab_ids": vocab.ids.clone(), "unk": vocab.unk, "recipe": dataclasses.asdict(recipe),
               "state_dict": state}
    return save_with_log(path, payload, history, recipe,
                         sum(p.numel() for p in model.parameters()), "test_mask_acc", extra)


class TinyMLM(NamedTuple):
    """What :func:`load_tiny_mlm` returns."""

    model: BertForPreTraining
    vocab: TopKVocab
    recipe: MLMRecipe
    log: dict  # the training log (the JSON next to the checkpoint; loading fails without it)


def load_tiny_mlm(path: str | Path | None = None, sha256: str | None = TINY_MLM_SHA256) -> TinyMLM:
    """Load the tiny BERT pre-trained by ``scripts/train_tiny_mlm.py`` (page 3.2).

    With the defaults it reads the committed checkpoint and its training log and checks both
    sha256s; pass ``path`` (and ``sha256=None`` to skip the check) for a checkpoint of your own.
    The log (``<name>.json`` next to the checkpoint) must be there and name the checkpoint's
    sha256; its own sha256 is checked (``TINY_MLM_LOG_SHA256``) with the committed weights', and
    likewise for the other committed seeds (``TINY_MLM_SEEDS_SHA256``, see :func:`load_tiny_mlm_seeds`).

    Raises:
        CheckpointError: the file or its log is missing, has a different sha256, or is not a
            wmbook tiny-MLM checkpoint. The message says how to regenerate it.
    """
    path = verify_checkpoint(path if path is not None else TINY_MLM_FILE, sha256, _REGENERATE,
                             where="wmbook/lab/mlm.py (TINY_MLM_SHA256)")
    ckpt = load_payload(path, "wmbook-tiny-mlm-1", "tiny-MLM", _REGENERATE)
    model = BertForPreTraining(BertConfig(**ckpt["config"]))
    state = dict(ckpt["state_dict"])
    state["cls.predictions.decoder.weight"] = state["bert.embeddings.word_embeddings.weight"]
    model.load_state_dict(state)
    committed_logs = {TINY_MLM_SHA256: TINY_MLM_LOG_SHA256, **dict(TINY_MLM_SEEDS_SHA256.values())}
    log = load_paired_log(path, sha256, committed_logs.get(sha256), _REGENERATE,
                          where="wmbook/lab/mlm.py (TINY_MLM_LOG_SHA256 or TINY_MLM_SEED*_LOG_SHA256)")
    return TinyMLM(model.eval(), TopKVocab(ckpt["vocab_ids"], ckpt["unk"]), MLMRecipe(**ckpt["recipe"]), log)


def tiny_mlm_file(seed: int = 0) -> Path:
    """The committed checkpoint of one seed: ``tiny_mlm_wikitext2.pt`` for seed 0,
    ``tiny_mlm_wikitext2_seed{seed}.pt`` otherwise (its JSON log lies next to it)."""
    return seed_file(TINY_MLM_FILE, seed)


def load_tiny_mlm_seeds() -> dict[int, TinyMLM]:
    """Every committed seed of the page-3.2 recipe, ``{seed: TinyMLM}``, seed 0 first; the
    checkpoints and their logs are sha256-checked (``TINY_MLM_SHA256``, ``TINY_MLM_SEEDS_SHA256``).

    Seed 0 is :func:`load_tiny_mlm`'s model. Raises :class:`ValueError` if a checkpoint's recipe
    is not seed 0's recipe with its own seed.
    """
    runs = {0: load_tiny_mlm()}
    for seed, (sha, _) in sorted(TINY_MLM_SEEDS_SHA256.items()):
        runs[seed] = load_tiny_mlm(tiny_mlm_file(seed), sha256=sha)
    for seed, run in runs.items():
        if run.recipe != dataclasses.replace(runs[0].recipe, seed=seed):
            raise ValueError(f"the checkpoint of seed {seed} was trained with another recipe: {run.recipe}")
    return runs


def plateau_end(log: dict, unigram_mask_acc: float, margin: float = 0.05) -> int:
    r"""The step at which a run's held-out ``[MASK]`` accuracy first exceeds the unigram model's by
    ``margin``: the first logged step :math:`s` with :math:`\mathrm{acc}_s > \mathrm{acc}_{uni} + \mathrm{margin}`
    (page 3.2's "end of the plateau"). Raises :class:`ValueError` if no record does."""
    for r in log["evals"]:
        if r["test_mask_acc"] > unigram_mask_acc + margin:
            return r["step"]
    raise ValueError(f"the [MASK] accuracy never exceeds the unigram level {unigram_mask_acc:.3f} by {margin}")
