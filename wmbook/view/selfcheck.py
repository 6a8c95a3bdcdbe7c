"""Self-check questions at the end of a page: pick an answer, read why it is right or wrong.

Retrieval practice, answering from memory rather than re-reading, helps what was read stay
(Adesope et al. 2017 review the evidence); the questions come with feedback on every option, so a
wrong answer teaches as much as a right one. Every page of the book ends with a few of them.

``self_check(page, questions)`` returns a :class:`~wmbook.view.fragment.Fragment` (inline JS and
CSS, nothing fetched): it works in Jupyter, VS Code, Colab and in the built book from ``file://``.
The reader's answers stay in their browser (``localStorage``, key ``"wmbook-selfcheck"``); a
question answered wrong comes back first, marked, the next time the page opens.

A question is a mapping::

    {"q": "Why divide the scores by sqrt(d_k)?",
     "options": [("So the weights sum to 1.", False, "The softmax does that whatever the scale."),
                 ("To keep the scores' spread near 1 at any width.", True, "Their sd grows like sqrt(d_k)."),
                 ...]}

with two or more options, at least one of them right, and a reason ("why") for each. Text may hold
`code` in backticks and math in ``$...$``; it is shown as text, never as HTML, and the math is
typeset where the page has MathJax (the built book; Jupyter shows the TeX).
"""
from __future__ import annotations

import hashlib
import random
import re
from typing import Any, Mapping, Sequence

from wmbook.view.fragment import Fragment, asset, escape, json_for_script, new_uid

_UID = "__WMB_UID__"
_MATH = re.compile(r"(?<![\\$])\$([^$\n]+)\$")
_ARGS = "__WMB_ARGS__"


class SelfCheck(Fragment):
    """Self-check questions ready to show (``.html``; ``.save(path)`` writes a page)."""


def _question(k: int, q: Any, shuffle: bool = True) -> dict:
    where = f"question {k + 1}"
    if not isinstance(q, Mapping) or "q" not in q or "options" not in q:
        raise ValueError(f"{where} must be a mapping with 'q' (the question) and 'options', got {q!r:.80}")
    prompt = q["q"]
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError(f"{where}: 'q' must be a non-empty string")
    options = []
    for j, o in enumerate(q["options"]):
        if not (isinstance(o, Sequence) and not isinstance(o, str) and len(o) == 3):
            raise ValueError(f"{where}, option {j + 1}: expected (text, correct, why), got {o!r:.80}")
        text, correct, why = o
        if not isinstance(correct, bool):
            raise ValueError(f"{where}, option {j + 1}: 'correct' must be True or False, got {correct!r}")
        if not (isinstance(text, str) and text.strip() and isinstance(why, str) and why.strip()):
            raise ValueError(f"{where}, option {j + 1}: give the option's text and why it is right or wrong")
        options.append({"text": _tex(text.strip()), "correct": correct, "why": _tex(why.strip())})
    if len(options) < 2:
        raise ValueError(f"{where}: give at least two options")
    if not any(o["correct"] for o in options):
        raise ValueError(f"{where}: no option is marked correct")
    qid = hashlib.sha256(prompt.strip().encode("utf-8")).hexdigest()[:12]  # stable across re-runs
    if shuffle:  # the right answer's place says nothing; the same order on every run (seeded by the question)
        random.Random(qid).shuffle(options)
    return {"id": qid, "prompt": _tex(prompt.strip()), "options": options}


def _tex(text: str) -> str:
    """``$x$`` as ``\\(x\\)``: the inline delimiters MathJax reads in the built book."""
    return _MATH.sub(lambda m: f"\\({m.group(1)}\\)", text)


def self_check(page: str, questions: Sequence[Mapping], title: str = "Self-check",
               shuffle: bool = True) -> SelfCheck:
    """Self-check questions for page ``page`` (e.g. ``"2.1"``) with feedback on every option.

    With ``shuffle`` the options of each question are put in an order drawn from the question's
    text, so the right answer's place carries no hint and does not change between runs.
    """
    if not isinstance(page, str) or not page.strip():
        raise ValueError("page must name the page, e.g. '2.1' (answers are stored per page)")
    if isinstance(questions, (str, Mapping)) or not questions:
        raise ValueError("questions must be a non-empty list of questions")
    qs = [_question(k, q, shuffle) for k, q in enumerate(questions)]
    if len({q["id"] for q in qs}) != len(qs):
        raise ValueError("two questions have the same text")
    uid = new_uid("wmb-sc")
    payload = {"page": page, "title": title, "questions": qs}
    css = asset("selfcheck_assets", "selfcheck.css").replace(_UID, uid)
    js = asset("selfcheck_assets", "selfcheck.js", _ARGS).replace(_ARGS, f'"{uid}", {json_for_script(payload)}', 1)
    fallback = "".join(
        f"<li>{escape(q['prompt'])}</li>" for q in qs
    )  # without JavaScript (an untrusted notebook) the questions still show, as a list
    html = (
        f'<div id="{uid}" class="wmb-sc mathjax_process" data-wmb-page="{escape(page)}"><style>{css}</style>'
        f'<div class="wmb-sc-head"><span class="wmb-sc-title">{escape(title)}</span>'
        f'<span class="wmb-sc-status"></span></div>'
        f'<div class="wmb-sc-body"><ol>{fallback}</ol><p>The answers and their feedback need JavaScript: '
        "in Jupyter, trust the notebook.</p></div></div>\n"
        f"<script>{js}</script>"
    )
    return SelfCheck(html, uid, f"{len(qs)} questions for page {page}", f"Self-check, page {page}")
