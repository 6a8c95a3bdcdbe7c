r"""Text classification on real data: linear baselines, frozen MiniLM features, the scores, truncation.

Explained on page 6.1, "Natural language processing" (sections 6.1.1 and 6.1.3).

* Poem Sentiment (Sheng & Uthus 2020): verses from Project Gutenberg, each labelled
  negative / positive / no impact / mixed (:data:`POEM_CLASSES`; the files' labels -1, 1, 0, 2).
  :func:`load_poem_sentiment` reads the three splits through :mod:`wmbook.data.loaders`.
* Two classifiers, both multinomial logistic regression (scikit-learn), on two views of the text:
  TF-IDF of words and word pairs (:func:`tfidf_logreg`), and MiniLM's mean-pooled sentence
  vector :math:`e \in \mathbb{R}^{384}` with the encoder frozen (:func:`probe_logreg`):

  .. math:: p(y = c \mid x) = \frac{\exp(w_c^\top \phi(x) + b_c)}{\sum_{c'} \exp(w_{c'}^\top \phi(x) + b_{c'})}.

  Their spread comes from resampling the training set (:func:`bootstrap_rows`): the fits
  themselves are deterministic.
* Scores (:func:`scores`): accuracy and macro-F1 (the unweighted mean of the per-class F1
  :math:`2PR/(P+R)`), computed by scikit-learn over the classes the evaluation set holds.
* Truncation (page 6.1.3): :func:`embed` with ``max_pieces=k`` lets MiniLM see only the first
  ``k`` word pieces of each text (plus ``[CLS]``/``[SEP]``).

``scripts/nlp_minilm_features.py`` caches the MiniLM features the page needs (Poem Sentiment,
and SST-2 dev truncated to k pieces) in ``wmbook/data/checkpoints/nlp_minilm_features.pt``;
:func:`load_nlp_features` reads them back, sha256-verified.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from wmbook.data.checkpoint import CHECKPOINT_DIR, file_sha256, verify_with_log

#: Class ids of Poem Sentiment, in the order of its Hugging Face copy (0 negative ... 3 mixed).
POEM_CLASSES = ("negative", "positive", "no impact", "mixed")
#: The label in the files -> class id.
_POEM_FILE_LABEL = {-1: 0, 1: 1, 0: 2, 2: 3}
#: Truncation lengths (word pieces) of page 6.1.3; ``None`` = the whole text.
TRUNCATIONS = (4, 8, 16, 32)

NLP_FEATURES_FILE = CHECKPOINT_DIR / "nlp_minilm_features.pt"
#: sha256 of the committed features file and its log, as printed by ``scripts/nlp_minilm_features.py``.
NLP_FEATURES_SHA256 = "815b2843052e335d1da5fc76dbea2d1cbeeed38d993ef7382fe2b8ef1603acdc"
NLP_FEATURES_LOG_SHA256 = "f9fb37234ce9f592fce5d6285ce7c6747fdcab36a24da5baf26156b1f498ea03"
_REGENERATE = "python scripts/nlp_minilm_features.py  (a few minutes on one CPU thread)"


def load_poem_sentiment() -> dict[str, list[tuple[str, int]]]:
    """Poem Sentiment as ``{"train"|"dev"|"test": [(verse, class id), ...]}`` (ids: :data:`POEM_CLASSES`).

    The files are ``id<TAB>verse<TAB>label`` with labels -1 (negative), 0 (no impact),
    1 (positive), 2 (mixed); they are read through :func:`wmbook.data.loaders.fetch`
    (sha256-checked, ``WMBOOK_DATA_DIR``). The mixed class occurs only in the training split.
    """
    from wmbook.data.loaders import fetch

    out = {}
    for split in ("train", "dev", "test"):
        rows = []
        for n, line in enumerate(fetch(f"sentiment/poem_sentiment/{split}.tsv").read_text(encoding="utf-8").split("\n")):
            if not line.strip():
                continue
            parts = line.split("\t")
            if len(parts) != 3 or int(parts[2]) not in _POEM_FILE_LABEL:
                raise ValueError(f"poem_sentiment/{split}.tsv line {n + 1} is not 'id<TAB>verse<TAB>label' "
                                 f"with a label in -1..2: {line[:80]!r}")
            rows.append((parts[1].strip(), _POEM_FILE_LABEL[int(parts[2])]))
        out[split] = rows
    return out


def bootstrap_rows(n: int, draw: int) -> np.ndarray:
    """Training rows of draw ``draw``: draw 0 is all ``n`` rows in order; draw d > 0 is a bootstrap
    resample (``n`` rows with replacement, seeded by ``d``)."""
    if n < 1 or draw < 0:
        raise ValueError(f"need n >= 1 and draw >= 0, got n={n}, draw={draw}")
    if draw == 0:
        return np.arange(n)
    return np.random.default_rng(draw).integers(0, n, size=n)


def tfidf_logreg(train_texts: Sequence[str], train_y: Sequence[int], C: float = 10.0, max_iter: int = 2000):
    """TF-IDF of words and word pairs (sublinear tf, terms seen at least once) + logistic regression.

    Returns a fitted scikit-learn ``Pipeline`` (``.predict(texts)``).
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                          LogisticRegression(C=C, max_iter=max_iter))
    with _one_blas_thread():
        return model.fit(list(train_texts), np.asarray(train_y))


