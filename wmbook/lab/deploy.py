r"""Deploying a model: size, latency, accuracy and the knobs that trade one for another.

Explained on page 9.2, "How to choose a pre-trained model?" (the measured table of the book's
models) and page 9.4, "How to balance quality and inference speed?" (the knobs on one task).

*Size on disk* is the number of bytes ``torch.save`` writes for a model's ``state_dict``
(:func:`state_dict_bytes`): about 4 bytes per float32 parameter plus a small header.

*Latency* is the median over interleaved rounds (:func:`median_seconds`, built on
:func:`wmbook.lab.measure.time_in_turns`, one thread, CPU time of the calling thread) of one
forward pass at a given batch size and sequence length.

*Dynamic int8 quantisation* (:func:`quantize_linear_int8`) stores each ``nn.Linear`` weight as
8-bit integers with one scale per tensor,

.. math::

    q = \operatorname{clamp}\bigl(\operatorname{round}(w / s), -128, 127\bigr), \qquad
    s = \frac{\max |w|}{127.5}, \qquad \hat w = s\,q,

(:func:`int8_symmetric`, PyTorch's default symmetric weight observer) and quantises the
activations on the fly, per batch, before each matrix product. Embeddings, LayerNorms and
attention's own products stay float32. :func:`quantize_linear_int8` wraps
``torch.ao.quantization.quantize_dynamic``, which works in torch 2.13 but warns that it is
deprecated (its replacement is the ``torchao`` package); the warning's first line is returned
with the model so that the page can show it.

*Pareto front* (:func:`pareto_front`): a setting is on the front if no other setting is at least
as fast *and* at least as accurate, and strictly better in one of the two.

*Generation with and without a KV cache* (:func:`generation_seconds`): the book's
:func:`wmbook.nn.sampling.generate` re-reads the whole context at every step without a cache and
reuses the cached keys and values with one.
"""
from __future__ import annotations

import copy
import io
import statistics
import warnings
from typing import Callable, NamedTuple, Sequence

import torch
from torch import Tensor, nn

from wmbook.lab.measure import time_in_turns

BYTES_FLOAT32 = 4


def state_dict_bytes(model: nn.Module) -> int:
    """Bytes ``torch.save(model.state_dict())`` writes: the model's size on disk (page 9.2).

    Tied weights (GPT's ``lm_head`` shares ``wte``) are stored once, as ``torch.save`` does.
    Works for dynamically quantised models too (their packed int8 weights are saved).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getbuffer().nbytes


class ParameterShares(NamedTuple):
    """Parameters of a model split by where they sit (page 9.4)."""

    total: int
    embedding: int  # in nn.Embedding modules (word, position, token type)
    linear: int  # in nn.Linear modules: what dynamic int8 quantisation converts
    other: int  # LayerNorms and anything else

    @property
    def embedding_share(self) -> float:
        return self.embedding / self.total

    @property
    def linear_share(self) -> float:
        return self.linear / self.total


def parameter_shares(model: nn.Module) -> ParameterShares:
    """Count a float model's parameters in ``nn.Embedding``, ``nn.Linear`` and other modules (each tensor once)."""
    seen: set[int] = set()
    counts = {"embedding": 0, "linear": 0, "other": 0}
    for module in model.modules():
        kind = "embedding" if isinstance(module, nn.Embedding) else "linear" if isinstance(module, nn.Linear) else "other"
        for p in module.parameters(recurse=False):
            if id(p) not in seen:
                seen.add(id(p))
                counts[kind] += p.numel()
    total = sum(counts.values())
    if total == 0:
        raise ValueError("the model has no parameters (a quantised model hides them: count the float model)")
    return ParameterShares(total, counts["embedding"], counts["linear"], counts["other"])


def int8_symmetric(w: Tensor) -> tuple[Tensor, float]:
    r"""The formula of symmetric per-tensor int8 quantisation: ``(q, s)`` with
    :math:`s = \max|w| / 127.5` and :math:`q = \mathrm{clamp}(\mathrm{round}(w/s), -128, 127)`.

    This is what PyTorch's default weight observer for dynamic quantisation computes
    (``MinMaxObserver``, ``qint8``, ``per_tensor_symmetric``); page 9.4 checks that
    :func:`quantize_linear_int8` stores exactly these integers (PyTorch multiplies by :math:`1/s` in float32 rather than
    dividing; at an exact tie the two can differ by one, so this does the same). ``s * q`` is the
    weight the quantised layer uses; its error is at most ``s / 2`` per entry.
    """
    if not w.is_floating_point() or w.numel() == 0:
        raise ValueError(f"w must be a non-empty float tensor, got {w.dtype} with {w.numel()} entries")
    w = w.detach().float()
    s = torch.clamp(w.abs().max() / 127.5, min=torch.finfo(torch.float32).eps)  # in float32, as the observer
    q = torch.clamp(torch.round(w * (1.0 / s)), -128, 127).to(torch.int8)  # as torch: times 1/s, half to even
    return q, float(s)


