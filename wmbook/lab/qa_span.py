r"""Extractive question answering: SQuAD's EM/F1, a lexical sliding-window baseline, a MiniLM span extractor.

Explained on page 6.2, "Question answering" (section 6.2.2). The answer to a SQuAD question is a
span of its paragraph. A span extractor scores every token :math:`t` of the paragraph as a start
and as an end, :math:`s_t = w_s^\top h_t + b_s`, :math:`e_t = w_e^\top h_t + b_e`, where
:math:`h_t` is the encoder's last hidden state of ``[CLS] question [SEP] paragraph [SEP]``, and
answers with

.. math:: (\hat\imath, \hat\jmath) = \arg\max_{i \le j < i + L} \; s_i + e_j ,

trained with the cross-entropy of the gold start and of the gold end (BERT's recipe, Devlin et
al. 2019). Here the encoder is MiniLM-L6 with its first layers frozen: their output is computed
once and cached, and only the top ``n_trained_layers`` layers and the head are trained
(``scripts/train_span_qa.py``), so the checkpoint holds just those (float16, a few MB).

The metrics are SQuAD's official ones (``evaluate-v1.1.py``, Rajpurkar et al. 2016): answers are
normalised (lower case; punctuation and the articles a/an/the removed; white space collapsed),
*exact match* is 1 when the normalised strings are equal, *F1* is the harmonic mean of precision
and recall over the normalised tokens counted with multiplicity,

.. math:: P = \frac{|p \cap g|}{|p|},\quad R = \frac{|p \cap g|}{|g|},\quad F_1 = \frac{2PR}{P+R},

and a question with several gold answers takes the maximum over them.
"""
from __future__ import annotations

import collections
import math
import re
import string
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from wmbook.data.checkpoint import CHECKPOINT_DIR, load_log, seed_file, verify_checkpoint

# ----------------------------------------------------------------------------- SQuAD's metric


def normalize_answer(s: str) -> str:
    """SQuAD v1.1's normalisation: lower case, no punctuation, no articles (a, an, the), single spaces."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def exact_match(prediction: str, truth: str) -> float:
    """1.0 when the normalised prediction equals the normalised gold answer, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(truth))


def f1_score(prediction: str, truth: str) -> float:
    """Token F1 of the normalised strings (tokens counted with multiplicity), as SQuAD v1.1 computes it."""
    p, g = normalize_answer(prediction).split(), normalize_answer(truth).split()
    common = collections.Counter(p) & collections.Counter(g)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def best_over_answers(metric, prediction: str, answers: Sequence[str]) -> float:
    """``max`` of ``metric(prediction, a)`` over the gold answers (SQuAD's rule for several answers)."""
    if isinstance(answers, str) or not answers:
        raise ValueError("answers must be a non-empty list of gold answer strings")
    return max(metric(prediction, a) for a in answers)


def squad_scores(predictions: Sequence[str], answers: Sequence[Sequence[str]]) -> dict[str, np.ndarray]:
    """Per-question ``{"em": (N,), "f1": (N,)}`` in [0, 1]; the page reports 100 x their means."""
    if len(predictions) != len(answers):
        raise ValueError(f"{len(predictions)} predictions for {len(answers)} questions")
    em = np.array([best_over_answers(exact_match, p, a) for p, a in zip(predictions, answers)])
    f1 = np.array([best_over_answers(f1_score, p, a) for p, a in zip(predictions, answers)])
    return {"em": em, "f1": f1}


# ----------------------------------------------------------------------------- the split


