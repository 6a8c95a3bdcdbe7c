"""The character GPT of page 3.3: its committed checkpoint (its script: tests/test_scripts.py)."""
import math

import pytest
import torch

from wmbook.lab.char_gpt import (
    CHAR_GPT_FILE, CHAR_GPT_SHA256, CharGPTRecipe, CheckpointError, bigram_loss, evaluate_lm,
    file_sha256, load_char_gpt, random_windows,
)
from wmbook.data.loaders import load_tinyshakespeare
from wmbook.nn.sampling import generate



@pytest.fixture(scope="module")
def corpus():
    return load_tinyshakespeare()


def test_checkpoint_is_the_recorded_one_and_reaches_the_target(corpus):
    assert CHAR_GPT_FILE.is_file(), "run: python scripts/train_char_gpt.py"
    assert file_sha256(CHAR_GPT_FILE) == CHAR_GPT_SHA256
    assert CHAR_GPT_FILE.stat().st_size < 8 * 2**20
    ckpt = load_char_gpt()
    assert ckpt.vocab == corpus.vocab and ckpt.model.cfg.n_ctx == 64
    assert ckpt.log["sha256"] == CHAR_GPT_SHA256 and ckpt.log["val_loss_full"] <= 1.90
    torch.set_num_threads(1)
    val = torch.tensor(ckpt.encode(corpus.val))
    loss = evaluate_lm(ckpt.model, val, max_windows=48)  # a fixed slice: ~3,000 characters
    assert loss <= 1.90
    text = ckpt.decode(generate(ckpt.model, torch.tensor([ckpt.encode("ROMEO:")]), 20,
                                generator=torch.Generator().manual_seed(0))[0])
    assert text.startswith("ROMEO:") and len(text) == 26


def test_a_wrong_or_missing_checkpoint_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="missing.*train_char_gpt.py"):
        load_char_gpt(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(CHAR_GPT_FILE.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(CheckpointError, match="sha256.*train_char_gpt.py"):
        load_char_gpt(bad, sha256=CHAR_GPT_SHA256)
    not_ours = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, not_ours)
    with pytest.raises(CheckpointError, match="not a wmbook"):
        load_char_gpt(not_ours, sha256=None)


def test_recipe_schedule_windows_and_bigram():
    r = CharGPTRecipe()
    assert r.lr_at(0) == pytest.approx(1e-3 / 101) and r.lr_at(100) == pytest.approx(1e-3)
    assert r.lr_at(2000) == pytest.approx(1e-4) and r.lr_at(5000) == 1e-4
    ids = torch.arange(100)
    x, y = random_windows(ids, 8, 4, torch.Generator().manual_seed(0))
    assert x.shape == (4, 8) and torch.equal(y, x + 1)
    # a text that alternates a, b: the bigram model is certain, up to smoothing
    ab = torch.tensor([0, 1] * 500)
    assert bigram_loss(ab, ab, 2, alpha=1e-6) < 1e-5
    a_to_b, b_to_a = math.log(501 / 502), math.log(500 / 501)  # 500 and 499 pairs
    expected = -(500 * a_to_b + 499 * b_to_a) / 999
    assert bigram_loss(ab, ab, 2, alpha=1.0) == pytest.approx(expected, rel=1e-9)
