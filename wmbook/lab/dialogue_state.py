r"""Dialogue state tracking on Taskmaster-4 coffee orders: the state as working memory (page 6.2.3).

A task-oriented dialogue system keeps a *dialogue state* (a belief state): one value per slot,
updated after each user turn, :math:`s_t = f(s_{t-1}, u_t)`. It is a fixed-size summary of
everything said so far, so the system never has to re-read the growing history
:math:`u_1, \dots, u_t`. The standard scores, per user turn :math:`t` and over the slots
:math:`\mathcal{S}` (Henderson, Thomson, Williams 2014, the second Dialog State Tracking Challenge):

.. math::

    \text{slot accuracy} = \frac{1}{|\mathcal{S}|}\sum_{s\in\mathcal{S}} [\hat s_t(s) = s_t(s)],
    \qquad
    \text{joint goal accuracy} = \Big[\textstyle\bigwedge_{s\in\mathcal{S}} \hat s_t(s) = s_t(s)\Big],

each averaged over the turns of the evaluation set (an empty slot counts, it must be predicted
empty).

**Gold state.** Taskmaster-4 (``data_07.json``, 210 coffee-bar dialogues) has no state labels;
it has, on user utterances, the API calls the order system would make: ``add_order_item``
(a menu item, a quantity, ``attributes`` such as milk, caffeine, espresso shots, hot or iced,
and ``addons`` such as vanilla), ``update_order_item`` (an attribute or add-on changed on an
item already ordered) and ``update_order`` (the order type, to go or here). :func:`gold_states`
replays those calls in order: the gold state after user turn :math:`t` is the order built by the
calls annotated on user turns :math:`1..t`, flattened to the slots of :data:`SLOTS` (each slot
holds the *set* of values over the order's items, ``"almond|oat"`` for two drinks; ``quantity``
the number of items). Lookups (``get_menu_items``, ``get_addons``, ``show_menu``,
``get_order_details``), ``finish_order`` and the free-text ``notes`` leave the state as it is;
an item update naming an unknown ``order_item_id`` applies to the last item added. Drink names come from the ``get_menu_items`` response for the item's ``menu_item_id`` (falling back
to the id without its number) and are snapped to the menu's spelling (``"moccha"`` -> ``"mocha"``);
values are lower-cased, ``"2&"`` read as ``"2%"`` (a typo in the data).

**Trackers** (:func:`track`): ``"none"`` (always the empty state, the reference line),
``"last"`` (only what the current user utterance mentions: no memory), ``"state"`` (the rule
tracker: the previous state, overwritten slot by slot with what the current utterance mentions:
a constant-size memory) and ``"history"`` (the same extractor run on all user utterances so far,
joined: a growing memory, re-read every turn). All four share one extractor,
:func:`extract_mentions` (regular expressions over a small lexicon of the menu).
"""
from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from typing import Iterable, Sequence

SLOTS = ("drink", "quantity", "milk", "caffeine", "shots", "temperature", "addons", "order_type")
"""The tracked slots (free-text ``notes`` and the customer's name are left out)."""

MENU = ("latte", "mocha", "cortado", "cappuccino", "macchiato", "matcha latte", "chai latte",
        "americano", "espresso", "steamer", "hot chocolate", "cold brew")
"""Drink names the gold values are snapped to (the coffee-bar menu of the scenarios)."""

TRACKERS = ("none", "last", "state", "history")

_EMPTY = "none"


@dataclass
class Turn:
    """One user turn: its text, what was said before it (both speakers) and the gold state after it."""

    text: str
    before: list[tuple[str, str]]
    gold: dict[str, str]


@dataclass
class Dialogue:
    """One Taskmaster-4 dialogue: ``utterances`` as ``(speaker, text)``; ``turns`` its user turns."""

    conversation_id: str
    scenario: str
    utterances: list[tuple[str, str]]
    turns: list[Turn] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# gold states from the API-call annotations


