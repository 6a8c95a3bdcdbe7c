r"""Induction heads: the smallest model that learns in context, and the data that teaches it.

Explained on page 4.3, "The mathematics of in-context learning" (after Elhage et
al. 2021 and Olsson et al. 2022). A sequence is a random block of tokens repeated
with a random period; once a token has been seen, the token that followed it
last time predicts the next one. A two-layer attention-only Transformer learns
this with a *previous-token head* in layer 1 and an *induction head* in layer 2:

.. math::
    \text{if } x_{t} = x_{j} \text{ for some } j < t,\ \text{predict } x_{t+1} = x_{j+1}.

:class:`InductionRecipe` and :func:`train_induction` are the page's training run;
``scripts/train_induction.py`` runs it for several seeds and writes the seed-0 models with
every seed's curves (:func:`save_induction`), which the page loads (:func:`load_induction`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wmbook.nn.attention import AttentionConfig, MultiHeadAttention, causal_mask


def repeated_blocks(batch: int, length: int, vocab: int, min_period: int = 8, max_period: int = 32,
                    generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Random tokens repeated with a random period per sequence.

    Returns ``(tokens, copyable)``: ``tokens`` is ``(batch, length)``;
    ``copyable[b, t]`` is True where token ``t`` is a repeat (``t >= period``),
    i.e. where it can be predicted by copying from earlier in the context.
    """
    if not 1 <= min_period <= max_period < length:
        raise ValueError(f"need 1 <= min_period <= max_period < length; got {min_period}, {max_period}, {length}")
    if vocab < 2:
        raise ValueError(f"vocab must be >= 2, got {vocab}")
    periods = torch.randint(min_period, max_period + 1, (batch,), generator=generator)
    base = torch.randint(0, vocab, (batch, max_period), generator=generator)
    pos = torch.arange(length)
    idx = pos[None, :] % periods[:, None]  # (batch, length): position within the block
    tokens = base.gather(1, idx)
    copyable = pos[None, :] >= periods[:, None]
    return tokens, copyable


@dataclass
class AttnOnlyConfig:
    """An attention-only Transformer: no MLPs, no layer norms (as in Elhage et al. 2021)."""

    vocab_size: int = 64
    n_ctx: int = 64
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2

    def __post_init__(self) -> None:
        AttentionConfig(self.d_model, self.n_heads)  # checks divisibility


class AttnOnlyOutput(NamedTuple):
    logits: Tensor  # (B, T, vocab)
    attentions: list[Tensor]  # per layer (B, H, T, T)