def probe_logreg(train_X, train_y: Sequence[int], C: float = 1.0, max_iter: int = 2000):
    """Logistic regression on fixed feature vectors (e.g. frozen MiniLM's 384-d mean pool)."""
    from sklearn.linear_model import LogisticRegression

    X = train_X.numpy() if isinstance(train_X, Tensor) else np.asarray(train_X)
    with _one_blas_thread():
        return LogisticRegression(C=C, max_iter=max_iter).fit(X, np.asarray(train_y))


def _one_blas_thread():
    """Fit on one BLAS thread: these fits are small, and on a busy shared CPU the BLAS threads
    wait for each other (page 6.1 measured a 9 s fit drop to 0.1 s)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


def scores(y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[int] | None = None) -> dict[str, float]:
    """Accuracy and macro-F1 in %, by scikit-learn. Macro-F1 averages the classes in ``labels``
    (default: the classes ``y_true`` holds, so a class absent from the evaluation set is not averaged in)."""
    from sklearn.metrics import accuracy_score, f1_score

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1 or not len(y_true):
        raise ValueError(f"y_true and y_pred must be equal-length 1-d label lists, got {y_true.shape} and {y_pred.shape}")
    labels = sorted(set(y_true.tolist())) if labels is None else list(labels)
    return {"accuracy": 100 * accuracy_score(y_true, y_pred),
            "macro_f1": 100 * f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)}


def majority_scores(train_y: Sequence[int], y_true: Sequence[int]) -> dict[str, float]:
    """The reference line: always answer the most frequent training class."""
    values, counts = np.unique(np.asarray(train_y), return_counts=True)
    return scores(y_true, np.full(len(y_true), values[counts.argmax()]))


def resampled_scores(fit_predict: Callable[[np.ndarray], np.ndarray], n_train: int, y_true: Sequence[int],
                     draws: int = 10) -> dict[str, np.ndarray]:
    """``fit_predict(rows)`` trains on the given training rows and predicts the evaluation set;
    this runs it on :func:`bootstrap_rows` draws ``0..draws-1`` and returns each score per draw."""
    runs = [scores(y_true, fit_predict(bootstrap_rows(n_train, d))) for d in range(draws)]
    return {k: np.array([r[k] for r in runs]) for k in runs[0]}


@torch.no_grad()
def embed(model, tokenizer, texts: Sequence[str], max_pieces: int | None = None, batch_size: int = 64) -> Tensor:
    """MiniLM's mean-pooled final states ``(N, d_model)`` of each text, ``[CLS]``/``[SEP]`` included.

    ``max_pieces=k`` keeps only the first ``k`` word pieces of each text (then ``[SEP]``), so the
    model sees nothing after them. ``model`` is a :class:`wmbook.nn.bert.BertModel`.
    """
    if max_pieces is not None and max_pieces < 1:
        raise ValueError(f"max_pieces must be >= 1 (or None for the whole text), got {max_pieces}")
    limit = None if max_pieces is None else max_pieces + 2
    enc = tokenizer(list(texts), truncation=True, max_length=limit or 512)["input_ids"]
    order = sorted(range(len(enc)), key=lambda i: (len(enc[i]), i))
    out = torch.empty(len(enc), model.cfg.d_model)
    model.eval()
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        width = max(len(enc[i]) for i in idx)
        ids = torch.tensor([enc[i] + [0] * (width - len(enc[i])) for i in idx])
        mask = (ids != 0).long()
        hidden = model(ids, mask).last_hidden_state
        m = mask.unsqueeze(-1).float()
        out[idx] = (hidden * m).sum(1) / m.sum(1)
    return out


def save_nlp_features(path: str | Path, blob: dict, log: dict) -> str:
    """Write the features (float16) with ``torch.save`` and a JSON log next to it; return the sha256."""
    import json

    def half(x):
        if isinstance(x, Tensor):
            return x.to(torch.float16) if x.is_floating_point() else x
        return {k: half(v) for k, v in x.items()} if isinstance(x, dict) else x

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(half(blob), path)
    sha = file_sha256(path)
    path.with_suffix(".json").write_text(json.dumps({"checkpoint": path.name, "sha256": sha, **log}, indent=1) + "\n",
                                         encoding="utf-8")
    return sha


def load_nlp_features(path: str | Path | None = None, sha256: str | None = "committed") -> dict:
    """The cached MiniLM features of page 6.1 as float32, with the log under ``"log"``.

    ``{"poem": {split: {"features": (N, 384), "labels": (N,)}}, "sst2_first": {k: (872, 384)},
    "log": {...}}``; ``sst2_first[k]`` are SST-2 dev sentences cut to their first ``k`` pieces.
    """
    path, log = verify_with_log(path, sha256, "committed", committed=NLP_FEATURES_FILE,
                                committed_sha256=NLP_FEATURES_SHA256, committed_log_sha256=NLP_FEATURES_LOG_SHA256,
                                regenerate=_REGENERATE, constant="NLP_FEATURES", module="wmbook/lab/classify.py")
    blob = torch.load(path, map_location="cpu", weights_only=True)

    def full(x):
        if isinstance(x, Tensor):
            return x.float() if x.is_floating_point() else x
        return {k: full(v) for k, v in x.items()} if isinstance(x, dict) else x

    out = full(blob)
    out["sst2_first"] = {int(k): v for k, v in out["sst2_first"].items()}
    out["log"] = log
    return out


def vector_bytes(d_model: int = 384, dtype: torch.dtype = torch.float32) -> int:
    """Bytes of one sentence vector: ``d_model`` numbers of ``dtype`` (arithmetic, not a measurement)."""
    return d_model * torch.empty(0, dtype=dtype).element_size()