def _loads(text: str) -> dict:
    """JSON of an annotation; one request in the data doubles its quotes (``""cortado-3621""``)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return json.loads(text.replace('""', '"'))


def _drink(name: str) -> str:
    name = re.sub(r"\(.*?\)", "", name.lower()).replace("-", " ").strip()
    name = re.sub(r"\s+", " ", re.sub(r"\d+$", "", name)).strip()
    if name in MENU:
        return name
    close = difflib.get_close_matches(name.replace(" ", ""), [m.replace(" ", "") for m in MENU], n=1, cutoff=0.75)
    return MENU[[m.replace(" ", "") for m in MENU].index(close[0])] if close else name


def _option(attribute: str, option: str) -> tuple[str, str] | None:
    """``(slot, canonical value)`` of one gold attribute option, or None for an untracked one."""
    o = option.lower().replace("&", "%").replace("-", " ").strip()
    if attribute == "milk-options":
        o = re.sub(r"\s*milk$", "", o).replace("non fat", "non-fat").strip()
        return "milk", o
    if attribute == "caffeine":
        return "caffeine", o
    if attribute == "espresso-shots":
        return "shots", o
    if attribute == "hot-or-iced":
        return "temperature", o
    if attribute == "order-type":
        return "order_type", "here" if o == "here" else "to go"
    return None


def _clean_addon(text: str) -> str:
    name = re.sub(r"\d+", "", text.lower().replace("-", " "))
    name = name.replace("sweetener", "").replace("sauce", "").replace("syrup", "")
    name = re.sub(r"\s+", " ", name).strip()
    return name or ("sweetener" if "sweetener" in text.lower() else "")


def _addon(addon_id: str, names: dict[str, str]) -> str:
    """Canonical add-on name (``"vanilla"``) of an ``addon_id``, named by the dialogue's ``get_addons`` response."""
    addon_id = addon_id.strip()
    for key in [addon_id] + [k for k in names if k != addon_id and k.endswith(addon_id)]:
        for text in (names.get(key, ""), key):  # its name, else the id without its number
            if _clean_addon(text):
                return _clean_addon(text)
    return addon_id  # an id that is only a number nobody named


def _calls(utterance: dict) -> list[tuple[str, dict | None, dict | None]]:
    """``(api name, request, response)`` of each call annotated on one utterance, in order."""
    by_index: dict[str, dict] = {}
    for a in utterance.get("annotations", []):
        k = a["context"].rsplit("_", 1)[-1]
        slot = by_index.setdefault(k, {})
        if a["name"] == "api_call":
            slot["name"] = a["value"]
        elif a["name"] in ("request", "response"):
            slot[a["name"]] = _loads(a["value"])
    return [(c.get("name", ""), c.get("request"), c.get("response"))
            for _, c in sorted(by_index.items(), key=lambda kv: int(kv[0]) if kv[0].isdigit() else 0)]


def flatten(items: dict[str, dict], order: dict[str, str]) -> dict[str, str]:
    """The slot values of an order: each slot the sorted set of its items' values, ``"none"`` if unset."""
    values: dict[str, set[str]] = {s: set() for s in SLOTS}
    quantity = 0
    for item in items.values():
        quantity += item.get("quantity", 1)
        for slot, v in item.items():
            if slot == "quantity":
                continue
            values[slot] |= v if isinstance(v, set) else {v}
    for slot, v in order.items():
        values[slot].add(v)
    state = {s: "|".join(sorted(values[s])) if values[s] else _EMPTY for s in SLOTS}
    state["quantity"] = str(quantity) if items else _EMPTY
    return state


def gold_states(raw_dialogue: dict) -> list[dict[str, str]]:
    """The gold state after each user utterance of one raw Taskmaster-4 dialogue (see the module doc)."""
    utterances = sorted(raw_dialogue["utterances"], key=lambda u: u["index"])
    menu_names: dict[str, str] = {}
    addon_names: dict[str, str] = {}
    for u in utterances:  # names first: a later lookup may name an id used earlier
        for name, _, resp in _calls(u):
            if name == "get_menu_items" and isinstance(resp, dict):
                for m in resp.get("menu_items", []):
                    menu_names[str(m.get("menu_item_id", "")).strip()] = str(m.get("name", ""))
            if name == "get_addons" and isinstance(resp, dict):
                for a in resp.get("addons", []):
                    addon_names[str(a.get("addon_id", "")).strip()] = str(a.get("name", ""))
    items: dict[str, dict] = {}
    order: dict[str, str] = {}
    states = []
    for u in utterances:
        for name, req, resp in _calls(u):
            if not isinstance(req, dict):
                continue
            if name in ("add_order_item", "update_order_item"):
                if name == "add_order_item":
                    item_id = str((resp or {}).get("order_item_id", f"item{len(items)}"))
                    menu_id = str(req.get("menu_item_id", "")).strip()
                    item = {"drink": _drink(menu_names.get(menu_id) or menu_id),
                            "quantity": int(req.get("quantity", 1) or 1)}
                    items[item_id] = item
                else:
                    item_id = str(req.get("order_item_id", ""))
                    item = items.get(item_id) or (next(reversed(items.values())) if items else None)
                    if item is None:
                        continue
                for att in req.get("attributes", []) or []:
                    sv = _option(att.get("attribute_id", ""), str(att.get("option", "")))
                    if sv:
                        item[sv[0]] = sv[1]
                for add in req.get("addons", []) or []:
                    if str(add.get("option", "")).upper() == "ADD":
                        item.setdefault("addons", set()).add(_addon(str(add.get("addon_id", "")), addon_names))
            elif name == "update_order":
                for att in req.get("attributes", []) or []:
                    sv = _option(att.get("attribute_id", ""), str(att.get("option", "")))
                    if sv:
                        order[sv[0]] = sv[1]
        if u["speaker"] == "user":
            states.append(flatten(items, order))
    return states