class AttnOnlyTransformer(nn.Module):
    """Token + learned position embeddings, ``n_layers`` causal attention layers with residuals, unembedding."""

    def __init__(self, cfg: AttnOnlyConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos = nn.Embedding(cfg.n_ctx, cfg.d_model)
        self.layers = nn.ModuleList(
            MultiHeadAttention(AttentionConfig(cfg.d_model, cfg.n_heads)) for _ in range(cfg.n_layers))
        self.unembed = nn.Linear(cfg.d_model, cfg.vocab_size)

    def forward(self, tokens: Tensor) -> AttnOnlyOutput:
        if tokens.dim() != 2:
            raise ValueError(f"tokens must be (batch, seq); got {tuple(tokens.shape)}")
        T = tokens.shape[1]
        if T > self.cfg.n_ctx:
            raise ValueError(f"sequence of {T} tokens is longer than n_ctx={self.cfg.n_ctx}")
        if tokens.min() < 0 or tokens.max() >= self.cfg.vocab_size:
            raise ValueError(f"token ids must lie in [0, {self.cfg.vocab_size})")
        x = self.embed(tokens) + self.pos(torch.arange(T, device=tokens.device))  # (B, T, d_model)
        mask = causal_mask(T, device=tokens.device)
        attentions = []
        for layer in self.layers:
            out, weights = layer(x, mask=mask)
            x = x + out  # the residual stream
            attentions.append(weights)
        return AttnOnlyOutput(self.unembed(x), attentions)


def induction_scores(attentions: list[Tensor], tokens: Tensor, copyable: Tensor) -> tuple[Tensor, Tensor]:
    """Per layer and head: mean attention to the previous token, and to the induction target.

    For a repeated token at ``t`` with period ``p``, the induction target is
    ``t - p + 1`` (the token that followed its previous occurrence). Returns two
    ``(n_layers, n_heads)`` tensors: previous-token scores and induction scores.
    """
    B, T = tokens.shape
    # period of each sequence: the first position where copyable becomes True
    periods = copyable.float().argmax(dim=1)  # (B,)
    t = torch.arange(T)
    prev, ind = [], []
    for weights in attentions:  # (B, H, T, T)
        w = weights.detach()
        prev.append(w[:, :, t[1:], t[1:] - 1].mean(dim=(0, 2)))  # (H,)
        rows, cols, bidx = [], [], []
        for b in range(B):
            p = int(periods[b])
            ts = torch.arange(p, T)
            rows.append(ts)
            cols.append(ts - p + 1)
            bidx.append(torch.full_like(ts, b))
        r, c, bb = torch.cat(rows), torch.cat(cols), torch.cat(bidx)
        ind.append(w[bb, :, r, c].mean(dim=0))  # (H,)
    return torch.stack(prev), torch.stack(ind)


# --------------------------------------------------------------------------- the page's training run

#: The committed checkpoint: the seed-0 two-layer and one-layer models of page 4.3.
INDUCTION_FILE = "induction_heads.pt"
#: sha256 of ``wmbook/data/checkpoints/induction_heads.pt``, as printed by ``scripts/train_induction.py``.
INDUCTION_SHA256 = "a9939c228fe9fb19d450c79d48cdce6735325586c4f182219d3f430ca726c645"
#: sha256 of its training log (``induction_heads.json``: every seed's curves), printed by the same script.
INDUCTION_LOG_SHA256 = "268f946880d4b7b8766527befd24898cc6654c5f4710248afd0b1784576a5eb7"
_REGENERATE = "python scripts/train_induction.py  (about 3 minutes on one CPU thread)"


@dataclass(frozen=True)
class InductionRecipe:
    """The run of page 4.3: the data, the model sizes and the optimiser.

    Sequences of ``n_ctx`` tokens from a vocabulary of ``vocab_size``, each a random block of
    ``min_period``..``max_period`` tokens repeated; batches of ``batch_size``; AdamW at a constant
    ``lr`` (no schedule, so the first N steps of any run are the same whatever its length),
    gradients clipped to norm 1. Every ``eval_every`` steps the loss is measured on a fixed
    validation set of ``val_size`` sequences (seed ``val_seed``).
    """

    vocab_size: int = 64
    n_ctx: int = 64
    d_model: int = 64
    n_heads: int = 4
    min_period: int = 8
    max_period: int = 32
    batch_size: int = 32
    steps: int = 1000
    lr: float = 1e-3
    eval_every: int = 50
    val_size: int = 128
    val_seed: int = 99

    def model_config(self, n_layers: int) -> AttnOnlyConfig:
        return AttnOnlyConfig(vocab_size=self.vocab_size, n_ctx=self.n_ctx, d_model=self.d_model,
                              n_heads=self.n_heads, n_layers=n_layers)

    def batch(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """``n`` sequences of the recipe's task: :func:`repeated_blocks` ``(tokens, copyable)``."""
        return repeated_blocks(n, self.n_ctx, self.vocab_size, self.min_period, self.max_period,
                               generator=generator)

    def validation(self) -> tuple[Tensor, Tensor]:
        """The fixed validation set: ``val_size`` sequences drawn with seed ``val_seed``."""
        return self.batch(self.val_size, torch.Generator().manual_seed(self.val_seed))


def next_token_nll(model: AttnOnlyTransformer, tokens: Tensor) -> Tensor:
    r"""Loss of every next-token prediction, :math:`-\log p(x_{t+1} \mid x_{\le t})`: ``(B, T - 1)``."""
    logits = model(tokens[:, :-1]).logits  # predict token t + 1 from tokens <= t
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1),
                           reduction="none").view(tokens.shape[0], -1)


