r"""Looking inside and steering: layer-wise linear probes with a control task, head ablation,
and constrained decoding.

Explained on page 8.2, "Challenges in reducing the load", section 8.2.3.

**Probes.** A linear probe is a logistic regression :math:`p(y \mid h) = \mathrm{softmax}(W h + b)`
trained on a frozen layer's vector :math:`h` of each word (here the first WordPiece of the word).
High accuracy alone does not show that the layer *encodes* the property: a flexible probe can
memorise. Hewitt & Liang (2019) pair every probe with a **control task** — each word *type* gets
a random label (drawn from the real labels' distribution) that it keeps wherever it occurs — and
report the **selectivity**

.. math:: \mathrm{selectivity} = \mathrm{acc}_{\text{probe}} - \mathrm{acc}_{\text{control}}.

**Head ablation.** One head's output (its :math:`d_{head}` slice of the concatenated heads, the
input of :math:`W_o`) is set to zero with a forward pre-hook; the change in a measurement is the
head's measured effect.

**Constrained decoding.** While sampling from a character GPT, a bias :math:`\beta` is added to
the logit of the next character of a target word whenever the text written so far ends with a
prefix of that word (starting at a word boundary); :math:`\beta = \infty` forces it. The
success rate is the share of samples that contain the word.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor


def entity_labels(sentences: Sequence[Sequence[tuple[str, str]]], tokenizer=None
                  ) -> tuple[list[list[str]], list[np.ndarray]]:
    """Words and per-word labels (1 = part of an entity, BIO tag not ``O``; 0 otherwise) per sentence.

    With a ``tokenizer``, words it turns into no token at all (some emoji, control characters) are
    dropped, so that every word kept has a vector in :func:`word_features`.
    """
    if tokenizer is not None:
        sentences = [[(w, t) for w, t in s if tokenizer.tokenize(w)] for s in sentences]
        sentences = [s for s in sentences if s]
    words = [[w for w, _ in s] for s in sentences]
    labels = [np.array([int(t != "O") for _, t in s]) for s in sentences]
    return words, labels


@torch.no_grad()
def word_features(model, tokenizer, sentences: Sequence[Sequence[str]], batch_size: int = 32,
                  max_length: int = 128) -> list[np.ndarray]:
    """Per layer (embeddings, then each encoder layer) an array ``(n_words, d_model)``: the vector
    of each word's first WordPiece. Words cut off by ``max_length`` are an error (use shorter sentences)."""
    per_layer: list[list[np.ndarray]] | None = None
    for start in range(0, len(sentences), batch_size):
        batch = [list(s) for s in sentences[start:start + batch_size]]
        enc = tokenizer(batch, is_split_into_words=True, return_tensors="pt", padding=True, truncation=True,
                        max_length=max_length)
        out = model(**{k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")},
                    output_hidden_states=True)
        hidden = torch.stack(out.hidden_states, 0).float().numpy()  # (L + 1, B, T, d)
        if per_layer is None:
            per_layer = [[] for _ in range(hidden.shape[0])]
        for b, words in enumerate(batch):
            ids = enc.word_ids(b)
            first = {}
            for t, w in enumerate(ids):
                if w is not None and w not in first:
                    first[w] = t
            if len(first) != len(words):
                raise ValueError(f"sentence {start + b} has {len(words)} words but only {len(first)} fit in "
                                 f"max_length={max_length} tokens; raise max_length or drop long sentences")
            pos = [first[w] for w in range(len(words))]
            for layer in range(hidden.shape[0]):
                per_layer[layer].append(hidden[layer, b, pos])
    if per_layer is None:
        raise ValueError("no sentences given")
    return [np.concatenate(chunks) for chunks in per_layer]


def control_labels(words: Sequence[str], labels: np.ndarray, seed: int) -> np.ndarray:
    """Hewitt & Liang's control task: every word type (lower-cased) gets one random label, drawn
    from the empirical distribution of ``labels``; returns the control label of each word."""
    if len(words) != len(labels):
        raise ValueError(f"{len(words)} words but {len(labels)} labels")
    rng = np.random.default_rng(seed)
    values, counts = np.unique(labels, return_counts=True)
    types = sorted({w.lower() for w in words})
    draw = dict(zip(types, rng.choice(values, len(types), p=counts / counts.sum())))
    return np.array([draw[w.lower()] for w in words])


def probe_accuracy(X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, y_test: np.ndarray,
                   C: float = 1.0) -> float:
    """Test accuracy of a logistic-regression probe (features standardised on the training set)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=300))
    probe.fit(X_train, y_train)
    return float(probe.score(X_test, y_test))


def fit_probe(X_train: np.ndarray, y_train: np.ndarray, C: float = 1.0):
    """The fitted probe (a scikit-learn pipeline) of :func:`probe_accuracy`."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=300)).fit(X_train, y_train)


@contextlib.contextmanager
def ablate_head(model, layer: int, head: int):
    """Within the block, head ``head`` of encoder layer ``layer`` of a Hugging Face BERT outputs zeros."""
    n_layers, n_heads = model.config.num_hidden_layers, model.config.num_attention_heads
    if not (0 <= layer < n_layers and 0 <= head < n_heads):
        raise ValueError(f"layer must be in 0..{n_layers - 1} and head in 0..{n_heads - 1}, got {layer}, {head}")
    d_head = model.config.hidden_size // n_heads
    dense = model.encoder.layer[layer].attention.output.dense  # W_o: its input is the concatenated heads

    def hook(module, args):
        x = args[0].clone()
        x[..., head * d_head:(head + 1) * d_head] = 0
        return (x,) + tuple(args[1:])

    handle = dense.register_forward_pre_hook(hook)
    try:
        yield
    finally:
        handle.remove()


@torch.no_grad()
def steer_sample(model, prompt_ids: Sequence[int], word_ids: Sequence[int], bias: float, n_new: int,
                 n_samples: int, seed: int, boundary_ids: Sequence[int] = (), temperature: float = 1.0
                 ) -> tuple[Tensor, Tensor]:
    """Sample ``n_samples`` continuations of ``n_new`` tokens with the logit bias of the module doc.

    The bias applies to ``word_ids[j]`` when the last ``j`` tokens equal ``word_ids[:j]`` (longest such
    ``j < len(word_ids)``); for ``j = 0`` only after a token in ``boundary_ids`` (e.g. a space).
    ``bias=float('inf')`` forces the token. Returns the new tokens ``(n_samples, n_new)`` and their
    log-probabilities under the *unsteered* model ``(n_samples, n_new)`` (the price of steering).
    """
    if not word_ids:
        raise ValueError("word_ids is empty: give the tokens of the word to steer towards")
    n_ctx = model.cfg.n_ctx
    gen = torch.Generator().manual_seed(seed)
    x = torch.tensor(list(prompt_ids))[None].repeat(n_samples, 1)
    word = list(word_ids)
    new, logps = [], []
    for _ in range(n_new):
        logits = model(x[:, -n_ctx:], need_weights=False).logits[:, -1] / temperature  # (n, V)
        logp = torch.log_softmax(logits, -1)
        steered = logits.clone()
        if bias != 0:
            tail = x[:, -len(word):].tolist()
            for i, row in enumerate(tail):
                j = next((j for j in range(len(word) - 1, 0, -1) if row[-j:] == word[:j]), 0)
                if j == 0 and row[-1] not in boundary_ids:
                    continue
                if bias == float("inf"):
                    steered[i] = -float("inf")
                    steered[i, word[j]] = 0.0
                else:
                    steered[i, word[j]] += bias
        nxt = torch.multinomial(torch.softmax(steered, -1), 1, generator=gen)[:, 0]
        logps.append(logp.gather(1, nxt[:, None])[:, 0])
        new.append(nxt)
        x = torch.cat([x, nxt[:, None]], 1)
    return torch.stack(new, 1), torch.stack(logps, 1)


def contains_word(texts: Sequence[str], word: str) -> np.ndarray:
    """Whether each text contains ``word`` (as a substring)."""
    return np.array([word in t for t in texts])


__all__ = ["entity_labels", "word_features", "control_labels", "probe_accuracy", "fit_probe", "ablate_head",
           "steer_sample", "contains_word"]
