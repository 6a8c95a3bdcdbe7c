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
  score of a list is the fraction of letters typed in their correct position. A surprise
  recognition test at the end (every list as it was and with two letters changed) gives per
  condition the hit rate :math:`H`, the false-alarm rate :math:`F` and :math:`H - F`.
* **2-back** (page 1.2, a demonstration): press when the letter equals the one two back;
  hits, misses, false alarms and :math:`d' = \Phi^{-1}(H') - \Phi^{-1}(F')` with the
  log-linear correction :math:`H' = (\text{hits} + 0.5)/(n_\text{targets} + 1)` (Hautus, 1995).
"""
from __future__ import annotations

import math
from collections import defaultdict
from statistics import NormalDist
from typing import Iterable, Mapping, Sequence

SPAN_TRIALS = 14  # lists per span run (Woods et al., 2011)
SPAN_START = {"forward": 3, "backward": 2}  # first list length
SPAN_MIN, SPAN_MAX = 2, 12  # the staircase never leaves this range
_NORMAL = NormalDist()


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
    ``response`` (rows of the delayed test, which carry ``said_old``, are skipped). Returns
    ``{"memory": mean, "notes": mean, "difference": notes - memory,
    "n": {condition: lists}}`` (NaN where a condition has no lists).
    """
    scores: dict[str, list[float]] = {"memory": [], "notes": []}
    for t in trials:
        if "said_old" in t:
            continue  # a probe of the delayed test (score_delayed), saved in the same run
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


# --------------------------------------------------------------------------- the delayed test (page 1.3)

def recognition_lure(presented: str, rand, changes: int = 2, letters: str = "BCDFGHJKLMNPQRSTVWXZ") -> str:
    """A lure for the delayed test: ``presented`` with ``changes`` positions replaced by consonants
    that are not in the list (positions and letters drawn with ``rand``, a :func:`mulberry32`
    generator; tasks.js draws them the same way, so a seeded run can be replayed).
    """
    p = "".join(ch for ch in str(presented).upper() if ch.isalpha())
    if not 1 <= changes <= len(p):
        raise ValueError(f"changes must lie between 1 and the list's length {len(p)}, got {changes}")
    unused = [c for c in letters if c not in p]
    if len(unused) < changes:
        raise ValueError(f"only {len(unused)} letters are left to make a lure of {p!r}; use shorter lists")
    out, positions = list(p), []
    while len(positions) < changes:
        i = int(rand() * len(p))
        if i not in positions:
            positions.append(i)
    for i in positions:
        j = int(rand() * len(unused))
        out[i] = unused.pop(j)
    return "".join(out)


def score_delayed(rows: Iterable[Mapping]) -> dict:
    r"""Score the surprise recognition test at the end of the offloading task (page 1.3).

    Every list the reader saw comes back once as it was (an *old* probe) and once with two
    letters changed (a *lure*), shuffled; the reader answers "seen" or "new". Per condition
    of the list it came from (``"memory"`` or ``"notes"``): hit rate :math:`H` = P("seen" | old),
    false-alarm rate :math:`F` = P("seen" | lure), and the corrected score :math:`H - F`
    (1: every list told apart from its lure; 0: no better than answering at random or always
    "seen"). ``rows``: the run's records; only the probes (rows with ``said_old``) count, each
    with ``condition``, ``old`` and ``said_old``. Returns ``{condition: {"hits", "fa",
    "corrected", "n_old", "n_new"}}`` with NaN where a rate has no probes.
    """
    counts = {"memory": [0, 0, 0, 0], "notes": [0, 0, 0, 0]}  # hits, olds, false alarms, lures
    for t in rows:
        if "said_old" not in t:
            continue  # a recall row of the same run
        cond = t["condition"]
        if cond not in counts:
            raise ValueError(f"condition must be 'memory' or 'notes', got {cond!r}")
        c, said = counts[cond], bool(t["said_old"])
        if bool(t["old"]):
            c[0] += said
            c[1] += 1
        else:
            c[2] += said
            c[3] += 1
    out = {}
    for cond, (hits, olds, fas, lures) in counts.items():
        H = hits / olds if olds else float("nan")
        F = fas / lures if lures else float("nan")
        out[cond] = {"hits": H, "fa": F, "corrected": H - F, "n_old": olds, "n_new": lures}
    return out


# --------------------------------------------------------------------------- 2-back (page 1.2)

