r"""Scorers for the reader's own working-memory tasks (pages 1.2 and 1.3).

The tasks run in the reader's browser (``wmbook/view/tasks_assets/tasks.js``); the same
scoring exists there in JavaScript, and ``tests/test_tasks_browser.py`` checks that both
give the same numbers on the same recorded responses. Everything here is pure Python on
plain lists of dicts (the rows of the CSV the reader can download), so a page can score a
recorded session without a browser.

* **Digit span** (page 1.2, "Working memory and why it matters"), adaptive as in
  Woods et al. (2011): one digit per second; one correct list makes the next list one
  digit longer, two errors in a row make it one digit shorter; 14 lists.
  A list is correct when the typed digits equal the list (forward) or the list reversed
  (backward). The score is the **mean span**: the list length recalled correctly half the
  time, estimated from the proportion correct :math:`\hat p(L)` at each length presented,

  .. math::

      \text{MS} = L_\text{min} - \tfrac12 + \sum_{L=L_\text{min}}^{L_\text{max}} \hat p(L),

  which assumes every shorter list would be recalled (:math:`p = 1` below
  :math:`L_\text{min}`) and no longer one (:math:`p = 0` above :math:`L_\text{max}`); for
  a reader who recalls every list up to :math:`s` digits and none longer it gives
  :math:`s + \tfrac12`, the length where :math:`p` crosses one half. It is this book's
  estimate of that point, not a copy of Woods et al.'s formula.
* **Change detection** (page 1.2): :math:`N` coloured squares, a blank, one probed square
  that changed colour or not (Luck & Vogel, 1997). With hit rate :math:`H` =
  P("changed" | changed) and false-alarm rate :math:`F` = P("changed" | same), Cowan's
  (2001) capacity estimate is :math:`K = N\,(H - F)`.
* **Offloading** (page 1.3): letter lists recalled with and without a notes panel; the
  score of a list is the fraction of letters typed in their correct position.
"""
from __future__ import annotations

import math
from collections import defaultdict
from typing import Iterable, Mapping, Sequence

SPAN_TRIALS = 14  # lists per span run (Woods et al., 2011)
SPAN_START = {"forward": 3, "backward": 2}  # first list length
SPAN_MIN, SPAN_MAX = 2, 12  # the staircase never leaves this range


def _digits(s) -> str:
    return "".join(ch for ch in str(s) if ch.isdigit())


def span_correct(presented: str, response: str, direction: str = "forward") -> bool:
    """Is ``response`` the list ``presented`` (forward) or the list reversed (backward)?

    Only digits count (spaces and other characters the reader types are ignored).
    """
    if direction not in SPAN_START:
        raise ValueError(f"direction must be 'forward' or 'backward', got {direction!r}")
    p, r = _digits(presented), _digits(response)
    return r == (p if direction == "forward" else p[::-1])


def span_lengths(correct: Sequence[bool], start: int = 3, lo: int = SPAN_MIN, hi: int = SPAN_MAX) -> list[int]:
    """The list lengths the staircase presents, given whether each list was recalled.

    One correct list: the next is one longer. Two errors in a row: the next is one
    shorter (and the error count starts again). Lengths stay within ``[lo, hi]``.
    Returns one length per list in ``correct`` (the length *of* that list).
    """
    if not lo <= start <= hi:
        raise ValueError(f"start={start} must lie in [{lo}, {hi}]")
    lengths, L, errors = [], start, 0
    for ok in correct:
        lengths.append(L)
        L, errors = staircase_step(L, errors, ok, lo, hi)
    return lengths


def staircase_step(length: int, errors: int, correct: bool, lo: int = SPAN_MIN, hi: int = SPAN_MAX) -> tuple[int, int]:
    """The staircase's rule, one list at a time: ``(next length, errors in a row)``.

    A correct list adds a digit; the second error in a row removes one; within ``[lo, hi]``.
    """
    if correct:
        return min(length + 1, hi), 0
    if errors + 1 == 2:
        return max(length - 1, lo), 0
    return length, errors + 1


