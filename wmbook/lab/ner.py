r"""Named-entity recognition on WNUT-17 with MiniLM: word pieces, labels, a token-classification head.

Explained on page 6.1, "Natural language processing" (section 6.1.2). WNUT-17 tags every
*word* of a tweet with a BIO label over six entity types (``B-person`` starts a person's
name, ``I-person`` continues it, ``O`` is outside every entity). MiniLM reads *word pieces*,
so the labels are moved onto pieces first (:func:`align_labels`): the first piece of a word
gets the word's label, the other pieces and the special tokens ``[CLS]``/``[SEP]`` get
:data:`IGNORE` (-100), which the loss skips. A linear head maps each piece's final vector
:math:`h_t \in \mathbb{R}^{384}` to label scores,

.. math:: p(y_t \mid x) = \mathrm{softmax}(W h_t + b), \qquad
          \mathcal{L} = -\frac{1}{|\mathcal{K}|} \sum_{t \in \mathcal{K}} \log p(y_t \mid x),

with :math:`\mathcal{K}` the first pieces of words. A word's predicted label is its first
piece's argmax (:func:`predict_tags`). Scores are entity-level (:func:`entity_scores`):
an entity counts only when its type and both boundaries match, computed by ``seqeval``
in strict IOB2 mode, as the shared task scored it.

Only the top encoder layer and the head are trained (:class:`NERRecipe`); the embeddings and
the lower five layers stay MiniLM's, so their outputs are computed once per sentence
(:class:`FrozenCache`) and the checkpoint stores the trained layer and head alone, in float16.
``scripts/train_ner_wnut17.py`` trains the seeds and writes ``wmbook/data/checkpoints/ner_wnut17.pt``
(seed 0) and its log; :func:`load_ner_tagger` reads it back, sha256-verified.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from wmbook.data.checkpoint import CHECKPOINT_DIR, file_sha256, verify_with_log
from wmbook.nn.train import warmup_cosine

#: The six WNUT-17 entity types, in the shared task's order.
WNUT_TYPES = ("corporation", "creative-work", "group", "location", "person", "product")
#: The label set: ``O`` then ``B-``/``I-`` of each type (index = class id of the head).
LABELS = ("O",) + tuple(f"{p}-{t}" for t in WNUT_TYPES for p in ("B", "I"))
#: The label of pieces the loss skips (PyTorch's ``cross_entropy`` default ``ignore_index``).
IGNORE = -100

NER_FILE = CHECKPOINT_DIR / "ner_wnut17.pt"
#: sha256 of the committed checkpoint and of its log, as printed by ``scripts/train_ner_wnut17.py``.
NER_SHA256 = "30bc56633de21e5d1ba5ec66478a07396c0c19424385a91852fee7d64c83182f"
NER_LOG_SHA256 = "7820e6ad8cef5df1d50bed8bbf5896a7cebe33a911a9d2bcfc6014f1ac8f5f71"
_REGENERATE = "python scripts/train_ner_wnut17.py  (3 seeds; 36 minutes on one thread of a busy shared CPU)"


def _seqeval():
    try:
        from seqeval.metrics import classification_report
        from seqeval.metrics.sequence_labeling import get_entities
        from seqeval.scheme import IOB2
    except ImportError as e:  # pragma: no cover - the book's requirements install it
        raise ImportError("entity scores need seqeval: pip install --use-pep517 seqeval") from e
    return classification_report, get_entities, IOB2


class Aligned(NamedTuple):
    """One sentence as MiniLM sees it: piece ids, piece labels (:data:`IGNORE` off first pieces),
    the word each piece comes from (``None`` for ``[CLS]``/``[SEP]``), the pieces as strings and the
    number of words. A word the tokenizer drops entirely (a lone emoji or control character
    has no piece) has no label position; :func:`predict_tags` tags it ``O``."""

    input_ids: list[int]
    labels: list[int]
    word_ids: list[int | None]
    pieces: list[str]
    n_words: int


def align_labels(words: Sequence[str], tags: Sequence[str], tokenizer, max_length: int = 512) -> Aligned:
    """Split ``words`` into word pieces and put each word's tag on its **first** piece.

    The other pieces of a word, and ``[CLS]``/``[SEP]``, get :data:`IGNORE` so that the loss
    and the scores count each word once. ``tags`` are BIO strings from :data:`LABELS`.
    """
    if len(words) != len(tags):
        raise ValueError(f"{len(words)} words but {len(tags)} tags: give one tag per word")
    if not words:
        raise ValueError("empty sentence: give at least one word")
    unknown = sorted(set(tags) - set(LABELS))
    if unknown:
        raise ValueError(f"unknown tags {unknown}; WNUT-17 tags are {list(LABELS)}")
    enc = tokenizer(list(words), is_split_into_words=True, truncation=True, max_length=max_length)
    word_ids = enc.word_ids()
    labels, previous = [], None
    for w in word_ids:
        labels.append(IGNORE if w is None or w == previous else LABELS.index(tags[w]))
        previous = w
    if len(enc["input_ids"]) >= max_length:
        raise ValueError(f"the sentence fills max_length={max_length} pieces and may be cut; raise max_length")
    return Aligned(enc["input_ids"], labels, word_ids, tokenizer.convert_ids_to_tokens(enc["input_ids"]), len(words))


def encode_sentences(sentences: Sequence[Sequence[tuple[str, str]]], tokenizer) -> list[Aligned]:
    """:func:`align_labels` of every ``[(word, tag), ...]`` sentence (WNUT-17's loader format)."""
    return [align_labels([w for w, _ in s], [t for _, t in s], tokenizer) for s in sentences]


@dataclass(frozen=True)
class NERRecipe:
    """The committed recipe of ``scripts/train_ner_wnut17.py`` (page 6.1.2).

    ``n_trained_layers`` top encoder layers and the head are trained, the rest stays MiniLM's.
    The learning rate warms up over ``warmup`` steps and decays (cosine) to 0 at the last step.
    """

    epochs: int = 3
    batch_size: int = 32
    lr: float = 4e-4
    weight_decay: float = 0.01
    warmup: int = 30
    n_trained_layers: int = 1
    head_dropout: float = 0.1
    first_steps: int = 10   # the log keeps every step's loss up to here (the page re-runs the start)
    log_every: int = 25     # then the mean loss of each window of this many steps


class TokenTagger(nn.Module):
    """MiniLM (:class:`wmbook.nn.bert.BertModel`) with a linear token-classification head.

    ``frozen(input_ids, mask)`` runs the embeddings and the lower ``n_layers - n_trained_layers``
    layers without gradients; ``top(x, mask)`` runs the trained layers and the head and returns
    logits ``(B, T, len(LABELS))``; ``forward`` is both.
    """

    def __init__(self, bert, n_trained_layers: int = 1, head_dropout: float = 0.1) -> None:
        super().__init__()
        n_layers = len(bert.layers)
        if not 1 <= n_trained_layers <= n_layers:
            raise ValueError(f"n_trained_layers must be in 1..{n_layers}, got {n_trained_layers}")
        self.bert = bert
        self.n_frozen = n_layers - n_trained_layers
        self.drop = nn.Dropout(head_dropout)
        self.head = nn.Linear(bert.cfg.d_model, len(LABELS))
        for p in self.bert.parameters():
            p.requires_grad_(False)
        for layer in self.trained_layers():
            for p in layer.parameters():
                p.requires_grad_(True)

    def trained_layers(self) -> list[nn.Module]:
        return list(self.bert.layers[self.n_frozen:])

    @torch.no_grad()
    def frozen(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        bert = self.bert
        x = bert.embeddings(input_ids, torch.zeros_like(input_ids))
        mask = attention_mask.bool()[:, None, :]
        for layer in bert.layers[: self.n_frozen]:
            x = layer(x, mask)[0]
        return x

    def train(self, mode: bool = True) -> TokenTagger:
        """Train mode for the trained layers and the head only: the frozen part stays in eval mode
        (no dropout), so its output is a fixed function of the sentence and can be cached."""
        super().train(mode)
        self.bert.embeddings.eval()
        for layer in self.bert.layers[: self.n_frozen]:
            layer.eval()
        return self

    def top(self, x: Tensor, attention_mask: Tensor) -> Tensor:
        mask = attention_mask.bool()[:, None, :]
        for layer in self.trained_layers():
            x = layer(x, mask)[0]
        return self.head(self.drop(x))

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        return self.top(self.frozen(input_ids, attention_mask), attention_mask)

    def trained_state(self) -> dict[str, Tensor]:
        """What training changed: the trained layers and the head (the rest is MiniLM's)."""
        state = {f"layers.{self.n_frozen + i}.{k}": v for i, layer in enumerate(self.trained_layers())
                 for k, v in layer.state_dict().items()}
        state.update({f"head.{k}": v for k, v in self.head.state_dict().items()})
        return state

    def load_trained_state(self, state: dict[str, Tensor]) -> None:
        for i, layer in enumerate(self.trained_layers()):
            prefix = f"layers.{self.n_frozen + i}."
            layer.load_state_dict({k[len(prefix):]: v.float() for k, v in state.items() if k.startswith(prefix)})
        self.head.load_state_dict({k[5:]: v.float() for k, v in state.items() if k.startswith("head.")})


def new_tagger(recipe: NERRecipe = NERRecipe(), seed: int = 0) -> TokenTagger:
    """MiniLM with a fresh head (seeded), the top ``recipe.n_trained_layers`` layers trainable."""
    from wmbook.nn.bert import BertModel

    bert = BertModel.from_minilm()
    torch.manual_seed(seed)
    return TokenTagger(bert, recipe.n_trained_layers, recipe.head_dropout)


def _pad(rows: Sequence[Sequence[int]], value: int) -> Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([list(r) + [value] * (width - len(r)) for r in rows], dtype=torch.long)


class FrozenCache:
    """The frozen layers' output of each sentence, computed once (in length-sorted batches) on demand."""

    def __init__(self, tagger: TokenTagger, data: Sequence[Aligned], batch_size: int = 64) -> None:
        self.tagger, self.data, self.batch_size = tagger, data, batch_size
        self.store: dict[int, Tensor] = {}

    def get(self, indices: Sequence[int]) -> list[Tensor]:
        missing = sorted({i for i in indices if i not in self.store}, key=lambda i: (len(self.data[i].input_ids), i))
        for start in range(0, len(missing), self.batch_size):
            idx = missing[start : start + self.batch_size]
            ids = _pad([self.data[i].input_ids for i in idx], 0)
            mask = _pad([[1] * len(self.data[i].input_ids) for i in idx], 0)
            x = self.tagger.frozen(ids, mask)
            for row, i in enumerate(idx):
                self.store[i] = x[row, : len(self.data[i].input_ids)].clone()
        return [self.store[i] for i in indices]


def _stack(xs: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    width = max(len(x) for x in xs)
    out = xs[0].new_zeros(len(xs), width, xs[0].shape[-1])
    mask = torch.zeros(len(xs), width, dtype=torch.long)
    for i, x in enumerate(xs):
        out[i, : len(x)] = x
        mask[i, : len(x)] = 1
    return out, mask


def batch_order(n: int, recipe: NERRecipe, seed: int) -> list[list[int]]:
    """The training batches (sentence indices) of every epoch, shuffled with ``seed``."""
    g = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(recipe.epochs):
        perm = torch.randperm(n, generator=g).tolist()
        batches += [perm[i : i + recipe.batch_size] for i in range(0, n, recipe.batch_size)]
    return batches


def train_tagger(tagger: TokenTagger, train: Sequence[Aligned], recipe: NERRecipe = NERRecipe(), seed: int = 0,
                 cache: FrozenCache | None = None, stop_after: int | None = None,
                 log: Callable[[dict], None] | None = None, max_steps: int | None = None) -> list[dict]:
    """Train the top layers and head with AdamW on the cross-entropy of first pieces.

    Returns the log records: ``{"step", "loss"}`` for each of the first ``recipe.first_steps``
    steps, then ``{"step", "loss"}`` with the mean loss of each ``recipe.log_every``-step window.
    ``stop_after`` runs only the first steps of the schedule (the page re-runs the start);
    ``max_steps`` shortens the schedule itself (``recipe.epochs`` epochs, cut to that many steps).
    """
    cache = cache or FrozenCache(tagger, train)
    batches = batch_order(len(train), recipe, seed)
    if max_steps is not None:
        batches = batches[:max_steps]
    steps = len(batches)
    torch.manual_seed(seed)
    params = [p for p in tagger.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    tagger.train()
    records, window, t0 = [], [], time.perf_counter()
    for step, idx in enumerate(batches[:stop_after] if stop_after else batches, start=1):
        for group in opt.param_groups:
            group["lr"] = warmup_cosine(step - 1, recipe.lr, recipe.warmup, steps)
        x, mask = _stack(cache.get(idx))
        labels = _pad([train[i].labels for i in idx], IGNORE)
        logits = tagger.top(x, mask)
        loss = F.cross_entropy(logits.reshape(-1, len(LABELS)), labels.reshape(-1), ignore_index=IGNORE)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        window.append(loss.item())
        rec = None
        if step <= recipe.first_steps:
            rec = {"step": step, "loss": round(loss.item(), 6)}
        elif step % recipe.log_every == 0 or step == steps:
            rec = {"step": step, "loss": round(sum(window) / len(window), 6)}
        if step % recipe.log_every == 0:
            window = []
        if rec is not None:
            rec["seconds"] = round(time.perf_counter() - t0, 1)
            records.append(rec)
            if log:
                log(rec)
    tagger.eval()
    return records


@torch.no_grad()
def predict_tags(tagger: TokenTagger, data: Sequence[Aligned], batch_size: int = 64,
                 cache: FrozenCache | None = None) -> list[list[str]]:
    """Each word's label: the argmax of its first piece (length-sorted batches, eval mode).

    With ``cache`` (a :class:`FrozenCache` over ``data``) only the trained layers and the head run.
    """
    tagger.eval()
    order = sorted(range(len(data)), key=lambda i: (len(data[i].input_ids), i))
    out: list[list[str]] = [[] for _ in data]
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        if cache is None:
            ids = _pad([data[i].input_ids for i in idx], 0)
            mask = _pad([[1] * len(data[i].input_ids) for i in idx], 0)
            best = tagger(ids, mask).argmax(-1)
        else:
            x, mask = _stack(cache.get(idx))
            best = tagger.top(x, mask).argmax(-1)
        for row, i in enumerate(idx):
            tags = ["O"] * data[i].n_words
            for t in range(len(data[i].input_ids)):
                if _first(data[i], t):
                    tags[data[i].word_ids[t]] = LABELS[int(best[row, t])]
            out[i] = tags
    return out


def tags_to_string(tags: Sequence[str]) -> str:
    """One sentence's tags as one letter per word (``a`` = ``LABELS[0]``...), the log's compact form."""
    return "".join(chr(97 + LABELS.index(t)) for t in tags)


def string_to_tags(s: str) -> list[str]:
    """Inverse of :func:`tags_to_string`."""
    bad = [c for c in s if not 0 <= ord(c) - 97 < len(LABELS)]
    if bad:
        raise ValueError(f"not a tag letter: {bad[0]!r} (letters a..{chr(96 + len(LABELS))})")
    return [LABELS[ord(c) - 97] for c in s]


def _first(a: Aligned, t: int) -> bool:
    w = a.word_ids[t]
    return w is not None and (t == 0 or a.word_ids[t - 1] != w)


def entity_scores(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict:
    """Entity-level precision, recall and F1 (micro over entities) and F1 per type, by seqeval
    in strict IOB2 mode (an entity counts when its type and both boundaries match). In %.
    """
    classification_report, _, IOB2 = _seqeval()
    if len(gold) != len(pred) or any(len(g) != len(p) for g, p in zip(gold, pred)):
        raise ValueError("gold and pred must have the same sentences with the same number of tags")
    rep = classification_report(list(map(list, gold)), list(map(list, pred)), mode="strict", scheme=IOB2,
                                 output_dict=True, zero_division=0)
    micro = rep["micro avg"]
    return {"precision": 100 * float(micro["precision"]), "recall": 100 * float(micro["recall"]),
            "f1": 100 * float(micro["f1-score"]),
            "per_type": {t: 100 * float(rep[t]["f1-score"]) for t in WNUT_TYPES if t in rep},
            "support": {t: int(rep[t]["support"]) for t in WNUT_TYPES if t in rep}}


def entities(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """The ``(type, first word, last word)`` entities of one sentence's BIO tags (seqeval's reading)."""
    _, get_entities, _ = _seqeval()
    return [tuple(e) for e in get_entities(list(tags))]


def strict_entities(tags: Sequence[str]) -> set[tuple[str, int, int]]:
    """Entities read in strict IOB2, written out here as a check on seqeval: an entity is a ``B-X``
    followed by any ``I-X``; an ``I-X`` that does not continue a ``B-X``/``I-X`` starts nothing."""
    out, start, kind = set(), None, None
    for i, tag in enumerate(list(tags) + ["O"]):
        if start is not None and tag != f"I-{kind}":
            out.add((kind, start, i - 1))
            start = None
        if tag.startswith("B-"):
            start, kind = i, tag[2:]
    return out


def micro_f1(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> float:
    """Entity-level micro F1 (%) from :func:`strict_entities` sets: the hand-written reference."""
    g = {(n, *e) for n, tags in enumerate(gold) for e in strict_entities(tags)}
    p = {(n, *e) for n, tags in enumerate(pred) for e in strict_entities(tags)}
    hit = len(g & p)
    return 200 * hit / (len(g) + len(p)) if g or p else 0.0


def train_surfaces(sentences: Sequence[Sequence[tuple[str, str]]]) -> set[str]:
    """The lower-cased surface strings of every entity in ``sentences`` (e.g. the training set)."""
    out = set()
    for s in sentences:
        words = [w for w, _ in s]
        for _, i, j in entities([t for _, t in s]):
            out.add(" ".join(words[i : j + 1]).lower())
    return out


def seen_unseen_recall(sentences, pred: Sequence[Sequence[str]], seen: set[str]) -> dict:
    """Recall (%) of gold entities whose surface form occurs as an entity in training ("seen")
    vs those that do not ("unseen", WNUT-17's emerging entities), with the counts."""
    hits = {"seen": 0, "unseen": 0}
    total = {"seen": 0, "unseen": 0}
    for s, p in zip(sentences, pred):
        words = [w for w, _ in s]
        found = set(entities(p))
        for e in entities([t for _, t in s]):
            group = "seen" if " ".join(words[e[1] : e[2] + 1]).lower() in seen else "unseen"
            total[group] += 1
            hits[group] += e in found
    return {g: {"n": total[g], "found": hits[g], "recall": 100 * hits[g] / total[g] if total[g] else float("nan")}
            for g in total}


def to_float16(state: dict[str, Tensor]) -> dict[str, Tensor]:
    return {k: v.detach().to(torch.float16) for k, v in state.items()}


def save_ner(path: str | Path, tagger: TokenTagger, recipe: NERRecipe, log: dict) -> str:
    """Write the trained layers + head (float16) and the JSON log next to it; return the checkpoint's sha256."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state": to_float16(tagger.trained_state()), "recipe": dataclasses.asdict(recipe),
                "labels": list(LABELS)}, path)
    sha = file_sha256(path)
    log = {"checkpoint": path.name, "sha256": sha, "recipe": dataclasses.asdict(recipe), **log}
    path.with_suffix(".json").write_text(json.dumps(log, indent=1) + "\n", encoding="utf-8")
    return sha


class LoadedNER(NamedTuple):
    tagger: TokenTagger
    recipe: NERRecipe
    log: dict


def load_ner_tagger(path: str | Path | None = None, sha256: str | None = "committed",
                    log_sha256: str | None = "committed") -> LoadedNER:
    """The committed tagger (MiniLM + the stored top layer and head) with its recipe and log."""
    path, log = verify_with_log(path, sha256, log_sha256, committed=NER_FILE, committed_sha256=NER_SHA256,
                                committed_log_sha256=NER_LOG_SHA256, regenerate=_REGENERATE, constant="NER",
                                module="wmbook/lab/ner.py")
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if tuple(blob["labels"]) != LABELS:
        raise ValueError(f"{path} was trained with labels {blob['labels']}, not {list(LABELS)}")
    recipe = NERRecipe(**blob["recipe"])
    tagger = new_tagger(recipe)
    tagger.load_trained_state(blob["state"])
    return LoadedNER(tagger.eval(), recipe, log)


def rounded(tagger: TokenTagger) -> TokenTagger:
    """A copy whose trained weights went through float16, as the checkpoint stores them."""
    out = copy.deepcopy(tagger)
    out.load_trained_state(to_float16(tagger.trained_state()))
    return out.eval()
