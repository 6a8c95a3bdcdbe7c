"""A dialogue-state timeline: the turns on the left, the state after each user turn on the right (page 6.2.3).

:func:`state_timeline` returns a :class:`~wmbook.view.fragment.Fragment` (inline CSS, no JavaScript,
nothing fetched): it shows in Jupyter, VS Code, Colab and in the built book from ``file://``.
Each dialogue is a ``<details>`` block (the first one open); after each user turn the tracked
state is shown slot by slot, the slots that changed at that turn highlighted, and, when the gold
states are given, a slot that differs from the gold outlined with the gold value beside it.
Below each state: its size in bytes and the size of the history so far, the page's
working-memory measurement. :func:`state_timeline_widget` is the live version (a dropdown of
dialogues, needs ``ipywidgets`` and a kernel).
"""
from __future__ import annotations

from typing import Mapping, Sequence

from wmbook.lab.dialogue_state import SLOTS, changed_slots, state_bytes
from wmbook.view.fragment import Fragment, asset, escape, new_uid

_UID = "__WMB_UID__"


class StateTimeline(Fragment):
    """A dialogue-state timeline ready to show (``.html``; ``.save(path)`` writes a page)."""


def _state_table(state: Mapping[str, str], previous: Mapping[str, str], gold: Mapping[str, str] | None) -> str:
    changed = set(changed_slots(previous, state))
    rows = []
    for s in SLOTS:
        v = state.get(s, "none")
        classes = []
        if v == "none":
            classes.append("wmb-dst-empty")
        if s in changed:
            classes.append("wmb-dst-changed")
        extra = ""
        if gold is not None and gold.get(s, "none") != v:
            classes.append("wmb-dst-wrong")
            extra = f'<span class="wmb-dst-gold">gold: {escape(gold.get(s, "none"))}</span>'
        rows.append(f'<tr><td class="wmb-dst-slot">{escape(s)}</td>'
                    f'<td class="{" ".join(classes)}">{escape(v)}{extra}</td></tr>')
    return '<table class="wmb-dst-state">' + "".join(rows) + "</table>"


def _one(name: str, utterances: Sequence[tuple[str, str]], states: Sequence[Mapping[str, str]],
         golds: Sequence[Mapping[str, str]] | None, is_open: bool) -> str:
    n_user = sum(1 for who, _ in utterances if who == "user")
    if len(states) != n_user or (golds is not None and len(golds) != n_user):
        raise ValueError(f"dialogue {name!r} has {n_user} user turns but {len(states)} states"
                         + ("" if golds is None else f" and {len(golds)} gold states")
                         + ": give one state per user turn")
    cells, k, previous, history = [], 0, {s: "none" for s in SLOTS}, 0
    for who, text in utterances:
        if who not in ("user", "assistant"):
            raise ValueError(f"speaker must be 'user' or 'assistant', got {who!r}")
        history += len(text.encode("utf-8"))
        cells.append(f'<div class="wmb-dst-utt wmb-dst-{who}"><span class="wmb-dst-who">{who}</span>'
                     f"{escape(text)}</div>")
        if who == "user":
            state = states[k]
            table = _state_table(state, previous, None if golds is None else golds[k])
            size = (f'<div class="wmb-dst-size">state {state_bytes(dict(state))} bytes; history so far '
                    f'{history} bytes</div>')
            cells.append(f"<div>{table}{size}</div>")
            previous, k = state, k + 1
        else:
            cells.append("<div></div>")
    return (f'<details{" open" if is_open else ""}><summary>{escape(name)}</summary>'
            f'<div class="wmb-dst-grid">{"".join(cells)}</div></details>')


def state_timeline(dialogues: Sequence[tuple[str, Sequence[tuple[str, str]], Sequence[Mapping[str, str]]]],
                   golds: Sequence[Sequence[Mapping[str, str]]] | None = None,
                   title: str = "Dialogue state, turn by turn") -> StateTimeline:
    """A timeline for each ``(name, utterances, states)``: ``utterances`` as ``(speaker, text)``,
    ``states`` one per user turn (a mapping slot -> value); ``golds`` (optional) the gold states."""
    if isinstance(dialogues, (str, Mapping)) or not dialogues:
        raise ValueError("dialogues must be a non-empty list of (name, utterances, states)")
    if golds is not None and len(golds) != len(dialogues):
        raise ValueError(f"{len(dialogues)} dialogues but {len(golds)} lists of gold states")
    uid = new_uid("wmb-dst")
    css = asset("dialogue_assets", "dialogue.css").replace(_UID, uid)
    body = "".join(_one(name, utts, states, None if golds is None else golds[i], i == 0)
                   for i, (name, utts, states) in enumerate(dialogues))
    legend = ("Highlighted: the slots that changed at this turn."
              + (" Outlined: a slot that differs from the gold state (shown in red)." if golds is not None else ""))
    html = (f'<div id="{uid}" class="wmb-dst"><style>{css}</style>'
            f'<div class="wmb-dst-title">{escape(title)}</div><div class="wmb-dst-legend">{escape(legend)}</div>'
            f"{body}</div>")
    return StateTimeline(html, uid, f"{len(dialogues)} dialogues", title)


def state_timeline_widget(dialogues, tracker: str = "state"):
    """Live version: pick a dialogue (a :class:`wmbook.lab.dialogue_state.Dialogue`) and a tracker."""
    import ipywidgets as widgets
    from IPython.display import display

    from wmbook.lab.dialogue_state import TRACKERS, track

    if not dialogues:
        raise ValueError("state_timeline_widget needs at least one dialogue")
    pick = widgets.Dropdown(options=[(f"{i}: {d.turns[0].text[:50] if d.turns else ''}", i)
                                     for i, d in enumerate(dialogues)], description="dialogue")
    which = widgets.Dropdown(options=list(TRACKERS), value=tracker, description="tracker")
    out = widgets.Output()

    def show(_=None):
        d = dialogues[pick.value]
        with out:
            out.clear_output()
            display(state_timeline([(d.scenario or d.conversation_id, d.utterances, track(d, which.value))],
                                   [[t.gold for t in d.turns]]))

    pick.observe(show, "value")
    which.observe(show, "value")
    show()
    return widgets.VBox([widgets.HBox([pick, which]), out])
