"""Page 6.2.1 (knowledge-base QA over Tang poems) and 6.2.3 (dialogue state tracking on Taskmaster-4):
wmbook/lab/kbqa.py, wmbook/lab/dialogue_state.py and the timeline view wmbook/view/dialogue_view.py."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from wmbook.lab import dialogue_state as ds
from wmbook.lab import kbqa
from wmbook.view.dialogue_view import state_timeline, state_timeline_widget

from _fixtures import real_data  # noqa: F401  (the shared data folder, or a skip)

POEMS = [  # a tiny KB: three poems, one poet with two of them
    {"title": "靜夜思", "author": "李白", "paragraphs": ["床前明月光，疑是地上霜。", "舉頭望明月，低頭思故鄉。"]},
    {"title": "春曉", "author": "孟浩然", "paragraphs": ["春眠不覺曉，處處聞啼鳥。", "夜來風雨聲，花落知多少。"]},
    {"title": "早發白帝城", "author": "李白", "paragraphs": ["朝辭白帝彩雲間，千里江陵一日還。", "兩岸猿聲啼不住，輕舟已過萬重山。"]},
    {"title": "長詩", "author": "某人", "paragraphs": ["一二三四五，六七八九十。", "甲乙丙丁戊，己庚辛壬癸。",
                                                   "子丑寅卯辰，巳午未申酉。", "天地玄黃宇，宙洪荒日月。", "盈昃辰宿列，張寒來暑往。"]},
]


@pytest.fixture(scope="module")
def kb():
    return kbqa.build_kb(POEMS)


# ---------------------------------------------------------------- knowledge-base QA


def test_poem_form_by_shape():
    assert kbqa.poem_form(["一二三四五"] * 4) == "五言绝句"
    assert kbqa.poem_form(["一二三四五六七"] * 8) == "七言律诗"
    assert kbqa.poem_form(["一二三四五"] * 8) == "五言律诗"
    assert kbqa.poem_form(["一二三四五"] * 6) == "其他"
    assert kbqa.poem_form(["一二三四五", "一二三四五六七"] * 2) == "其他"
    assert kbqa.poem_form(["一二三四"] * 4) == "其他"


def test_build_kb_indexes(kb):
    assert len(kb.poems) == 4 and kb.by_poet["李白"] == [0, 2]
    assert kb.by_line["疑是地上霜"] == [(0, 1)] and kb.by_title["春曉"] == [1]
    assert kb.poems[2].form == "七言绝句" and kb.poems[3].form == "其他"
    assert kb.n_facts() == sum(3 + len(p.lines) for p in kb.poems) == 12 + 4 + 4 + 4 + 10
    with pytest.raises(ValueError, match="at least one poem"):
        kbqa.build_kb([])


def test_link_entities_longest_first(kb):
    links = kbqa.link_entities(kb, "「床前明月光」的作者是谁？")
    assert links[0] == ("line", "床前明月光", 1)
    assert kbqa.link_entities(kb, "没有实体的问题") == []
    assert kbqa.link_entities(kb, "李白写了几首诗？")[0][:2] == ("poet", "李白")


def test_kbqa_answers_template_questions(kb):
    qa = kbqa.KBQA(kb)
    assert qa.answer("「床前明月光」的作者是谁？") == "李白"
    assert qa.answer("「床前明月光」的下一句是什么？") == "疑是地上霜"
    assert qa.answer("「春眠不覺曉」出自哪首诗？") == "春曉"
    assert qa.answer("《早發白帝城》是什么体裁？") == "七言绝句"
    assert qa.answer("《春曉》是谁写的？") == "孟浩然"
    assert qa.answer("李白写了几首诗？") == "2"
    assert qa.answer("今天天气怎么样？") is None
    assert qa.parse("「低頭思故鄉」的下一句是什么？") == ("next_line", "低頭思故鄉")
    assert qa.answer("「低頭思故鄉」的下一句是什么？") is None  # the last line has no next line
    # with the gold type the classifier is skipped
    assert qa.answer("床前明月光，后面一句是什么？", "next_line") == "疑是地上霜"
    with pytest.raises(ValueError, match="unknown question type"):
        qa.answer("《春曉》是谁写的？", "weather")


def test_make_questions_deterministic_and_answered(kb):
    qs = kbqa.make_questions(kb, kbqa.TEMPLATES, 3, seed=1)
    assert qs == kbqa.make_questions(kb, kbqa.TEMPLATES, 3, seed=1)
    assert [q.qtype for q in qs] == [t for t in kbqa.QTYPES for _ in range(3)]
    qa = kbqa.KBQA(kb)
    for q in qs:
        assert q.entity in q.text and qa.answer(q.text, q.qtype) == q.answer
    with pytest.raises(ValueError, match="n_per_type"):
        kbqa.make_questions(kb, kbqa.TEMPLATES, 0, 0)
    with pytest.raises(ValueError, match="no template for"):
        kbqa.make_questions(kb, {"author": ["{title}?"]}, 1, 0)


def test_paraphrases_are_held_out():
    for qtype in kbqa.QTYPES:
        assert set(kbqa.TEMPLATES[qtype]).isdisjoint(kbqa.PARAPHRASES[qtype])


def test_retrieval_baseline_reads_top_poem(kb):
    rq = kbqa.RetrievalQA(kb, k=3)
    top = rq.retrieve(["「朝辭白帝彩雲間」出自哪首诗？"])[0]
    assert top[0] == 2 and len(top) == 3
    q = kbqa.Question("「朝辭白帝彩雲間」的下一句是什么？", "next_line", "朝辭白帝彩雲間", "千里江陵一日還")
    assert rq.answers([q]) == ["千里江陵一日還"]
    assert rq.read("李白写了几首诗？", "count", [0, 2, 1]) == "2"


def test_accuracy_by_type_and_draws(kb):
    qs = [kbqa.Question("q1", "author", "e", "甲"), kbqa.Question("q2", "author", "e", "乙"),
          kbqa.Question("q3", "count", "e", "1")]
    acc = kbqa.accuracy_by_type(qs, ["甲", "丙", "1"])
    assert acc == {"author": 0.5, "count": 1.0, "all": pytest.approx(2 / 3)}
    with pytest.raises(ValueError, match="answers"):
        kbqa.accuracy_by_type(qs, ["甲"])
    rows = kbqa.run_draws(kb, seeds=[0, 1], n_per_type=2)
    assert len(rows) == 2 * 2 * 3 and {r["system"] for r in rows} == {"kb", "kb+type", "bm25"}
    assert all(r["all"] == 1.0 for r in rows if r["system"] == "kb+type")


def test_kb_on_the_tang_poems(real_data):
    kb = kbqa.build_kb()
    assert len(kb.poems) == 4003
    qs = kbqa.make_questions(kb, kbqa.TEMPLATES, 5, seed=0)
    qa = kbqa.KBQA(kb)
    assert sum(qa.answer(q.text) == q.answer for q in qs) == len(qs)


# ---------------------------------------------------------------- dialogue state tracking


def _ann(k: int, name: str, request: dict | str, response: dict | None = None) -> list[dict]:
    req = request if isinstance(request, str) else json.dumps(request)
    out = [{"context": f"api_call_{k}", "name": "api_call", "value": name},
           {"context": f"api_call_{k}", "name": "request", "value": req}]
    if response is not None:
        out += [{"context": f"api_response_{k}", "name": "api_response", "value": name},
                {"context": f"api_response_{k}", "name": "response", "value": json.dumps(response)}]
    return out


RAW = {  # a synthetic dialogue in Taskmaster-4's layout
    "conversation_id": "dlg-test", "scenario": "test", "utterances": [
        {"index": 0, "speaker": "user", "text": "Two mochas, one with oat milk, one with 2& milk, to go.",
         "annotations": _ann(0, "get_menu_items", {"query": "mocha"}, {"menu_items": [{"menu_item_id": "moccha-1", "name": "Moccha"}]})
         + _ann(1, "add_order_item", {"menu_item_id": "moccha-1", "quantity": "1",
                                      "attributes": [{"attribute_id": "milk-options", "option": "Oat Milk"}]}, {"order_item_id": "11"})
         + _ann(2, "add_order_item", {"menu_item_id": "moccha-1", "quantity": "1",
                                      "attributes": [{"attribute_id": "milk-options", "option": "2& Milk"}]}, {"order_item_id": "12"})
         + _ann(3, "update_order", {"attributes": [{"attribute_id": "order-type", "option": "Togo"}]})},
        {"index": 1, "speaker": "assistant", "text": "Anything else?", "annotations": []},
        {"index": 2, "speaker": "user", "text": "Make the oat one decaf with vanilla.",
         "annotations": _ann(4, "get_addons", {"query": "vanilla"}, {"addons": [{"addon_id": "vanilla-sweetener-011", "name": "Vanilla Sweetener"}]})
         + _ann(5, "update_order_item", {"order_item_id": "11", "attributes": [{"attribute_id": "caffeine", "option": "Decaf"}],
                                         "addons": [{"addon_id": "011", "option": "ADD"}]})},
        {"index": 3, "speaker": "user", "text": "That's all.", "annotations": _ann(6, "finish_order", {"order_id": "1"})},
        {"index": 4, "speaker": "user", "text": "Also a cortado.",
         "annotations": _ann(7, "add_order_item", '{"menu_item_id": ""cortado-9"","quantity": "1"}')},
    ]}


def test_gold_states_replay_the_api_calls():
    g = ds.gold_states(RAW)
    assert len(g) == 4  # one per user utterance
    assert g[0] == {"drink": "mocha", "quantity": "2", "milk": "2%|oat", "caffeine": "none", "shots": "none",
                    "temperature": "none", "addons": "none", "order_type": "to go"}
    assert g[1]["caffeine"] == "decaf" and g[1]["addons"] == "vanilla" and g[1]["milk"] == "2%|oat"
    assert g[2] == g[1]  # finish_order changes nothing
    assert g[3]["drink"] == "cortado|mocha" and g[3]["quantity"] == "3"  # the doubled quotes are repaired


def test_extract_mentions():
    assert ds.extract_mentions("I'd like two mochas, one with oat milk and the other with almond milk.") == {
        "drink": "mocha", "quantity": "2", "milk": "almond|oat"}
    assert ds.extract_mentions("Can I get an iced matcha latte, decaf, to go?") == {
        "drink": "matcha latte", "quantity": "1", "caffeine": "decaf", "temperature": "iced", "order_type": "to go"}
    assert ds.extract_mentions("A double cortado with lactose-free 2% and caramel") == {
        "drink": "cortado", "quantity": "1", "shots": "double", "milk": "2% lactose free", "addons": "caramel"}
    assert ds.extract_mentions("What is in a mocha?") == {}
    assert ds.extract_mentions("Yes, that's right.") == {}
    assert ds.extract_mentions("A hot chocolate please")["drink"] == "hot chocolate"
    assert "addons" not in ds.extract_mentions("A hot chocolate please")


def _dialogue(turns: list[tuple[str, dict]]) -> ds.Dialogue:
    utts, d = [], ds.Dialogue("x", "s", [])
    for text, gold in turns:
        d.turns.append(ds.Turn(text, list(utts), {**ds.empty_state(), **gold}))
        utts += [("user", text), ("assistant", "ok")]
    d.utterances = utts
    return d


def test_trackers_and_scores():
    d = _dialogue([("A latte with oat milk please.", {"drink": "latte", "quantity": "1", "milk": "oat"}),
                   ("Make it decaf.", {"drink": "latte", "quantity": "1", "milk": "oat", "caffeine": "decaf"}),
                   ("Yes.", {"drink": "latte", "quantity": "1", "milk": "oat", "caffeine": "decaf"})])
    assert ds.track(d, "state")[1] == {**ds.empty_state(), "drink": "latte", "quantity": "1", "milk": "oat", "caffeine": "decaf"}
    assert ds.track(d, "last")[2] == ds.empty_state()
    assert ds.track(d, "history") == ds.track(d, "state")
    with pytest.raises(ValueError, match="unknown tracker"):
        ds.track(d, "oracle")
    r = ds.evaluate([d], "state")
    assert r.joint == 1.0 and r.slot_acc == 1.0 and r.by_depth[1][0] == 1
    r = ds.evaluate([d], "last")
    assert r.joint == pytest.approx(1 / 3)
    assert r.by_depth[2][1] == pytest.approx(5 / 8)  # "decaf" right, drink, quantity, milk lost
    r = ds.evaluate([d], "none")
    assert r.slot_acc == pytest.approx((5 + 4 + 4) / 24) and r.joint == 0.0
    assert ds.evaluate([d], "state", max_depth=2).by_depth[2][0] == 2  # depths 2 and 3 pooled
    with pytest.raises(ValueError, match="no user turns"):
        ds.evaluate([], "state")
    m, sd = ds.bootstrap_joint([d, d], "last", n_boot=20)
    assert m == pytest.approx(1 / 3) and sd == pytest.approx(0.0, abs=1e-12)
    errors = list(ds.iter_errors([d], "last"))
    assert {(e[1], e[2]) for e in errors} == {(2, "drink"), (2, "quantity"), (2, "milk"),
                                             (3, "drink"), (3, "quantity"), (3, "milk"), (3, "caffeine")}


def test_state_size_and_memory_per_turn():
    s = ds.empty_state()
    assert ds.state_bytes(s) == len(json.dumps(s, separators=(",", ":")).encode())
    assert ds.state_bytes(s, only_filled=True) == 2
    assert ds.changed_slots(s, {**s, "milk": "oat"}) == ["milk"]
    d = _dialogue([("A latte please.", {}), ("Yes thanks.", {})])
    rows = ds.memory_per_turn([d])
    assert [r["depth"] for r in rows] == [1, 2]
    assert rows[0]["history_tokens"] == 3 and rows[1]["history_tokens"] == 3 + 1 + 2
    assert rows[1]["history_bytes"] == len("A latte please. ok Yes thanks.".encode())


def test_load_dialogues_real(real_data):
    dialogues = ds.load_dialogues()
    assert len(dialogues) == 210 and sum(len(d.turns) for d in dialogues) == 394
    from wmbook.data.loaders import load_taskmaster
    assert [d.utterances for d in dialogues] == load_taskmaster()
    first = dialogues[0].turns[0].gold
    assert first["drink"] == "mocha" and first["quantity"] == "2" and first["milk"] == "almond|oat"
    assert ds.evaluate(dialogues, "state").joint > ds.evaluate(dialogues, "last").joint


# ---------------------------------------------------------------- the timeline view


def test_state_timeline_html():
    d = _dialogue([("A latte with oat milk please.", {"drink": "latte", "quantity": "1", "milk": "oat"}),
                   ("Make it decaf <now>.", {"drink": "latte", "quantity": "1", "milk": "almond", "caffeine": "decaf"})])
    frag = state_timeline([("order", d.utterances, ds.track(d, "state"))], [[t.gold for t in d.turns]])
    html = frag.html
    assert html.count("wmb-dst-changed") >= 4 + 1  # turn 1: drink, quantity, milk; turn 2: caffeine (+ the CSS rule)
    assert "gold: almond" in html and "wmb-dst-wrong" in html
    assert "&lt;now&gt;" in html and "<now>" not in html
    assert "Noto Sans CJK SC" in html and "<script" not in html
    assert html.count("<details") == 1 and "<details open>" in html
    with pytest.raises(ValueError, match="one state per user turn"):
        state_timeline([("order", d.utterances, ds.track(d, "state")[:1])])
    with pytest.raises(ValueError, match="non-empty list"):
        state_timeline([])
    with pytest.raises(ValueError, match="gold states"):
        state_timeline([("order", d.utterances, ds.track(d, "state"))], [])


def test_state_timeline_widget():
    d = _dialogue([("A latte please.", {"drink": "latte", "quantity": "1"})])
    box = state_timeline_widget([d])
    assert len(box.children) == 2
    with pytest.raises(ValueError, match="at least one dialogue"):
        state_timeline_widget([])


@pytest.mark.slow
def test_state_timeline_in_browser(tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from browser import Browser

    d = _dialogue([("我要一杯拿铁 (a latte) with oat milk.", {"drink": "latte", "quantity": "1", "milk": "oat"})])
    path = state_timeline([("订单 order", d.utterances, ds.track(d, "state"))]).save(tmp_path / "t.html")
    with Browser() as browser:
        page = browser.new_page(offline=True)
        page.goto(path.as_uri())
        page.wait_for("!!document.querySelector('.wmb-dst details[open]')")
        n = page.eval("document.querySelectorAll('.wmb-dst td.wmb-dst-changed').length")
        assert n == 3
        width = page.eval("document.querySelector('.wmb-dst summary').getBoundingClientRect().width")
        assert width > 0
        page.screenshot(os.environ.get("WMBOOK_SHOT", str(tmp_path / "timeline.png")))


def test_char_tfidf_matches_scikit_learn():
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = ["《@》的作者是谁？", "「@」出自哪首诗？", "@写了几首诗？", "A  b a"]
    ours = kbqa.CharTfidf(texts)
    ref = TfidfVectorizer(analyzer="char", ngram_range=(1, 2)).fit(texts)
    vocab = ref.vocabulary_
    assert set(vocab) == set(ours.idf)
    for probe in texts + ["谁写了@这首诗？", "xyz"]:
        dense = ref.transform([probe]).toarray()[0]
        mine = np.zeros_like(dense)
        for g, x in ours.vector(probe).items():
            mine[vocab[g]] = x
        assert np.abs(mine - dense).max() < 1e-12
        sims = (ref.transform([probe]) @ ref.transform(texts).T).toarray()[0]
        assert np.abs(np.array(ours.similarities(probe)) - sims).max() < 1e-12
    with pytest.raises(ValueError, match="at least one text"):
        kbqa.CharTfidf([])
