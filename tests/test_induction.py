"""Induction-head data, the attention-only model and its scores (page 4.3); the KV-cache formula."""
import pytest
import torch
import torch.nn.functional as F

import wmbook
from wmbook.lab.induction import AttnOnlyConfig, AttnOnlyTransformer, induction_scores, repeated_blocks
from wmbook.lab.measure import kv_cache_bytes


def test_repeated_blocks_repeat_with_their_period():
    g = torch.Generator().manual_seed(0)
    tokens, copyable = repeated_blocks(64, 40, 10, 4, 12, generator=g)
    assert tokens.shape == copyable.shape == (64, 40)
    assert tokens.min() >= 0 and tokens.max() < 10
    for b in range(64):
        p = int(copyable[b].float().argmax())
        assert 4 <= p <= 12 and not copyable[b, :p].any() and copyable[b, p:].all()
        assert torch.equal(tokens[b, p:], tokens[b, :-p])
    with pytest.raises(ValueError, match="max_period < length"):
        repeated_blocks(2, 10, 5, 4, 10)


def test_attention_only_model_is_causal_and_checks_input():
    model = AttnOnlyTransformer(AttnOnlyConfig(vocab_size=11, n_ctx=16, d_model=16, n_heads=2, n_layers=2))
    x = torch.randint(0, 11, (2, 10))
    out = model(x)
    assert out.logits.shape == (2, 10, 11) and len(out.attentions) == 2
    assert out.attentions[0].shape == (2, 2, 10, 10)
    x2 = x.clone()
    x2[:, -1] = (x2[:, -1] + 1) % 11
    assert torch.allclose(model(x2).logits[:, :-1], out.logits[:, :-1])
    with pytest.raises(ValueError, match="longer than n_ctx"):
        model(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match="token ids"):
        model(torch.full((1, 3), 11))


def test_induction_scores_find_planted_heads():
    tokens, copyable = repeated_blocks(4, 20, 30, 5, 8, generator=torch.Generator().manual_seed(1))
    T = 20
    prev = torch.zeros(4, 1, T, T)
    prev[:, 0, 0, 0] = 1
    prev[:, 0, torch.arange(1, T), torch.arange(T - 1)] = 1  # attends to the previous token
    ind = torch.full((4, 1, T, T), 0.0)
    periods = copyable.float().argmax(1)
    for b in range(4):
        p = int(periods[b])
        for t in range(T):
            ind[b, 0, t, t - p + 1 if t >= p else 0] = 1  # attends to the induction target
    p_scores, i_scores = induction_scores([prev, ind], tokens, copyable)
    assert p_scores[0, 0] == 1 and i_scores[1, 0] == 1
    assert i_scores[0, 0] < 0.5 and p_scores[1, 0] < 0.5


def test_two_layer_model_learns_to_copy_quickly_on_an_easy_setting():
    """Overfit check: a short period, small vocab; copyable-token loss must fall well below chance."""
    wmbook.seed_everything(0)
    g = torch.Generator().manual_seed(0)
    model = AttnOnlyTransformer(AttnOnlyConfig(vocab_size=16, n_ctx=16, d_model=32, n_heads=2, n_layers=2))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread avoids contention
    try:
        def loss(m, step):
            x, _ = repeated_blocks(16, 16, 16, 3, 5, generator=g)
            return F.cross_entropy(m(x[:, :-1]).logits.reshape(-1, 16), x[:, 1:].reshape(-1))

        wmbook.train(model, loss, steps=300, lr=3e-3, progress=False)
    finally:
        torch.set_num_threads(threads)
    x, c = repeated_blocks(64, 16, 16, 3, 5, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        nll = F.cross_entropy(model(x[:, :-1]).logits.reshape(-1, 16), x[:, 1:].reshape(-1), reduction="none")
    copy_loss = nll.view(64, 15)[c[:, 1:]].mean().item()
    assert copy_loss < 1.0  # chance is ln 16 = 2.77


def test_kv_cache_bytes():
    assert kv_cache_bytes(12, 12, 64, bytes_per_value=2) == 36 * 1024  # GPT-2 small, fp16
    assert kv_cache_bytes(32, 32, 128, n_tokens=4096) == 2 * 2**30  # Llama-2-7B, 2 GiB at 4096 tokens
    with pytest.raises(ValueError, match="n_layers"):
        kv_cache_bytes(-1, 1, 1)
