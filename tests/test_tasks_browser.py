"""The reader's tasks (wmbook/view/tasks.py) in headless Chromium: the JavaScript scorers equal the
Python ones (wmbook/lab/reader.py) on recorded responses, and scripted key presses and taps play
each task to the end and see the score the Python scorer gives. Offline, no console errors."""
from __future__ import annotations

import json
import math
import os
import random
import sys
from pathlib import Path

import pytest

from wmbook.lab import reader
from wmbook.view.tasks import change_detection_task, digit_span_task, n_back_task, offloading_task

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser import Browser, open_views, shoot, view_eval  # noqa: E402

pytestmark = pytest.mark.slow

KEYS = {"Enter": (13, "\r"), "Backspace": (8, "")}


def press(page, key: str) -> None:
    """One key press as the keyboard sends it (keyDown with its text, keyUp)."""
    code, text = KEYS[key] if key in KEYS else (ord(key.upper()), key)
    params = {"key": key, "windowsVirtualKeyCode": code, "nativeVirtualKeyCode": code}
    page.send("Input.dispatchKeyEvent", {"type": "keyDown", "text": text, **params} if text else {"type": "rawKeyDown", **params})
    page.send("Input.dispatchKeyEvent", {"type": "keyUp", **params})


def fixed(x: float, digits: int = 2) -> str:
    """``x`` as JavaScript's ``x.toFixed(digits)`` writes it: the sign, then the exact binary value of
    ``|x|`` with a tie rounded up (0.625 -> "0.63", where Python's format gives "0.62")."""
    from decimal import ROUND_HALF_UP, Decimal

    n = Decimal(abs(x)).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    return ("-" if x < 0 else "") + f"{n:.{digits}f}"


def test_fixed_writes_numbers_as_javascript_does():
    assert [fixed(0.625), fixed(1.005), fixed(-0.625), fixed(7.5, 0), fixed(0.125, 1)] == ["0.63", "1.00", "-0.63", "8", "0.1"]


def close(a, b, tol=1e-12) -> bool:
    if isinstance(a, float) and math.isnan(a):
        return b is None or (isinstance(b, float) and math.isnan(b))
    return abs(a - b) <= tol


@pytest.fixture(scope="module")
def browser():
    with Browser() as b:
        yield b


def open_page(browser, tmp_path, *views, name="tasks.html"):
    return open_views(browser, tmp_path, *views, name=name, title="tasks")


def api(page, view, expr):
    return view_eval(page, view, "wmbTask", expr, name="t")


