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

Also the experiment helpers of pages 2.2 and 4.2: :class:`StackedMLP` and
:func:`stacked_loss` (several seeds of a small student trained at once),
:func:`time_interleaved` (teacher and student timed in turn) and
:func:`count_keys_values` (the keys and values a forward pass computes).
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor
from torch.nn import functional as F

from wmbook.lab.measure import time_in_turns


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


class StackedMLP(torch.nn.Module):
    r"""K independent ReLU MLPs run as one batched module: several seeds trained at once.

    Layer :math:`l` of student :math:`k` computes
    :math:`h^{(k)}_{l+1} = \mathrm{ReLU}(h^{(k)}_l W^{(k)}_l + b^{(k)}_l)` (no ReLU after the last),
    with the weights of all K students stacked into tensors of shape ``(K, in, out)``
    and ``(K, 1, out)``; ``forward`` maps ``(K, B, in)`` to ``(K, B, out)`` with batched
    matrix products. Built from K :func:`mlp` models (their initial weights, so a
    seed gives the same student stacked or alone) and turned back into them with
    :meth:`unstack`. Page 4.2 trains its five-seed arms this way.

    The students share nothing but the tensors: with a loss that is a *sum* of
    per-student losses (:func:`stacked_loss`), an element-wise optimiser such as
    AdamW without weight decay and no gradient clipping across students
    (``grad_clip=None``), each student gets exactly the update it would get alone.
    """

    def __init__(self, models: list[torch.nn.Sequential]) -> None:
        super().__init__()
        if not models:
            raise ValueError("StackedMLP needs at least one model")
        linears = [[m for m in model if isinstance(m, torch.nn.Linear)] for model in models]
        shapes = [[tuple(lin.weight.shape) for lin in ls] for ls in linears]
        if any(s != shapes[0] for s in shapes):
            raise ValueError(f"all models must have the same layer sizes; got {shapes}")
        if any(isinstance(m, torch.nn.Dropout) for model in models for m in model):
            raise ValueError("StackedMLP does not stack dropout; build the students with mlp(sizes) (no dropout)")
        self.weights = torch.nn.ParameterList(
            torch.nn.Parameter(torch.stack([ls[j].weight.detach().T.clone() for ls in linears]))
            for j in range(len(shapes[0])))
        self.biases = torch.nn.ParameterList(
            torch.nn.Parameter(torch.stack([ls[j].bias.detach()[None].clone() for ls in linears]))
            for j in range(len(shapes[0])))

    @property
    def n_students(self) -> int:
        return self.weights[0].shape[0]

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 3 or x.shape[0] != self.n_students:
            raise ValueError(f"input must be (students={self.n_students}, batch, features); got {tuple(x.shape)}")
        for j, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = torch.baddbmm(b, x, w)
            if j < len(self.weights) - 1:
                x = torch.relu(x)
        return x

    def unstack(self) -> list[torch.nn.Sequential]:
        """The K students as separate :func:`mlp` models (copies of the current weights)."""
        sizes = [self.weights[0].shape[1]] + [w.shape[2] for w in self.weights]
        out = []
        for k in range(self.n_students):
            model = mlp(sizes)
            for lin, w, b in zip((m for m in model if isinstance(m, torch.nn.Linear)), self.weights, self.biases):
                lin.weight.data.copy_(w.detach()[k].T)
                lin.bias.data.copy_(b.detach()[k, 0])
            out.append(model.eval())
        return out


def stacked_loss(loss_fn, student_logits: Tensor, *per_student: Tensor | None, **kwargs) -> Tensor:
    r"""Sum over K students of ``loss_fn`` on each one's batch: :math:`\sum_k L(z^{(k)}, \dots)`.

    ``student_logits`` is ``(K, B, C)`` and each tensor of ``per_student`` has the
    same two leading dimensions (``(K, B, C)`` teacher logits, ``(K, B)`` labels;
    ``None`` passes through). Every loss of this module is a mean over the batch,
    so with equal batch sizes the sum equals
    :math:`K \cdot L(\text{all } K B \text{ rows})`, which is what is computed (page 4.2).
    """
    if student_logits.dim() != 3:
        raise ValueError(f"student logits must be (students, batch, classes); got {tuple(student_logits.shape)}")
    k, b = student_logits.shape[:2]
    flat = []
    for t in per_student:
        if t is not None and tuple(t.shape[:2]) != (k, b):
            raise ValueError(f"every per-student tensor must start with (students, batch) = ({k}, {b}); "
                             f"got {tuple(t.shape)}")
        flat.append(None if t is None else t.flatten(0, 1))
    return k * loss_fn(student_logits.flatten(0, 1), *flat, **kwargs)


def time_interleaved(fns: dict[str, Callable[[], object]], rounds: int = 5, warmup: int = 1,
                     clock: Callable[[], float] | None = None) -> dict[str, list[float]]:
    """Seconds of each ``fn`` over ``rounds`` rounds in which every function runs once, in the
    same order (pages 2.2 and 4.2): :func:`wmbook.lab.measure.time_in_turns` without rotation."""
    return time_in_turns(fns, rounds, warmup=warmup, min_seconds=0.0, rotate=False, clock=clock)


@torch.no_grad()
def count_keys_values(model: torch.nn.Module, *inputs: Tensor) -> int:
    r"""Numbers in all keys and values a forward pass computes: :math:`2 \cdot L \cdot d_\text{model}` per token.

    Counts the outputs of every attention layer's key and value projections
    (modules named ``...W_k`` and ``...W_v``) during ``model(*inputs)``; page 2.2 checks
    the count against :func:`wmbook.kv_cache_bytes`, the same quantity a generating
    model keeps as its KV cache.
    """
    total = 0

    def hook(module, args, out):
        nonlocal total
        total += out.numel()

    handles = [m.register_forward_hook(hook) for name, m in model.named_modules()
               if name.endswith("W_k") or name.endswith("W_v")]
    if not handles:
        raise ValueError("the model has no key or value projections (modules named ...W_k, ...W_v)")
    try:
        model(*inputs)
    finally:
        for h in handles:
            h.remove()
    return total
