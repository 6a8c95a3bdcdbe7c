"""Self-check questions (wmbook/view/selfcheck.py): input checks, safety, and the widget in Chromium."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from wmbook.view.fragment import page_html
from wmbook.view.selfcheck import self_check

sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser import Browser  # noqa: E402

Q1 = {"q": "Why divide the scores by `sqrt(d_k)`?",
      "options": [("So the weights sum to 1.", False, "The softmax does that at any scale."),
                  ("To keep the scores' spread near 1 at any width.", True, "Their sd grows like sqrt(d_k).")]}
Q2 = {"q": "What does a KV cache hold? <script>alert(1)</script>",
      "options": [("The keys and values of past tokens.", True, "So a new token needs only its own projections."),
                  ("The attention weights.", False, "Those are recomputed for every new query."),
                  ("The <b>logits</b>.", False, "Logits are the output, not the memory.")]}


def payload(view) -> dict:
    m = re.search(r'\}\)\("' + re.escape(view.uid) + r'", (\{.*\})\);\s*</script>', view.html, re.S)
    assert m, "the script must end with the call (uid, payload)"
    return json.loads(m.group(1))


def test_payload_keeps_questions_options_and_feedback():
    view = self_check("4.1", [Q1, Q2], shuffle=False)
    data = payload(view)
    assert data["page"] == "4.1"
    assert [q["prompt"] for q in data["questions"]] == [Q1["q"], Q2["q"]]
    assert [o["correct"] for o in data["questions"][1]["options"]] == [True, False, False]
    assert data["questions"][0]["options"][1]["why"] == "Their sd grows like sqrt(d_k)."
    assert self_check("4.1", [Q1]).uid != self_check("4.1", [Q1]).uid  # two widgets never share ids
    assert payload(self_check("4.1", [Q1]))["questions"][0]["id"] == data["questions"][0]["id"]  # stable ids


def test_options_are_shuffled_the_same_way_every_time():
    many = [{"q": f"Question {i}?", "options": [("right", True, "w"), ("b", False, "w"), ("c", False, "w")]}
            for i in range(12)]
    places = [[o["text"] for o in q["options"]].index("right") for q in payload(self_check("1.1", many))["questions"]]
    assert len(set(places)) > 1, "the right answer must not always stand first"
    again = [[o["text"] for o in q["options"]].index("right") for q in payload(self_check("1.1", many))["questions"]]
    assert places == again


def test_text_cannot_become_markup():
    html = self_check("2.1", [Q2]).html
    assert "<script>alert(1)" not in html and "<b>logits" not in html
    assert html.count("<script>") == 1 and html.count("</script>") == 1


@pytest.mark.parametrize("questions, message", [
    ([], "non-empty list"),
    ([{"q": "x?"}], "'q' (the question) and 'options'"),
    ([{"q": "x?", "options": [("a", True, "why")]}], "at least two options"),
    ([{"q": "x?", "options": [("a", False, "w"), ("b", False, "w")]}], "no option is marked correct"),
    ([{"q": "x?", "options": [("a", 1, "w"), ("b", False, "w")]}], "True or False"),
    ([{"q": "x?", "options": [("a", True, ""), ("b", False, "w")]}], "why it is right or wrong"),
    ([{"q": "x?", "options": [("a", True)]}], "expected (text, correct, why)"),
    ([Q1, Q1], "same text"),
])
def test_bad_questions_say_what_is_wrong(questions, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        self_check("2.1", questions)


def test_page_is_required():
    with pytest.raises(ValueError, match="page must name the page"):
        self_check("", [Q1])


@pytest.mark.slow
def test_feedback_score_and_review_queue_in_chromium(tmp_path):
    a, b = self_check("9.9", [Q1, Q2], shuffle=False), self_check("9.8", [Q1])
    page_file = tmp_path / "selfcheck.html"
    page_file.write_text(page_html(a, b), encoding="utf-8")
    A = f"#{a.uid}"
    with Browser() as browser:
        page = browser.new_page(offline=True)
        page.goto(page_file.as_uri())
        page.wait_for("document.querySelectorAll('.wmb-sc[data-wmb-ready]').length === 2")
        assert page.eval(f"document.querySelectorAll('{A} .wmb-sc-q').length") == 2
        assert page.eval("document.querySelectorAll('b').length") == 0  # option text stays text

        def click(q, o):
            page.click(*page.center(f"{A} .wmb-sc-q:nth-of-type({q}) .wmb-sc-opt:nth-of-type({o})"))

        click(1, 2)  # question 1 right at the first try
        fb = page.eval(f"document.querySelector('{A} .wmb-sc-q:nth-of-type(1) .wmb-sc-feedback').textContent")
        assert fb == "Right. Their sd grows like sqrt(d_k)."
        click(2, 2)  # question 2 wrong first, then right: feedback changes, the score keeps the first try
        fb = page.eval(f"document.querySelector('{A} .wmb-sc-q:nth-of-type(2) .wmb-sc-feedback').textContent")
        assert fb == "Not quite. Those are recomputed for every new query."
        click(2, 1)
        fb = page.eval(f"document.querySelector('{A} .wmb-sc-q:nth-of-type(2) .wmb-sc-feedback').textContent")
        assert fb.startswith("Right.")
        assert page.eval(f"document.querySelector('{A}').getAttribute('data-wmb-answered')") == "2"
        assert page.eval(f"document.querySelector('{A}').getAttribute('data-wmb-right')") == "1"
        assert page.eval(f"document.querySelector('{A} .wmb-sc-status').textContent") == "1 of 2 right at the first try"
        stored = json.loads(page.eval("localStorage.getItem('wmbook-selfcheck')"))
        assert sorted(stored["9.9"].values()) == ["right", "wrong"] and "9.8" not in stored

        page.goto(page_file.as_uri())  # next visit: the missed question comes first, marked
        page.wait_for("document.querySelectorAll('.wmb-sc[data-wmb-ready]').length === 2")
        first = page.eval(f"document.querySelector('{A} .wmb-sc-q').className")
        assert "wmb-sc-review" in first
        assert page.eval(f"document.querySelector('{A} .wmb-sc-prompt').textContent") == "1. " + Q2["q"]
        assert "you missed last time" in page.eval(f"document.querySelector('{A} .wmb-sc-status').textContent")
        page.click(*page.center(f"{A} .wmb-sc-clear"))
        assert "9.9" not in json.loads(page.eval("localStorage.getItem('wmbook-selfcheck')"))
        browser.assert_no_errors()