def mean_span(trials: Iterable[Mapping]) -> float:
    r"""Mean span of a run: :math:`L_\text{min} - \frac12 + \sum_L \hat p(L)` (see the module docstring).

    ``trials``: dicts with ``length`` and ``correct`` (or ``presented``, ``response`` and
    ``direction``, from which ``correct`` is computed). NaN for no trials.
    """
    by_len: dict[int, list[bool]] = defaultdict(list)
    for t in trials:
        ok = t["correct"] if "correct" in t else span_correct(t["presented"], t["response"], t.get("direction", "forward"))
        L = int(t["length"]) if "length" in t else len(_digits(t["presented"]))
        by_len[L].append(bool(ok))
    if not by_len:
        return float("nan")
    lo, hi = min(by_len), max(by_len)
    total = 0.0
    for L in range(lo, hi + 1):
        results = by_len.get(L)
        if results:  # a staircase moving by one digit presents every length between lo and hi
            total += sum(results) / len(results)
        else:  # only if trials come from elsewhere: interpolate between the neighbours that exist
            below = max(k for k in by_len if k < L)
            above = min(k for k in by_len if k > L)
            pb = sum(by_len[below]) / len(by_len[below])
            pa = sum(by_len[above]) / len(by_len[above])
            total += pb + (pa - pb) * (L - below) / (above - below)
    return lo - 0.5 + total


def score_span(trials: Sequence[Mapping], direction: str = "forward") -> dict:
    """Score one span run: per-list correctness, the staircase check, mean span, longest correct list.

    ``trials``: dicts with ``presented`` and ``response`` (strings of digits) in the order
    they were shown, and optionally ``length``. Returns ``{"correct": [...],
    "lengths": [...], "mean_span": float, "max_correct": int, "n": int}``.
    """
    correct = [span_correct(t["presented"], t["response"], direction) for t in trials]
    lengths = [len(_digits(t["presented"])) for t in trials]
    rows = [{"length": L, "correct": ok} for L, ok in zip(lengths, correct)]
    return {
        "n": len(rows),
        "correct": correct,
        "lengths": lengths,
        "mean_span": mean_span(rows),
        "max_correct": max((L for L, ok in zip(lengths, correct) if ok), default=0),
    }


def cowan_k(trials: Iterable[Mapping]) -> dict:
    r"""Cowan's :math:`K = N (H - F)` per set size, and their mean, from change-detection trials.

    ``trials``: dicts with ``n`` (set size), ``change`` (did the probe change?) and
    ``said_change`` (did the reader answer "changed"?). Returns ``{N: {"hits", "fa", "K",
    "n_change", "n_same"}, ..., "K_mean": mean of the per-size K, "accuracy": fraction
    correct}``. A rate with no trials to estimate it is NaN, and so is its K.
    """
    counts: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # hits, changes, FAs, sames
    n_ok = n_all = 0
    for t in trials:
        c = counts[int(t["n"])]
        change, said = bool(t["change"]), bool(t["said_change"])
        if change:
            c[0] += said
            c[1] += 1
        else:
            c[2] += said
            c[3] += 1
        n_ok += change == said
        n_all += 1
    out: dict = {}
    ks = []
    for N in sorted(counts):
        hits, n_change, fas, n_same = counts[N]
        H = hits / n_change if n_change else float("nan")
        F = fas / n_same if n_same else float("nan")
        K = N * (H - F)
        out[N] = {"hits": H, "fa": F, "K": K, "n_change": n_change, "n_same": n_same}
        ks.append(K)
    out["K_mean"] = sum(ks) / len(ks) if ks else float("nan")
    out["accuracy"] = n_ok / n_all if n_all else float("nan")
    return out


def letters_in_place(presented: str, response: str) -> float:
    """Fraction of the presented letters typed at their own position (case and spaces ignored)."""
    p = "".join(ch for ch in str(presented).upper() if ch.isalpha())
    r = "".join(ch for ch in str(response).upper() if ch.isalpha())
    if not p:
        raise ValueError("presented has no letters")
    return sum(a == b for a, b in zip(p, r)) / len(p)


def score_offloading(trials: Iterable[Mapping]) -> dict:
    """Mean letters-in-place per condition of the offloading experiment (page 1.3).

    ``trials``: dicts with ``condition`` (``"notes"`` or ``"memory"``), ``presented`` and
    ``response``. Returns ``{"memory": mean, "notes": mean, "difference": notes - memory,
    "n": {condition: lists}}`` (NaN where a condition has no lists).
    """
    scores: dict[str, list[float]] = {"memory": [], "notes": []}
    for t in trials:
        cond = t["condition"]
        if cond not in scores:
            raise ValueError(f"condition must be 'memory' or 'notes', got {cond!r}")
        scores[cond].append(letters_in_place(t["presented"], t["response"]))
    means = {c: (sum(v) / len(v) if v else float("nan")) for c, v in scores.items()}
    return {**means, "difference": means["notes"] - means["memory"], "n": {c: len(v) for c, v in scores.items()}}