def test_js_scorers_equal_the_python_scorers(browser, tmp_path):
    page = open_page(browser, tmp_path, digit_span_task(seed=1))
    page.wait_for("window.wmbookTasks && true")
    # the generator: the same numbers in both languages
    ours = reader.mulberry32(12345)
    assert page.eval("(function(){var r=wmbookTasks.rng(12345),o=[];for(var i=0;i<50;i++)o.push(r());return o;})()") == \
        [ours() for _ in range(50)]
    rnd = random.Random(0)
    # span: simulated readers of several spans, both directions, plus hand-made edge cases
    runs = [(reader.simulate_span(s, d, seed=k), d) for k, (s, d) in
            enumerate([(s, d) for s in (3.2, 4.5, 6.0, 7.3, 9.0) for d in ("forward", "backward")])]
    runs += [([{"presented": "123", "response": "1 2 3"}, {"presented": "4567", "response": "7654"}], "backward"),
             ([{"presented": "98", "response": ""}], "forward"), ([], "forward")]
    for trials, direction in runs:
        py = reader.score_span(trials, direction)
        js = page.eval(f"wmbookTasks.scoreSpan({json.dumps(trials)}, {json.dumps(direction)})")
        assert js["correct"] == py["correct"] and js["lengths"] == py["lengths"]
        assert js["max_correct"] == py["max_correct"] and close(py["mean_span"], js["mean_span"])
        start = reader.SPAN_START[direction]
        assert page.eval(f"wmbookTasks.spanLengths({json.dumps(py['correct'])}, {start})") == \
            reader.span_lengths(py["correct"], start)
    # mean span with a gap in the lengths (interpolated)
    rows = [{"length": 3, "correct": True}, {"length": 5, "correct": False}, {"length": 5, "correct": True}]
    assert close(page.eval(f"wmbookTasks.meanSpan({json.dumps(rows)})"), reader.mean_span(rows))
    # change detection: random sessions, including a size with no 'same' trials
    for k in range(8):
        trials = [{"n": rnd.choice([4, 6]), "change": rnd.random() < 0.5, "said_change": rnd.random() < 0.5}
                  for _ in range(rnd.randint(1, 70))]
        py = reader.cowan_k(trials)
        js = page.eval(f"wmbookTasks.cowanK({json.dumps(trials)})")
        for N in {t["n"] for t in trials}:
            for f in ("hits", "fa", "K"):
                assert close(py[N][f], js[str(N)][f]), (k, N, f)
        assert close(py["K_mean"], js["K_mean"]) and close(py["accuracy"], js["accuracy"])
    # offloading
    letters = "BCDFGHJKLMNPQRSTVWXZ"
    trials = [{"condition": rnd.choice(["memory", "notes"]), "presented": "".join(rnd.sample(letters, 7)),
               "response": "".join(rnd.sample(letters, rnd.randint(0, 9))).lower()} for _ in range(20)]
    trials.append({"condition": "notes", "presented": "BCDFGHJ", "response": "b c d x"})
    py = reader.score_offloading(trials)
    js = page.eval(f"wmbookTasks.scoreOffloading({json.dumps(trials)})")
    for f in ("memory", "notes", "difference"):
        assert close(py[f], js[f])
    assert page.eval("wmbookTasks.blockOrder(true, 2)") == reader.block_order(True)
    assert page.eval("wmbookTasks.blockOrder(false, 2)") == reader.block_order(False)
    assert not page.errors(), page.errors()
    assert all(u.startswith(("file:", "data:", "about:")) for u in page.requests())


def test_js_scorers_of_the_delayed_test_and_n_back_equal_the_python_ones(browser, tmp_path):
    page = open_page(browser, tmp_path, n_back_task(seed=1), name="scorers2.html")
    page.wait_for("window.wmbookTasks && true")
    rnd = random.Random(2)
    # the normal quantile: Wichura's AS241 in both languages, over the whole range
    ps = [1e-300, 1e-20, 1e-9, 0.0001, 0.01, 0.0749, 0.075, 0.0751, 0.3, 0.5, 0.7, 0.925, 0.99, 1 - 1e-12]
    ps += [rnd.random() for _ in range(200)]
    js = page.eval(f"{json.dumps(ps)}.map(wmbookTasks.zScore)")
    diff = max(abs(a - reader.z_score(p)) for a, p in zip(js, ps))
    print(f"\nmax |zScore (JS) - z_score (Python)| over {len(ps)} p: {diff:.1e}")
    assert diff <= 1e-12
    # streams: the same letters and targets from the same seed
    for seed, (length, n, targets) in enumerate([(30, 2, 9), (12, 1, 4), (20, 3, 0), (40, 2, 38)]):
        py = reader.n_back_stream(length, n, targets, seed=seed)
        assert page.eval(f"wmbookTasks.nBackStream({length}, {n}, {targets}, {seed}, 'BCDFGHJK')") == py
    # n-back scores on simulated readers, including perfect and empty ones
    stream = reader.n_back_stream(seed=5)
    runs = [reader.simulate_n_back(stream, h, f, seed=k) for k, (h, f) in
            enumerate([(0.8, 0.1), (1.0, 0.0), (0.0, 1.0), (0.5, 0.5), (0.9, 0.05)])]
    runs += [[{"target": True, "responded": True}], []]
    for trials in runs:
        py, js = reader.score_n_back(trials), page.eval(f"wmbookTasks.scoreNBack({json.dumps(trials)})")
        for f in ("hits", "misses", "false_alarms", "correct_rejections"):
            assert py[f] == js[f], f
        for f in ("hit_rate", "fa_rate", "d_prime"):
            assert close(py[f], js[f]), (f, py[f], js[f])
    # the delayed test: lures drawn alike, scores alike
    letters = "BCDFGHJKLMNPQRSTVWXZ"
    for seed in range(10):
        lst = "".join(rnd.sample(letters, 7))
        assert page.eval(f"wmbookTasks.lure('{lst}', wmbookTasks.rng({seed}), 2)") == \
            reader.recognition_lure(lst, reader.mulberry32(seed), 2)
    for k in range(8):
        rows = [{"part": "delayed", "condition": rnd.choice(["memory", "notes"]), "old": rnd.random() < 0.5,
                 "said_old": rnd.random() < 0.5} for _ in range(rnd.randint(0, 20))]
        rows.append({"part": "recall", "condition": "notes", "presented": "BCD", "response": "BCD"})  # not a probe
        py, js = reader.score_delayed(rows), page.eval(f"wmbookTasks.scoreDelayed({json.dumps(rows)})")
        for cond in ("memory", "notes"):
            for f in ("hits", "fa", "corrected", "n_old", "n_new"):
                assert close(py[cond][f], js[cond][f]), (k, cond, f)
    assert not page.errors(), page.errors()


