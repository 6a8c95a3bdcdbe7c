"""wmbook.lab.finetune: reduced vocabulary, pooled GPT classifier, checkpoints of page 5.3.2."""
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from wmbook.data.checkpoint import CheckpointError, file_sha256
from wmbook.lab.finetune import (
    CHECKPOINT_DIR, SST2_GPT_SHA256, SST2_MINILM_FEATURES_SHA256, GPTClassifier, ReducedVocab,
    gpt_hidden_states, load_features, load_gpt_checkpoint, load_sst2_gpt, load_sst2_minilm_features,
    pad_batch, pool_hidden, save_features, save_gpt_checkpoint,
)
from wmbook.nn.gpt import GPT, GPTConfig
from tests.conftest import ROOT


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


@pytest.mark.slow
def test_the_scripts_run(tmp_path):
    for script, args in (("pretrain_sst2_gpt.py", ["--steps", "2"]),
                         ("minilm_sst2_features.py", ["--limit", "3"])):
        out = tmp_path / script.replace(".py", ".pt")
        run = subprocess.run([sys.executable, str(ROOT / "scripts" / script), *args, "--out", str(out)],
                             capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stderr
        assert run.stdout.split("sha256 ")[-1].strip() == file_sha256(out)
    pre = load_gpt_checkpoint(tmp_path / "pretrain_sst2_gpt.pt")
    assert pre.meta["steps"] == 2 and len(pre.vocab) == 4096
    assert load_features(tmp_path / "minilm_sst2_features.pt")["dev"]["features"].shape == (3, 384)
