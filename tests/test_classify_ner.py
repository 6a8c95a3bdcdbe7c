"""Page 6.1: wmbook.lab.classify (text classification, truncation) and wmbook.lab.ner (WNUT-17 NER)."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from wmbook.lab import classify, ner
from wmbook.nn.bert import BertConfig, BertModel, minilm_tokenizer


@pytest.fixture(scope="module")
def tok():
    return minilm_tokenizer()


def tiny_bert(n_layers: int = 2) -> BertModel:
    torch.manual_seed(0)
    return BertModel(BertConfig(vocab_size=30522, d_model=16, n_heads=2, n_layers=n_layers, d_ff=32, n_ctx=64)).eval()


# ------------------------------------------------------------------ classify

def test_poem_sentiment_loads_with_four_classes_and_mixed_only_in_train():
    data = classify.load_poem_sentiment()
    assert [len(data[s]) for s in ("train", "dev", "test")] == [892, 105, 104]
    assert sorted({y for _, y in data["train"]}) == [0, 1, 2, 3]
    assert {y for s in ("dev", "test") for _, y in data[s]} == {0, 1, 2}
    assert data["train"][0] == ("with pale blue berries. in these peaceful shades--", 1)  # file label 1 = positive
    assert classify.POEM_CLASSES[1] == "positive"


def test_bootstrap_rows():
    assert classify.bootstrap_rows(5, 0).tolist() == [0, 1, 2, 3, 4]
    a, b = classify.bootstrap_rows(100, 1), classify.bootstrap_rows(100, 1)
    assert np.array_equal(a, b) and len(a) == 100 and len(set(a.tolist())) < 100
    assert not np.array_equal(a, classify.bootstrap_rows(100, 2))
    with pytest.raises(ValueError, match="draw >= 0"):
        classify.bootstrap_rows(5, -1)


def test_scores_match_a_hand_count():
    y, p = [0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 0]
    s = classify.scores(y, p)
    assert s["accuracy"] == pytest.approx(100 * 4 / 6)
    f1 = [2 * 1 / (2 * 1 + 1 + 1), 2 * 2 / (2 * 2 + 1 + 0), 2 * 1 / (2 * 1 + 0 + 1)]  # 2TP / (2TP + FP + FN)
    assert s["macro_f1"] == pytest.approx(100 * sum(f1) / 3)
    # a predicted class the evaluation set lacks (e.g. "mixed") is an error but not a class of the average
    assert classify.scores([0, 1], [3, 1])["macro_f1"] == pytest.approx(100 * (0 + 1) / 2)
    with pytest.raises(ValueError, match="equal-length"):
        classify.scores([0, 1], [0])


def test_majority_and_resampled_scores():
    assert classify.majority_scores([1, 1, 0], [1, 0, 1, 1])["accuracy"] == 75.0
    calls = []
    out = classify.resampled_scores(lambda rows: calls.append(rows) or np.zeros(4, int), 10, [0, 0, 1, 1], draws=3)
    assert len(calls) == 3 and calls[0].tolist() == list(range(10)) and out["accuracy"].tolist() == [50.0] * 3


def test_tfidf_and_probe_learn_a_separable_task():
    texts = ["good fine great", "great good", "bad awful", "awful bad poor"] * 5
    y = [1, 1, 0, 0] * 5
    assert classify.tfidf_logreg(texts, y).predict(["good great", "poor awful"]).tolist() == [1, 0]
    X = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    assert classify.probe_logreg(X, [1, 1, 0, 0], C=10).predict(np.array([[1.0, 0.0], [0.0, 1.0]])).tolist() == [1, 0]


def test_embed_truncates_to_the_first_k_pieces(tok):
    model = tiny_bert()
    text = "a rather long sentence about nothing in particular at all"
    cut = classify.embed(model, tok, [text], max_pieces=3)
    first3 = tok.convert_tokens_to_string(tok.tokenize(text)[:3])
    assert torch.allclose(cut, classify.embed(model, tok, [first3]), atol=1e-5)
    assert not torch.allclose(cut, classify.embed(model, tok, [text]), atol=1e-3)
    # batching and order do not change a row
    both = classify.embed(model, tok, [text, "short"], batch_size=1)
    assert torch.allclose(both[0], classify.embed(model, tok, [text])[0], atol=1e-5)
    with pytest.raises(ValueError, match="max_pieces"):
        classify.embed(model, tok, [text], max_pieces=0)


def test_nlp_features_round_trip(tmp_path):
    blob = {"poem": {"dev": {"features": torch.randn(3, 4), "labels": torch.tensor([0, 1, 2])}},
            "sst2_first": {"4": torch.randn(2, 4)}}
    sha = classify.save_nlp_features(tmp_path / "f.pt", blob, {"note": 1})
    out = classify.load_nlp_features(tmp_path / "f.pt", sha256=sha)
    assert out["poem"]["dev"]["features"].dtype == torch.float32
    assert torch.allclose(out["poem"]["dev"]["features"], blob["poem"]["dev"]["features"], atol=1e-2)
    assert out["sst2_first"][4].shape == (2, 4) and out["log"]["note"] == 1
    from wmbook.data.checkpoint import CheckpointError
    with pytest.raises(CheckpointError):
        classify.load_nlp_features(tmp_path / "f.pt", sha256="0" * 64)


def test_committed_nlp_features_load():
    f = classify.load_nlp_features()
    assert f["poem"]["train"]["features"].shape == (892, 384)
    assert set(f["sst2_first"]) == set(classify.TRUNCATIONS) and f["sst2_first"][4].shape == (872, 384)


def test_vector_bytes():
    assert classify.vector_bytes() == 1536 and classify.vector_bytes(384, torch.float16) == 768


# ------------------------------------------------------------------ ner

def test_align_labels_puts_the_tag_on_the_first_piece(tok):
    a = ner.align_labels(["@paulwalk", "visits", "Gotham"], ["O", "O", "B-location"], tok)
    assert a.pieces[0] == "[CLS]" and a.pieces[-1] == "[SEP]" and a.n_words == 3
    firsts = [t for t in range(len(a.pieces)) if a.labels[t] != ner.IGNORE]
    assert [a.word_ids[t] for t in firsts] == [0, 1, 2]
    assert a.labels[firsts[2]] == ner.LABELS.index("B-location")
    assert a.labels[0] == a.labels[-1] == ner.IGNORE
    assert sum(lab == ner.IGNORE for lab in a.labels) == len(a.pieces) - 3  # every other piece is skipped
    with pytest.raises(ValueError, match="one tag per word"):
        ner.align_labels(["a", "b"], ["O"], tok)
    with pytest.raises(ValueError, match="unknown tags"):
        ner.align_labels(["a"], ["B-city"], tok)


def test_a_word_without_pieces_is_tagged_O(tok):
    a = ner.align_labels(["hi", "\u200b", "Paris"], ["O", "O", "B-location"], tok)
    assert 1 not in a.word_ids  # the zero-width space has no piece
    tagger = ner.TokenTagger(tiny_bert(), 1)
    pred = ner.predict_tags(tagger, [a])
    assert len(pred[0]) == 3 and pred[0][1] == "O"


def test_tag_strings_round_trip():
    tags = list(ner.LABELS)
    assert ner.string_to_tags(ner.tags_to_string(tags)) == tags
    with pytest.raises(ValueError, match="not a tag letter"):
        ner.string_to_tags("az")


def test_strict_f1_by_hand_equals_seqeval():
    rng = random.Random(0)
    for _ in range(30):
        gold = [[rng.choice(ner.LABELS) for _ in range(rng.randint(1, 12))] for _ in range(8)]
        pred = [[rng.choice(ner.LABELS[:5]) if rng.random() < 0.5 else t for t in g] for g in gold]
        assert ner.micro_f1(gold, pred) == pytest.approx(ner.entity_scores(gold, pred)["f1"])
    assert ner.strict_entities(["I-person", "B-person", "I-person", "I-location"]) == {("person", 1, 2)}


def test_entity_scores_per_type():
    gold = [["B-person", "I-person", "O", "B-location"]]
    pred = [["B-person", "O", "O", "B-location"]]  # the person's boundary is wrong
    s = ner.entity_scores(gold, pred)
    assert s["f1"] == pytest.approx(50.0) and s["per_type"] == {"location": 100.0, "person": 0.0}
    with pytest.raises(ValueError, match="same number of tags"):
        ner.entity_scores(gold, [["O"]])


def test_seen_unseen_recall():
    train = [[("Paris", "B-location"), ("rocks", "O")]]
    seen = ner.train_surfaces(train)
    assert seen == {"paris"}
    sents = [[("paris", "B-location"), ("and", "O"), ("Lyon", "B-location")]]
    out = ner.seen_unseen_recall(sents, [["B-location", "O", "O"]], seen)
    assert out["seen"] == {"n": 1, "found": 1, "recall": 100.0} and out["unseen"]["recall"] == 0.0


def test_tagger_trains_only_the_top_and_keeps_the_frozen_part_in_eval(tok):
    tagger = ner.TokenTagger(tiny_bert(), 1)
    trainable = {n for n, p in tagger.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(("bert.layers.1.", "head.")) for n in trainable)
    tagger.train()
    assert not tagger.bert.layers[0].training and tagger.bert.layers[1].training
    data = ner.encode_sentences([[("new", "O"), ("york", "B-location")]] * 4, tok)
    frozen_before = [p.clone() for p in tagger.bert.layers[0].parameters()]
    recs = ner.train_tagger(tagger, data, ner.NERRecipe(epochs=1, batch_size=2, warmup=1, first_steps=1, log_every=1))
    assert [r["step"] for r in recs] == [1, 2]
    assert all(torch.equal(a, b) for a, b in zip(frozen_before, tagger.bert.layers[0].parameters()))
    # the stored state (float16) loads back into a fresh tagger and predicts the same
    fresh = ner.TokenTagger(tiny_bert(), 1)
    fresh.load_trained_state(ner.to_float16(tagger.trained_state()))
    cache = ner.FrozenCache(tagger, data)
    assert ner.predict_tags(fresh, data) == ner.predict_tags(ner.rounded(tagger), data, cache=cache)
    with pytest.raises(ValueError, match="n_trained_layers"):
        ner.TokenTagger(tiny_bert(), 3)


def test_batch_order_is_seeded():
    r = ner.NERRecipe(epochs=2, batch_size=3)
    a = ner.batch_order(7, r, 0)
    assert a == ner.batch_order(7, r, 0) and a != ner.batch_order(7, r, 1)
    assert len(a) == 6 and sorted(sum(a[:3], [])) == list(range(7))


def test_committed_ner_checkpoint_loads_and_its_log_has_three_seeds():
    loaded = ner.load_ner_tagger()
    assert ner.NER_FILE.stat().st_size <= 5 * 2**20
    assert len(loaded.log["seeds"]) >= 3 and set(loaded.log["summary"]) == {"dev", "test"}
    assert len(loaded.log["predictions"]["test"]) == 1287
