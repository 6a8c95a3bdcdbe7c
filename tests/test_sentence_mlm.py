"""Sentence embeddings (wmbook.lab.sentence) and small-scale MLM tools (wmbook.lab.mlm), page 3.2."""

import pytest
import torch
import torch.nn.functional as F

from wmbook.nn.bert import BertConfig
from wmbook.nn.bert_heads import BertForPreTraining, mask_tokens
from wmbook.data.checkpoint import CheckpointError, file_sha256
from wmbook.lab.mlm import (
    TINY_MLM_FILE, TINY_MLM_SHA256, MLMRecipe, TopKVocab, evaluate_mlm, load_tiny_mlm, masked_lm_loss,
    pack_sequences, train_tiny_mlm, unigram_baseline, wikitext_mlm_data, wikitext_plain,
)
from wmbook.lab.sentence import cosine_matrix, encode, encode_many, mean_pool, nearest

from _fixtures import assert_refuses_bad_checkpoints, one_thread  # noqa: F401  (one_thread: autouse)


# ---------------------------------------------------------------- wmbook.lab.sentence

def test_mean_pool_ignores_padding():
    torch.manual_seed(0)
    h = torch.randn(2, 5, 4)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    got = mean_pool(h, mask)
    assert torch.allclose(got[0], h[0, :3].mean(0)) and torch.allclose(got[1], h[1].mean(0))
    with pytest.raises(ValueError, match="attention_mask"):
        mean_pool(h, mask[:, :4])


def test_cosine_matrix_and_nearest():
    torch.manual_seed(0)
    a, b = torch.randn(4, 8), torch.randn(6, 8)
    want = F.cosine_similarity(a[:, None], b[None], dim=-1)
    assert torch.allclose(cosine_matrix(a, b), want, atol=1e-6)
    res = nearest(a, b, k=2)
    assert torch.equal(res.indices[:, 0], want.argmax(1))
    loo = nearest(b, b, k=1, exclude_self=True)
    assert not (loo.indices[:, 0] == torch.arange(6)).any()
    with pytest.raises(ValueError, match="k must be"):
        nearest(a, b, k=7)


@pytest.fixture(scope="module")
def minilm():
    from wmbook.nn.bert import BertModel, minilm_tokenizer

    return BertModel.from_minilm(), minilm_tokenizer()


SENTENCES = ["A cat sits on the mat.", "Stocks fell sharply today.",
             "The kitten is sleeping on the rug.", "Working memory holds about four chunks.", "Hi."]


def test_encode_matches_sentence_transformers(minilm):
    import sentence_transformers as st  # pinned in requirements.txt: the independent check never skips
    from wmbook.nn.bert import minilm_path

    ref = st.SentenceTransformer(str(minilm_path()), device="cpu")
    want = torch.as_tensor(ref.encode(SENTENCES, convert_to_numpy=True))
    got = encode(*minilm, SENTENCES)
    assert (got - want).abs().max().item() <= 1e-4


def test_encode_does_not_depend_on_batching(minilm):
    a = encode(*minilm, SENTENCES, batch_size=2)
    b = encode(*minilm, SENTENCES, batch_size=64)
    one = torch.cat([encode(*minilm, [s]) for s in SENTENCES])
    assert (a - b).abs().max() <= 1e-5 and (a - one).abs().max() <= 1e-5
    assert torch.allclose(a.norm(dim=-1), torch.ones(5), atol=1e-5)
    pooled = encode(*minilm, SENTENCES, pooling="pooler", normalize=False)
    assert pooled.shape == (5, 384) and pooled.abs().max() <= 1
    both = encode_many(*minilm, SENTENCES, ("mean", "pooler"), normalize=False)
    assert torch.equal(both["pooler"], pooled)
    assert torch.allclose(F.normalize(both["mean"], dim=-1), a, atol=1e-6)
    with pytest.raises(ValueError, match="pooling"):
        encode(*minilm, SENTENCES, pooling="max")
    with pytest.raises(TypeError, match="list"):
        encode(*minilm, "one sentence")