def load_dialogues() -> list[Dialogue]:
    """The 210 dialogues of Taskmaster-4's coffee file with their user turns and gold states.

    Reads the raw JSON through :func:`wmbook.data.loaders.fetch` (``load_taskmaster`` keeps only
    speakers and texts, not the API-call annotations the gold states come from).
    """
    from wmbook.data.loaders import fetch

    raw = json.loads(fetch("dialogue/taskmaster4/data_07.json").read_text(encoding="utf-8"))
    out = []
    for d in raw:
        utterances = [(u["speaker"], u["text"]) for u in sorted(d["utterances"], key=lambda u: u["index"])]
        golds = gold_states(d)
        dlg = Dialogue(d["conversation_id"], d.get("scenario", ""), utterances)
        k = 0
        for i, (speaker, text) in enumerate(utterances):
            if speaker == "user":
                dlg.turns.append(Turn(text, utterances[:i], golds[k]))
                k += 1
        out.append(dlg)
    return out


# ---------------------------------------------------------------------------------------------
# the extractor and the trackers

_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "1": 1, "2": 2, "3": 3, "4": 4}
_DRINKS = [  # (pattern, drink); the longer names first, their spans are removed before the shorter ones
    (r"mat?cha(?:\s+lattes?)?", "matcha latte"), (r"chai(?:\s+lattes?)?", "chai latte"),
    (r"hot chocolate", "hot chocolate"), (r"cold brew", "cold brew"), (r"latte", "latte"), (r"moc+h?a", "mocha"),
    (r"cap+uc+h?ino", "cappuccino"),
    (r"cortado", "cortado"), (r"mac+h?i+at+o", "macchiato"), (r"americano", "americano"),
    (r"espresso(?!\s+shot)", "espresso"), (r"steamer", "steamer"),
]
_TWO_PERCENT = r"(?:2|two)\s*(?:%|percent)"
_MILKS = [(rf"(?:{_TWO_PERCENT}\s*)?lactose[- ]?free(?:\s*{_TWO_PERCENT})?", "2% lactose free"),
          (rf"{_TWO_PERCENT}|reduced fat", "2%"), (r"non[- ]?fat|skim", "non-fat"), (r"\boat", "oat"),
          (r"almond", "almond"), (r"whole milk", "whole")]
_SHOTS = [(r"\bsin(?:gle|lge)\b|\bone shot", "single"), (r"\bdouble\b|\btwo shots", "double"),
          (r"\btriple\b|\bthree shots", "triple"), (r"\bquad(?:ruple)?\b|\bfour shots", "quadruple")]
_ADDONS = [(r"sugar[- ]free vanilla", "sugar free vanilla"), (r"vanilla", "vanilla"), (r"caramel", "caramel"),
           (r"hazelnut", "hazelnut"), (r"(?<!hot )chocolate(?! ?drink)", "chocolate")]  # not the drink
_ASKING = r"what(?:'s| is| are)? in\b|what kinds?\b|do you (?:have|carry|serve)|tell me|show me|\bmenu\b|options"
_ORDER = [(r"\bto[- ]?go\b|carry[- ]?out|take[- ]?away|takeout", "to go"), (r"for here|to stay|dine in", "here")]


