r"""The reader's working-memory tasks as self-contained HTML fragments (chapter 1).

Each function returns a :class:`TaskView` (a :class:`wmbook.view.fragment.Fragment`): one
``<div>`` with its CSS and one ``<script>`` running ``tasks_assets/tasks.js``, nothing fetched,
nothing sent. It works in Jupyter, VS Code, Colab and the built book (also from ``file://``).
Results stay in the reader's browser (``localStorage``), with buttons to clear them and to
download them as CSV. The scoring in the browser is the same as :mod:`wmbook.lab.reader`
(tested in headless Chromium by ``tests/test_tasks_browser.py``).

* :func:`digit_span_task` — page 1.2: forward or backward digit span, adaptive as in Woods et
  al. (2011): one digit per second, one correct list adds a digit, two errors in a row remove
  one, 14 lists; score :math:`\text{MS} = L_\text{min} - \frac12 + \sum_L \hat p(L)`.
* :func:`change_detection_task` — page 1.2: :math:`N` coloured squares for 100 ms, 900 ms
  blank, one probed square (Luck & Vogel, 1997); :math:`K = N (H - F)` (Cowan, 2001).
* :func:`offloading_task` — page 1.3: letter lists from memory and with a notes panel, in
  counterbalanced order; the fraction of letters in place per condition; then a surprise
  recognition test (every list as it was and with two letters changed, shuffled): per
  condition the hit rate :math:`H`, false-alarm rate :math:`F` and :math:`H - F`.
* :func:`n_back_task` — page 1.2, a demonstration (not a capacity score): a letter every 2 s,
  shown for 0.5 s; press when it equals the letter two back; hits, misses, false alarms and
  :math:`d' = \Phi^{-1}(H') - \Phi^{-1}(F')` with the log-linear correction (Hautus, 1995).

``speed`` multiplies every duration (1 for readers; the browser tests use a small value) and
``seed`` fixes the random lists (``None``: a new draw each time the page loads).
"""
from __future__ import annotations

from typing import Any, Sequence

from wmbook.lab.reader import SPAN_TRIALS
from wmbook.view.fragment import Fragment, asset, escape, json_for_script, new_uid

_UID = "__WMB_UID__"
_ARGS = "__WMB_ARGS__"


class TaskView(Fragment):
    """One reader task, ready to show (``_repr_html_``) or save as a page (``.save(path)``)."""


def _task(task: str, title: str, intro: str, options: dict[str, Any], columns: list, speed: float,
          seed: int | None) -> TaskView:
    if not speed > 0:
        raise ValueError(f"speed must be > 0, got {speed}")
    if seed is not None and not (isinstance(seed, int) and 0 <= seed < 2**32):
        raise ValueError(f"seed must be None or an int in [0, 2**32), got {seed!r}")
    uid = new_uid(f"wmb-task-{task}")
    payload = {"task": task, "columns": columns,
               "options": {**options, "intro": intro, "speed": float(speed), "seed": seed}}
    css = asset("tasks_assets", "tasks.css").replace(_UID, uid)
    js = asset("tasks_assets", "tasks.js", _ARGS).replace(_ARGS, f'"{uid}", {json_for_script(payload)}', 1)
    # the shared generator goes in front, in the same function scope (nothing global)
    js = f"(function () {{\n{asset('shared_assets', 'mulberry32.js')}\n{js}\n}})();"
    html = (
        f'<div id="{uid}" class="wmb-task" data-wmb-task="{task}"><style>{css}</style>'
        f'<strong class="wmb-title">{escape(title)}</strong>'
        '<div class="wmb-task-body"><p>This task needs JavaScript. In Jupyter, trust the notebook '
        "(or run the cell again) to enable it.</p></div></div>\n"
        f"<script>{js}</script>"
    )
    return TaskView(html, uid, f"{task} task", title)


def digit_span_task(direction: str = "forward", *, trials: int = SPAN_TRIALS, reference: str | None = None,
                    speed: float = 1.0, seed: int | None = None) -> TaskView:
    """Adaptive digit span (forward or backward), 14 lists by default; see the module docstring."""
    if direction not in ("forward", "backward"):
        raise ValueError(f"direction must be 'forward' or 'backward', got {direction!r}")
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    order = "in the order shown" if direction == "forward" else "in reverse order"
    intro = (f"Digits appear one per second. When they stop, type them {order} (keyboard or the "
             f"keypad) and press Enter/OK. A correct list makes the next one a digit longer; two "
             f"misses in a row make it a digit shorter. {trials} lists, about two minutes.")
    return _task("span", f"Digit span, {direction}", intro,
                 {"direction": direction, "trials": int(trials), "reference": reference,
                  "storage_suffix": direction},
                 [["mean_span", "mean span", 2], ["max_correct", "longest correct", 0]], speed, seed)