def n_back_stream(length: int = 30, n: int = 2, targets: int = 9, seed: int = 0,
                  letters: str = "BCDFGHJK") -> list[dict]:
    """The letter stream of an n-back run: ``targets`` positions (from the ``n``-th on) repeat the
    letter ``n`` back; every other letter differs from the one ``n`` back. Drawn with
    :func:`mulberry32` exactly as tasks.js draws it. Returns ``[{"index", "letter", "target"}]``.
    """
    if n < 1 or length <= n:
        raise ValueError(f"need n >= 1 and length > n, got n={n}, length={length}")
    if not 0 <= targets <= length - n:
        raise ValueError(f"targets must lie between 0 and length - n = {length - n}, got {targets}")
    if len(set(letters)) < 2:
        raise ValueError("letters must hold at least two different letters")
    rand = mulberry32(seed)
    slots = list(range(n, length))
    chosen = set()
    while len(chosen) < targets:  # partial draw without replacement
        chosen.add(slots[int(rand() * len(slots))])
    out: list[dict] = []
    for i in range(length):
        if i in chosen:
            letter = out[i - n]["letter"]
        else:
            while True:
                letter = letters[int(rand() * len(letters))]
                if i < n or letter != out[i - n]["letter"]:
                    break
        out.append({"index": i, "letter": letter, "target": i in chosen})
    return out


def z_score(p: float) -> float:
    r""":math:`\Phi^{-1}(p)`, the standard normal quantile (Wichura's AS241, as Python's
    ``statistics.NormalDist``; tasks.js has the same algorithm line for line)."""
    if not 0 < p < 1:
        raise ValueError(f"p must lie strictly between 0 and 1, got {p}")
    return _NORMAL.inv_cdf(p)


def d_prime(hits: int, n_signal: int, false_alarms: int, n_noise: int) -> float:
    r"""Sensitivity :math:`d' = \Phi^{-1}(H') - \Phi^{-1}(F')` with the **log-linear correction**
    (Hautus, 1995): :math:`H' = (\text{hits} + 0.5) / (n_\text{signal} + 1)` and
    :math:`F' = (\text{FA} + 0.5) / (n_\text{noise} + 1)`, applied to every run (not only to
    rates of 0 or 1), so :math:`d'` is finite and one rule serves all runs. It pulls
    :math:`d'` slightly towards 0.
    """
    if not (0 <= hits <= n_signal and 0 <= false_alarms <= n_noise):
        raise ValueError(f"counts out of range: hits={hits} of {n_signal}, false alarms={false_alarms} of {n_noise}")
    return z_score((hits + 0.5) / (n_signal + 1)) - z_score((false_alarms + 0.5) / (n_noise + 1))


def score_n_back(trials: Iterable[Mapping]) -> dict:
    r"""Score an n-back run (page 1.2): one row per letter with ``target`` (does it equal the
    letter ``n`` back?) and ``responded`` (did the reader press "match" while it was the current
    letter?). Returns hits, misses, false alarms, correct rejections, the raw rates
    :math:`H` and :math:`F` (NaN without trials to estimate them) and :math:`d'` with the
    log-linear correction (:func:`d_prime`). A demonstration of updating, not a capacity score.
    """
    hits = misses = fas = crs = 0
    for t in trials:
        target, said = bool(t["target"]), bool(t["responded"])
        if target:
            hits += said
            misses += not said
        else:
            fas += said
            crs += not said
    n_sig, n_noise = hits + misses, fas + crs
    return {"hits": hits, "misses": misses, "false_alarms": fas, "correct_rejections": crs,
            "hit_rate": hits / n_sig if n_sig else float("nan"),
            "fa_rate": fas / n_noise if n_noise else float("nan"),
            "d_prime": d_prime(hits, n_sig, fas, n_noise)}


def simulate_n_back(stream: Sequence[Mapping], p_hit: float, p_fa: float, seed: int = 0) -> list[dict]:
    """A simulated reader on an n-back stream: presses on a target with probability ``p_hit`` and on
    any other letter with probability ``p_fa``. Returns the rows as the browser records them."""
    rand = mulberry32(seed)
    return [{**t, "responded": rand() < (p_hit if t["target"] else p_fa)} for t in stream]


def simulate_delayed(p_correct: Mapping[str, float], lists_per_block: int = 4, seed: int = 0) -> list[dict]:
    """A simulated reader in the delayed test (page 1.3): each probe of a list from condition ``c``
    (``"memory"`` or ``"notes"``) is answered correctly with probability ``p_correct[c]``, otherwise
    wrongly. Every list gives one old probe and one lure, as in the browser task. Returns the
    probe rows as the browser records them (``part``, ``condition``, ``old``, ``said_old``).
    """
    if set(p_correct) != {"memory", "notes"}:
        raise ValueError(f"p_correct needs the keys 'memory' and 'notes', got {sorted(p_correct)}")
    rand = mulberry32(seed)
    out = []
    for cond in ("memory", "notes"):
        for _ in range(lists_per_block):
            for old in (True, False):
                right = rand() < p_correct[cond]
                out.append({"part": "delayed", "condition": cond, "old": old, "said_old": old if right else not old})
    return out