def _take(patterns, text: str) -> tuple[list[str], str]:
    """Values whose pattern occurs in ``text`` (each match blanked out, so shorter names don't re-match)."""
    found = []
    for pattern, value in patterns:
        if re.search(pattern, text):
            found.append(value)
            text = re.sub(pattern, " ", text)
    return found, text


def extract_mentions(text: str) -> dict[str, str]:
    """The slot values an utterance (or several joined) mentions: ``{slot: value}``, only those found.

    A sentence asking about the menu (``"what is in a mocha?"``, ``"do you have..."``) is skipped.
    Multi-valued slots join the sorted set with ``"|"`` as the gold does; ``quantity`` sums, over the
    distinct drinks mentioned, the largest number word before each (``"two mochas"`` -> 2), 1 if none.
    """
    sentences = re.split(r"(?<=[.?!])\s+|\n", text.lower().replace("’", "'"))
    t = " " + " ".join(x for x in sentences if not re.search(_ASKING, x)) + " "  # questions order nothing
    out: dict[str, str] = {}
    addons, _ = _take(_ADDONS, t)
    drinks, quantity = [], 0
    rest = t
    for pattern, drink in _DRINKS:
        counted = r"(?:\b(a|an|one|two|three|four|[1-4])\s+(?:\w+\s+){0,3}?)?" + f"(?:{pattern})"
        counts = [_NUMBERS.get(m.group(1), 1) if m.group(1) else 1 for m in re.finditer(counted, rest)]
        if counts:
            drinks.append(drink)
            quantity += max(counts)
            rest = re.sub(pattern, " ", rest)
    if drinks:
        out["drink"] = "|".join(sorted(set(drinks)))
        out["quantity"] = str(quantity)
    milks, _ = _take(_MILKS, t)
    if milks:
        out["milk"] = "|".join(sorted(set(milks)))
    if re.search(r"\bdeca(?:f|lf)|decaffeinat", t):
        out["caffeine"] = "decaf"
    shots, _ = _take(_SHOTS, t)
    if shots:
        out["shots"] = "|".join(sorted(set(shots)))
    if re.search(r"\biced\b|\bon ice\b", t):
        out["temperature"] = "iced"
    if addons:
        out["addons"] = "|".join(sorted(set(addons)))
    order, _ = _take(_ORDER, t)
    if order:
        out["order_type"] = order[-1]
    return out


def empty_state() -> dict[str, str]:
    """Every slot empty (``"none"``)."""
    return {s: _EMPTY for s in SLOTS}


def update_state(state: dict[str, str], text: str) -> dict[str, str]:
    r"""The rule tracker's step :math:`s_t = f(s_{t-1}, u_t)`: each slot the utterance mentions is overwritten."""
    new = dict(state)
    new.update(extract_mentions(text))
    return new


def track(dialogue: Dialogue, tracker: str) -> list[dict[str, str]]:
    """The state a tracker predicts after each user turn of ``dialogue`` (``tracker`` in :data:`TRACKERS`)."""
    if tracker not in TRACKERS:
        raise ValueError(f"unknown tracker {tracker!r}; choose one of {', '.join(TRACKERS)}")
    out, state, said = [], empty_state(), []
    for turn in dialogue.turns:
        said.append(turn.text)
        if tracker == "none":
            pred = empty_state()
        elif tracker == "last":
            pred = {**empty_state(), **extract_mentions(turn.text)}
        elif tracker == "state":
            state = pred = update_state(state, turn.text)
        else:
            pred = {**empty_state(), **extract_mentions("\n".join(said))}
        out.append(pred)
    return out


def score_turns(dialogues: Sequence[Dialogue], tracker: str) -> list[dict]:
    """One row per user turn: ``depth`` (1 = first user turn), ``slot_acc``, ``joint`` (0/1)."""
    rows = []
    for d_i, d in enumerate(dialogues):
        for depth, (turn, pred) in enumerate(zip(d.turns, track(d, tracker)), start=1):
            right = [pred[s] == turn.gold[s] for s in SLOTS]
            rows.append({"dialogue": d_i, "depth": depth, "slot_acc": sum(right) / len(SLOTS),
                         "joint": float(all(right))})
    return rows


@dataclass(frozen=True)
class DSTResult:
    """Mean slot accuracy and joint goal accuracy of one tracker, overall and per turn depth."""

    tracker: str
    slot_acc: float
    joint: float
    by_depth: dict[int, tuple[int, float, float]]  # depth -> (n turns, slot acc, joint goal acc)


