"""A small training loop with a progress bar that returns its history.

Used from page 4.1 on; every page that trains a model calls :func:`train`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm


def warmup_cosine(step: int, lr: float, warmup: int, decay_steps: int, min_lr: float = 0.0,
                  ramp: int | None = None) -> float:
    r"""The one learning-rate schedule of the book: linear warm-up, then cosine decay.

    .. math::

        \eta_t = \eta \frac{t + 1}{r} \ (t < w), \qquad
        \eta_t = \eta_{\min} + \tfrac12 \bigl(1 + \cos(\pi \min(1, \tfrac{t - w}{S - w}))\bigr)(\eta - \eta_{\min})

    with ``w = warmup``, ``S = decay_steps`` and ``r = ramp`` (``warmup`` by default;
    nanoGPT's recipe uses ``warmup + 1``). After ``decay_steps`` it stays at ``min_lr``.
    """
    if step < warmup:
        return lr * (step + 1) / (ramp or warmup)
    t = min(1.0, (step - warmup) / max(1, decay_steps - warmup))
    return min_lr + 0.5 * (1 + math.cos(math.pi * t)) * (lr - min_lr)


def optimizer_step(opt: torch.optim.Optimizer, loss: Tensor, lr: float, params, grad_clip: float | None) -> None:
    r"""One step of a hand-written training loop: set every parameter group's learning rate to
    ``lr`` (:math:`\eta_t`, e.g. from :func:`warmup_cosine`), zero the gradients, back-propagate
    ``loss``, clip the gradients' global norm to ``grad_clip`` (None or 0: no clipping),

    .. math:: g \leftarrow g \cdot \min\bigl(1, \tfrac{c}{\lVert g \rVert_2 + 10^{-6}}\bigr)

    (:func:`torch.nn.utils.clip_grad_norm_`, :math:`\lVert g \rVert_2` over all of ``params``), and
    step the optimiser. The hand-written loops that log more than :func:`train` does use it:
    ``train_char_gpt``, ``train_tiny_mlm``, ``train_few_shot_gpt``, ``train_recall_gpt`` and
    ``train_addition`` in :mod:`wmbook.lab` (pages 2.3, 3.2, 3.3, 5.3, 8.2).
    """
    for group in opt.param_groups:
        group["lr"] = lr
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip:
        nn.utils.clip_grad_norm_(params, grad_clip)
    opt.step()


@dataclass
class TrainConfig:
    """Optimiser and schedule: AdamW with optional linear warm-up and cosine decay."""

    steps: int = 200
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup: int = 0
    cosine: bool = False
    grad_clip: float | None = 1.0
    eval_every: int = 0  # 0: evaluate only at the end (if an eval_fn is given)
    progress: bool = True

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")

    def lr_at(self, step: int) -> float:
        """Learning rate at ``step`` (0-based): :func:`warmup_cosine`, or constant after warm-up."""
        if self.cosine:
            return warmup_cosine(step, self.lr, self.warmup, self.steps)
        if self.warmup and step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        return self.lr


@dataclass
class History:
    """What :func:`train` logged: ``records`` is a list of dicts with a ``step`` key."""

    records: list[dict] = field(default_factory=list)

    def log(self, step: int, **values: float) -> None:
        self.records.append({"step": step, **{k: float(v) for k, v in values.items()}})

    def series(self, key: str) -> tuple[list[int], list[float]]:
        pts = [(r["step"], r[key]) for r in self.records if key in r]
        if not pts:
            known = sorted({k for r in self.records for k in r} - {"step"})
            raise KeyError(f"nothing logged under {key!r}; logged keys: {known}")
        steps, values = zip(*pts)
        return list(steps), list(values)

    def last(self, key: str) -> float:
        return self.series(key)[1][-1]


def train(
    model: nn.Module,
    loss_fn: Callable[[nn.Module, int], Tensor],
    cfg: TrainConfig | None = None,
    eval_fn: Callable[[nn.Module], dict] | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    **overrides,
) -> History:
    """Train ``model`` for ``cfg.steps`` steps and return the :class:`History`.

    ``loss_fn(model, step)`` draws a batch and returns the scalar loss to
    minimise (so the data pipeline stays in the page, visible).
    ``eval_fn(model)`` returns a dict of numbers; it runs under ``torch.no_grad``
    in eval mode every ``cfg.eval_every`` steps and at the end.
    """
    if cfg is not None and overrides:
        raise TypeError("pass either a TrainConfig or keyword settings, not both")
    cfg = cfg if cfg is not None else TrainConfig(**overrides)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters (all have requires_grad=False)")
    opt = optimizer or torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    history = History()

    def evaluate(step: int) -> None:
        if eval_fn is None:
            return
        model.eval()
        with torch.no_grad():
            history.log(step, **eval_fn(model))
        model.train()

    model.train()
    bar = tqdm(range(cfg.steps), disable=not cfg.progress, leave=False, mininterval=0.5)
    for step in bar:
        for group in opt.param_groups:
            group["lr"] = cfg.lr_at(step)
        loss = loss_fn(model, step)
        if not isinstance(loss, Tensor) or loss.dim() != 0:
            raise ValueError("loss_fn must return a scalar tensor (did you forget .mean()?)")
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at step {step}; try a smaller lr")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        history.log(step, loss=loss.item(), lr=cfg.lr_at(step))
        if cfg.eval_every and (step + 1) % cfg.eval_every == 0 and step + 1 < cfg.steps:
            evaluate(step + 1)
        if step % 10 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    evaluate(cfg.steps)
    model.eval()
    return history