def block_order(first_with_notes: bool, blocks: int = 2) -> list[str]:
    """The counterbalanced order of the offloading blocks: ABAB... starting with notes or without."""
    a, b = ("notes", "memory") if first_with_notes else ("memory", "notes")
    return [a if k % 2 == 0 else b for k in range(blocks)]


def mulberry32(seed: int):
    """The small seeded generator tasks.js uses (Mulberry32), so a run can be replayed in Python.

    Returns a function giving floats in [0, 1); the same seed gives the same numbers as
    ``rng(seed)`` in tasks.js.
    """
    state = seed & 0xFFFFFFFF

    def imul(a: int, b: int) -> int:
        return (a * b) & 0xFFFFFFFF

    def next_float() -> float:
        nonlocal state
        state = (state + 0x6D2B79F5) & 0xFFFFFFFF
        t = state
        t = imul(t ^ (t >> 15), t | 1)
        t ^= (t + imul(t ^ (t >> 7), t | 61)) & 0xFFFFFFFF
        t &= 0xFFFFFFFF
        return ((t ^ (t >> 14)) & 0xFFFFFFFF) / 4294967296

    return next_float


def simulate_span(true_span: float, direction: str = "forward", trials: int = SPAN_TRIALS, seed: int = 0,
                  slope: float = 1.5) -> list[dict]:
    r"""A simulated reader on the staircase: recalls a list of length :math:`L` with probability
    :math:`1/(1+e^{\text{slope}\,(L - s)})`, where :math:`s` is ``true_span`` (the 50 % point).

    Used on page 1.2 to show how far 14 lists pin down the mean span. Returns the trials
    as the browser task records them (``presented``, ``response``, ``length``).
    """
    rand = mulberry32(seed)
    L, errors, out = SPAN_START[direction], 0, []
    for _ in range(trials):
        digits = "".join(str(int(rand() * 10)) for _ in range(L))
        p = 1.0 / (1.0 + math.exp(slope * (L - true_span)))
        ok = rand() < p
        target = digits if direction == "forward" else digits[::-1]
        response = target if ok else target[:-1] + str((int(target[-1]) + 1) % 10)
        out.append({"length": L, "presented": digits, "response": response})
        L, errors = staircase_step(L, errors, ok)
    return out


def simulate_change_detection(capacity: float, set_sizes: Sequence[int] = (4, 6), trials_per_size: int = 32,
                              guess: float = 0.5, seed: int = 0) -> list[dict]:
    r"""A simulated observer for the change-detection task (page 1.2): it holds ``capacity`` of the
    :math:`N` squares (a fractional capacity holds :math:`\lfloor k \rfloor` or
    :math:`\lceil k \rceil` at random, with mean :math:`k`). If the probed square is held it
    answers correctly; otherwise it says "changed" with probability ``guess``. Then
    :math:`H = k/N + (1 - k/N)\,g` and :math:`F = (1 - k/N)\,g`, so :math:`N (H - F) = k` in
    expectation: Cowan's :math:`K` recovers the capacity when :math:`k \le N`. Half the trials of each
    size change, as in the browser task. Returns the trials as the browser records them.
    """
    rand = mulberry32(seed)
    out = []
    for N in set_sizes:
        for i in range(trials_per_size):
            change = i % 2 == 1
            k = math.floor(capacity) + (rand() < capacity - math.floor(capacity))
            held = rand() < min(k, N) / N
            said = change if held else rand() < guess
            out.append({"n": int(N), "change": change, "said_change": bool(said)})
    return out


def chunk(text: str, known: Sequence[str]) -> list[str]:
    """Split ``text`` into the fewest pieces using the ``known`` chunks (longest match first; other
    characters stay single). Page 1.2's chunking demonstration: ``FBICIANASAIBM`` is 13 letters
    but 4 chunks for a reader who knows FBI, CIA, NASA and IBM.
    """
    text = "".join(ch for ch in text.upper() if not ch.isspace())
    vocab = sorted({k.upper() for k in known if k}, key=len, reverse=True)
    best: list[list[str] | None] = [None] * (len(text) + 1)  # fewest pieces for text[:i]
    best[0] = []
    for i in range(len(text)):
        if best[i] is None:
            continue
        for piece in vocab + [text[i]]:
            j = i + len(piece)
            if text.startswith(piece, i) and (best[j] is None or len(best[i]) + 1 < len(best[j])):
                best[j] = best[i] + [piece]
    return best[len(text)]