@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_span_task_played_with_the_keyboard_and_keypad(browser, tmp_path, direction):
    view = digit_span_task(direction, trials=8, speed=0.02, seed=7, reference="reference line")
    page = open_page(browser, tmp_path, view, name=f"span-{direction}.html")
    page.wait_for(f"document.getElementById('{view.uid}').wmbTask.ready")
    intro = page.eval(f"document.querySelector('#{view.uid} .wmb-prompt').textContent")
    assert "one per second" in intro and ("reverse" in intro) == (direction == "backward")
    page.click(*page.center(f"#{view.uid} .wmb-start"))
    plan = [True, True, False, False, True, False, True, True]  # the scripted reader
    for k, ok in enumerate(plan):
        page.wait_for(f"(function(t){{return t.phase==='responding' && t.current.index==={k};}})"
                      f"(document.getElementById('{view.uid}').wmbTask)", timeout=20)
        seq = api(page, view, "t.current.presented")
        answer = seq if direction == "forward" else seq[::-1]
        if not ok:
            answer = answer[:-1] + str((int(answer[-1]) + 1) % 10)
        if k % 2 == 0:  # keyboard, with a typo corrected by Backspace
            press(page, "1")
            press(page, "Backspace")
            for ch in answer:
                press(page, ch)
            if k == 4:
                shoot(page, f"task-span-{direction}.png")
            press(page, "Enter")
        else:  # the on-screen keypad (touch)
            for ch in answer:
                page.click(*page.center(f"#{view.uid} .wmb-key[data-key='{ch}']"))
            page.click(*page.center(f"#{view.uid} .wmb-key[data-key='Enter']"))
    page.wait_for(f"document.getElementById('{view.uid}').wmbTask.phase==='done'", timeout=20)
    trials = api(page, view, "t.trials")
    assert [t["correct"] for t in trials] == plan
    py = reader.score_span(trials, direction)
    assert [t["length"] for t in trials] == reader.span_lengths(plan, reader.SPAN_START[direction])
    shown = page.eval(f"document.querySelector('#{view.uid} .wmb-score').textContent")
    assert f"Mean span: {fixed(py['mean_span'])} digits" in shown, shown
    assert f"longest list recalled: {py['max_correct']}" in shown
    # one digit per second: each digit stays ~0.7 s (times the test speed), measured on frames
    assert all(d >= 0.7 * 1000 * 0.02 * 0.9 for d in api(page, view, "t.durations"))
    # stored in this browser only, downloadable, clearable
    assert api(page, view, "t.csv()").count("\n") == len(plan) + 1
    assert page.eval(f"document.querySelectorAll('#{view.uid} .wmb-history tr').length") == 2
    page.click(*page.center(f"#{view.uid} .wmb-clear"))
    assert api(page, view, "t.csv()").count("\n") == 1
    assert "No saved runs" in page.eval(f"document.querySelector('#{view.uid} .wmb-history').textContent")
    assert not page.errors(), page.errors()
    assert all(u.startswith(("file:", "data:", "about:", "blob:")) for u in page.requests())