def evaluate(dialogues: Sequence[Dialogue], tracker: str, max_depth: int = 3) -> DSTResult:
    """Scores of ``tracker`` over the user turns of ``dialogues``; depths beyond ``max_depth`` are pooled into it."""
    rows = score_turns(dialogues, tracker)
    if not rows:
        raise ValueError("no user turns to score: pass at least one dialogue with a user turn")
    by: dict[int, list[dict]] = {}
    for r in rows:
        by.setdefault(min(r["depth"], max_depth), []).append(r)
    mean = lambda rs, k: sum(r[k] for r in rs) / len(rs)  # noqa: E731
    return DSTResult(tracker, mean(rows, "slot_acc"), mean(rows, "joint"),
                     {k: (len(v), mean(v, "slot_acc"), mean(v, "joint")) for k, v in sorted(by.items())})


def bootstrap_joint(dialogues: Sequence[Dialogue], tracker: str, n_boot: int = 200,
                    seed: int = 0) -> tuple[float, float]:
    """Mean and sd of joint goal accuracy over ``n_boot`` resamples of the dialogues (with replacement)."""
    import random

    rows = score_turns(dialogues, tracker)
    per = {}
    for r in rows:
        per.setdefault(r["dialogue"], []).append(r["joint"])
    ids = sorted(per)
    rng = random.Random(seed)
    vals = []
    for _ in range(n_boot):
        pick = [rng.choice(ids) for _ in ids]
        js = [j for i in pick for j in per[i]]
        vals.append(sum(js) / len(js))
    m = sum(vals) / len(vals)
    sd = (sum((v - m) ** 2 for v in vals) / (len(vals) - 1)) ** 0.5
    return m, sd


def state_bytes(state: dict[str, str], only_filled: bool = False) -> int:
    """Size of a state as compact UTF-8 JSON (what a system would store between turns).

    With ``only_filled`` the empty slots are left out (the schema says they exist).
    """
    if only_filled:
        state = {k: v for k, v in state.items() if v != _EMPTY}
    return len(json.dumps(state, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8"))


def memory_per_turn(dialogues: Sequence[Dialogue], tokenizer=None, max_depth: int = 4) -> list[dict]:
    """Per user-turn depth: mean bytes of the rule tracker's state vs bytes and tokens of the history.

    ``state_bytes``: all slots as JSON; ``filled_bytes``: only the filled ones (:func:`state_bytes`).
    The history is every utterance up to and including the user turn (both speakers), as a model
    reading the whole dialogue would get it. ``tokenizer`` (a Hugging Face tokenizer, e.g.
    MiniLM's) counts tokens without special tokens; with None, whitespace-separated words.
    """
    acc: dict[int, list[tuple[int, int, int]]] = {}
    for d in dialogues:
        states = track(d, "state")
        for depth, (turn, st) in enumerate(zip(d.turns, states), start=1):
            if depth > max_depth:
                break
            history = " ".join(t for _, t in turn.before) + " " + turn.text
            n_tok = (len(tokenizer(history, add_special_tokens=False)["input_ids"]) if tokenizer is not None
                     else len(history.split()))
            acc.setdefault(depth, []).append((state_bytes(st), state_bytes(st, only_filled=True),
                                              len(history.encode("utf-8")), n_tok))
    rows = []
    for depth, v in sorted(acc.items()):
        n = len(v)
        mean = [sum(x[i] for x in v) / n for i in range(4)]
        rows.append({"depth": depth, "n": n, "state_bytes": mean[0], "filled_bytes": mean[1],
                     "history_bytes": mean[2], "history_tokens": mean[3]})
    return rows


def changed_slots(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Slots whose value differs between two states."""
    return [s for s in SLOTS if before.get(s, _EMPTY) != after.get(s, _EMPTY)]


def iter_errors(dialogues: Iterable[Dialogue], tracker: str):
    """``(dialogue, depth, slot, predicted, gold, text)`` for every wrong slot of ``tracker``."""
    for d in dialogues:
        for depth, (turn, pred) in enumerate(zip(d.turns, track(d, tracker)), start=1):
            for s in SLOTS:
                if pred[s] != turn.gold[s]:
                    yield d, depth, s, pred[s], turn.gold[s], turn.text
