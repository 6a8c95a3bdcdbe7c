"""A retrieval-result browser for page 6.2: pick a question, see the top passages of each retriever.

``retrieval_browser(...)`` returns a :class:`~wmbook.view.fragment.Fragment` (inline JS and CSS,
nothing fetched), so it works in the static book from ``file://`` as well as in Jupyter. All
rankings are computed in Python (:mod:`wmbook.lab.retrieval`) and passed in; the script only
shows them: for every question, each method's top ``k`` passages with their scores, the gold
passage (the one the question was written on) marked in green, the rank the method gave it, and
the question's words in bold. ``retrieval_widget`` is the same view driven by ``ipywidgets`` in a
live kernel.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from wmbook.view.fragment import Fragment, asset, escape, json_for_script, new_uid

_UID = "__WMB_UID__"
_ARGS = "__WMB_ARGS__"


class RetrievalBrowser(Fragment):
    """The browser ready to show (``.html``; ``.save(path)`` writes a page)."""


def browser_data(questions: Sequence[str], answers: Sequence[str], gold: Sequence[int], passages: Sequence[str],
                 scores: Mapping[str, np.ndarray], k: int = 5, stop: Sequence[str] = ()) -> dict:
    """What the browser shows: each method's top ``k`` (passage, score) per question and the gold passage's rank.

    ``scores`` maps a method's name to its ``(Q, N)`` score matrix over ``passages``; only the
    passages some method puts in a top ``k`` (and the gold ones) are kept.
    """
    Q = len(questions)
    if not (len(answers) == len(gold) == Q) or Q == 0:
        raise ValueError(f"need one answer and one gold passage per question: {Q} questions, "
                         f"{len(answers)} answers, {len(gold)} gold indices")
    if not scores:
        raise ValueError("scores must map at least one method name to a (Q, N) score matrix")
    for name, s in scores.items():
        if np.shape(s) != (Q, len(passages)):
            raise ValueError(f"scores[{name!r}] has shape {np.shape(s)}, expected ({Q}, {len(passages)})")
    if not 1 <= k <= len(passages):
        raise ValueError(f"k must be in [1, {len(passages)}], got {k}")
    keys = [f"m{i}" for i in range(len(scores))]
    used: set[int] = set()
    items = []
    for i in range(Q):
        g = int(gold[i])
        top, ranks = {}, {}
        for key, s in zip(keys, scores.values()):
            row = np.asarray(s[i], dtype=np.float64)
            order = np.argsort(-row, kind="stable")[:k]
            top[key] = [[int(j), float(f"{row[j]:.3g}")] for j in order]
            ranks[key] = int((row >= row[g]).sum())  # ties count against the gold passage
            used.update(int(j) for j in order)
        used.add(g)
        items.append({"q": questions[i], "answer": answers[i], "gold": g, "top": top, "ranks": ranks})
    return {"methods": [{"key": key, "name": name} for key, name in zip(keys, scores)],
            "passages": {str(j): passages[j] for j in sorted(used)}, "stop": sorted(set(stop)),
            "questions": items}


def retrieval_browser(questions: Sequence[str], answers: Sequence[str], gold: Sequence[int], passages: Sequence[str],
                      scores: Mapping[str, np.ndarray], k: int = 5, stop: Sequence[str] = (),
                      title: str = "Retrieval browser") -> RetrievalBrowser:
    """The static browser (see the module's docstring); ``stop``: words not to highlight."""
    data = browser_data(questions, answers, gold, passages, scores, k, stop)
    data["title"] = title
    uid = new_uid("wmb-rv")
    css = asset("retrieval_assets", "retrieval.css").replace(_UID, uid)
    js = asset("retrieval_assets", "retrieval.js", _ARGS).replace(_ARGS, f'"{uid}", {json_for_script(data)}', 1)
    first = data["questions"][0]
    html = (f'<div id="{uid}" class="wmb-rv"><style>{css}</style><div class="wmb-rv-body">'
            f"<p>{escape(title)}: {len(questions)} questions. First: {escape(first['q'])}</p>"
            "<p>The browser needs JavaScript: in Jupyter, trust the notebook.</p></div></div>\n"
            f"<script>{js}</script>")
    return RetrievalBrowser(html, uid, f"{len(questions)} questions, {len(scores)} retrievers", title)


def retrieval_widget(questions: Sequence[str], answers: Sequence[str], gold: Sequence[int], passages: Sequence[str],
                     scores: Mapping[str, np.ndarray], k: int = 5):
    """The same view with ``ipywidgets`` (a live kernel): a dropdown of questions, each method's top ``k``."""
    import ipywidgets as w

    data = browser_data(questions, answers, gold, passages, scores, k)
    out = w.HTML()

    def show(i: int) -> None:
        q = data["questions"][i]
        cols = []
        for m in data["methods"]:
            rows = "".join(
                f'<li style="{"background:rgba(46,157,74,.15)" if j == q["gold"] else ""}">'
                f'<code>{s}</code> {escape(data["passages"][str(j)][:200])} ...</li>'
                for j, s in q["top"][m["key"]])
            cols.append(f'<div style="flex:1;min-width:240px"><b>{escape(m["name"])}</b> '
                        f'(gold at rank {q["ranks"][m["key"]]})<ol>{rows}</ol></div>')
        out.value = (f"<p><b>Q:</b> {escape(q['q'])}<br><b>Gold answer:</b> {escape(q['answer'])}</p>"
                     f'<div style="display:flex;gap:12px;flex-wrap:wrap">{"".join(cols)}</div>')

    pick = w.Dropdown(options=[(f"{i + 1}. {q['q'][:80]}", i) for i, q in enumerate(data["questions"])],
                      description="question", layout=w.Layout(width="95%"))
    pick.observe(lambda change: show(change["new"]), names="value")
    show(0)
    return w.VBox([pick, out])