def test_change_detection_played_with_keys_and_taps(browser, tmp_path):
    view = change_detection_task(trials_per_size=6, speed=0.2, seed=3)
    page = open_page(browser, tmp_path, view, name="change.html")
    page.wait_for(f"document.getElementById('{view.uid}').wmbTask.ready")
    page.click(*page.center(f"#{view.uid} .wmb-start"))
    rnd = random.Random(1)
    saw_array = False
    for k in range(12):
        if k == 0:  # the array itself is on screen for ~100 ms x speed: catch it once for the picture
            page.wait_for(f"document.getElementById('{view.uid}').wmbTask.phase==='array'", timeout=20, interval=0.002)
            saw_array = page.eval(f"document.querySelectorAll('#{view.uid} .wmb-square').length") >= 4
        page.wait_for(f"(function(t){{return t.phase==='probe' && t.current.index==={k};}})"
                      f"(document.getElementById('{view.uid}').wmbTask)", timeout=20)
        if k == 1:
            shoot(page, "task-change-detection.png")
        assert page.eval(f"document.querySelectorAll('#{view.uid} .wmb-square').length") == 1  # one probe
        change = api(page, view, "t.current.change")
        answer = change if rnd.random() < 0.75 else not change  # a good but imperfect observer
        if k % 2:
            press(page, "d" if answer else "s")
        else:
            page.click(*page.center(f"#{view.uid} .wmb-key[data-key='{'d' if answer else 's'}']"))
    page.wait_for(f"document.getElementById('{view.uid}').wmbTask.phase==='done'", timeout=20)
    assert saw_array
    trials = api(page, view, "t.trials")
    assert len(trials) == 12 and sorted(t["n"] for t in trials) == [4] * 6 + [6] * 6
    assert sum(t["change"] for t in trials) == 6
    py = reader.cowan_k(trials)
    shown = page.eval(f"document.querySelector('#{view.uid} .wmb-score').textContent")
    assert f"Mean K: {fixed(py['K_mean'])}" in shown and f"N = 4: K = {fixed(py[4]['K'])}" in shown, shown
    # 100 ms x speed on screen, measured between painted frames (a frame is ~17 ms)
    assert all(20 * 0.9 <= d <= 20 + 60 for d in api(page, view, "t.durations")), api(page, view, "t.durations")
    assert not page.errors(), page.errors()


