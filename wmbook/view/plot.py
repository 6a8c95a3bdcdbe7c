"""Figures used across the book: attention heatmaps and learning curves.

The heatmap is introduced on page 4.1, "The mathematics of attention".
"""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch


def _to_numpy_2d(weights) -> np.ndarray:
    if isinstance(weights, torch.Tensor):
        weights = weights.detach().float().cpu().numpy()
    w = np.asarray(weights, dtype=float)
    if w.ndim != 2:
        raise ValueError(
            f"attention_heatmap draws one (T_q, T_k) matrix; got shape {w.shape}. "
            "Select a batch element and a head first, e.g. weights[0, head]."
        )
    return w


def attention_heatmap(
    weights,
    query_tokens: Sequence[str] | None = None,
    key_tokens: Sequence[str] | None = None,
    ax=None,
    title: str | None = None,
    annotate: bool | None = None,
    cmap: str = "Blues",
    colorbar: bool = True,
):
    """Draw a ``(T_q, T_k)`` attention matrix: rows are queries, columns are keys.

    Returns the matplotlib ``Axes``. Token labels must match the matrix size.
    ``annotate`` writes each weight in its cell (default: when the matrix is at
    most 12 × 12).
    """
    w = _to_numpy_2d(weights)
    T_q, T_k = w.shape
    key_tokens = key_tokens if key_tokens is not None else query_tokens
    for name, toks, n in (("query_tokens", query_tokens, T_q), ("key_tokens", key_tokens, T_k)):
        if toks is not None and len(toks) != n:
            raise ValueError(f"{name} has {len(toks)} labels but the matrix has {n} {name.split('_')[0]} positions")
    if ax is None:
        size = max(3.0, min(8.0, 0.45 * max(T_q, T_k) + 1.5))
        _, ax = plt.subplots(figsize=(size + 0.8 * colorbar, size))
    im = ax.imshow(w, cmap=cmap, vmin=0.0, vmax=max(1e-9, float(w.max())), aspect="auto")
    ax.set_xlabel("key (what is read)")
    ax.set_ylabel("query (who reads)")
    ax.set_xticks(range(T_k))
    ax.set_yticks(range(T_q))
    ax.set_xticklabels(list(key_tokens) if key_tokens is not None else range(T_k), rotation=90)
    ax.set_yticklabels(list(query_tokens) if query_tokens is not None else range(T_q))
    if annotate is None:
        annotate = max(T_q, T_k) <= 12
    if annotate:
        for i in range(T_q):
            for j in range(T_k):
                ax.text(j, i, f"{w[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if w[i, j] > 0.6 * w.max() else "black")
    if title:
        ax.set_title(title)
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="weight")
    return ax


def plot_history(history, keys: Sequence[str] = ("loss",), ax=None, logy: bool = False, label: str | None = None):
    """Plot one or more logged series of a :class:`wmbook.nn.train.History` against the step."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for key in keys:
        steps, values = history.series(key)
        ax.plot(steps, values, label=f"{label} {key}".strip() if label else key)
    ax.set_xlabel("step")
    if logy:
        ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    return ax