def xquad_articles(examples) -> np.ndarray:
    """The article of each XQuAD question, ``(N,)`` ints in [0, 48).

    XQuAD's English file holds 48 SQuAD v1.1 dev articles of 5 paragraphs each, in order; the
    loader keeps that order, so a question's article is its paragraph's rank // 5.
    """
    order: dict[str, int] = {}
    for e in examples:
        order.setdefault(e.context, len(order))
    if len(order) != 240:
        raise ValueError(f"expected XQuAD's 240 paragraphs (load_squad(version=1)), got {len(order)}")
    return np.array([order[e.context] // 5 for e in examples])


def article_split(examples, n_test: int = 16, seed: int = 0, keep_in_test: Sequence[str] = ()) -> np.ndarray:
    """Boolean ``(N,)``, True for the questions of the ``n_test`` held-out articles.

    Articles containing a paragraph of ``keep_in_test`` (e.g. the SQuAD 2.0 subset's paragraphs)
    are always held out, so no model is trained on them; the rest is drawn with ``seed``.
    """
    art = xquad_articles(examples)
    forced = sorted({int(a) for a, e in zip(art, examples) if e.context in set(keep_in_test)})
    if not len(forced) <= n_test <= 47:
        raise ValueError(f"n_test must be in [{len(forced)}, 47], got {n_test}")
    rest = [a for a in range(48) if a not in forced]
    drawn = np.random.default_rng(seed).permutation(rest)[:n_test - len(forced)]
    return np.isin(art, forced + [int(a) for a in drawn])


# ----------------------------------------------------------------------------- lexical baseline


_STOP = frozenset("a an the of in on at to for by with from and or is was were are be been what which who whom whose "
                  "when where why how did do does that this these those it its as".split())
_WORD = re.compile(r"\w+(?:[-'.,]\w+)*|[^\w\s]")


def words(text: str) -> list[tuple[str, int, int]]:
    """Words and punctuation of ``text`` with their character offsets: ``[(word, start, end)]``."""
    return [(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]


def sliding_window_answer(question: str, context: str, window: int = 10, max_len: int = 6) -> str:
    """The lexical baseline: the short span closest to the question's words in the best-matching sentence.

    The question's content words (not stop words) are weighted ``1 / log(1 + count in the
    paragraph)`` (rarer words count more). The sentence holding the largest weight of them is
    chosen; in it, every span of 1..``max_len`` words that starts with a content word and holds
    no question word and no punctuation is scored ``sum_w weight(w) / d_w`` over the question
    words ``w`` of the sentence within ``window`` words of the span (``d_w``: the distance to the
    nearest one). Ties go to the earliest, shortest span. In the spirit of the sliding-window
    baseline of Richardson et al. (2013) that Rajpurkar et al. (2016) ran on SQuAD; not their
    exact features.
    """
    if window < 1 or max_len < 1:
        raise ValueError(f"window and max_len must be >= 1, got {window}, {max_len}")
    ctx = words(context)
    if not ctx:
        return ""
    low = [w.lower() for w, _, _ in ctx]
    q = {w.lower() for w, _, _ in words(question) if w[0].isalnum()} - _STOP
    count = collections.Counter(low)
    weight = {w: 1.0 / math.log(1 + count[w]) for w in q if count[w]}
    sentences, current = [], []
    for k, w in enumerate(low):
        current.append(k)
        if w in {".", "!", "?"}:
            sentences, current = sentences + [current], []
    sentences += [current] if current else []
    sentence = max(sentences, key=lambda s: sum(weight.get(w, 0.0) for w in {low[k] for k in s}))
    where = collections.defaultdict(list)
    for k in sentence:
        if low[k] in weight:
            where[low[k]].append(k)
    best, best_score = (sentence[0], sentence[0]), -1.0
    for a, i in enumerate(sentence):
        if low[i] in _STOP:
            continue
        for j in sentence[a:a + max_len]:
            if low[j] in q or not low[j][0].isalnum():
                break
            score = 0.0
            for w, ks in where.items():
                d = min(min(abs(k - i), abs(k - j)) for k in ks)
                score += weight[w] / d if d <= window else 0.0
            if score > best_score:
                best, best_score = (i, j), score
    i, j = best
    return context[ctx[i][1]:ctx[j][2]]


# ----------------------------------------------------------------------------- the span extractor


@dataclass
class SpanQARecipe:
    """How ``scripts/train_span_qa.py`` trains the span extractor (the defaults are the committed run)."""

    n_trained_layers: int = 1  # MiniLM's top layers that are trained; the others stay frozen
    max_length: int = 384  # question + paragraph pieces, truncated in the paragraph
    max_answer_len: int = 30  # longest span considered at inference, in word pieces
    epochs: int = 5
    batch_size: int = 16
    lr: float = 1e-3  # peak learning rate of the trained Transformer layers
    lr_head: float = 3e-3  # peak learning rate of the fresh start/end head
    warmup: int = 20
    weight_decay: float = 0.01
    n_test_articles: int = 16
    split_seed: int = 0
    seed: int = 0


class QAFeatures(NamedTuple):
    """One tokenised question: ``input_ids``, ``token_type_ids`` (T,), ``offsets`` (T, 2) character
    spans in the paragraph (question and special tokens: (0, 0)), ``is_context`` (T,) bool, the gold
    ``start``/``end`` piece (-1 when the answer was cut off by truncation or there is none)."""

    input_ids: Tensor
    token_type_ids: Tensor
    offsets: Tensor
    is_context: Tensor
    start: int
    end: int


def qa_features(tokenizer, examples, max_length: int = 384) -> list[QAFeatures]:
    """Tokenise ``[CLS] question [SEP] paragraph [SEP]`` and find the first gold answer's pieces."""
    out = []
    for e in examples:
        enc = tokenizer(e.question, e.context, truncation="only_second", max_length=max_length,
                        return_offsets_mapping=True)
        types = enc["token_type_ids"]
        is_ctx = [t == 1 and off[1] > off[0] for t, off in zip(types, enc["offset_mapping"])]
        offs = [off if c else (0, 0) for off, c in zip(enc["offset_mapping"], is_ctx)]
        start = end = -1
        if e.answers:
            a0, a1 = e.answer_starts[0], e.answer_starts[0] + len(e.answers[0])
            pieces = [t for t, (o, c) in enumerate(zip(offs, is_ctx)) if c and o[0] < a1 and o[1] > a0]
            if pieces and offs[pieces[0]][0] <= a0 and offs[pieces[-1]][1] >= a1:
                start, end = pieces[0], pieces[-1]
        out.append(QAFeatures(torch.tensor(enc["input_ids"]), torch.tensor(types), torch.tensor(offs),
                              torch.tensor(is_ctx), start, end))
    return out


@torch.no_grad()
def frozen_hidden(encoder, features: Sequence[QAFeatures], n_frozen: int, batch_size: int = 32) -> list[Tensor]:
    """Hidden states after the embeddings and the first ``n_frozen`` layers, one ``(T_i, d_model)``
    float16 tensor per question (computed once; the trained layers start from them)."""
    if not 0 <= n_frozen <= len(encoder.layers):
        raise ValueError(f"n_frozen must be in [0, {len(encoder.layers)}], got {n_frozen}")
    encoder.eval()
    order = sorted(range(len(features)), key=lambda i: len(features[i].input_ids))
    out: list[Tensor | None] = [None] * len(features)
    for b in range(0, len(order), batch_size):
        idx = order[b:b + batch_size]
        ids, types, mask = _pad([features[i] for i in idx])
        x = encoder.embeddings(ids, types)  # (B, T, d_model)
        for layer in encoder.layers[:n_frozen]:
            x, _ = layer(x, mask[:, None, :])
        for k, i in enumerate(idx):
            out[i] = x[k, :len(features[i].input_ids)].to(torch.float16)
    return out


def _pad(feats: Sequence[QAFeatures]) -> tuple[Tensor, Tensor, Tensor]:
    T = max(len(f.input_ids) for f in feats)
    ids = torch.zeros(len(feats), T, dtype=torch.long)
    types = torch.zeros_like(ids)
    mask = torch.zeros(len(feats), T, dtype=torch.bool)
    for k, f in enumerate(feats):
        n = len(f.input_ids)
        ids[k, :n], types[k, :n], mask[k, :n] = f.input_ids, f.token_type_ids, True
    return ids, types, mask


class SpanHead(nn.Module):
    """MiniLM's top ``n_trained_layers`` layers and a linear start/end head: hidden (B, T, d) -> logits (B, T, 2)."""

    def __init__(self, layers: Sequence[nn.Module], d_model: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.qa = nn.Linear(d_model, 2)  # w_s, w_e

    def forward(self, hidden: Tensor, mask: Tensor) -> Tensor:
        x = hidden
        for layer in self.layers:
            x, _ = layer(x, mask[:, None, :])
        return self.qa(x)  # (B, T, 2): start and end scores


def new_span_head(encoder, n_trained_layers: int, seed: int) -> SpanHead:
    """A copy of MiniLM's top layers and a fresh head (its init drawn with ``seed``)."""
    import copy

    if not 1 <= n_trained_layers <= len(encoder.layers):
        raise ValueError(f"n_trained_layers must be in [1, {len(encoder.layers)}], got {n_trained_layers}")
    torch.manual_seed(seed)
    head = SpanHead([copy.deepcopy(layer) for layer in encoder.layers[-n_trained_layers:]], encoder.cfg.d_model)
    nn.init.normal_(head.qa.weight, std=0.02)
    nn.init.zeros_(head.qa.bias)
    return head


def _pad_hidden(hidden: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    T, d = max(h.shape[0] for h in hidden), hidden[0].shape[1]
    x = torch.zeros(len(hidden), T, d)
    mask = torch.zeros(len(hidden), T, dtype=torch.bool)
    for k, h in enumerate(hidden):
        x[k, :h.shape[0]], mask[k, :h.shape[0]] = h.float(), True
    return x, mask


def span_loss(logits: Tensor, mask: Tensor, starts: Tensor, ends: Tensor) -> Tensor:
    """Mean of the cross-entropies of the gold start and the gold end over the real tokens."""
    s, e = logits.unbind(-1)  # (B, T) each
    s, e = s.masked_fill(~mask, -1e4), e.masked_fill(~mask, -1e4)
    return (F.cross_entropy(s, starts) + F.cross_entropy(e, ends)) / 2


def train_span_head(head: SpanHead, hidden: Sequence[Tensor], features: Sequence[QAFeatures], recipe: SpanQARecipe,
                    steps: int | None = None, log=None, stop_after: int | None = None) -> list[dict]:
    """Train ``head`` on the cached ``hidden`` states (questions whose answer survived truncation).

    AdamW with the book's warm-up/cosine schedule over ``steps`` (default: ``recipe.epochs``
    passes), peak ``recipe.lr`` for the copied layers and ``recipe.lr_head`` for the fresh head;
    batches drawn with ``recipe.seed``. Returns the history ``[{"step", "loss"}]``
    (loss averaged over each logged stretch of steps).
    """
    from wmbook.nn.train import warmup_cosine

    keep = [i for i, f in enumerate(features) if f.start >= 0]
    if not keep:
        raise ValueError("no training question has its answer inside the truncated input")
    per_epoch = math.ceil(len(keep) / recipe.batch_size)
    total = steps if steps is not None else recipe.epochs * per_epoch
    gen = torch.Generator().manual_seed(recipe.seed)
    groups = [{"params": list(head.layers.parameters()), "peak": recipe.lr},
              {"params": list(head.qa.parameters()), "peak": recipe.lr_head}]
    opt = torch.optim.AdamW(groups, lr=recipe.lr, weight_decay=recipe.weight_decay)
    head.train()
    history, running, n_run = [], 0.0, 0
    order: list[int] = []
    for step in range(total if stop_after is None else min(stop_after, total)):
        if not order:
            order = [keep[i] for i in torch.randperm(len(keep), generator=gen).tolist()]
        batch, order = order[:recipe.batch_size], order[recipe.batch_size:]
        x, mask = _pad_hidden([hidden[i] for i in batch])
        starts = torch.tensor([features[i].start for i in batch])
        ends = torch.tensor([features[i].end for i in batch])
        for g in opt.param_groups:
            g["lr"] = warmup_cosine(step, g["peak"], recipe.warmup, total)
        loss = span_loss(head(x, mask), mask, starts, ends)
        opt.zero_grad()
        loss.backward()
        opt.step()
        running, n_run = running + loss.item(), n_run + 1
        if step < 3 or (step + 1) % 10 == 0 or step + 1 == total:  # the first steps one by one
            history.append({"step": step + 1, "loss": running / n_run})
            if log:
                log(history[-1])
            running, n_run = 0.0, 0
    head.eval()
    return history


class SpanPrediction(NamedTuple):
    text: str  # the answer, cut from the paragraph
    score: float  # s_i + e_j of the best span (the no-answer threshold is applied to it)
    start: int  # piece index
    end: int


def best_span(start_logits: Tensor, end_logits: Tensor, is_context: Tensor, max_answer_len: int = 30) -> tuple[int, int, float]:
    """``argmax_{i <= j < i + L} s_i + e_j`` over paragraph pieces: ``(i, j, score)``."""
    T = start_logits.shape[0]
    if not bool(is_context.any()):
        raise ValueError("no paragraph piece to answer from (is_context is all False)")
    neg = torch.tensor(float("-inf"))
    s = torch.where(is_context, start_logits.float(), neg)
    e = torch.where(is_context, end_logits.float(), neg)
    pair = s[:, None] + e[None, :]  # (T, T)
    i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
    pair = pair.masked_fill((j < i) | (j >= i + max_answer_len), float("-inf"))
    flat = int(torch.argmax(pair))
    return flat // T, flat % T, float(pair.view(-1)[flat])


@torch.no_grad()
def predict_spans(head: SpanHead, hidden: Sequence[Tensor], features: Sequence[QAFeatures], contexts: Sequence[str],
                  max_answer_len: int = 30, batch_size: int = 32) -> list[SpanPrediction]:
    """The best span of every question (its text cut from ``contexts`` by character offsets)."""
    head.eval()
    preds = []
    for b in range(0, len(hidden), batch_size):
        x, mask = _pad_hidden(hidden[b:b + batch_size])
        logits = head(x, mask).float()
        for k in range(x.shape[0]):
            f = features[b + k]
            n = len(f.input_ids)
            i, j, score = best_span(logits[k, :n, 0], logits[k, :n, 1], f.is_context, max_answer_len)
            text = contexts[b + k][int(f.offsets[i, 0]):int(f.offsets[j, 1])]
            preds.append(SpanPrediction(text, score, i, j))
    return preds


# ----------------------------------------------------------------------------- the committed checkpoints

SPAN_QA_FILE = CHECKPOINT_DIR / "span_qa.pt"
#: sha256 of the committed checkpoints (seed 0 is the page's model) and of their JSON logs.
# one constant per file, as for every committed checkpoint (tests/test_scripts.py finds them by name)
SPAN_QA_SEED0_SHA256 = "53aae1bf572e9934db29d534aab628406788e4d014b896ee0642bdf916d8c3dd"
SPAN_QA_SEED0_LOG_SHA256 = "72f1cc20b1abf8146e37bbc884a4ef1ecbcb87d7e6f9a320874585ba4a6d2284"
SPAN_QA_SEED1_SHA256 = "d85c5b9464e51929c61e4b3a5672bf6a66153f81ac3be2040baeebf5eccf9075"
SPAN_QA_SEED1_LOG_SHA256 = "495b911ec974f34aac154346b079aa8d74934ea4a048199a1418c89ad99acfeb"
SPAN_QA_SEED2_SHA256 = "fec622a5a8e08ac30a5e1fbee8b8ecdb5fd1540ca53a514ead5e4c73fc8670f0"
SPAN_QA_SEED2_LOG_SHA256 = "12347257cfc39764278fd5dbf8931b0468946dc18807a0f6b28bb55019831e21"
SPAN_QA_SHA256 = {0: SPAN_QA_SEED0_SHA256, 1: SPAN_QA_SEED1_SHA256, 2: SPAN_QA_SEED2_SHA256}
SPAN_QA_LOG_SHA256 = {0: SPAN_QA_SEED0_LOG_SHA256, 1: SPAN_QA_SEED1_LOG_SHA256, 2: SPAN_QA_SEED2_LOG_SHA256}
#: The seeds whose checkpoint is committed (seed 0 is the page's model).
SPAN_QA_SEEDS = tuple(s for s, sha in SPAN_QA_SHA256.items() if sha)
_REGENERATE = "python scripts/train_span_qa.py --seeds 3"


def span_head_state(head: SpanHead) -> dict[str, Tensor]:
    """The trained weights in float16 (what the checkpoint stores)."""
    return {k: v.detach().to(torch.float16) for k, v in head.state_dict().items()}


def load_span_qa(encoder, seed: int = 0) -> tuple[SpanHead, dict]:
    """The committed span extractor of one seed (sha256-verified) on top of ``encoder`` (MiniLM), and its log."""
    if seed not in SPAN_QA_SEEDS:
        raise ValueError(f"committed seeds are {list(SPAN_QA_SEEDS)}, got {seed}")
    path = verify_checkpoint(seed_file(SPAN_QA_FILE, seed), SPAN_QA_SHA256[seed], _REGENERATE,
                             f"SPAN_QA_SEED{seed}_SHA256 in wmbook/lab/qa_span.py")
    log = load_log(path.with_suffix(".json"), SPAN_QA_LOG_SHA256[seed], _REGENERATE,
                   f"SPAN_QA_SEED{seed}_LOG_SHA256 in wmbook/lab/qa_span.py")
    blob = torch.load(path, weights_only=True)
    recipe = SpanQARecipe(**blob["recipe"])
    head = new_span_head(encoder, recipe.n_trained_layers, seed=recipe.seed)
    head.load_state_dict({k: v.float() for k, v in blob["state"].items()})
    return head.eval(), log