def test_offloading_task_gives_two_scores_side_by_side(browser, tmp_path):
    view = offloading_task(lists_per_block=2, length=5, first_with_notes=True, speed=0.03, seed=5)
    page = open_page(browser, tmp_path, view, name="offload.html")
    page.wait_for(f"document.getElementById('{view.uid}').wmbTask.ready")
    page.click(*page.center(f"#{view.uid} .wmb-start"))
    assert api(page, view, "t.order") == reader.block_order(True)
    for k in range(4):
        page.wait_for(f"(function(t){{return t.phase==='responding' && t.current.index==={k};}})"
                      f"(document.getElementById('{view.uid}').wmbTask)", timeout=20)
        seq, cond = api(page, view, "t.current.presented"), api(page, view, "t.current.condition")
        assert (page.eval(f"!!document.querySelector('#{view.uid} .wmb-notes')")) == (cond == "notes")
        answer = seq if cond == "notes" else seq[:2] + "XX"  # notes: all in place; memory: two of five
        page.click(*page.center(f"#{view.uid} .wmb-answer"))
        for ch in answer.lower():
            press(page, ch)
        if k == 1:
            shoot(page, "task-offloading.png")
        press(page, "Enter")
    # the surprise test: every list twice (as it was, and with two letters changed), shuffled.
    # The scripted reader tells memory lists from their lures and says "seen" to every notes probe.
    for j in range(8):
        page.wait_for(f"(function(t){{return t.phase==='recognition' && t.current.index==={j};}})"
                      f"(document.getElementById('{view.uid}').wmbTask)", timeout=20)
        cur = api(page, view, "t.current")
        assert any(cur["presented"] == t["presented"] for t in api(page, view, "t.trials")) == cur["old"]
        said_old = cur["old"] or cur["condition"] == "notes"
        if j == 1:
            shoot(page, "task-offloading-delayed.png")
        if j % 2:  # the buttons (touch)
            page.click(*page.center(f"#{view.uid} .wmb-key[data-key='{'o' if said_old else 'n'}']"))
        else:
            press(page, "o" if said_old else "n")
    page.wait_for(f"document.getElementById('{view.uid}').wmbTask.phase==='done'", timeout=20)
    trials = api(page, view, "t.trials")
    py = reader.score_offloading(trials)
    assert py["notes"] == 1.0 and abs(py["memory"] - 0.4) < 1e-12
    shown = page.eval(f"document.querySelector('#{view.uid} .wmb-score').textContent")
    assert "from memory: 40 %; with notes: 100 %" in shown, shown
    assert page.eval(f"document.querySelectorAll('#{view.uid} .wmb-bar-row').length") == 2
    probes = api(page, view, "t.probes")
    assert len(probes) == 8 and sum(p["old"] for p in probes) == 4
    later = reader.score_delayed(probes)
    assert (later["memory"]["hits"], later["memory"]["fa"], later["notes"]["hits"], later["notes"]["fa"]) == (1, 0, 1, 1)
    shown = page.eval(f"document.querySelector('#{view.uid} .wmb-delayed').textContent")
    assert (f"from memory: {fixed(later['memory']['corrected'])}; with notes: {fixed(later['notes']['corrected'])}"
            in shown), shown
    assert page.eval(f"document.querySelectorAll('#{view.uid} .wmb-delayed-table tr').length") == 3
    # kept in this browser, in the CSV (4 recall rows + 8 probes), and cleared by the button
    assert api(page, view, "t.result.delayed_memory") == 1 and api(page, view, "t.result.delayed_notes") == 0
    assert api(page, view, "t.csv()").count("\n") == 1 + 4 + 8 and "said_old" in api(page, view, "t.csv()")
    page.click(*page.center(f"#{view.uid} .wmb-clear"))
    assert api(page, view, "t.csv()").count("\n") == 1
    shoot(page, "task-offloading-result.png")
    assert not page.errors(), page.errors()


def test_n_back_played_with_the_keyboard_and_taps(browser, tmp_path):
    view = n_back_task(speed=0.2, seed=4, reference="reference line")
    page = open_page(browser, tmp_path, view, name="nback.html")
    page.wait_for(f"document.getElementById('{view.uid}').wmbTask.ready")
    assert "not a capacity score" in page.eval(f"document.querySelector('#{view.uid} .wmb-prompt').textContent")
    page.click(*page.center(f"#{view.uid} .wmb-start"))
    page.wait_for(f"document.getElementById('{view.uid}').wmbTask.stream", timeout=10)
    stream = api(page, view, "t.stream")
    assert stream == reader.n_back_stream(30, 2, 9, seed=api(page, view, "t.stream_seed"))
    targets = [t["index"] for t in stream if t["target"]]
    misses, false_alarms = set(targets[:2]), {1, 4, 7} - set(targets)  # the scripted reader's mistakes
    plan = [(t["target"] and t["index"] not in misses) or t["index"] in false_alarms for t in stream]
    for k, press_it in enumerate(plan):
        page.wait_for(f"(function(t){{return t.phase==='item' && t.current.index==={k};}})"
                      f"(document.getElementById('{view.uid}').wmbTask)", timeout=20, interval=0.005)
        if k == 5:
            shoot(page, "task-2-back.png")
        if press_it:
            if k % 2:
                page.click(*page.center(f"#{view.uid} .wmb-key"))
            else:
                press(page, " ")
    page.wait_for(f"document.getElementById('{view.uid}').wmbTask.phase==='done'", timeout=20)
    trials = api(page, view, "t.trials")
    assert [t["responded"] for t in trials] == plan
    py = reader.score_n_back(trials)
    assert (py["hits"], py["misses"], py["false_alarms"]) == (7, 2, len(false_alarms))
    shown = page.eval(f"document.querySelector('#{view.uid} .wmb-score').textContent")
    assert f"Hits: 7 of 9 matches; misses: 2; false alarms: {len(false_alarms)} of 21" in shown, shown
    assert f"d\u2032 = {fixed(py['d_prime'])}" in shown, shown
    # each letter on screen for 500 ms x speed, measured on painted frames
    assert all(100 * 0.9 <= d <= 100 + 60 for d in api(page, view, "t.durations")), api(page, view, "t.durations")
    assert api(page, view, "t.csv()").count("\n") == 31
    shoot(page, "task-2-back-result.png")
    assert not page.errors(), page.errors()


