r"""Digit reversal: the sequence-to-sequence task of page 5.1, its data and its training run.

Explained on page 5.1, "A Transformer language model", section 5.1.3. The source is a string of
``L_MIN``..``L_MAX`` random digits, the target the same digits backwards; an encoder–decoder
(:class:`wmbook.nn.transformer.EncoderDecoder`) is trained with teacher forcing, i.e. to minimise

.. math::

    \mathcal{L} = -\frac{1}{|y|}\sum_{t=1}^{|y|} \log p_\theta(y_t \mid y_{<t}, x)

over the target tokens (padding ignored), and scored by the share of held-out strings it
reverses exactly with greedy decoding. Token ids: 0 padding, 1 BOS, 2 EOS, 3..12 the digits.
A fixed tenth of all strings (:func:`held_out`) is never trained on.

``scripts/train_reversal.py`` runs :func:`train_reversal` for several seeds and writes the
seed-0 model (trained, and its snapshot after ``snapshot_step`` steps) with a JSON log of every
seed (:func:`save_reversal`); the page loads them with :func:`load_reversal` and re-runs the first
steps itself.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from wmbook.nn.transformer import EncoderDecoder, TransformerConfig
from wmbook.nn.train import History, TrainConfig, warmup_cosine

PAD, BOS, EOS = 0, 1, 2
L_MIN, L_MAX = 3, 9

#: The committed checkpoint: the seed-0 model after all steps and after ``snapshot_step`` steps.
REVERSAL_FILE = "reversal.pt"
#: sha256 of ``wmbook/data/checkpoints/reversal.pt``, as printed by ``scripts/train_reversal.py``.
REVERSAL_SHA256 = "9adcafdd773b7ddcc54033475efd6ffef3b9235aa2014eb315a1cd464b5a77c2"
#: sha256 of its training log (``reversal.json``: every seed's evaluations), printed by the same script.
REVERSAL_LOG_SHA256 = "fe5f3a1420c1fcd23eba00df70cf282c57eb6347d2de0aa15ef759808cb04a83"
_REGENERATE = "python scripts/train_reversal.py  (about 2 minutes on one CPU thread)"


def held_out(digits: Tensor, lengths: Tensor) -> Tensor:
    r"""The tenth of all strings never trained on: :math:`\sum_i (i + 1)\, d_i \equiv 0 \pmod{10}`.

    ``digits`` is ``(n, L_MAX)`` (digits 0..9, anything after ``lengths``), ``lengths`` ``(n,)``.
    """
    pos = torch.arange(digits.shape[1])
    real = pos < lengths[:, None]  # (n, L_MAX)
    return (digits * (pos + 1) * real).sum(1) % 10 == 0


def reversal_batch(n: int, gen: torch.Generator, test: bool = False) -> tuple[Tensor, Tensor]:
    """``n`` digit strings (lengths L_MIN..L_MAX) and their reversals, as padded token ids.

    Returns ``src (n, L_MAX)``, padded at the end, and ``tgt (n, L_MAX + 2)``: BOS, the reversed
    digits, EOS, padding. ``test=True`` draws from the held-out tenth (:func:`held_out`) only,
    ``test=False`` from the other nine tenths.
    """
    lengths = torch.randint(L_MIN, L_MAX + 1, (20 * n,), generator=gen)
    digits = torch.randint(0, 10, (20 * n, L_MAX), generator=gen)
    pick = held_out(digits, lengths) == test
    lengths, digits = lengths[pick][:n], digits[pick][:n]
    real = torch.arange(L_MAX) < lengths[:, None]
    src = torch.where(real, digits + 3, PAD)  # (n, L_MAX), padded at the end
    tgt = torch.full((n, L_MAX + 2), PAD)  # BOS, reversed digits, EOS, padding
    tgt[:, 0] = BOS
    for i, L in enumerate(lengths.tolist()):
        tgt[i, 1:L + 1] = src[i, :L].flip(0)
        tgt[i, L + 1] = EOS
    return src, tgt


def text(ids: Tensor) -> str:
    """Token ids -> digit string (BOS and padding dropped, stop at EOS)."""
    ids = ids.tolist()
    ids = ids[: ids.index(EOS)] if EOS in ids else ids
    return "".join(str(i - 3) for i in ids if i > 2)


def exact_match(pred: Tensor, tgt: Tensor) -> Tensor:
    """``(B,)`` True where the decoded ids equal the target (both padded with PAD = 0)."""
    T = max(pred.shape[1], tgt.shape[1])
    pred, tgt = F.pad(pred, (0, T - pred.shape[1])), F.pad(tgt, (0, T - tgt.shape[1]))
    return (pred == tgt).all(dim=1)


def teacher_forcing_loss(model: EncoderDecoder, src: Tensor, tgt: Tensor) -> Tensor:
    """Cross-entropy of every next target token given the source and the target before it (padding ignored)."""
    logits = model(src, tgt[:, :-1]).logits  # teacher forcing: predict tgt[:, 1:]
    return F.cross_entropy(logits.flatten(0, 1), tgt[:, 1:].flatten(), ignore_index=PAD)


def greedy_accuracy(model: EncoderDecoder, src: Tensor, tgt: Tensor) -> float:
    """Share of the strings that greedy decoding reverses exactly."""
    from wmbook.nn.decoding import greedy_decode

    with torch.no_grad():
        pred = greedy_decode(model, src, BOS, EOS, max_len=L_MAX + 1)
    return exact_match(pred, tgt).float().mean().item()


@dataclass(frozen=True)
class ReversalRecipe:
    """The run of page 5.1: model sizes, data and optimiser.

    Two encoder and two decoder layers of width ``d_model`` (``n_ctx`` leaves room for the long
    sources the page measures at the end), batches of ``batch_size`` strings, AdamW with
    ``warmup`` linear warm-up steps then cosine decay to 0 over ``steps``, gradients clipped to
    norm 1. Every ``eval_every`` steps: greedy exact match on ``val_size`` held-out strings (seed
    ``val_seed``). The test set is ``test_size`` other held-out strings (seed ``test_seed``).
    """

    vocab_size: int = 13
    d_model: int = 64
    n_heads: int = 2
    d_ff: int = 128
    n_layers: int = 2
    n_ctx: int = 160
    batch_size: int = 64
    steps: int = 800
    lr: float = 5e-3
    warmup: int = 50
    eval_every: int = 100
    snapshot_step: int = 300
    val_size: int = 200
    val_seed: int = 1
    test_size: int = 1000
    test_seed: int = 2

    def model_config(self) -> TransformerConfig:
        return TransformerConfig(vocab_size=self.vocab_size, d_model=self.d_model, n_heads=self.n_heads,
                                 d_ff=self.d_ff, n_layers=self.n_layers, n_ctx=self.n_ctx, dropout=0.0)

    def validation(self) -> tuple[Tensor, Tensor]:
        return reversal_batch(self.val_size, torch.Generator().manual_seed(self.val_seed), test=True)

    def test(self) -> tuple[Tensor, Tensor]:
        return reversal_batch(self.test_size, torch.Generator().manual_seed(self.test_seed), test=True)


@dataclass
class _Prefix(TrainConfig):
    """A TrainConfig that runs ``steps`` steps of a warm-up + cosine schedule spanning ``schedule_steps``."""

    schedule_steps: int = 800

    def lr_at(self, step: int) -> float:
        return warmup_cosine(step, self.lr, self.warmup, self.schedule_steps)


def train_reversal(seed: int = 0, recipe: ReversalRecipe | None = None, stop_after: int | None = None
                   ) -> tuple[EncoderDecoder, History, dict[int, dict]]:
    """Train the recipe's encoder–decoder on digit reversal (seeded, CPU: repeatable on one machine).

    Weights from ``seed_everything(seed)``, batches from a generator seeded with ``seed``.
    ``stop_after=N`` runs only the first N steps of the full schedule (the cosine decay still
    spans ``recipe.steps``), e.g. to reproduce the start of the committed run. Returns the
    model (eval mode), its :class:`~wmbook.nn.train.History` (the batch loss every step, the
    held-out ``exact_match`` every ``eval_every`` steps) and the weights at every evaluation,
    ``{step: state_dict}``. Run it on one thread (``wmbook.threads(1)``).
    """
    from wmbook.nn.runtime import seed_everything
    from wmbook.nn.train import train

    recipe = recipe or ReversalRecipe()
    steps = recipe.steps if stop_after is None else stop_after
    if not 1 <= steps <= recipe.steps:
        raise ValueError(f"stop_after must be in 1..{recipe.steps}, got {stop_after}")
    seed_everything(seed)
    model = EncoderDecoder(recipe.model_config())
    gen = torch.Generator().manual_seed(seed)
    val_src, val_tgt = recipe.validation()
    snapshots: dict[int, dict] = {}

    def loss_fn(m: EncoderDecoder, step: int) -> Tensor:
        return teacher_forcing_loss(m, *reversal_batch(recipe.batch_size, gen))

    def eval_fn(m: EncoderDecoder) -> dict:
        snapshots[recipe.eval_every * (len(snapshots) + 1)] = copy.deepcopy(m.state_dict())
        return {"exact_match": greedy_accuracy(m, val_src, val_tgt)}

    cfg = _Prefix(steps=steps, lr=recipe.lr, warmup=recipe.warmup, cosine=True, eval_every=recipe.eval_every,
                  progress=False, schedule_steps=recipe.steps)
    history = train(model, loss_fn, cfg, eval_fn=eval_fn)
    return model.eval(), history, snapshots


def save_reversal(path: str | Path, model: EncoderDecoder, snapshot: dict | None, recipe: ReversalRecipe,
                  history: History, extra: dict | None = None) -> str:
    """Write the trained weights and the ``snapshot_step`` snapshot (float32; None for a run that
    stopped before it) and, next to them, the JSON log (``history``'s evaluation records plus
    ``extra``). Returns the sha256 of the .pt."""
    from wmbook.data.checkpoint import save_with_log

    def plain(state: dict) -> dict:
        return {k: v.detach().float().contiguous().clone() for k, v in state.items()}

    payload = {"format": "wmbook-reversal-1", "recipe": dataclasses.asdict(recipe),
               "state_dict": plain(model.state_dict()),
               "snapshot": None if snapshot is None else plain(snapshot)}
    return save_with_log(path, payload, history, recipe, sum(p.numel() for p in model.parameters()),
                         "exact_match", extra)


class ReversalRun(NamedTuple):
    """What :func:`load_reversal` returns."""

    model: EncoderDecoder  # seed 0, after all steps
    early: EncoderDecoder | None  # seed 0, after recipe.snapshot_step steps (None: the run stopped before)
    recipe: ReversalRecipe
    log: dict  # the training log: seed 0's evaluations ("evals") and every seed's results ("seeds")


def load_reversal(path: str | Path | None = None, sha256: str | None = REVERSAL_SHA256) -> ReversalRun:
    """The models and training log of ``scripts/train_reversal.py`` (page 5.1), sha256-checked.

    With the defaults it reads the committed checkpoint and its log (``reversal.json``, checked
    against ``REVERSAL_LOG_SHA256``); pass ``path`` (and ``sha256=None``) for a run of your own.
    Raises :class:`~wmbook.data.checkpoint.CheckpointError` if either file is missing, altered
    or not written together.
    """
    from wmbook.data.checkpoint import CHECKPOINT_DIR, load_paired_log, load_payload, verify_checkpoint

    path = verify_checkpoint(Path(path) if path is not None else CHECKPOINT_DIR / REVERSAL_FILE, sha256,
                             _REGENERATE, where="wmbook/lab/reversal.py (REVERSAL_SHA256)")
    blob = load_payload(path, "wmbook-reversal-1", "reversal", _REGENERATE)
    recipe = ReversalRecipe(**blob["recipe"])
    models = []
    for key in ("state_dict", "snapshot"):
        if blob[key] is None:
            models.append(None)
            continue
        model = EncoderDecoder(recipe.model_config())
        model.load_state_dict(blob[key])
        models.append(model.eval())
    log = load_paired_log(path, sha256, REVERSAL_LOG_SHA256 if sha256 == REVERSAL_SHA256 else None, _REGENERATE,
                          where="wmbook/lab/reversal.py (REVERSAL_LOG_SHA256)")
    return ReversalRun(models[0], models[1], recipe, log)


__all__ = ["BOS", "EOS", "L_MAX", "L_MIN", "PAD", "REVERSAL_LOG_SHA256", "REVERSAL_SHA256", "ReversalRecipe",
           "ReversalRun", "exact_match", "greedy_accuracy", "held_out", "load_reversal", "reversal_batch",
           "save_reversal", "teacher_forcing_loss", "text", "train_reversal"]