class Quantized(NamedTuple):
    """What :func:`quantize_linear_int8` returns."""

    model: nn.Module  # a copy whose nn.Linear layers are DynamicQuantizedLinear (int8 weights)
    warning: str | None  # the first line of torch's deprecation warning, if it gave one


def quantize_linear_int8(model: nn.Module) -> Quantized:
    """A copy of ``model`` with every ``nn.Linear`` dynamically quantised to int8 (the original is untouched).

    Uses ``torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)``:
    int8 weights with one scale per tensor (:func:`int8_symmetric`), activations quantised per
    batch at run time; everything that is not an ``nn.Linear`` stays float32. Torch 2.13 marks
    this API deprecated in favour of ``torchao``; the warning is caught and its first line
    returned, so the caller can report it. For inference only (the copy is in eval mode).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not any(isinstance(m, nn.Linear) for m in model.modules()):
        raise ValueError("the model has no nn.Linear layer: dynamic int8 quantisation would change nothing")
    float_copy = copy.deepcopy(model).eval()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        q = torch.ao.quantization.quantize_dynamic(float_copy, {nn.Linear}, dtype=torch.qint8)
    dep = [w for w in caught if issubclass(w.category, DeprecationWarning)]
    first = str(dep[0].message).strip().splitlines()[0] if dep else None
    return Quantized(q.eval(), first)


def median_seconds(fns: dict[str, Callable[[], object]], rounds: int = 7, min_seconds: float = 0.005,
                   clock: Callable[[], float] | None = None) -> dict[str, float]:
    """Median seconds per call of each function, timed in interleaved rounds
    (:func:`wmbook.lab.measure.time_in_turns`: every round runs each function, the order rotates).
    Run it inside ``wmbook.threads(1)``: the clock is the calling thread's CPU time."""
    if not fns:
        raise ValueError("fns is empty: pass {name: function} to time")
    times = time_in_turns(fns, rounds, min_seconds=min_seconds, clock=clock)
    return {name: statistics.median(ts) for name, ts in times.items()}


def median_ratio(fns: dict[str, Callable[[], object]], slow: str, fast: str, rounds: int = 7,
                 min_seconds: float = 0.005, clock: Callable[[], float] | None = None) -> tuple[float, dict[str, float]]:
    """``(median over rounds of t_slow / t_fast, {name: median seconds})`` from one interleaved timing."""
    if slow not in fns or fast not in fns:
        raise ValueError(f"slow={slow!r} and fast={fast!r} must both be keys of fns {list(fns)}")
    times = time_in_turns(fns, rounds, min_seconds=min_seconds, clock=clock)
    ratio = statistics.median(a / b for a, b in zip(times[slow], times[fast]))
    return ratio, {name: statistics.median(ts) for name, ts in times.items()}


def pareto_front(latency: Sequence[float], accuracy: Sequence[float]) -> list[int]:
    """Indices (in input order) of the settings no other setting dominates: lower-or-equal
    latency and higher-or-equal accuracy, strictly better in one."""
    if len(latency) != len(accuracy):
        raise ValueError(f"latency and accuracy must have the same length, got {len(latency)} and {len(accuracy)}")
    front = []
    for i, (t, a) in enumerate(zip(latency, accuracy)):
        dominated = any(t2 <= t and a2 >= a and (t2 < t or a2 > a)
                        for j, (t2, a2) in enumerate(zip(latency, accuracy)) if j != i)
        if not dominated:
            front.append(i)
    return front


def best_within_budget(rows: Sequence[dict], budget: float, cost: str = "latency_ms",
                       quality: str = "quality") -> dict | None:
    """The row with the highest ``quality`` among those whose ``cost`` is at most ``budget``
    (None if none fits): page 9.2's "which model for this latency budget?". Ties go to the cheaper."""
    for r in rows:
        if cost not in r or quality not in r:
            raise ValueError(f"every row needs {cost!r} and {quality!r}; got keys {sorted(r)}")
    fits = [r for r in rows if r[cost] <= budget]
    return max(fits, key=lambda r: (r[quality], -r[cost])) if fits else None


# --- a sentence classifier: MiniLM + the teacher head of page 5.2 ----------------------------