# --------------------------------------------------------------------------- in the built book

BOOK_PAGES = {"chapters/01/1_2_working_memory": ["span", "span", "change", "nback"],
              "chapters/01/1_3_llms_and_working_memory": ["offload"]}


def _book_screenshot_dir() -> Path:
    from tools.book import ROOT
    path = Path(os.environ.get("WMBOOK_SCREENSHOT_DIR") or ROOT / "_build" / "screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _wait_phase(page, uid, phase, index, timeout=30):
    page.wait_for(f"(function(t){{return t.phase==='{phase}' && t.current && t.current.index==={index};}})"
                  f"(document.getElementById('{uid}').wmbTask)", timeout=timeout, interval=0.005)


def test_tasks_work_in_the_built_book(request):
    """Pages 1.2 and 1.3 from file://, offline: every task comes alive, and a full run of each
    (the reader's settings: 14 lists, 64 trials, 8 lists; durations sped up by the test) shows the
    score the Python scorer gives for the same responses."""
    from tools.book import toc_files
    docs = [d for d in BOOK_PAGES if d in toc_files()]
    if not docs:
        pytest.skip("chapter 1's pages 1.2 and 1.3 are not in _toc.yml yet")
    html = request.getfixturevalue("html")  # the book, built once per session (tests/conftest.py)
    shots = _book_screenshot_dir()
    with Browser() as b:
        for doc in docs:
            page = b.new_page(width=1100, height=900)
            page.goto((html / f"{doc}.html").as_uri())
            uids = page.eval("Array.from(document.querySelectorAll('.wmb-task')).map(e => e.id)")
            kinds = page.eval("Array.from(document.querySelectorAll('.wmb-task')).map(e => e.dataset.wmbTask)")
            assert kinds == BOOK_PAGES[doc], kinds
            for uid in uids:
                page.wait_for(f"document.getElementById('{uid}').wmbTask && document.getElementById('{uid}').wmbTask.ready")
            page.eval("window.wmbookTaskSpeed = 0.02")
            for uid, kind in zip(uids, kinds):
                page.eval(f"window.wmbookTaskSpeed = {0.2 if kind == 'nback' else 0.02}")  # n-back: 400 ms a letter
                page.click(*page.center(f"#{uid} .wmb-start"))
                if kind == "span":
                    direction = page.eval(f"document.getElementById('{uid}').querySelector('.wmb-title').textContent")
                    direction = "backward" if "backward" in direction else "forward"
                    for k in range(14):
                        _wait_phase(page, uid, "responding", k)
                        seq = page.eval(f"document.getElementById('{uid}').wmbTask.current.presented")
                        answer = seq if direction == "forward" else seq[::-1]
                        if k % 3 == 2:
                            answer = answer[::-1] if len(set(answer)) > 1 else answer + "0"
                        for ch in answer:
                            press(page, ch)
                        press(page, "Enter")
                    page.wait_for(f"document.getElementById('{uid}').wmbTask.phase==='done'", timeout=30)
                    trials = page.eval(f"document.getElementById('{uid}').wmbTask.trials")
                    py = reader.score_span(trials, direction)
                    shown = page.eval(f"document.querySelector('#{uid} .wmb-score').textContent")
                    assert len(trials) == 14 and f"Mean span: {fixed(py['mean_span'])}" in shown, shown
                    assert page.eval(f"document.querySelector('#{uid} .wmb-ref').textContent")  # the reference line
                elif kind == "change":
                    for k in range(64):
                        if k == 5:
                            page.eval("window.wmbookTaskSpeed = 1")  # one trial at the reader's speed, for the picture
                            page.wait_for(f"document.getElementById('{uid}').wmbTask.phase==='array'", timeout=10,
                                          interval=0.01)
                            page.screenshot(shots / "book-1.2-change-detection-array.png", full_page=False)
                            page.eval("window.wmbookTaskSpeed = 0.02")
                        _wait_phase(page, uid, "probe", k)
                        press(page, "d" if k % 4 else "s")
                    page.wait_for(f"document.getElementById('{uid}').wmbTask.phase==='done'", timeout=30)
                    trials = page.eval(f"document.getElementById('{uid}').wmbTask.trials")
                    py = reader.cowan_k(trials)
                    assert sorted({t["n"] for t in trials}) == [4, 6] and len(trials) == 64
                    shown = page.eval(f"document.querySelector('#{uid} .wmb-score').textContent")
                    assert f"Mean K: {fixed(py['K_mean'])}" in shown, shown
                elif kind == "nback":
                    for k in range(30):
                        _wait_phase(page, uid, "item", k)
                        if k % 3 == 0:
                            press(page, " ")
                    page.wait_for(f"document.getElementById('{uid}').wmbTask.phase==='done'", timeout=30)
                    py = reader.score_n_back(page.eval(f"document.getElementById('{uid}').wmbTask.trials"))
                    shown = page.eval(f"document.querySelector('#{uid} .wmb-score').textContent")
                    assert f"d\u2032 = {fixed(py['d_prime'])}" in shown, shown
                else:  # offload
                    for k in range(8):
                        _wait_phase(page, uid, "responding", k)
                        seq = page.eval(f"document.getElementById('{uid}').wmbTask.current.presented")
                        page.click(*page.center(f"#{uid} .wmb-answer"))
                        for ch in (seq if k % 2 else seq[:3]).lower():
                            press(page, ch)
                        press(page, "Enter")
                    for j in range(16):  # the surprise test: say "seen" to everything
                        _wait_phase(page, uid, "recognition", j)
                        press(page, "o")
                    page.wait_for(f"document.getElementById('{uid}').wmbTask.phase==='done'", timeout=30)
                    later = reader.score_delayed(page.eval(f"document.getElementById('{uid}').wmbTask.probes"))
                    assert later["memory"]["corrected"] == 0 and later["notes"]["corrected"] == 0
                    trials = page.eval(f"document.getElementById('{uid}').wmbTask.trials")
                    py = reader.score_offloading(trials)
                    shown = page.eval(f"document.querySelector('#{uid} .wmb-score').textContent")
                    assert f"from memory: {fixed(100 * py['memory'], 0)} %; with notes: {fixed(100 * py['notes'], 0)} %" in shown
                    assert page.eval(f"document.getElementById('{uid}').wmbTask.order")[0] in ("notes", "memory")
                page.eval(f"document.getElementById('{uid}').scrollIntoView()")
                page.screenshot(shots / f"book-{doc.split('/')[-1]}-{kind}-{uids.index(uid)}.png", full_page=False)
            assert not page.errors(), page.errors()
            assert all(u.startswith(("file:", "data:", "about:", "blob:")) for u in page.requests()), page.requests()