def copy_losses(model: AttnOnlyTransformer, tokens: Tensor, copyable: Tensor) -> dict[str, float]:
    """Mean loss on the repeated tokens (predictable from the context) and on first occurrences.

    A model that copies from its context drives ``repeat_loss`` towards 0; ``first_loss`` cannot
    fall below :math:`\\ln V` (the token is random).
    """
    nll = next_token_nll(model, tokens)
    copy = copyable[:, 1:]  # the target of position t is token t + 1
    return {"repeat_loss": nll[copy].mean().item(), "first_loss": nll[~copy].mean().item()}


def context_bag_loss(tokens: Tensor, copyable: Tensor) -> float:
    r"""Loss on the repeated tokens of a guesser that knows *which* tokens are in the context, not their order.

    Page 4.3's reference line for the one-layer model: at each position :math:`t` whose target
    :math:`x_{t+1}` is a repeat, guess uniformly among the :math:`D_t` distinct tokens of
    :math:`x_{\le t}` (the target is always one of them), which costs :math:`\ln D_t`. Returns
    the mean of :math:`\ln D_t` over those positions: arithmetic on the data, no model.
    """
    if tokens.shape != copyable.shape or tokens.dim() != 2:
        raise ValueError(f"tokens and copyable must both be (batch, seq); got {tuple(tokens.shape)}, "
                         f"{tuple(copyable.shape)}")
    B, T = tokens.shape
    seen = F.one_hot(tokens, int(tokens.max()) + 1).cummax(dim=1).values  # (B, T, V): seen by position t
    distinct = seen.sum(-1).float()  # (B, T): D_t
    target_is_repeat = copyable[:, 1:]  # position t predicts token t + 1
    return distinct[:, :-1][target_is_repeat].log().mean().item()


def icl_score(model: AttnOnlyTransformer, tokens: Tensor, late: int = 48, early: int = 8) -> float:
    """Olsson et al.'s in-context-learning score: mean loss at positions ``late:`` minus at ``:early``.

    Positions index the predictions (position t predicts token t + 1); negative = the model
    predicts better late in the context, i.e. it uses the context.
    """
    nll = next_token_nll(model, tokens).mean(0)  # (T - 1,): loss per position
    return (nll[late:].mean() - nll[:early].mean()).item()


def train_induction(n_layers: int, seed: int = 0, recipe: InductionRecipe | None = None,
                    steps: int | None = None) -> tuple[AttnOnlyTransformer, "History"]:
    """Train an attention-only model of ``n_layers`` layers on the recipe's task (seeded, CPU).

    The model's weights come from ``torch.manual_seed(seed)``, the batches from a generator
    seeded with ``seed``. ``steps`` (default: the recipe's) stops early: the learning rate is
    constant, so ``steps=N`` runs exactly the first N steps of the full run. Returns the model
    (eval mode) and its :class:`~wmbook.nn.train.History`: the batch loss at every step and
    :func:`copy_losses` on the validation set every ``eval_every`` steps and at the end.
    Run it on one thread (``wmbook.threads(1)``) for speed and repeatability.
    """
    from wmbook.nn.runtime import seed_everything
    from wmbook.nn.train import train

    recipe = recipe or InductionRecipe()
    steps = recipe.steps if steps is None else steps
    val_tokens, val_copyable = recipe.validation()
    seed_everything(seed)
    gen = torch.Generator().manual_seed(seed)
    model = AttnOnlyTransformer(recipe.model_config(n_layers))

    def loss_fn(m: AttnOnlyTransformer, step: int) -> Tensor:
        return next_token_nll(m, recipe.batch(recipe.batch_size, gen)[0]).mean()

    history = train(model, loss_fn, steps=steps, lr=recipe.lr, eval_every=recipe.eval_every,
                    eval_fn=lambda m: copy_losses(m, val_tokens, val_copyable), progress=False)
    return model.eval(), history


def drop_step(steps: list[int], repeat_losses: list[float], threshold: float = 2.0) -> int | None:
    """The first evaluated step at which the repeated-token loss is below ``threshold`` (None: never)."""
    return next((s for s, v in zip(steps, repeat_losses) if v < threshold), None)