class SentenceClassifier(nn.Module):
    """An encoder (a :class:`wmbook.nn.bert.BertModel`) whose mean-pooled output feeds ``head``.

    ``forward(input_ids, attention_mask)`` -> logits (B, n_classes). With MiniLM and the teacher
    head of page 5.2 (:func:`wmbook.lab.distill_bert.load_sst2_teacher`) it is the frozen-MiniLM
    SST-2 classifier; pooling over the real tokens, ``[CLS]`` and ``[SEP]`` included, as the head
    was trained (:func:`wmbook.lab.finetune.minilm_features`).
    """

    def __init__(self, encoder: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.encoder, self.head = encoder, head

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        hidden = self.encoder(input_ids, attention_mask).last_hidden_state  # (B, T, d)
        m = attention_mask.to(hidden.dtype).unsqueeze(-1)  # (B, T, 1)
        return self.head((hidden * m).sum(1) / m.sum(1).clamp_min(1.0))


def tokenize(tokenizer, texts: Sequence[str], max_length: int | None = None) -> list[list[int]]:
    """Token ids of each text (``[CLS]`` ... ``[SEP]``), truncated to ``max_length`` tokens if given
    (the last kept token is then ``[SEP]``; the tokenizer's own limit otherwise)."""
    if max_length is not None and max_length < 2:
        raise ValueError(f"max_length must be >= 2 ([CLS] and [SEP]) or None, got {max_length}")
    kw = {"truncation": True} if max_length is None else {"truncation": True, "max_length": max_length}
    return tokenizer(list(texts), **kw)["input_ids"]


def pad(seqs: Sequence[Sequence[int]], pad_id: int = 0) -> tuple[Tensor, Tensor]:
    """Right-pad to the longest: ``(input_ids (B, T), attention_mask (B, T))``."""
    if not seqs or any(len(s) == 0 for s in seqs):
        raise ValueError("need at least one non-empty sequence")
    T = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), T), pad_id, dtype=torch.long)
    mask = torch.zeros(len(seqs), T, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
    return ids, mask


@torch.no_grad()
def classify(model: nn.Module, seqs: Sequence[Sequence[int]], batch_size: int = 64) -> Tensor:
    """Logits (N, C) of ``model(input_ids, attention_mask)`` for every sequence, in input order,
    computed in length-sorted batches (little padding; the result does not depend on the batching
    beyond float rounding). An output with a ``.logits`` field (``BertForSequenceClassification``)
    gives that field."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = sorted(range(len(seqs)), key=lambda i: (len(seqs[i]), i))
    out: list[Tensor | None] = [None] * len(seqs)
    model.eval()
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        out_batch = model(*pad([seqs[i] for i in idx]))
        logits = getattr(out_batch, "logits", out_batch)
        for k, i in enumerate(idx):
            out[i] = logits[k]
    return torch.stack(out)  # type: ignore[arg-type]


def accuracy(logits: Tensor, labels: Tensor) -> float:
    """Share of rows whose argmax is the label."""
    if logits.ndim != 2 or labels.shape != (logits.shape[0],):
        raise ValueError(f"logits must be (N, C) and labels (N,), got {tuple(logits.shape)} and {tuple(labels.shape)}")
    return (logits.argmax(-1) == labels).float().mean().item()


@torch.no_grad()
def keys_values_bytes(model: nn.Module, *inputs: Tensor, bytes_per_value: int = BYTES_FLOAT32) -> int:
    """Bytes of all keys and values a forward pass ``model(*inputs)`` computes (padding included):
    the part of the model's working memory that grows with batch and length. Counts the outputs of
    every module named ``...W_k`` / ``...W_v`` (float32: 4 bytes each; quantised layers too, whose
    outputs are float32)."""
    from wmbook.lab.distill import count_keys_values

    return count_keys_values(model, *inputs) * bytes_per_value


# --- generation with and without the KV cache ---------------------------------------------

def cache_bytes(past_key_values) -> int:
    """Bytes held by a GPT's KV cache (``GPTOutput.past_key_values``: per layer ``(k, v)``)."""
    if not past_key_values:
        raise ValueError("past_key_values is empty: run the model with use_cache=True")
    return sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in past_key_values)


def generation_seconds(model, prompt: Tensor, new_tokens: int, rounds: int = 5,
                       clock: Callable[[], float] | None = None) -> tuple[float, dict[str, float]]:
    """Time greedy generation of ``new_tokens`` tokens after ``prompt`` (B, T) with and without
    the KV cache (:func:`wmbook.nn.sampling.generate`, ``temperature=0``), interleaved.

    Returns ``(speed-up = median over rounds of t_without / t_with, {"no cache": s, "cache": s})``.
    Both produce the same tokens (checked here on the first call). Run inside ``wmbook.threads(1)``.
    """
    from wmbook.nn.sampling import generate

    if new_tokens < 1:
        raise ValueError(f"new_tokens must be >= 1, got {new_tokens}")
    with torch.no_grad():
        a = generate(model, prompt, new_tokens, temperature=0, use_cache=True)
        b = generate(model, prompt, new_tokens, temperature=0, use_cache=False)
    if not torch.equal(a, b):
        raise AssertionError("generation with and without the KV cache produced different tokens")

    def run(use_cache: bool) -> Callable[[], object]:
        def f():
            with torch.no_grad():
                return generate(model, prompt, new_tokens, temperature=0, use_cache=use_cache)
        return f

    return median_ratio({"no cache": run(False), "cache": run(True)}, "no cache", "cache", rounds=rounds,
                        min_seconds=0.0, clock=clock)


__all__ = [
    "BYTES_FLOAT32", "ParameterShares", "best_within_budget", "Quantized", "SentenceClassifier", "accuracy", "cache_bytes", "classify",
    "generation_seconds", "int8_symmetric", "keys_values_bytes", "median_ratio", "median_seconds", "pad",
    "parameter_shares", "pareto_front", "quantize_linear_int8", "state_dict_bytes", "tokenize",
]
