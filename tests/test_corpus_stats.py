"""wmbook.lab.corpus_stats (page 7.3): WikiText-2 counts against its paper's Table 1, Zipf's fit against
numpy, SQuAD question types and spans, and the loader for a data set the reader must bring."""
from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from wmbook.data.loaders import DataUnavailableError, QAExample, load_squad, load_wikitext2
from wmbook.lab.corpus_stats import (QUESTION_TYPES, article_lengths, load_bookcorpus, published_token_count, question_type,
                                     rank_frequency, spans_match, squad_stats, token_counts, wikitext_stats, zipf_fit)


def test_wikitext_counts_equal_the_papers_table():
    """Merity et al. (2016), Table 1: WikiText-2 valid 217,646 and test 245,569 tokens."""
    assert published_token_count("valid") == 217646
    assert published_token_count("test") == 245569
    s = wikitext_stats(load_wikitext2()["valid"])
    assert s.tokens == 213886 and s.lines == 2461 and 0 < s.unk < s.tokens and s.headings > 0
    assert s.unk_rate == s.unk / s.tokens
    with pytest.raises(ValueError, match="unknown WikiText-2 split"):
        published_token_count("dev")
    with pytest.raises(TypeError, match="list of lines"):
        wikitext_stats("one string")


def test_wikitext_stats_on_a_small_text():
    lines = ["= Title =", "the cat <unk> the", "", "= = Part = =", "a b"]
    s = wikitext_stats(lines)
    assert (s.lines, s.headings, s.tokens, s.unk) == (4, 2, 14, 1)
    assert s.vocabulary == len(token_counts(lines))
    assert s.singletons == sum(1 for c in token_counts(lines).values() if c == 1)


def test_zipf_fit_equals_numpy_least_squares_and_recovers_a_power_law():
    freqs = [round(1e6 * r ** -1.1) for r in range(1, 2001)]
    fit = zipf_fit(freqs)
    assert fit.s == pytest.approx(1.1, abs=1e-3) and fit.r2 > 0.999
    assert fit.predict(10) == pytest.approx(1e6 * 10 ** -1.1, rel=1e-2)
    real = rank_frequency(token_counts(load_wikitext2()["valid"]))
    fit = zipf_fit(real, 10, 1000)
    slope, intercept = np.polyfit(np.log(np.arange(10, 1001)), np.log(real[9:1000]), 1)
    assert fit.s == pytest.approx(-slope, rel=1e-9) and fit.log_c == pytest.approx(intercept, rel=1e-9)
    with pytest.raises(ValueError, match="need 1 <= first < last"):
        zipf_fit(real, 5, 5)
    with pytest.raises(ValueError, match="positive"):
        zipf_fit([3, 2, 0], 1, 3)


def test_rank_frequency_sorts_counts():
    assert rank_frequency(Counter("aabbbc")) == [3, 2, 1]


def test_question_types():
    cases = {"How many points did they score?": "how many", "How much did it cost?": "how much",
             "In what year was it built?": "what", "Who wrote it?": "who", "How did it end?": "how",
             "Other than science, what was Tesla famous for?": "what", "Name a luxury division.": "other",
             "Which team won?": "which", "Whose idea was it?": "whose", "Why?": "why", "Where is it?": "where",
             "When did it open?": "when", "To whom was it sent?": "whom"}
    for q, t in cases.items():
        assert question_type(q) == t, q
    assert set(cases.values()) == set(QUESTION_TYPES)


def test_squad_stats_on_xquad():
    data = load_squad()
    s = squad_stats(data)
    assert s.questions == 1190 and s.contexts == 240 and sum(s.types.values()) == 1190
    assert len(s.answer_words) == 1190 and min(s.answer_words) >= 1
    assert s.answers_per_question == 1.0  # XQuAD keeps one answer per question
    assert 0 < s.answer_length_share(3) < 1 and s.answer_length_share(10**6) == 1.0
    assert all(spans_match(e) for e in data)
    bad = QAExample("abc def", "q?", ["xyz"], [0], False, "1")
    assert not spans_match(bad)
    with pytest.raises(ValueError, match="no examples"):
        squad_stats([])
    s2 = squad_stats(load_squad(2))  # unanswerable questions: counted, no answer length
    assert s2.questions == 626 and len(s2.answer_words) == 626 - 333


def test_bookcorpus_loader_says_what_to_do_and_reads_what_the_reader_brings(tmp_path, monkeypatch):
    monkeypatch.setenv("WMBOOK_DATA_DIR", str(tmp_path))
    with pytest.raises(DataUnavailableError, match="does not download or ship BookCorpus") as e:
        load_bookcorpus()
    assert str(tmp_path / "bookcorpus") in str(e.value)
    (tmp_path / "bookcorpus").mkdir()
    (tmp_path / "bookcorpus" / "b.txt").write_text("Second book.", encoding="utf-8")
    (tmp_path / "bookcorpus" / "a.txt").write_text("First book.", encoding="utf-8")
    assert load_bookcorpus() == {"a.txt": "First book.", "b.txt": "Second book."}
    assert list(load_bookcorpus(max_books=1)) == ["a.txt"]
    with pytest.raises(ValueError, match="max_books"):
        load_bookcorpus(max_books=0)
    assert math.isfinite(len(load_bookcorpus(tmp_path / "bookcorpus")))


def test_article_lengths_split_wikitext_at_titles_only():
    """Merity et al. (2016), Table 1: 60 articles in each of valid and test; the formula lines
    ``= 1 <unk> and <unk> C =`` of the test split are not titles."""
    for split in ("valid", "test"):
        lengths = article_lengths(split)
        assert len(lengths) == 60
        assert sum(lengths) == wikitext_stats(load_wikitext2((split,))[split]).tokens
    with pytest.raises(ValueError, match="unknown WikiText-2 split"):
        article_lengths("train2")