@torch.no_grad()
def run_summary(model: AttnOnlyTransformer, history, recipe: InductionRecipe | None = None) -> dict:
    """What the page reports of one run, measured on the validation set.

    ``repeat_loss``/``first_loss`` at the end, ``drop_step`` (:func:`drop_step`), the
    ``icl_score`` and, per layer, the best head's previous-token and induction scores
    (:func:`induction_scores`).
    """
    recipe = recipe or InductionRecipe()
    tokens, copyable = recipe.validation()
    steps, rep = history.series("repeat_loss")
    prev, ind = induction_scores(model(tokens[:, :-1]).attentions, tokens[:, :-1], copyable[:, :-1])
    return {"repeat_loss": rep[-1], "first_loss": history.last("first_loss"),
            "drop_step": drop_step(steps, rep), "icl_score": icl_score(model, tokens),
            "prev_score": prev.max(dim=1).values.tolist(), "induction_score": ind.max(dim=1).values.tolist()}


def save_induction(path, models: dict[int, AttnOnlyTransformer], recipe: InductionRecipe, runs: list[dict],
                   extra: dict | None = None) -> str:
    """Write the models (``{n_layers: model}``, float32) and, next to them, the JSON log of ``runs``.

    Each run is ``{"n_layers", "seed", "evals": [records with repeat_loss], "summary": {...}}``;
    the log's ``evals`` are all runs' evaluation records, each tagged with its ``n_layers`` and
    ``seed``. Returns the sha256 of the checkpoint.
    """
    import dataclasses

    from wmbook.data.checkpoint import save_with_log
    from wmbook.nn.train import History

    payload = {"format": "wmbook-induction-1", "recipe": dataclasses.asdict(recipe),
               "state_dicts": {str(n): {k: v.detach().float().contiguous().clone() for k, v in m.state_dict().items()}
                               for n, m in models.items()}}
    records = [{"n_layers": r["n_layers"], "seed": r["seed"], **e} for r in runs for e in r["evals"]]
    summaries = [{"n_layers": r["n_layers"], "seed": r["seed"], **r["summary"]} for r in runs]
    n_parameters = {str(n): sum(p.numel() for p in m.parameters()) for n, m in models.items()}
    return save_with_log(path, payload, History(records), recipe, n_parameters, "repeat_loss",
                         {"summaries": [_rounded(s) for s in summaries], **(extra or {})})


def _rounded(record: dict) -> dict:
    return {k: (round(v, 6) if isinstance(v, float) else [round(x, 6) for x in v] if isinstance(v, list) else v)
            for k, v in record.items()}


class InductionRun(NamedTuple):
    """What :func:`load_induction` returns."""

    models: dict[int, AttnOnlyTransformer]  # {2: the two-layer model, 1: the one-layer model}, seed 0
    recipe: InductionRecipe
    log: dict  # the training log: every seed's evaluations ("evals") and end results ("summaries")


def load_induction(path=None, sha256: str | None = INDUCTION_SHA256) -> InductionRun:
    """The models and training log of ``scripts/train_induction.py`` (page 4.3), sha256-checked.

    With the defaults it reads the committed checkpoint and its log (``induction_heads.json``,
    checked against ``INDUCTION_LOG_SHA256``); pass ``path`` (and ``sha256=None``) for a run of
    your own. Raises :class:`~wmbook.data.checkpoint.CheckpointError` if either file is missing,
    altered or not written together.
    """
    from pathlib import Path

    from wmbook.data.checkpoint import CHECKPOINT_DIR, load_paired_log, load_payload, verify_checkpoint

    path = verify_checkpoint(Path(path) if path is not None else CHECKPOINT_DIR / INDUCTION_FILE, sha256,
                             _REGENERATE, where="wmbook/lab/induction.py (INDUCTION_SHA256)")
    blob = load_payload(path, "wmbook-induction-1", "induction", _REGENERATE)
    recipe = InductionRecipe(**blob["recipe"])
    models = {}
    for n, state in blob["state_dicts"].items():
        model = AttnOnlyTransformer(recipe.model_config(int(n)))
        model.load_state_dict(state)
        models[int(n)] = model.eval()
    log = load_paired_log(path, sha256, INDUCTION_LOG_SHA256 if sha256 == INDUCTION_SHA256 else None, _REGENERATE,
                          where="wmbook/lab/induction.py (INDUCTION_LOG_SHA256)")
    return InductionRun(models, recipe, log)
