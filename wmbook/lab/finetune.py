r"""Fine-tuning a small pre-trained GPT for classification (page 5.3, "Pre-training and fine-tuning GPT").

The pieces the page needs, in the order it uses them:

* :class:`ReducedVocab` — a big tokenizer's ids (MiniLM's 30,522 WordPiece ids) mapped onto a
  small vocabulary: a few special tokens, then the most frequent ids; every other id becomes
  ``[UNK]``. The embedding table of a tiny model stays small.
* :func:`encode_texts`, :func:`pad_batch` — texts -> ``[CLS] ... [SEP]`` id lists -> a right-padded
  ``(B, T)`` batch with the true lengths.
* :func:`gpt_hidden_states`, :func:`pool_hidden`, :class:`GPTClassifier` — the right way to put a
  classification head on a GPT: one vector per sequence (the last real token's final hidden state,
  or the mean over the real tokens), then :math:`p(y \mid x) = \mathrm{softmax}(W h + b)`, so the
  loss compares ``(B, C)`` logits with ``(B,)`` labels. The guide's 5.3.2 compared per-position
  ``(B, T, C)`` logits with ``(B,)`` labels and crashes.
* :func:`save_gpt_checkpoint`, :func:`load_gpt_checkpoint`, :func:`load_sst2_gpt` — a small GPT
  language model pre-trained on the SST-2 training sentences by ``scripts/pretrain_sst2_gpt.py``,
  stored in ``wmbook/data/checkpoints/`` and checked against its recorded sha256 when loaded.
* :class:`FineTuneRecipe`, :func:`fine_tune_gpt`, :func:`classify` — fine-tuning that GPT (or
  the same architecture from random weights) on labelled sentences: cross-entropy of
  :math:`\mathrm{softmax}(W h + b)` against the labels, :math:`h` the mean final hidden state of a
  sentence, batches of sentences of similar length. ``scripts/finetune_sst2_gpt.py`` runs both
  starts over several seeds (:func:`fine_tune_runs`) and stores the dev accuracies and a training
  log (:func:`save_finetune_runs`, :func:`load_sst2_finetune`, both sha256-checked).

A causal model needs no padding mask when the padding is on the right: position ``t`` reads only
positions ``<= t``, so the hidden states of the real tokens do not depend on the padding.
"""
from __future__ import annotations

import copy
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, NamedTuple, Sequence

import torch
from torch import Tensor, nn

from wmbook.nn.attention import causal_mask
from wmbook.data.checkpoint import CHECKPOINT_DIR, file_sha256, load_paired_log, verify_checkpoint
from wmbook.nn.gpt import GPT, GPTConfig

SST2_GPT_FILE = "sst2_gpt.pt"
SST2_GPT_SHA256 = "a6a71cc303c6851dc4c10fa51d12dcf2c25ba4d5748397cf5c5e5e4a472cd230"
"""sha256 of ``wmbook/data/checkpoints/sst2_gpt.pt``, as printed by ``scripts/pretrain_sst2_gpt.py``."""
SST2_MINILM_FEATURES_FILE = "sst2_minilm_features.pt"
SST2_MINILM_FEATURES_SHA256 = "df9c3d0761ae001b42335ebbd54f7c9482b6eea07121e2bf9a77d65eea776805"
"""sha256 of ``wmbook/data/checkpoints/sst2_minilm_features.pt`` (``scripts/minilm_sst2_features.py``)."""
FINETUNE_TRAIN_SIZE = 4000


