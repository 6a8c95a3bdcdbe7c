"""The reader labels the sentences a classifier asks about: a static-HTML active-learning view (page 8.3.3).

:func:`labeling_view` returns a :class:`LabelingView` (a :class:`wmbook.view.fragment.Fragment`):
one ``<div>`` with its CSS and a ``<script>`` running ``labeling_assets/labeling.js``, nothing
fetched, nothing sent, works from ``file://``. The JavaScript fits a logistic regression by
gradient descent on low-dimensional sentence features (the loop of
:func:`wmbook.lab.active.fit_logistic_gd`, same start, steps, rate and L2), shows the pool
sentence whose p(positive) is closest to 1/2 (uncertainty sampling; a box switches to random
questions), and after each answer refits and reports the accuracy on held-out sentences with
their stored labels. The element carries ``data-wmb-labels``, ``data-wmb-acc`` and
``data-wmb-labelled`` (``index:label,...``) so that a test can check it against Python.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from wmbook.view.fragment import Fragment, asset, escape, json_for_script, new_uid

_UID = "__WMB_UID__"
_ARGS = "__WMB_ARGS__"


class LabelingView(Fragment):
    """The labelling view, ready to show (``_repr_html_``) or save as a page (``.save(path)``)."""


def labeling_view(texts: Sequence[str], pool_X, test_X, test_y, *, full_acc: float, n_full: int,
                  l2: float = 0.1, steps: int = 300, lr: float = 0.5, digits: int = 3,
                  title: str = "Label what the model asks about") -> LabelingView:
    """A view over ``texts`` (the pool, in the order ties are broken) with features ``pool_X``
    (n, d), and held-out ``test_X`` (m, d) with labels ``test_y`` (0/1). ``full_acc`` is the
    same model's accuracy with all ``n_full`` training labels (the reference line shown)."""
    pool_X, test_X, test_y = np.asarray(pool_X, float), np.asarray(test_X, float), np.asarray(test_y)
    if pool_X.ndim != 2 or len(pool_X) != len(texts) or len(pool_X) == 0:
        raise ValueError(f"pool_X must be (len(texts), d) with at least one row, got {pool_X.shape} for {len(texts)} texts")
    if test_X.ndim != 2 or test_X.shape[1] != pool_X.shape[1] or len(test_X) != len(test_y) or len(test_y) == 0:
        raise ValueError(f"test_X must be (m, {pool_X.shape[1]}) with m = len(test_y) >= 1, got {test_X.shape}, {test_y.shape}")
    if not set(np.unique(test_y).tolist()) <= {0, 1}:
        raise ValueError("test_y must hold 0/1 labels")
    uid = new_uid("wmb-labeling")
    payload = {"dims": int(pool_X.shape[1]), "l2": float(l2), "steps": int(steps), "lr": float(lr),
               "full_acc": float(full_acc), "n_full": int(n_full),
               "pool": [{"t": str(t), "x": np.round(x, digits).tolist()} for t, x in zip(texts, pool_X)],
               "test": {"X": np.round(test_X, digits).tolist(), "y": [int(v) for v in test_y]}}
    css = asset("labeling_assets", "labeling.css").replace(_UID, uid)
    js = asset("labeling_assets", "labeling.js", _ARGS).replace(_ARGS, f'"{uid}", {json_for_script(payload)}', 1)
    html = (f'<div id="{uid}" class="wmb-labeling"><style>{css}</style><strong>{escape(title)}</strong>'
            '<div class="wmb-lab-body"><p>This view needs JavaScript. In Jupyter, trust the notebook '
            "(or run the cell again) to enable it.</p></div></div>\n"
            f"<script>{js}</script>")
    return LabelingView(html, uid, f"labelling view, {len(texts)} sentences", title)


__all__ = ["LabelingView", "labeling_view"]