# ---------------------------------------------------------------- wmbook.lab.mlm

def test_topk_vocab_round_trip():
    corpus = torch.tensor([7, 7, 7, 9, 9, 11, 3, 0, 0, 0, 0])  # 0 is special ([PAD]); 3 rare
    v = TopKVocab.from_corpus(corpus, k=2, special_ids=[0, 1], unk_id=1)
    assert v.ids.tolist() == [0, 1, 7, 9] and v.size == 4 and v.unk == 1
    assert v.encode(torch.tensor([7, 9, 11, 3, 0, 50])).tolist() == [2, 3, 1, 1, 0, 1]
    assert v.decode(torch.tensor([2, 3, 1])).tolist() == [7, 9, 1]
    assert v.new_id(9) == 3 and v.new_id(11) == 1
    with pytest.raises(ValueError, match="unk_id"):
        TopKVocab.from_corpus(corpus, k=2, special_ids=[0], unk_id=1)


def test_pack_sequences():
    rows = pack_sequences(torch.arange(10, 21), seq_len=5, cls_id=1, sep_id=2)
    assert rows.tolist() == [[1, 10, 11, 12, 2], [1, 13, 14, 15, 2], [1, 16, 17, 18, 2]]
    with pytest.raises(ValueError, match="fewer than one row"):
        pack_sequences(torch.arange(2), seq_len=5, cls_id=1, sep_id=2)


def test_masked_lm_loss_equals_the_full_head():
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=50, d_model=32, n_heads=4, n_layers=2, d_ff=64, n_ctx=16, dropout=0.0)
    model = BertForPreTraining(cfg).eval()
    ids = torch.randint(5, 50, (3, 16))
    inputs, labels = mask_tokens(ids, 50, 4, [0, 1, 2, 3], prob=0.3, generator=torch.Generator().manual_seed(0))
    res = masked_lm_loss(model, inputs, labels)
    full = model(inputs, labels=labels).loss
    assert abs(res.loss.item() - full.item()) <= 1e-5
    assert res.logits.shape == ((labels != -100).sum().item(), 50) and 0 <= res.correct <= len(res.targets)
    with pytest.raises(ValueError, match="no position"):
        masked_lm_loss(model, ids, torch.full_like(ids, -100))


# ---------------------------------------------------------------- the tiny BERT's checkpoint


@pytest.fixture(scope="module")
def mlm_data():
    from wmbook.nn.bert import minilm_tokenizer

    return wikitext_mlm_data(minilm_tokenizer())


def test_wikitext_mlm_data(mlm_data):
    d = mlm_data
    assert d.vocab.size == MLMRecipe.k + 5 and d.train_rows.shape[1] == MLMRecipe.seq_len
    assert (d.train_rows[:, 0] == d.vocab.new_id(101)).all()  # [CLS] ... [SEP]
    assert (d.train_rows[:, -1] == d.vocab.new_id(102)).all()
    assert d.test_rows.shape == (512, 32) and d.mask_id == d.vocab.new_id(103)
    assert abs(d.unigram.sum().item() - 1) < 1e-5 and (d.unigram[d.special] == 0).all()
    assert wikitext_plain("a @-@ b 1 @,@ 000 <unk>") == "a-b 1,000 [UNK]"


