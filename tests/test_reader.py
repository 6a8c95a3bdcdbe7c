"""Scorers of the reader's tasks (wmbook/lab/reader.py) and the task fragments (wmbook/view/tasks.py)."""
from __future__ import annotations

import math
import re
import statistics

import pytest

from wmbook.lab import reader
from wmbook.view.tasks import change_detection_task, digit_span_task, offloading_task


def test_span_correct_forward_and_backward():
    assert reader.span_correct("3857", "3857") and reader.span_correct("3857", "3 8 5 7")
    assert not reader.span_correct("3857", "7583")
    assert reader.span_correct("3857", "7583", "backward") and not reader.span_correct("3857", "3857", "backward")
    assert not reader.span_correct("3857", "385", "forward")
    with pytest.raises(ValueError, match="forward"):
        reader.span_correct("1", "1", "sideways")


def test_staircase_one_up_two_down():
    # correct -> +1; two errors in a row -> -1; a single error keeps the length
    assert reader.span_lengths([True, True, False, True, False, False, False, False], start=3) == \
        [3, 4, 5, 5, 6, 6, 5, 5]
    assert reader.span_lengths([False] * 6, start=3) == [3, 3, 2, 2, 2, 2]  # never below SPAN_MIN
    assert reader.span_lengths([True] * 12, start=3)[-1] == reader.SPAN_MAX
    with pytest.raises(ValueError):
        reader.span_lengths([True], start=1)


def test_mean_span_of_a_step_reader_is_its_span_plus_a_half():
    # recalls every list up to 6 digits, none longer: p crosses 1/2 between 6 and 7
    rows = [{"length": L, "correct": L <= 6} for L in (3, 4, 5, 6, 7, 7, 6, 7, 7, 6)]
    assert reader.mean_span(rows) == pytest.approx(6.5)
    # half right at 7: MS = 3 - 0.5 + (1 + 1 + 1 + 1 + 0.5) = 7.0
    rows = [{"length": L, "correct": ok} for L, ok in [(3, 1), (4, 1), (5, 1), (6, 1), (7, 1), (7, 0)]]
    assert reader.mean_span(rows) == pytest.approx(7.0)
    assert math.isnan(reader.mean_span([]))
    # a gap is interpolated linearly
    rows = [{"length": 3, "correct": True}, {"length": 5, "correct": False}]
    assert reader.mean_span(rows) == pytest.approx(3 - 0.5 + 1 + 0.5 + 0)


def test_score_span_on_a_recorded_run():
    trials = [{"presented": "582", "response": "582"}, {"presented": "9163", "response": "9163"},
              {"presented": "27481", "response": "27418"}, {"presented": "60352", "response": "6035"},
              {"presented": "7139", "response": "7139"}]
    s = reader.score_span(trials)
    assert s["correct"] == [True, True, False, False, True]
    assert s["lengths"] == reader.span_lengths(s["correct"], start=3)
    assert s["max_correct"] == 4 and s["mean_span"] == pytest.approx(3 - 0.5 + 1 + 1 + 0)


def test_simulated_readers_are_recovered_on_average():
    for true in (4.5, 7.0):
        est = [reader.score_span(reader.simulate_span(true, seed=s))["mean_span"] for s in range(60)]
        assert abs(statistics.mean(est) - true) < 0.35  # MS estimates the 50 % point (page 1.2: +0.15 at 7)


def test_cowan_k():
    trials = ([{"n": 4, "change": True, "said_change": True}] * 3 + [{"n": 4, "change": True, "said_change": False}]
              + [{"n": 4, "change": False, "said_change": True}] + [{"n": 4, "change": False, "said_change": False}] * 3)
    k = reader.cowan_k(trials)
    assert k[4]["hits"] == 0.75 and k[4]["fa"] == 0.25 and k[4]["K"] == pytest.approx(2.0)
    assert k["K_mean"] == pytest.approx(2.0) and k["accuracy"] == 0.75
    k = reader.cowan_k([{"n": 6, "change": True, "said_change": True}])
    assert math.isnan(k[6]["fa"]) and math.isnan(k[6]["K"])


def test_offloading_scores():
    assert reader.letters_in_place("BCDFG", "bc x f") == pytest.approx(0.6)  # B, C, F in place; X for D; G missing
    assert reader.letters_in_place("BCDFG", "BCDFGH") == 1.0
    s = reader.score_offloading([{"condition": "notes", "presented": "BCD", "response": "BCD"},
                                 {"condition": "memory", "presented": "BCD", "response": "BXD"}])
    assert s["notes"] == 1.0 and s["memory"] == pytest.approx(2 / 3) and s["difference"] == pytest.approx(1 / 3)
    assert reader.block_order(True) == ["notes", "memory"] and reader.block_order(False, 4) == ["memory", "notes"] * 2
    with pytest.raises(ValueError, match="condition"):
        reader.score_offloading([{"condition": "aid", "presented": "B", "response": "B"}])


def test_mulberry32_is_the_reference_generator():
    rand = reader.mulberry32(0)
    first = [rand() for _ in range(3)]
    assert all(0 <= x < 1 for x in first) and len(set(first)) == 3
    assert reader.mulberry32(0)() == first[0]  # deterministic (equality with tasks.js: test_tasks_browser.py)


@pytest.mark.parametrize("make", [lambda: digit_span_task("backward"), lambda: change_detection_task(),
                                  lambda: offloading_task()])
def test_task_fragments_are_self_contained(make):
    a, b = make(), make()
    assert a.uid != b.uid
    html = a.html
    assert html.isascii() and html.count("<script") == 1 and html.lower().count("</script") == 1
    assert not re.search(r"(src|href)=\"?https?:", html) and "fetch(" not in html and "XMLHttpRequest" not in html
    assert "innerHTML" not in html and "__WMB_" not in html
    assert a._repr_html_() == html


def test_task_options_are_checked():
    with pytest.raises(ValueError, match="direction"):
        digit_span_task("sideways")
    with pytest.raises(ValueError, match="even"):
        change_detection_task(trials_per_size=7)
    with pytest.raises(ValueError, match="set sizes"):
        change_detection_task(set_sizes=(9,))
    with pytest.raises(ValueError, match="speed"):
        offloading_task(speed=0)
    with pytest.raises(ValueError, match="seed"):
        digit_span_task(seed=-1)


def test_cowan_k_recovers_the_capacity_of_the_simulated_observer():
    for k in (2.0, 3.0, 3.5):
        est = [reader.cowan_k(reader.simulate_change_detection(k, trials_per_size=200, seed=s))["K_mean"]
               for s in range(20)]
        assert abs(statistics.mean(est) - k) < 0.25


def test_chunking():
    assert reader.chunk("FBICIANASAIBM", ["FBI", "CIA", "NASA", "IBM"]) == ["FBI", "CIA", "NASA", "IBM"]
    assert reader.chunk("FBICIANASAIBM", []) == list("FBICIANASAIBM")
    assert reader.chunk("x nasa y", ["NASA", "NAS"]) == ["X", "NASA", "Y"]