@dataclass
class ReducedVocab:
    """A small vocabulary over a big tokenizer's ids: small id ``i`` stands for original id ``keep[i]``.

    Original ids not in ``keep`` map to small id ``unk`` (whose own original id is the
    tokenizer's ``[UNK]``). Build one with :meth:`most_frequent`.
    """

    keep: list[int]
    unk: int
    _index: dict[int, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.keep = [int(i) for i in self.keep]
        if len(set(self.keep)) != len(self.keep):
            raise ValueError("keep lists an original id twice; each small id must stand for one original id")
        if not 0 <= self.unk < len(self.keep):
            raise ValueError(f"unk={self.unk} must be a small id in [0, {len(self.keep)})")
        self._index = {orig: small for small, orig in enumerate(self.keep)}

    @classmethod
    def most_frequent(cls, sequences: Iterable[Sequence[int]], size: int, specials: Sequence[int],
                      unk: int) -> ReducedVocab:
        """``specials`` (original ids, e.g. ``[PAD], [UNK], [CLS], [SEP]``) first, then the most frequent
        other original ids in ``sequences`` (ties broken by the smaller id) up to ``size`` entries.

        ``unk`` is the original id of the unknown token; it must be one of ``specials``.
        """
        specials = [int(s) for s in specials]
        if unk not in specials:
            raise ValueError(f"the unknown token's id {unk} must be one of the specials {specials}")
        if size <= len(specials):
            raise ValueError(f"size={size} leaves no room beside the {len(specials)} special tokens")
        counts = Counter(int(i) for seq in sequences for i in seq)
        for s in specials:
            counts.pop(s, None)
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        keep = specials + [orig for orig, _ in ranked[: size - len(specials)]]
        return cls(keep, specials.index(unk))

    def __len__(self) -> int:
        return len(self.keep)

    def encode(self, ids: Sequence[int]) -> list[int]:
        """Original ids -> small ids (unknown ones -> ``unk``)."""
        return [self._index.get(int(i), self.unk) for i in ids]

    def decode(self, small: Sequence[int]) -> list[int]:
        """Small ids -> original ids (``unk`` -> the tokenizer's ``[UNK]``)."""
        n = len(self.keep)
        bad = [int(i) for i in small if not 0 <= int(i) < n]
        if bad:
            raise ValueError(f"small id {bad[0]} is out of range: ids must be in 0..{n - 1}")
        return [self.keep[int(i)] for i in small]

    def coverage(self, sequences: Iterable[Sequence[int]]) -> float:
        """Fraction of the tokens in ``sequences`` (original ids) that are not mapped to ``unk``."""
        total = known = 0
        unk_orig = self.keep[self.unk]
        for seq in sequences:
            for i in seq:
                total += 1
                known += int(i) in self._index and int(i) != unk_orig
        if total == 0:
            raise ValueError("coverage of an empty corpus is undefined")
        return known / total


def encode_texts(texts: Sequence[str], tokenizer, vocab: ReducedVocab, max_len: int) -> list[list[int]]:
    """``[CLS] text [SEP]`` as small ids, each at most ``max_len`` tokens (``[SEP]`` kept at the end)."""
    if max_len < 3:
        raise ValueError(f"max_len must be >= 3 ([CLS], a token, [SEP]), got {max_len}")
    ids = tokenizer(list(texts), add_special_tokens=True, truncation=True, max_length=max_len)["input_ids"]
    return [vocab.encode(seq) for seq in ids]


def pad_batch(seqs: Sequence[Sequence[int]], pad: int = 0, length: int | None = None) -> tuple[Tensor, Tensor]:
    """Right-pad id lists to ``(B, T)``; returns ``(ids, lengths)`` with ``lengths`` (B,) the true lengths."""
    if not seqs:
        raise ValueError("pad_batch needs at least one sequence")
    lengths = torch.tensor([len(s) for s in seqs])
    if lengths.min() < 1:
        raise ValueError("every sequence needs at least one token")
    T = int(lengths.max()) if length is None else length
    if lengths.max() > T:
        raise ValueError(f"a sequence has {int(lengths.max())} tokens, more than length={T}")
    ids = torch.full((len(seqs), T), pad, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.as_tensor(list(s), dtype=torch.long)
    return ids, lengths


def gpt_hidden_states(model: GPT, idx: Tensor) -> Tensor:
    r"""The final hidden states :math:`\mathrm{LN}_f(h_L)` (B, T, d_model): what the LM head reads.

    The same computation as :meth:`wmbook.nn.gpt.GPT.forward` without the (vocabulary-sized) LM head.
    """
    B, T = idx.shape
    if T > model.cfg.n_ctx:
        raise ValueError(f"sequence length {T} exceeds n_ctx={model.cfg.n_ctx}; truncate the texts")
    pos = torch.arange(T, device=idx.device)  # (T,)
    x = model.drop(model.wte(idx) + model.wpe(pos))  # (B, T, d_model)
    mask = causal_mask(T, T, device=idx.device)  # (T, T)
    for block in model.blocks:
        x = block(x, mask).hidden
    return model.ln_f(x)  # (B, T, d_model)


def pool_hidden(hidden: Tensor, lengths: Tensor, how: str = "last") -> Tensor:
    """One vector per sequence from ``hidden`` (B, T, d): ``"last"`` real token, or ``"mean"`` of the real ones."""
    B, T, _ = hidden.shape
    if lengths.shape != (B,) or lengths.min() < 1 or lengths.max() > T:
        raise ValueError(f"lengths must be (B,)=({B},) with values in 1..{T}, got {tuple(lengths.shape)}")
    if how == "last":
        return hidden[torch.arange(B, device=hidden.device), lengths - 1]  # (B, d)
    if how == "mean":
        real = torch.arange(T, device=hidden.device)[None] < lengths[:, None]  # (B, T)
        total = (hidden * real[..., None].to(hidden.dtype)).sum(1)  # (B, d)
        return total / lengths[:, None].to(hidden.dtype)  # (B, d)
    raise ValueError(f"how must be 'last' or 'mean', got {how!r}")


class GPTClassifier(nn.Module):
    r"""A GPT body and a linear head on one pooled vector: logits (B, C) = :math:`W\,\mathrm{pool}(h) + b`."""

    def __init__(self, body: GPT, n_classes: int = 2, pool: str = "last") -> None:
        super().__init__()
        if pool not in ("last", "mean"):
            raise ValueError(f"pool must be 'last' or 'mean', got {pool!r}")
        self.body, self.pool = body, pool
        self.head = nn.Linear(body.cfg.d_model, n_classes)

    def features(self, idx: Tensor, lengths: Tensor) -> Tensor:
        """The pooled vectors (B, d_model) the head reads."""
        return pool_hidden(gpt_hidden_states(self.body, idx), lengths, self.pool)

    def forward(self, idx: Tensor, lengths: Tensor) -> Tensor:
        return self.head(self.features(idx, lengths))  # (B, C)


def sst2_finetune_split(n_train: int = FINETUNE_TRAIN_SIZE, seed: int = 0) -> dict[str, list[tuple[str, int]]]:
    """The labelled data of page 5.3.2: ``n_train`` SST-2 training sentences drawn at random
    (seeded) and all 872 dev sentences, as ``{"train": [(text, label)], "dev": [...]}``."""
    from wmbook.data.loaders import load_sst2

    sst2 = load_sst2()
    if not 0 < n_train <= len(sst2["train"]):
        raise ValueError(f"n_train must be in 1..{len(sst2['train'])}, got {n_train}")
    perm = torch.randperm(len(sst2["train"]), generator=torch.Generator().manual_seed(seed))
    return {"train": [sst2["train"][i] for i in perm[:n_train].tolist()], "dev": sst2["dev"]}


@torch.no_grad()
def minilm_features(model, tokenizer, texts: Sequence[str], batch_size: int = 64) -> Tensor:
    """Mean-pooled final hidden states (N, d_model) of a :class:`wmbook.nn.bert.BertModel` over the real tokens
    (``[CLS]`` and ``[SEP]`` included, as sentence-transformers does), computed in length-sorted batches."""
    order = sorted(range(len(texts)), key=lambda i: (len(texts[i]), i))
    out = torch.empty(len(texts), model.cfg.d_model)
    model.eval()
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        enc = tokenizer([texts[i] for i in idx], padding=True, truncation=True, return_tensors="pt")
        hidden = model(enc["input_ids"], enc["attention_mask"]).last_hidden_state  # (B, T, d)
        out[idx] = pool_hidden(hidden, enc["attention_mask"].sum(1), "mean")
    return out


def save_features(path: str | Path, splits: dict[str, dict[str, Tensor]]) -> str:
    """Save ``{split: {"features": (N, d), "labels": (N,)}}`` (features as float16); returns the sha256."""
    blob = {name: {"features": d["features"].to(torch.float16), "labels": d["labels"].long()}
            for name, d in splits.items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(blob, path)
    return file_sha256(path)


def load_features(path: str | Path, sha256: str | None = None) -> dict[str, dict[str, Tensor]]:
    """What :func:`save_features` wrote, features as float32, checking ``sha256`` if given."""
    path = _checked(Path(path), sha256, "scripts/minilm_sst2_features.py", "SST2_MINILM_FEATURES_SHA256")
    blob = torch.load(path, map_location="cpu", weights_only=True)
    return {name: {"features": d["features"].float(), "labels": d["labels"]} for name, d in blob.items()}


def load_sst2_minilm_features() -> dict[str, dict[str, Tensor]]:
    """Mean-pooled MiniLM features of :func:`sst2_finetune_split` (``scripts/minilm_sst2_features.py``)."""
    return load_features(CHECKPOINT_DIR / SST2_MINILM_FEATURES_FILE, SST2_MINILM_FEATURES_SHA256)


class PretrainedGPT(NamedTuple):
    model: GPT
    vocab: ReducedVocab
    meta: dict  # how it was trained (steps, seed, validation loss, ...)


def save_gpt_checkpoint(path: str | Path, model: GPT, vocab: ReducedVocab, meta: dict | None = None) -> str:
    """Save weights (float16), config and vocabulary to ``path``; returns the file's sha256.

    A tied ``lm_head.weight`` is not stored twice (it is the token embedding).
    """
    state = {k: v.detach().to(torch.float16) for k, v in model.state_dict().items()
             if not (model.cfg.tie_weights and k == "lm_head.weight")}
    blob = {"config": asdict(model.cfg), "state_dict": state,
            "vocab": {"keep": list(vocab.keep), "unk": vocab.unk}, "meta": dict(meta or {})}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(blob, path)
    return file_sha256(path)


def _checked(path: Path, sha256: str | None, script: str, constant: str) -> Path:
    return verify_checkpoint(path, sha256, f"python {script}", where=f"wmbook/lab/finetune.py ({constant})")


def load_gpt_checkpoint(path: str | Path, sha256: str | None = None) -> PretrainedGPT:
    """Load what :func:`save_gpt_checkpoint` wrote (as float32, in eval mode), checking ``sha256`` if given."""
    path = _checked(Path(path), sha256, "scripts/pretrain_sst2_gpt.py", "SST2_GPT_SHA256")
    blob = torch.load(path, map_location="cpu", weights_only=True)
    model = GPT(GPTConfig(**blob["config"]))
    state = {k: v.float() for k, v in blob["state_dict"].items()}
    result = model.load_state_dict(state, strict=False)
    allowed = {"lm_head.weight"} if model.cfg.tie_weights else set()
    if set(result.missing_keys) - allowed or result.unexpected_keys:
        raise ValueError(f"checkpoint does not fit the model: missing {result.missing_keys}, "
                         f"unexpected {result.unexpected_keys}")
    return PretrainedGPT(model.eval(), ReducedVocab(**blob["vocab"]), blob["meta"])


def load_sst2_gpt() -> PretrainedGPT:
    """The small GPT language model pre-trained on SST-2's training sentences (page 5.3.2)."""
    return load_gpt_checkpoint(CHECKPOINT_DIR / SST2_GPT_FILE, SST2_GPT_SHA256)


# --- fine-tuning for classification (page 5.3.2) --------------------------------------------

FINETUNE_STARTS = ("pre-trained", "random")
SST2_FINETUNE_FILE = "sst2_finetune.pt"
SST2_FINETUNE_SHA256 = "a0226a20fe0d9a1d4f67e737cf9fe5216b803054f359b82e37edf732309d9a1a"
"""sha256 of ``wmbook/data/checkpoints/sst2_finetune.pt``, as printed by ``scripts/finetune_sst2_gpt.py``."""
SST2_FINETUNE_LOG_SHA256 = "4efa11eaf5679c126b49fa98c3a3e5afdd0dee05d0f578e2b4a25ff20294435c"
"""sha256 of its training log ``sst2_finetune.json``, as printed by the same script."""
_FINETUNE_REGENERATE = "python scripts/finetune_sst2_gpt.py  (1-2 minutes on a laptop CPU)"


@dataclass(frozen=True)
class FineTuneRecipe:
    """Fine-tuning (b) and training from scratch (c) of page 5.3.2: the same recipe, two starts.

    AdamW, a linear warm-up to ``lr`` over ``warmup`` steps, then constant (so ``steps=N`` is
    exactly the first N steps of a longer run), dropout as in the body's config, a head on the
    ``pool``-ed final hidden state. Each step draws one batch of ``batch_size`` training
    sentences of similar length (:func:`length_buckets`).
    """

    steps: int = 200
    batch_size: int = 32
    lr: float = 1e-3
    warmup: int = 25
    weight_decay: float = 0.01
    pool: str = "mean"
    seeds: int = 5  # seed, seed + 1, ... for each start
    seed: int = 0

    def __post_init__(self) -> None:
        if min(self.steps, self.batch_size, self.seeds) < 1 or self.seed < 0 or self.warmup < 0:
            raise ValueError(f"steps, batch_size and seeds must be >= 1, seed and warmup >= 0, got {self}")
        if self.pool not in ("last", "mean"):
            raise ValueError(f"pool must be 'last' or 'mean', got {self.pool!r}")


def length_buckets(seqs: Sequence[Sequence[int]], size: int) -> list[list[int]]:
    """Indices of ``seqs`` sorted by length (ties: by index), cut into batches of ``size``: little padding."""
    by_length = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    return [by_length[i : i + size] for i in range(0, len(by_length), size)]


class FineTuneRun(NamedTuple):
    """What :func:`fine_tune_gpt` returns."""

    model: GPTClassifier  # in eval mode
    history: "History"  # wmbook.nn.train.History: the batch loss (and lr) at every step


def fine_tune_gpt(lm: GPT, x_train: Sequence[Sequence[int]], y_train: Tensor, start: str, seed: int,
                  recipe: FineTuneRecipe = FineTuneRecipe(), steps: int | None = None) -> FineTuneRun:
    r"""Train a :class:`GPTClassifier` on ``(x_train, y_train)``: all weights, ``recipe``'s steps (or ``steps``).

    ``start="pre-trained"`` starts the body from a copy of ``lm`` (which is not changed);
    ``"random"`` from fresh weights of the same configuration. The loss is
    :math:`\mathrm{CE}(y, \mathrm{softmax}(W\,\mathrm{pool}(h) + b))` on ``(B, C)`` logits and ``(B,)`` labels.
    ``seed`` sets the fresh weights, the head, the batches and the dropout; the run is on one thread,
    so it repeats exactly on one machine.
    """
    import torch.nn.functional as F

    from wmbook.nn.runtime import seed_everything, threads
    from wmbook.nn.train import train

    if start not in FINETUNE_STARTS:
        raise ValueError(f"start must be one of {FINETUNE_STARTS}, got {start!r}")
    if len(x_train) != len(y_train):
        raise ValueError(f"{len(x_train)} sentences but {len(y_train)} labels")
    seed_everything(seed)
    g = torch.Generator().manual_seed(seed)
    body = copy.deepcopy(lm) if start == "pre-trained" else GPT(copy.deepcopy(lm.cfg))
    clf = GPTClassifier(body, n_classes=2, pool=recipe.pool)
    buckets = length_buckets(x_train, recipe.batch_size)

    def loss_fn(m: GPTClassifier, step: int) -> Tensor:
        idx = buckets[torch.randint(0, len(buckets), (1,), generator=g).item()]  # one random bucket
        ids, lengths = pad_batch([x_train[i] for i in idx])
        return F.cross_entropy(m(ids, lengths), y_train[idx])  # (B, C) vs (B,)

    with threads(1):  # a small model: one thread is faster, and the run is repeatable
        history = train(clf, loss_fn, steps=recipe.steps if steps is None else steps, lr=recipe.lr,
                        warmup=recipe.warmup, weight_decay=recipe.weight_decay, progress=False)
    return FineTuneRun(clf.eval(), history)


@torch.no_grad()
def classify(clf: nn.Module, seqs: Sequence[Sequence[int]], batch_size: int = 128, n_classes: int = 2) -> Tensor:
    """Logits (N, C) of ``clf(ids, lengths)`` for every sequence, in length-sorted batches (eval mode)."""
    clf.eval()
    logits = torch.empty(len(seqs), n_classes)
    for idx in length_buckets(seqs, batch_size):
        logits[idx] = clf(*pad_batch([seqs[i] for i in idx]))
    return logits


def fine_tune_runs(lm: GPT, x_train, y_train: Tensor, x_dev, y_dev: Tensor, recipe: FineTuneRecipe = FineTuneRecipe(),
                   report: Callable[[str], None] | None = None) -> dict:
    """Both starts over ``recipe.seeds`` seeds: ``{"accuracy": {start: [dev accuracy per seed]},
    "loss_curves": {"<start>/<seed>": [loss per step]}}``. ``report`` gets a line per run."""
    out: dict = {"accuracy": {}, "loss_curves": {}}
    for start in FINETUNE_STARTS:
        for seed in range(recipe.seed, recipe.seed + recipe.seeds):
            run = fine_tune_gpt(lm, x_train, y_train, start, seed, recipe)
            acc = (classify(run.model, x_dev).argmax(-1) == y_dev).float().mean().item()
            out["accuracy"].setdefault(start, []).append(acc)
            out["loss_curves"][f"{start}/{seed}"] = [round(v, 6) for v in run.history.series("loss")[1]]
            if report:
                report(f"{start:11s} seed {seed}: dev accuracy {acc:.4f}")
    return out


def save_finetune_runs(path: str | Path, results: dict, recipe: FineTuneRecipe, n_parameters: int,
                       extra: dict | None = None) -> str:
    """Write :func:`fine_tune_runs`' accuracies (``.pt``) and, next to it, the JSON log (the recipe,
    one ``evals`` record per run with its dev accuracy, the loss curves, ``extra``); returns the sha256."""
    from wmbook.data.checkpoint import save_with_log
    from wmbook.nn.train import History

    payload = {"accuracy": results["accuracy"], "recipe": asdict(recipe)}
    records = [{"step": recipe.steps, "start": start, "seed": recipe.seed + i, "dev_acc": acc}
               for start, accs in results["accuracy"].items() for i, acc in enumerate(accs)]
    return save_with_log(path, payload, History(records), recipe, n_parameters, "dev_acc",
                         {"loss_curves": results["loss_curves"], **(extra or {})})


class FineTuneResults(NamedTuple):
    """What :func:`load_sst2_finetune` returns."""

    accuracy: dict  # {start: [SST-2 dev accuracy per seed]}
    recipe: FineTuneRecipe
    log: dict  # the JSON training log: "evals" (one per run), "loss_curves" ("<start>/<seed>": losses)


def load_sst2_finetune(path: str | Path | None = None, sha256: str | None = SST2_FINETUNE_SHA256) -> FineTuneResults:
    """The results of ``scripts/finetune_sst2_gpt.py`` (page 5.3.2) with their log, both sha256-checked.

    Pass ``path`` (and ``sha256=None``) for a run of your own.
    """
    path = verify_checkpoint(Path(path) if path is not None else CHECKPOINT_DIR / SST2_FINETUNE_FILE, sha256,
                             _FINETUNE_REGENERATE, where="wmbook/lab/finetune.py (SST2_FINETUNE_SHA256)")
    blob = torch.load(path, map_location="cpu", weights_only=True)
    log = load_paired_log(path, sha256, SST2_FINETUNE_LOG_SHA256 if sha256 == SST2_FINETUNE_SHA256 else None,
                          _FINETUNE_REGENERATE, where="wmbook/lab/finetune.py (SST2_FINETUNE_LOG_SHA256)")
    return FineTuneResults(blob["accuracy"], FineTuneRecipe(**blob["recipe"]), log)


__all__ = [
    "CHECKPOINT_DIR", "GPTClassifier", "PretrainedGPT", "ReducedVocab", "SST2_GPT_SHA256",
    "encode_texts", "gpt_hidden_states", "load_features", "load_sst2_minilm_features", "minilm_features",
    "save_features", "sst2_finetune_split", "load_gpt_checkpoint", "load_sst2_gpt", "pad_batch",
    "pool_hidden", "save_gpt_checkpoint",
    "FINETUNE_STARTS", "FineTuneRecipe", "FineTuneResults", "FineTuneRun", "classify", "fine_tune_gpt",
    "fine_tune_runs", "length_buckets", "load_sst2_finetune", "save_finetune_runs",
]
