"""The character GPT of page 3.3: its committed checkpoint (its script: tests/test_scripts.py)."""
import math

import pytest
import torch

from wmbook.lab.char_gpt import (
    CHAR_GPT_FILE, CHAR_GPT_SHA256, CharGPTRecipe, bigram_loss, evaluate_lm,
    file_sha256, load_char_gpt, random_windows,
)
from wmbook.data.loaders import load_tinyshakespeare
from wmbook.nn.sampling import generate

from _fixtures import assert_refuses_bad_checkpoints



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
    assert_refuses_bad_checkpoints(load_char_gpt, CHAR_GPT_FILE, "train_char_gpt.py", tmp_path)


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


def test_gpt_forward_flops_matches_torch_flop_counter():
    """The arithmetic of page 3.3 (gpt_forward_flops) equals PyTorch's count of the matmuls the
    model runs, for a full pass and for one cached step; a full pass is n cached steps."""
    from torch.utils.flop_counter import FlopCounterMode

    from wmbook.lab.char_gpt import gpt_forward_flops
    from wmbook.nn.gpt import GPT, GPTConfig

    cfg = GPTConfig(vocab_size=65, n_ctx=64, d_model=32, n_heads=4, n_layers=2, dropout=0.0)
    model = GPT(cfg).eval()
    x = torch.randint(0, 65, (1, 20), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        with FlopCounterMode(display=False) as full:
            out = model(x, use_cache=True)
        with FlopCounterMode(display=False) as step:
            model(x[:, :1], past_key_values=out.past_key_values, use_cache=True)
    assert full.get_total_flops() == gpt_forward_flops(cfg, 20, 20)
    assert step.get_total_flops() == gpt_forward_flops(cfg, 1, 21)
    assert gpt_forward_flops(cfg, 37, 37) == 37 * gpt_forward_flops(cfg, 1, 37)
    with pytest.raises(ValueError, match="n_key must be a positive integer"):
        gpt_forward_flops(cfg, 1, 0)


def test_the_log_holds_every_seed_and_seed_0_is_the_checkpoint():
    """scripts/train_char_gpt.py trains several seeds (page 3.3 quotes their mean ± sd); the
    checkpoint and the log's top-level records are the first seed's."""
    log = load_char_gpt().log
    seeds = log["seeds"]
    assert len(seeds) >= 3 and [s["seed"] for s in seeds] == list(range(len(seeds)))
    first = seeds[0]
    assert first["val_loss_full"] == log["val_loss_full"] and first["train_seconds"] == log["train_seconds"]
    assert [[r["step"], round(r["train_loss"], 6), round(r["val_loss"], 6)] for r in log["evals"]] == first["evals"]
    assert all(s["evals"][-1][0] == log["recipe"]["steps"] for s in seeds)
    assert all(s["val_loss_full"] < 2.0 for s in seeds)  # every seed learned far more than the bigram (2.48)
