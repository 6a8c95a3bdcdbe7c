r"""Compression by magnitude pruning, next to int8 quantisation and distillation (page 8.3, section 8.3.1).

*Global magnitude pruning* at sparsity :math:`s` sets to zero the fraction :math:`s` of the weights
of the chosen ``nn.Linear`` layers with the smallest :math:`|w|`, ranked across all those layers
together:

.. math::

    \tilde w_i = w_i \,\mathbb 1\bigl[\,|w_i| > \tau_s\bigr], \qquad
    \tau_s = \text{the } \lfloor s\,n \rfloor\text{-th smallest } |w| \text{ of the } n \text{ weights}.

:func:`magnitude_prune` uses ``torch.nn.utils.prune.global_unstructured`` with
``L1Unstructured`` on a copy of the model and makes the pruning permanent (``prune.remove``);
:func:`sparsity` counts the zeros so the page can check that they are the target fraction.
A pruned matrix stored densely is as large and as slow as before; its size *if stored sparse*
(:func:`csr_bytes`: CSR, 4-byte values and 4-byte column indices per non-zero plus one 4-byte row
pointer per row) is arithmetic, not a measurement of a real sparse kernel. Int8 quantisation,
size on disk and latency come from :mod:`wmbook.lab.deploy` (page 9.4).
"""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils import prune


def _linears(model: nn.Module) -> list[nn.Linear]:
    layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not layers:
        raise ValueError("the model has no nn.Linear layer to prune")
    return layers


def magnitude_prune(model: nn.Module, amount: float) -> nn.Module:
    """A copy of ``model`` with the fraction ``amount`` of all its ``nn.Linear`` weights (biases
    untouched), smallest |w| first across layers, set to zero permanently (the original is untouched)."""
    if not 0.0 <= amount < 1.0:
        raise ValueError(f"amount must be a fraction in [0, 1), got {amount}")
    pruned = copy.deepcopy(model)
    params = [(m, "weight") for m in _linears(pruned)]
    prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=amount)
    for m, name in params:
        prune.remove(m, name)  # the zeros go into .weight; the mask and weight_orig go away
    return pruned.eval()


def sparsity(model: nn.Module) -> float:
    """Fraction of exact zeros among the weights of the model's ``nn.Linear`` layers."""
    ws = [m.weight for m in _linears(model)]
    return sum(int((w == 0).sum()) for w in ws) / sum(w.numel() for w in ws)


def csr_bytes(model: nn.Module, value_bytes: int = 4, index_bytes: int = 4) -> int:
    """Bytes of the model's parameters if each ``nn.Linear`` weight were stored in CSR form
    (non-zeros x (value + column index) + (rows + 1) row pointers) and every other parameter densely.
    Arithmetic (the book has no sparse kernel): the size pruning could save, not what it saves as stored."""
    lin = {id(m.weight) for m in _linears(model)}
    total, seen = 0, set()
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        if id(p) in lin:
            nnz = int((p != 0).sum())
            total += nnz * (value_bytes + index_bytes) + (p.shape[0] + 1) * index_bytes
        else:
            total += p.numel() * value_bytes
    return total


__all__ = ["csr_bytes", "magnitude_prune", "sparsity"]
