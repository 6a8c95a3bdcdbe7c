r"""Knowledge-distillation losses, as the guide writes them and as Hinton et al. do.

Explained and checked on page 4.2, "The mathematics of distillation"; used on
pages 2.2 and 5.2.

* :func:`guide_soft_loss` — the guide's 4.2.1, literally:
  :math:`\alpha\,\mathcal{L}_{CE}(y, \sigma(z_s)) + (1-\alpha)\,\mathcal{L}_{CE}(\sigma(z_t/\tau), \sigma(z_s/\tau))`
* :func:`hinton_loss` — the same with the soft term multiplied by :math:`\tau^2`
  (Hinton, Vinyals & Dean 2015), which keeps its gradient on the scale of the hard term.
* :func:`hard_distillation_loss` — the guide's 4.2.2:
  :math:`\mathcal{L}_{CE}(y, \sigma(z_s)) + \lambda\,\mathcal{L}_{CE}(\arg\max z_t, \sigma(z_s))`
  (DeiT's hard distillation uses :math:`\tfrac12` on each term).
"""
from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F


def _check(student_logits: Tensor, teacher_logits: Tensor | None = None, labels: Tensor | None = None) -> None:
    if student_logits.dim() != 2:
        raise ValueError(f"student logits must be (batch, classes); got {tuple(student_logits.shape)}")
    if teacher_logits is not None and teacher_logits.shape != student_logits.shape:
        raise ValueError(
            f"teacher logits {tuple(teacher_logits.shape)} and student logits "
            f"{tuple(student_logits.shape)} must have the same shape (batch, classes)"
        )
    if labels is not None:
        if labels.shape != student_logits.shape[:1]:
            raise ValueError(
                f"labels must be (batch,) = ({student_logits.shape[0]},) class indices; got {tuple(labels.shape)}"
            )
        if labels.numel() and (labels.min() < 0 or labels.max() >= student_logits.shape[1]):
            raise ValueError(f"labels must lie in [0, {student_logits.shape[1]}); got {labels.min()}..{labels.max()}")


def soft_cross_entropy(target_probs: Tensor, logits: Tensor) -> Tensor:
    r""":math:`\mathcal{L}_{CE}(p, \sigma(z)) = -\frac1B\sum_b \sum_c p_{bc} \log \sigma(z_b)_c` (batch mean)."""
    return -(target_probs * F.log_softmax(logits, dim=-1)).sum(-1).mean()


def soft_term(student_logits: Tensor, teacher_logits: Tensor, tau: float) -> Tensor:
    r"""The soft-target cross-entropy :math:`\mathcal{L}_{CE}(\sigma(z_t/\tau), \sigma(z_s/\tau))`.

    The teacher is treated as a constant (no gradient flows into it).
    """
    if not tau > 0:
        raise ValueError(f"the temperature tau must be > 0, got {tau}")
    _check(student_logits, teacher_logits)
    return soft_cross_entropy(F.softmax(teacher_logits.detach() / tau, dim=-1), student_logits / tau)


def guide_soft_loss(student_logits: Tensor, teacher_logits: Tensor, labels: Tensor,
                    alpha: float = 0.5, tau: float = 4.0) -> Tensor:
    r"""The guide's soft-target distillation loss (4.2.1), exactly as written.

    .. math::
        \mathcal{L}_{KD} = \alpha\,\mathcal{L}_{CE}(y, \sigma(z_s))
        + (1-\alpha)\,\mathcal{L}_{CE}(\sigma(z_t/\tau), \sigma(z_s/\tau))

    Note that ``alpha`` weighs the *label* term here, although the guide's text
    calls it "the weight of the distillation loss".
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    _check(student_logits, teacher_logits, labels)
    hard = F.cross_entropy(student_logits, labels)
    return alpha * hard + (1 - alpha) * soft_term(student_logits, teacher_logits, tau)


def hinton_loss(student_logits: Tensor, teacher_logits: Tensor, labels: Tensor | None,
                alpha: float = 0.1, tau: float = 4.0) -> Tensor:
    r"""Hinton et al.'s distillation loss: the soft term scaled by :math:`\tau^2`.

    .. math::
        \mathcal{L} = \alpha\,\mathcal{L}_{CE}(y, \sigma(z_s))
        + (1-\alpha)\,\tau^2\,\mathcal{L}_{CE}(\sigma(z_t/\tau), \sigma(z_s/\tau))

    The soft term's gradient with respect to :math:`z_s` shrinks like
    :math:`1/\tau^2` for large :math:`\tau`; the factor undoes that, so changing
    :math:`\tau` does not silently re-weight the two terms. ``labels=None``
    (unlabelled inputs) uses the soft term alone.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    _check(student_logits, teacher_logits, labels)
    soft = tau**2 * soft_term(student_logits, teacher_logits, tau)
    if labels is None:
        return soft
    return alpha * F.cross_entropy(student_logits, labels) + (1 - alpha) * soft


def hard_distillation_loss(student_logits: Tensor, teacher_logits: Tensor, labels: Tensor,
                           lam: float = 1.0) -> Tensor:
    r"""The guide's hard-target distillation loss (4.2.2).

    .. math::
        \mathcal{L}_{KD} = \mathcal{L}_{CE}(y, \sigma(z_s)) + \lambda\,\mathcal{L}_{CE}(\arg\max z_t, \sigma(z_s))

    This is DeiT's hard distillation (Touvron et al. 2021, with ½ on each term).
    Hinton's "hard targets" are something else: the true labels :math:`y`.
    """
    if lam < 0:
        raise ValueError(f"lambda must be >= 0, got {lam}")
    _check(student_logits, teacher_logits, labels)
    teacher_labels = teacher_logits.detach().argmax(dim=-1)
    return F.cross_entropy(student_logits, labels) + lam * F.cross_entropy(student_logits, teacher_labels)


def mlp(sizes: list[int], dropout: float = 0.0) -> torch.nn.Sequential:
    """A ReLU multi-layer perceptron ``sizes[0] -> ... -> sizes[-1]`` (logits, no final activation)."""
    if len(sizes) < 2 or any(s < 1 for s in sizes):
        raise ValueError(f"sizes must list at least an input and an output width, all >= 1; got {sizes}")
    layers: list[torch.nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers += [torch.nn.ReLU(), torch.nn.Dropout(dropout)] if dropout else [torch.nn.ReLU()]
    return torch.nn.Sequential(*layers)


@torch.no_grad()
def accuracy(model: torch.nn.Module, X: Tensor, y: Tensor, only_class: int | None = None) -> float:
    """Share of correct arg-max predictions (optionally on the examples of one class only)."""
    model.eval()
    pred = model(X).argmax(-1)
    if only_class is not None:
        keep = y == only_class
        if not keep.any():
            raise ValueError(f"no example of class {only_class} to score")
        pred, y = pred[keep], y[keep]
    return (pred == y).float().mean().item()