def test_tiny_mlm_checkpoint_is_the_recorded_one_and_beats_unigram(mlm_data):
    assert TINY_MLM_FILE.is_file(), "run: python scripts/train_tiny_mlm.py"
    assert file_sha256(TINY_MLM_FILE) == TINY_MLM_SHA256
    assert TINY_MLM_FILE.stat().st_size < 4 * 2**20
    ckpt = load_tiny_mlm()
    assert ckpt.log["sha256"] == TINY_MLM_SHA256 and torch.equal(ckpt.vocab.ids, mlm_data.vocab.ids)
    got, base = evaluate_mlm(ckpt.model, mlm_data), unigram_baseline(mlm_data)
    logged = ckpt.log["evals"][-1]
    assert abs(got["mask_acc"] - logged["test_mask_acc"]) < 1e-4
    assert got["mask_acc"] > base["mask_acc"] + 0.1 and got["mask_loss"] < base["mask_loss"] - 0.5


def test_a_wrong_or_missing_tiny_mlm_checkpoint_is_refused(tmp_path):
    assert_refuses_bad_checkpoints(load_tiny_mlm, TINY_MLM_FILE, "train_tiny_mlm.py", tmp_path)


def test_stop_after_reproduces_the_start_of_a_run(mlm_data):
    recipe = MLMRecipe(steps=12, eval_every=4, warmup=4)
    _, full = train_tiny_mlm(mlm_data, recipe)
    _, part = train_tiny_mlm(mlm_data, recipe, stop_after=8)
    evals = lambda h: [(r["step"], r["test_loss"]) for r in h.records if "test_loss" in r]  # noqa: E731
    assert [s for s, _ in evals(full)] == [0, 4, 8, 12] and evals(part) == evals(full)[:3]
    assert full.series("loss")[1][:8] == part.series("loss")[1]
    r = MLMRecipe()
    assert r.lr_at(0) == pytest.approx(r.lr / r.warmup) and r.lr_at(r.warmup) == pytest.approx(r.lr)
    assert r.lr_at(r.steps) == pytest.approx(r.min_lr)
    with pytest.raises(ValueError, match="seq_len"):
        train_tiny_mlm(mlm_data, MLMRecipe(seq_len=16))


def test_plateau_end():
    from wmbook.lab.mlm import plateau_end

    log = {"evals": [{"step": s, "test_mask_acc": a} for s, a in ((0, 0.07), (100, 0.10), (200, 0.13), (300, 0.2))]}
    assert plateau_end(log, 0.076) == 200 and plateau_end(log, 0.076, margin=0.1) == 300
    with pytest.raises(ValueError, match="never exceeds"):
        plateau_end(log, 0.2)


def test_the_other_committed_seeds_load_with_their_logs(tmp_path):
    import json
    import shutil

    from wmbook.lab.mlm import TINY_MLM_SEEDS_SHA256, load_tiny_mlm_seeds, tiny_mlm_file

    assert tiny_mlm_file(0) == TINY_MLM_FILE and tiny_mlm_file(2).name == "tiny_mlm_wikitext2_seed2.pt"
    assert len(TINY_MLM_SEEDS_SHA256) >= 2, "page 3.2 quotes the mean ± sd over at least 3 seeds"
    runs = load_tiny_mlm_seeds()
    assert list(runs) == [0, *sorted(TINY_MLM_SEEDS_SHA256)]
    for seed, run in runs.items():
        assert run.recipe.seed == seed and run.log["recipe"]["seed"] == seed
        assert run.log["evals"][-1]["test_mask_acc"] > run.log["unigram"]["mask_acc"] + 0.1
    # a seed's log is checked against its own recorded sha256
    seed = min(TINY_MLM_SEEDS_SHA256)
    sha = TINY_MLM_SEEDS_SHA256[seed][0]
    copy = tmp_path / "seed.pt"
    shutil.copyfile(tiny_mlm_file(seed), copy)
    log = json.loads(tiny_mlm_file(seed).with_suffix(".json").read_text(encoding="utf-8"))
    log["evals"][-1]["test_mask_acc"] += 0.01
    copy.with_suffix(".json").write_text(json.dumps(log, indent=1) + "\n", encoding="utf-8")
    with pytest.raises(CheckpointError, match="training log.*sha256"):
        load_tiny_mlm(copy, sha256=sha)
