r"""Active learning: a classifier that asks for the labels it is least sure of (page 8.3, section 8.3.3).

Pool-based active learning (Settles 2009): a learner holds a pool of unlabelled examples and a
small labelled set; at each round it fits a model, then asks an oracle (a person; here the stored
SST-2 labels) for the labels of the ``k`` pool examples chosen by a *query strategy*.
*Uncertainty sampling* (least confident, binary case) asks for

.. math::

    x^* = \arg\max_{x \in \text{pool}} \bigl(1 - \max_y p_\theta(y \mid x)\bigr)
        = \arg\min_{x} \bigl|\,p_\theta(y{=}1 \mid x) - \tfrac12\bigr|,

the examples closest to the decision boundary; *random sampling* asks for ``k`` examples drawn
uniformly (the passive baseline). The model here is a logistic regression
(scikit-learn, :math:`p_\theta(y{=}1\mid x)=\sigma(w^\top x + b)`, L2 penalty ``C``) on frozen
MiniLM sentence vectors (:func:`wmbook.lab.finetune.load_sst2_minilm_features`, page 5.3).
:func:`learning_curve` returns the test accuracy after each number of labels in ``budgets``;
both strategies start from the same random seed set, so they differ only in what they ask.

:func:`project` (a PCA fitted on the pool) gives the low-dimensional features of the static
labelling view of :mod:`wmbook.view.labeling`, whose JavaScript fits the same model by gradient
descent (:func:`fit_logistic_gd` is its Python twin, checked against scikit-learn).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

STRATEGIES = ("uncertainty", "random")


def _check_xy(X, y, name: str) -> tuple[np.ndarray, np.ndarray]:
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y)
    if X.ndim != 2 or y.ndim != 1 or len(X) != len(y) or len(X) == 0:
        raise ValueError(f"{name}: X must be (n, d) and y (n,) with n >= 1, got {X.shape} and {y.shape}")
    if not set(np.unique(y).tolist()) <= {0, 1}:
        raise ValueError(f"{name}: labels must be 0/1, got {np.unique(y)[:5]}")
    return X, y


def least_confident(p1: np.ndarray) -> np.ndarray:
    """Uncertainty of a binary prediction: 1 - max(p, 1 - p), from p(y=1|x) (0 = sure, 0.5 = a coin)."""
    p1 = np.asarray(p1, dtype=np.float64)
    if np.any((p1 < 0) | (p1 > 1)):
        raise ValueError("p1 must hold probabilities in [0, 1]")
    return 1.0 - np.maximum(p1, 1.0 - p1)


def query(strategy: str, p1_pool: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Positions (in the unlabelled pool) of the ``k`` examples ``strategy`` asks about.

    ``uncertainty``: the ``k`` largest :func:`least_confident` (ties broken by position);
    ``random``: ``k`` positions drawn without replacement.
    """
    n = len(p1_pool)
    if not 1 <= k <= n:
        raise ValueError(f"k must be in 1..{n} (the unlabelled pool), got {k}")
    if strategy == "uncertainty":
        return np.argsort(-least_confident(p1_pool), kind="stable")[:k]
    if strategy == "random":
        return rng.choice(n, size=k, replace=False)
    raise ValueError(f"unknown strategy {strategy!r}; use one of {STRATEGIES}")


def _fit(X, y, C: float):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, max_iter=2000).fit(X, y)


def initial_labels(y_pool: np.ndarray, n_init: int, seed: int) -> np.ndarray:
    """``n_init`` random pool positions (seeded) that hold both classes (redrawn until they do)."""
    if not 2 <= n_init <= len(y_pool):
        raise ValueError(f"n_init must be in 2..{len(y_pool)}, got {n_init}")
    rng = np.random.default_rng(seed)
    for _ in range(1000):
        idx = rng.choice(len(y_pool), size=n_init, replace=False)
        if len(np.unique(y_pool[idx])) == 2:
            return idx
    raise ValueError("could not draw a seed set holding both classes: is one class missing from the pool?")


