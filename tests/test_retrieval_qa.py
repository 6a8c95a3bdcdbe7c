"""Page 6.2's question answering: wmbook/lab/retrieval.py, wmbook/lab/qa_span.py and the retrieval browser.

SQuAD's EM/F1 are checked on cases whose results follow from the official evaluate-v1.1.py
(normalisation, token multiset F1, max over gold answers); BM25 against its formula; recall@k and
MRR against scikit-learn; the span extractor's pieces, search and loss against direct computations.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from wmbook.lab import qa_span as qs
from wmbook.lab import retrieval as rt

# ----------------------------------------------------------------------------- SQuAD's metric


def test_normalisation_follows_the_official_script():
    assert qs.normalize_answer("The  Denver Broncos!") == "denver broncos"
    assert qs.normalize_answer("Saint-Denis") == "saintdenis"  # punctuation is removed, not replaced by a space
    assert qs.normalize_answer("a theatre, an apple") == "theatre apple"  # whole-word articles only
    assert qs.normalize_answer("THE") == ""


def test_exact_match_and_f1_on_known_cases():
    assert qs.exact_match("Denver Broncos", "the Denver Broncos.") == 1.0
    assert qs.exact_match("Broncos", "Denver Broncos") == 0.0
    assert qs.f1_score("the cat sat", "cat sat on the mat") == pytest.approx(2 * 1 * 0.5 / 1.5)  # P=1, R=1/2
    assert qs.f1_score("x x y", "x y") == pytest.approx(0.8)  # tokens counted with multiplicity: P=2/3, R=1
    assert qs.f1_score("", "anything") == 0.0
    assert qs.f1_score("the", "a") == 0.0  # both normalise to nothing: no common token, 0 as in the script
    assert qs.best_over_answers(qs.f1_score, "1876", ["in 1876", "1876"]) == 1.0


def test_squad_scores_averages_per_question_maxima():
    s = qs.squad_scores(["Denver", "blue"], [["Denver Broncos", "Denver"], ["red"]])
    assert s["em"].tolist() == [1.0, 0.0] and s["f1"].tolist() == [1.0, 0.0]
    with pytest.raises(ValueError, match="2 predictions for 1 questions"):
        qs.squad_scores(["a", "b"], [["a"]])
    with pytest.raises(ValueError, match="non-empty list"):
        qs.best_over_answers(qs.exact_match, "a", [])


# ----------------------------------------------------------------------------- retrieval


CORPUS = ["the cat sat on the mat", "dogs chase cats in the park", "a quiet park with old trees and a pond",
          "cats and dogs and more cats", "stock markets fell sharply on monday"]


def test_bm25s_matches_the_formula():
    index = rt.bm25_index(CORPUS)
    queries = ["cats in the park", "markets monday", "cat cat mat", "nothing matches zzz"]
    got = rt.bm25_scores(index, queries)
    toks = rt.bm25_tokens(CORPUS)
    for i, q in enumerate(rt.bm25_tokens(queries)):
        np.testing.assert_allclose(got[i], rt.bm25_formula(toks, q), rtol=1e-5, atol=1e-6)
    assert got[3].max() == 0.0 and rt.bm25_index_bytes(index) > 0
    assert "the" in rt.stop_words() and "the" not in rt.bm25_tokens(["the cat"])[0]
    with pytest.raises(ValueError, match="non-empty list"):
        rt.bm25_index("one string")


def test_recall_and_mrr_match_scikit_learn():
    from sklearn.metrics import label_ranking_average_precision_score, top_k_accuracy_score

    rng = np.random.default_rng(0)
    scores = rng.normal(size=(200, 30))
    gold = rng.integers(0, 30, size=200)
    ranks = rt.gold_ranks(scores, gold)
    for k in (1, 5, 10):
        assert rt.recall_at_k(ranks, k) == pytest.approx(top_k_accuracy_score(gold, scores, k=k, labels=range(30)))
    onehot = np.eye(30)[gold]
    assert rt.mrr(ranks) == pytest.approx(label_ranking_average_precision_score(onehot, scores))


def test_ties_count_against_the_gold_passage():
    assert rt.gold_ranks(np.array([[0.0, 0.0, 0.0], [3.0, 1.0, 2.0]]), [1, 2]).tolist() == [3, 2]
    with pytest.raises(ValueError, match="k must be >= 1"):
        rt.recall_at_k(np.array([1]), 0)


def test_hybrid_and_rrf():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(5, 8)), rng.normal(size=(5, 8))
    assert (np.argsort(-rt.hybrid_scores(a, b, 1.0), 1) == np.argsort(-a, 1)).all()
    assert (np.argsort(-rt.hybrid_scores(a, b, 0.0), 1) == np.argsort(-b, 1)).all()
    m = rt.minmax(a)
    assert np.allclose(m.min(1), 0) and np.allclose(m.max(1), 1)
    assert np.allclose(rt.rrf_scores(a).max(1), 1 / 61)  # the top passage of the one ranking
    assert np.allclose(rt.rrf_scores(a, a), 2 * rt.rrf_scores(a))
    with pytest.raises(ValueError, match="weight must be in"):
        rt.hybrid_scores(a, b, 1.5)
    with pytest.raises(ValueError, match="differ in shape"):
        rt.hybrid_scores(a, b[:, :3], 0.5)


def test_bootstrap_intervals():
    assert rt.bootstrap_ci(np.ones(50)) == (1.0, 1.0, 1.0)
    rng = np.random.default_rng(2)
    x = rng.normal(size=2000)
    ci = rt.bootstrap_ci(x, seed=3)
    half = 1.96 * x.std() / np.sqrt(len(x))
    assert ci.lo < ci.mean < ci.hi and abs((ci.hi - ci.lo) / 2 - half) < 0.15 * half
    groups = np.repeat(np.arange(100), 20)  # strongly clustered values: the cluster interval is wider
    y = np.repeat(rng.normal(size=100), 20) + 0.1 * rng.normal(size=2000)
    plain, clustered = rt.bootstrap_ci(y), rt.bootstrap_ci(y, groups=groups)
    assert clustered.hi - clustered.lo > 2 * (plain.hi - plain.lo)
    d = rt.paired_difference_ci(x + 1, x)
    assert d.mean == pytest.approx(1.0) and d.lo == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 2"):
        rt.bootstrap_ci(np.array([1.0]))


def test_dense_scores_are_cosines():
    q, p = torch.randn(3, 8), torch.randn(5, 8)
    want = (torch.nn.functional.normalize(q, dim=1) @ torch.nn.functional.normalize(p, dim=1).T).double().numpy()
    assert np.abs(rt.dense_scores(q, p) - want).max() < 1e-6
    assert rt.dense_index_file("/x/span_qa.pt") == Path("/x/span_qa_dense_index.pt")


# ----------------------------------------------------------------------------- the lexical baseline and the split


def test_sliding_window_answers_next_to_the_question_words():
    ctx = "The tower was built in 1889 by Gustave Eiffel. It is made of iron and painted brown."
    assert qs.sliding_window_answer("Who built the tower in 1889?", ctx, max_len=2) == "Gustave"  # ties: the shortest
    assert qs.sliding_window_answer("What is it made of?", ctx, max_len=1) == "iron"
    assert qs.sliding_window_answer("anything", "") == ""
    with pytest.raises(ValueError, match="window and max_len"):
        qs.sliding_window_answer("q", ctx, window=0)


def _fake(contexts_per_article=5, articles=48):
    from wmbook.data.loaders import QAExample

    return [QAExample(f"paragraph {a}-{p}", f"q{a}-{p}", ["x"], [0], False, f"{a}-{p}")
            for a in range(articles) for p in range(contexts_per_article)]


def test_article_split_holds_out_whole_articles():
    ex = _fake()
    test = qs.article_split(ex, n_test=16, seed=0, keep_in_test=["paragraph 2-3", "paragraph 40-0"])
    art = qs.xquad_articles(ex)
    assert len(set(art[test])) == 16 and not set(art[test]) & set(art[~test])
    assert {2, 40} <= set(art[test])
    assert (test == qs.article_split(ex, 16, 0, ["paragraph 2-3", "paragraph 40-0"])).all()
    with pytest.raises(ValueError, match="240 paragraphs"):
        qs.xquad_articles(ex[:-5])


# ----------------------------------------------------------------------------- the span extractor


@pytest.fixture(scope="module")
def minilm():
    from wmbook.nn.bert import BertModel, minilm_tokenizer

    torch.set_num_threads(1)
    return BertModel.from_minilm(), minilm_tokenizer()


def _example(question, context, answer, impossible=False):
    from wmbook.data.loaders import QAExample

    start = context.index(answer) if answer else -1
    return QAExample(context, question, [answer] if answer else [], [start] if answer else [], impossible, "id")


def test_features_find_the_answer_pieces(minilm):
    _, tok = minilm
    ex = [_example("Who built it?", "The tower was built by Gustave Eiffel in 1889.", "Gustave Eiffel"),
          _example("When?", "Words " * 200 + "and then 1889.", "1889")]
    f = qs.qa_features(tok, ex, max_length=64)
    pieces = tok.decode(f[0].input_ids[f[0].start:f[0].end + 1])
    assert pieces.lower() == "gustave eiffel"
    assert int(f[0].offsets[f[0].start, 0]) == ex[0].context.index("Gustave")
    assert f[1].start == -1 and len(f[1].input_ids) == 64  # the answer was cut off by truncation
    assert not bool(f[0].is_context[0]) and bool(f[0].is_context[f[0].start])


def test_best_span_is_the_constrained_argmax():
    s = torch.tensor([0.0, 5.0, 1.0, 0.0, 9.0])
    e = torch.tensor([0.0, 0.0, 2.0, 7.0, -9.0])
    ctx = torch.tensor([False, True, True, True, True])
    assert qs.best_span(s, e, ctx, max_answer_len=30)[:2] == (1, 3)  # 5 + 7; (4, 4) scores 0
    assert qs.best_span(s, e, ctx, max_answer_len=2)[:2] == (2, 3)  # spans of <= 2 pieces: 1 + 7 beats 5 + 2
    brute = max((float(s[i] + e[j]), i, j) for i in range(1, 5) for j in range(i, 5))
    assert qs.best_span(s, e, ctx)[2] == brute[0]
    with pytest.raises(ValueError, match="no paragraph piece"):
        qs.best_span(s, e, torch.zeros(5, dtype=torch.bool))


def test_span_loss_is_the_mean_of_two_cross_entropies():
    torch.manual_seed(0)
    logits = torch.randn(2, 6, 2)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]], dtype=torch.bool)
    starts, ends = torch.tensor([1, 2]), torch.tensor([3, 3])
    want = 0.0
    for b in range(2):
        n = int(mask[b].sum())
        for k, gold in ((0, starts[b]), (1, ends[b])):
            want += -torch.log_softmax(logits[b, :n, k], 0)[gold] / 4
    assert float(qs.span_loss(logits, mask, starts, ends)) == pytest.approx(float(want), rel=1e-5)


def test_span_head_trains_and_predicts(minilm):
    enc, tok = minilm
    ex = [_example("Who built the tower?", "The tower was built by Gustave Eiffel in 1889.", "Gustave Eiffel"),
          _example("When was the tower built?", "The tower was built by Gustave Eiffel in 1889.", "1889")]
    feats = qs.qa_features(tok, ex)
    hidden = qs.frozen_hidden(enc, feats, n_frozen=5)
    assert hidden[0].dtype == torch.float16 and hidden[0].shape == (len(feats[0].input_ids), 384)
    head = qs.new_span_head(enc, 1, seed=0)
    assert head.layers[0] is not enc.layers[-1]
    assert all(torch.equal(a, b) for a, b in zip(head.layers[0].parameters(), enc.layers[-1].parameters()))
    recipe = qs.SpanQARecipe(batch_size=2, lr=1e-3, warmup=1)
    hist = qs.train_span_head(head, hidden, feats, recipe, steps=30)
    assert [r["step"] for r in hist[:3]] == [1, 2, 3] and hist[-1]["loss"] < hist[0]["loss"] / 2
    preds = qs.predict_spans(head, hidden, feats, [e.context for e in ex])
    assert [p.text for p in preds] == ["Gustave Eiffel", "1889"]  # it learned its two training questions
    state = qs.span_head_state(head)
    assert all(v.dtype == torch.float16 for v in state.values())
    with pytest.raises(ValueError, match="n_trained_layers"):
        qs.new_span_head(enc, 7, 0)


# ----------------------------------------------------------------------------- the committed files


def test_committed_span_qa_checkpoints_load_and_are_small(minilm):
    enc, _ = minilm
    from wmbook.data.checkpoint import seed_file

    for seed in qs.SPAN_QA_SEEDS:
        path = seed_file(qs.SPAN_QA_FILE, seed)
        assert path.stat().st_size <= 5 * 2**20
        head, log = qs.load_span_qa(enc, seed)
        assert log["recipe"]["seed"] == seed and len(log["results"]["test"]["text"]) == log["n_test"]
    index = rt.load_dense_index(rt.dense_index_file(qs.SPAN_QA_FILE), rt.DENSE_INDEX_SHA256, "x")
    assert index.passages.shape == (240, 384) and index.questions.shape == (1190, 384)


# ----------------------------------------------------------------------------- the browser


def _browser_inputs():
    rng = np.random.default_rng(0)
    scores = {"BM25": rng.normal(size=(3, 6)), "dense": rng.normal(size=(3, 6))}
    return (["who?", "what <b>?", "when?"], ["a", "b", "c"], [0, 4, 5],
            [f"passage {j} & text" for j in range(6)], scores)


def test_browser_data_keeps_what_it_shows():
    q, a, g, p, s = _browser_inputs()
    from wmbook.view.retrieval_view import browser_data

    d = browser_data(q, a, g, p, s, k=2)
    first = d["questions"][0]
    assert [m["name"] for m in d["methods"]] == ["BM25", "dense"]
    assert first["ranks"]["m0"] == rt.gold_ranks(s["BM25"], g)[0]
    assert [h[0] for h in first["top"]["m0"]] == list(np.argsort(-s["BM25"][0])[:2])
    assert set(d["passages"]) >= {str(j) for j in g}


def test_browser_fragment_is_self_contained_and_checks_its_input():
    from wmbook.view.retrieval_view import retrieval_browser

    q, a, g, p, s = _browser_inputs()
    frag = retrieval_browser(q, a, g, p, s, k=3)
    assert frag.uid in frag.html and "http" not in frag.html and "<b>?" not in frag.html
    with pytest.raises(ValueError, match="shape"):
        retrieval_browser(q, a, g, p, {"x": np.zeros((2, 6))})
    with pytest.raises(ValueError, match="k must be in"):
        retrieval_browser(q, a, g, p, s, k=0)


def test_widget_builds():
    from wmbook.view.retrieval_view import retrieval_widget

    box = retrieval_widget(*_browser_inputs(), k=2)
    assert "who?" in box.children[1].value
    box.children[0].value = 2
    assert "when?" in box.children[1].value


@pytest.mark.slow
def test_browser_in_chromium(tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from browser import Browser

    from wmbook.view.retrieval_view import retrieval_browser

    q, a, g, p, s = _browser_inputs()
    frag = retrieval_browser(q, a, g, p, s, k=6)  # every passage shown: the gold one is always marked
    path = frag.save(tmp_path / "rv.html")
    with Browser() as b:
        page = b.new_page()
        page.goto(path.as_uri())
        page.wait_for(f"document.getElementById('{frag.uid}').getAttribute('data-wmb-question') === '0'")
        assert page.eval(f"document.querySelectorAll('#{frag.uid} li.wmb-rv-isgold').length") == 2
        page.click(*page.center(f"#{frag.uid} button"))
        page.wait_for(f"document.getElementById('{frag.uid}').getAttribute('data-wmb-question') === '1'")
        assert "what <b>?" in page.eval(f"document.querySelector('#{frag.uid} .wmb-rv-q').textContent")
        assert page.eval(f"document.querySelectorAll('#{frag.uid} .wmb-rv-col').length") == 2
        assert page.errors() == []