def change_detection_task(*, set_sizes: Sequence[int] = (4, 6), trials_per_size: int = 32,
                          reference: str | None = None, speed: float = 1.0, seed: int | None = None) -> TaskView:
    """Single-probe colour change detection; half the trials of each set size change."""
    sizes = [int(n) for n in set_sizes]
    if not sizes or any(not 1 <= n <= 8 for n in sizes):
        raise ValueError(f"set sizes must lie between 1 and 8 (8 colours, 12 places), got {list(set_sizes)}")
    if trials_per_size < 2 or trials_per_size % 2:
        raise ValueError(f"trials_per_size must be even and >= 2 (half change), got {trials_per_size}")
    total = len(sizes) * trials_per_size
    intro = (f"A '+' appears, then {' or '.join(map(str, sizes))} coloured squares flash for 100 ms, then a "
             "blank of 900 ms, then one square comes back. Did its colour change? Press S (same) or D "
             f"(changed), or tap the buttons. {total} trials, about {max(1, round(total * 3.2 / 60))} minutes.")
    return _task("change", "Visual change detection", intro,
                 {"set_sizes": sizes, "trials_per_size": int(trials_per_size), "reference": reference,
                  "fixation_ms": 500, "array_ms": 100, "blank_ms": 900},
                 [["K_mean", "mean K", 2]] + [[f"K_{n}", f"K at N={n}", 2] for n in sizes]
                 + [["accuracy", "accuracy", 2]], speed, seed)


def offloading_task(*, lists_per_block: int = 4, length: int = 7, first_with_notes: bool | None = None,
                    delayed_test: bool = True, reference: str | None = None, speed: float = 1.0,
                    seed: int | None = None) -> TaskView:
    """Letter lists recalled from memory and with a notes panel, two blocks in counterbalanced order.

    ``first_with_notes=None`` lets the browser flip a coin for the order (stored with the run).
    ``delayed_test``: after both blocks, a surprise recognition test of every list (as it was, and
    with two letters changed), scored per condition by :func:`wmbook.lab.reader.score_delayed`.
    The intro does not announce it (a surprise test; Grinschgl et al., 2021, used an unexpected one).
    """
    if not 1 <= length <= 20:
        raise ValueError(f"length must be between 1 and 20 (distinct consonants), got {length}")
    intro = (f"Consonants appear one per second, {length} per list. Then type them in order. In one block of "
             f"{lists_per_block} lists you may type notes while the letters appear; in the other you hold "
             "them in mind. " + ("Which block comes first is decided at random." if first_with_notes is None
                                 else f"The block {'with' if first_with_notes else 'without'} notes comes first."))
    return _task("offload", "Offloading: from memory vs with notes", intro,
                 {"lists_per_block": int(lists_per_block), "length": int(length),
                  "first_with_notes": first_with_notes, "delayed_test": bool(delayed_test), "reference": reference},
                 [["memory", "from memory", 2], ["notes", "with notes", 2], ["first", "first block", 0]]
                 + ([["delayed_memory", "later H-F, memory", 2], ["delayed_notes", "later H-F, notes", 2]]
                    if delayed_test else []), speed, seed)


def n_back_task(n: int = 2, *, length: int = 30, targets: int = 9, on_ms: int = 500, soa_ms: int = 2000,
                reference: str | None = None, speed: float = 1.0, seed: int | None = None) -> TaskView:
    """An n-back stream (2-back by default) as a demonstration of updating, not a capacity score.

    ``length`` letters from eight consonants, each shown ``on_ms`` ms, one every ``soa_ms`` ms;
    ``targets`` of them equal the letter ``n`` back (:func:`wmbook.lab.reader.n_back_stream`).
    A press counts for the letter on screen until the next one appears.
    """
    if n < 1 or length <= n:
        raise ValueError(f"need n >= 1 and length > n, got n={n}, length={length}")
    if not 0 <= targets <= length - n:
        raise ValueError(f"targets must lie between 0 and length - n = {length - n}, got {targets}")
    if not 0 < on_ms < soa_ms:
        raise ValueError(f"need 0 < on_ms < soa_ms, got on_ms={on_ms}, soa_ms={soa_ms}")
    back = "the one before" if n == 1 else f"the one {n} before"
    minutes = max(1, round(length * soa_ms / 60000))
    intro = (f"Letters appear one every {soa_ms / 1000:g} s, each for {on_ms / 1000:g} s. Press Space (or tap Match) "
             f"when the letter is the same as {back}. {length} letters, about {minutes} "
             f"minute{'s' if minutes > 1 else ''}. A demonstration, not a capacity score.")
    return _task("nback", f"{n}-back (a demonstration)", intro,
                 {"n": int(n), "length": int(length), "targets": int(targets), "on_ms": int(on_ms),
                  "soa_ms": int(soa_ms), "reference": reference},
                 [["d_prime", "d'", 2], ["hits", "hits", 0], ["misses", "misses", 0],
                  ["false_alarms", "false alarms", 0]], speed, seed)