def learning_curve(X_pool, y_pool, X_test, y_test, strategy: str, budgets: Sequence[int], seed: int,
                   C: float = 1.0) -> list[float]:
    """Test accuracy after ``budgets[0]``, ``budgets[1]``, ... labels (increasing).

    The first ``budgets[0]`` labels are random (:func:`initial_labels`, the same for every
    strategy with the same seed); then, to grow from one budget to the next, the model fitted on
    the labels so far asks for ``budgets[j+1] - budgets[j]`` more by ``strategy`` (:func:`query`).
    """
    X_pool, y_pool = _check_xy(X_pool, y_pool, "pool")
    X_test, y_test = _check_xy(X_test, y_test, "test")
    budgets = list(budgets)
    if not budgets or any(b2 <= b1 for b1, b2 in zip(budgets, budgets[1:])) or budgets[-1] > len(y_pool):
        raise ValueError(f"budgets must increase and stay within the pool ({len(y_pool)}), got {budgets}")
    labelled = list(initial_labels(y_pool, budgets[0], seed))
    rng = np.random.default_rng(seed + 10_000)
    accs = []
    for j, b in enumerate(budgets):
        model = _fit(X_pool[labelled], y_pool[labelled], C)
        accs.append(float((model.predict(X_test) == y_test).mean()))
        if j + 1 < len(budgets):
            rest = np.setdiff1d(np.arange(len(y_pool)), labelled)
            pick = query(strategy, model.predict_proba(X_pool[rest])[:, 1], budgets[j + 1] - b, rng)
            labelled.extend(rest[pick].tolist())
    return accs


def full_data_accuracy(X_pool, y_pool, X_test, y_test, C: float = 1.0) -> float:
    """Test accuracy of the same model fitted on every pool label: the ceiling of the curves."""
    X_pool, y_pool = _check_xy(X_pool, y_pool, "pool")
    X_test, y_test = _check_xy(X_test, y_test, "test")
    return float((_fit(X_pool, y_pool, C).predict(X_test) == y_test).mean())


def project(X_fit, *Xs, dims: int = 8) -> list[np.ndarray]:
    """PCA fitted on ``X_fit`` (centred, top ``dims`` directions, scaled to unit variance) applied to
    ``X_fit`` and each of ``Xs``: the small features the labelling view's JavaScript works on."""
    X_fit = np.asarray(X_fit, dtype=np.float64)
    if X_fit.ndim != 2 or not 1 <= dims <= min(X_fit.shape):
        raise ValueError(f"dims must be in 1..{min(X_fit.shape) if X_fit.ndim == 2 else '?'}, got {dims}")
    mu = X_fit.mean(0)
    _, s, Vt = np.linalg.svd(X_fit - mu, full_matrices=False)
    V = Vt[:dims].T
    scale = s[:dims] / np.sqrt(len(X_fit) - 1)  # the components' standard deviations
    return [((np.asarray(X, dtype=np.float64) - mu) @ V) / scale for X in (X_fit, *Xs)]


def fit_logistic_gd(X, y, l2: float = 0.1, steps: int = 300, lr: float = 0.5) -> tuple[np.ndarray, float]:
    r"""Logistic regression by full-batch gradient descent on the mean log-loss plus
    :math:`\frac{\lambda}{2}\|w\|^2` (``l2`` = :math:`\lambda`, no penalty on ``b``): ``(w, b)``.

    The labelling view's JavaScript runs exactly this loop (same start at 0, steps, rate).
    """
    X, y = _check_xy(X, y, "fit_logistic_gd")
    w, b = np.zeros(X.shape[1]), 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(X @ w + b)))
        g = p - y
        w -= lr * (X.T @ g / len(y) + l2 * w)
        b -= lr * g.mean()
    return w, b


__all__ = ["STRATEGIES", "fit_logistic_gd", "full_data_accuracy", "initial_labels", "learning_curve",
           "least_confident", "project", "query"]
