"""Scorers of the reader's tasks (wmbook/lab/reader.py) and the task fragments (wmbook/view/tasks.py)."""
from __future__ import annotations

import math
import re
import statistics

import pytest

from wmbook.lab import reader
from wmbook.view.tasks import change_detection_task, digit_span_task, n_back_task, offloading_task


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
                                  lambda: offloading_task(), lambda: n_back_task()])
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


def test_z_score_and_d_prime_against_scipy():
    from scipy.stats import norm

    ps = [1e-12, 0.001, 0.02, 0.0749, 0.075, 0.3, 0.5, 0.77, 0.925, 0.999, 1 - 1e-9]
    assert max(abs(reader.z_score(p) - norm.ppf(p)) for p in ps) < 1e-9
    with pytest.raises(ValueError, match="strictly"):
        reader.z_score(1.0)
    # log-linear correction: (hits + 0.5) / (n + 1), even for rates of 0 and 1
    assert reader.d_prime(7, 9, 1, 21) == pytest.approx(norm.ppf(7.5 / 10) - norm.ppf(1.5 / 22), abs=1e-12)
    assert reader.d_prime(9, 9, 0, 21) == pytest.approx(norm.ppf(9.5 / 10) - norm.ppf(0.5 / 22), abs=1e-12)
    assert reader.d_prime(0, 0, 0, 0) == 0.0  # no trials: both rates 1/2
    with pytest.raises(ValueError, match="out of range"):
        reader.d_prime(10, 9, 0, 21)


def test_n_back_stream_has_its_targets_and_only_them():
    for seed in range(20):
        s = reader.n_back_stream(30, 2, 9, seed=seed)
        assert len(s) == 30 and sum(t["target"] for t in s) == 9
        assert all(t["target"] == (t["index"] >= 2 and t["letter"] == s[t["index"] - 2]["letter"]) for t in s)
        assert set(t["letter"] for t in s) <= set("BCDFGHJK")
    assert reader.n_back_stream(seed=3) == reader.n_back_stream(seed=3) != reader.n_back_stream(seed=4)
    with pytest.raises(ValueError, match="targets"):
        reader.n_back_stream(10, 2, 9)
    with pytest.raises(ValueError, match="length > n"):
        reader.n_back_stream(2, 2, 0)


def test_score_n_back_counts_and_d_prime():
    rows = ([{"target": True, "responded": True}] * 7 + [{"target": True, "responded": False}] * 2
            + [{"target": False, "responded": True}] + [{"target": False, "responded": False}] * 20)
    s = reader.score_n_back(rows)
    assert (s["hits"], s["misses"], s["false_alarms"], s["correct_rejections"]) == (7, 2, 1, 20)
    assert s["hit_rate"] == pytest.approx(7 / 9) and s["fa_rate"] == pytest.approx(1 / 21)
    assert s["d_prime"] == pytest.approx(reader.d_prime(7, 9, 1, 21))
    assert math.isnan(reader.score_n_back([])["hit_rate"])
    # a simulated reader: d' grows with its hit rate at a fixed false-alarm rate (mean over draws)
    stream = reader.n_back_stream(seed=0)
    mean_d = [statistics.mean(reader.score_n_back(reader.simulate_n_back(stream, h, 0.1, seed=k))["d_prime"]
                              for k in range(30)) for h in (0.3, 0.6, 0.9)]
    assert mean_d[0] < mean_d[1] < mean_d[2]


def test_recognition_lure_changes_two_letters_to_new_ones():
    for seed in range(20):
        lure = reader.recognition_lure("KQMXBZT", reader.mulberry32(seed))
        assert len(lure) == 7 and sum(a != b for a, b in zip(lure, "KQMXBZT")) == 2
        assert all(c not in "KQMXBZT" for a, c in zip("KQMXBZT", lure) if a != c)
    with pytest.raises(ValueError, match="changes"):
        reader.recognition_lure("BCD", reader.mulberry32(0), changes=4)
    with pytest.raises(ValueError, match="letters are left"):
        reader.recognition_lure("BCDFGHJKLMNPQRSTVWX", reader.mulberry32(0), changes=2)


def test_score_delayed_per_condition():
    rows = ([{"condition": "memory", "old": True, "said_old": True}] * 3
            + [{"condition": "memory", "old": True, "said_old": False}]
            + [{"condition": "memory", "old": False, "said_old": True}]
            + [{"condition": "memory", "old": False, "said_old": False}] * 3
            + [{"condition": "notes", "old": o, "said_old": True} for o in (True, False)] * 4
            + [{"condition": "notes", "presented": "BCD", "response": "BCD"}])  # a recall row: ignored
    s = reader.score_delayed(rows)
    assert (s["memory"]["hits"], s["memory"]["fa"], s["memory"]["corrected"]) == (0.75, 0.25, 0.5)
    assert (s["notes"]["hits"], s["notes"]["fa"], s["notes"]["corrected"]) == (1.0, 1.0, 0.0)
    assert s["notes"]["n_old"] == s["notes"]["n_new"] == 4
    assert math.isnan(reader.score_delayed([])["memory"]["corrected"])
    with pytest.raises(ValueError, match="condition"):
        reader.score_delayed([{"condition": "aid", "old": True, "said_old": True}])
    # the recall scorer skips the probes of the same run
    assert reader.score_offloading(rows[-1:] + rows[:2])["n"] == {"memory": 0, "notes": 1}


def test_n_back_and_offloading_options_are_checked():
    with pytest.raises(ValueError, match="on_ms"):
        n_back_task(on_ms=2500)
    with pytest.raises(ValueError, match="targets"):
        n_back_task(length=10, targets=9)
    col = '["delayed_memory","later H-F, memory",2]'  # a column of the saved-runs table
    assert col in offloading_task().html and col not in offloading_task(delayed_test=False).html
    assert "surprise" not in re.search(r'"intro":"([^"]*)"', offloading_task().html).group(1).lower()  # unannounced


def test_simulated_delayed_reader():
    rows = reader.simulate_delayed({"memory": 1.0, "notes": 0.0})
    s = reader.score_delayed(rows)
    assert len(rows) == 16 and s["memory"]["corrected"] == 1.0 and s["notes"]["corrected"] == -1.0
    # a reader right 3 times in 4 in both conditions: H - F = 0.5 on average, no difference
    diffs = [reader.score_delayed(reader.simulate_delayed({"memory": 0.75, "notes": 0.75}, 50, seed=k))
             for k in range(20)]
    assert abs(statistics.mean(d["notes"]["corrected"] - d["memory"]["corrected"] for d in diffs)) < 0.1
    assert abs(statistics.mean(d["memory"]["corrected"] for d in diffs) - 0.5) < 0.05
    with pytest.raises(ValueError, match="keys"):
        reader.simulate_delayed({"memory": 0.5})
