"""Scaled dot-product attention, masks and multi-head attention (page 4.1)."""
import math

import pytest
import torch
import torch.nn.functional as F

import wmbook
from wmbook import AttentionConfig, MultiHeadAttention, causal_mask, padding_mask, scaled_dot_product_attention


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def qkv(*shape_qk, T_k=None, d_v=None):
    *batch, T_q, d_k = shape_qk
    T_k = T_k or T_q
    return (torch.randn(*batch, T_q, d_k), torch.randn(*batch, T_k, d_k), torch.randn(*batch, T_k, d_v or d_k))


def test_matches_the_formula_written_out():
    q, k, v = qkv(5, 8)
    out, w = scaled_dot_product_attention(q, k, v)
    expected_w = torch.softmax(q @ k.T / math.sqrt(8), dim=-1)
    assert torch.allclose(w, expected_w, atol=1e-7)
    assert torch.allclose(out, expected_w @ v, atol=1e-6)
    assert torch.allclose(w.sum(-1), torch.ones(5), atol=1e-6)


@pytest.mark.parametrize("mask_kind", ["none", "causal", "padding", "float"])
def test_parity_with_torch_sdpa(mask_kind):
    q, k, v = qkv(3, 4, 9, 16, d_v=12)
    mask = {
        "none": None,
        "causal": causal_mask(9),
        "padding": padding_mask([9, 4, 1], T=9)[:, None],  # (B, 1, 1, T)
        "float": torch.randn(9, 9),
    }[mask_kind]
    ours, _ = scaled_dot_product_attention(q, k, v, mask=mask)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert ours.shape == (3, 4, 9, 12)
    assert (ours - ref).abs().max().item() <= 1e-6


def test_cross_attention_shapes_and_parity():
    q, k, v = qkv(2, 3, 16, T_k=7, d_v=5)
    out, w = scaled_dot_product_attention(q, k, v)
    assert out.shape == (2, 3, 5) and w.shape == (2, 3, 7)
    assert (out - F.scaled_dot_product_attention(q, k, v)).abs().max() <= 1e-6


def test_causal_mask_zeroes_the_future():
    q, k, v = qkv(1, 6, 8)
    _, w = scaled_dot_product_attention(q, k, v, mask=causal_mask(6))
    assert torch.all(w[0].triu(diagonal=1) == 0)
    assert w[0, 0, 0] == 1.0
    # with a cache of earlier keys the last T_q rows of the full mask are used
    assert torch.equal(causal_mask(2, 5), causal_mask(5)[-2:])


def test_padding_mask_ignores_padded_keys():
    q, k, v = qkv(2, 5, 8)
    mask = padding_mask([5, 3], T=5)
    assert mask.shape == (2, 1, 5)
    out, w = scaled_dot_product_attention(q, k, v, mask=mask)
    assert torch.all(w[1, :, 3:] == 0)
    # changing padded keys/values does not change the result for the short sequence
    k2, v2 = k.clone(), v.clone()
    k2[1, 3:] = 100.0
    v2[1, 3:] = -100.0
    out2, _ = scaled_dot_product_attention(q, k2, v2, mask=mask)
    assert torch.allclose(out[1], out2[1])
    combined = padding_mask([5, 3]) & causal_mask(5)
    assert combined.shape == (2, 5, 5)


def test_temperature_equals_rescaling_the_scores():
    q, k, v = qkv(4, 8)
    _, w_t = scaled_dot_product_attention(q, k, v, temperature=0.5)
    _, w_s = scaled_dot_product_attention(2 * q, k, v)
    assert torch.allclose(w_t, w_s, atol=1e-6)


def test_gradients_reach_q_k_v():
    q, k, v = (t.requires_grad_(True) for t in qkv(2, 5, 8))
    out, _ = scaled_dot_product_attention(q, k, v, mask=causal_mask(5))
    out.square().sum().backward()
    for t in (q, k, v):
        assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0


def test_gradient_matches_torch():
    q, k, v = qkv(2, 5, 8)
    grads = []
    for fn in (lambda a, b, c: scaled_dot_product_attention(a, b, c, mask=causal_mask(5)).output,
               lambda a, b, c: F.scaled_dot_product_attention(a, b, c, is_causal=True)):
        a, b, c = (t.clone().requires_grad_(True) for t in (q, k, v))
        fn(a, b, c).sin().sum().backward()
        grads.append([a.grad, b.grad, c.grad])
    for ours, ref in zip(*grads):
        assert (ours - ref).abs().max() <= 1e-5


@pytest.mark.parametrize(
    "args, message",
    [
        ((torch.randn(3, 4), torch.randn(3, 5), torch.randn(3, 5)), "same last dimension d_k"),
        ((torch.randn(3, 4), torch.randn(3, 4), torch.randn(2, 4)), "same number of positions"),
        ((torch.randn(4), torch.randn(3, 4), torch.randn(3, 4)), "shape (..., seq, dim)"),
    ],
)
def test_shape_errors_say_what_is_wrong(args, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        scaled_dot_product_attention(*args)


def test_mask_errors():
    q, k, v = qkv(3, 4)
    with pytest.raises(ValueError, match="does not broadcast"):
        scaled_dot_product_attention(q, k, v, mask=torch.ones(2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="no key to attend to"):
        scaled_dot_product_attention(q, k, v, mask=torch.zeros(3, 3, dtype=torch.bool))
    with pytest.raises(TypeError, match="bool mask"):
        scaled_dot_product_attention(q, k, v, mask=torch.ones(3, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="temperature"):
        scaled_dot_product_attention(q, k, v, temperature=0)
    with pytest.raises(ValueError, match="at least one real token"):
        padding_mask([3, 0])
    with pytest.raises(ValueError, match="exceeds the padded length"):
        padding_mask([3, 6], T=5)


# --- multi-head attention -------------------------------------------------------------

@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("masked", [False, True])
def test_multihead_parity_with_torch(bias, masked):
    mha = MultiHeadAttention(AttentionConfig(d_model=24, n_heads=3, bias=bias)).eval()
    ref = wmbook.to_torch_multihead(mha)
    x = torch.randn(2, 6, 24)
    mask = causal_mask(6) if masked else None
    with torch.no_grad():
        out, w = mha(x, mask=mask)
        ref_out, ref_w = ref(x, x, x, attn_mask=None if mask is None else ~mask, average_attn_weights=False)
    assert w.shape == (2, 3, 6, 6)
    assert (out - ref_out).abs().max() <= 1e-6
    assert (w - ref_w).abs().max() <= 1e-6


def test_multihead_cross_attention_and_3d_mask():
    mha = MultiHeadAttention(d_model=16, n_heads=4)
    x, memory = torch.randn(2, 3, 16), torch.randn(2, 7, 16)
    keep = padding_mask([7, 2]).expand(2, 3, 7)  # (B, T_q, T_k), shared by every head
    out, w = mha(x, memory, mask=keep)
    assert out.shape == (2, 3, 16) and w.shape == (2, 4, 3, 7)
    assert torch.all(w[1, :, :, 2:] == 0)


def test_multihead_heads_are_the_formula():
    """Concat(head_1..head_h) W^O with head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V), head by head."""
    mha = MultiHeadAttention(d_model=12, n_heads=3, bias=False)
    x = torch.randn(1, 5, 12)
    heads = []
    for i in range(3):
        rows = slice(4 * i, 4 * (i + 1))
        Wq, Wk, Wv = (W.weight[rows].T for W in (mha.W_q, mha.W_k, mha.W_v))  # (d_model, d_head)
        heads.append(scaled_dot_product_attention(x @ Wq, x @ Wk, x @ Wv).output)
    expected = torch.cat(heads, dim=-1) @ mha.W_o.weight.T
    assert torch.allclose(mha(x).output, expected, atol=1e-6)


def test_multihead_weights_are_returned_not_stored():
    mha = MultiHeadAttention(d_model=8, n_heads=2)
    before = set(vars(mha))
    mha(torch.randn(1, 3, 8))
    assert set(vars(mha)) == before


def test_multihead_gradients_reach_every_parameter():
    mha = MultiHeadAttention(d_model=8, n_heads=2)
    mha(torch.randn(2, 4, 8), mask=causal_mask(4)).output.sum().backward()
    for name, p in mha.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_multihead_errors():
    with pytest.raises(ValueError, match="not divisible by n_heads"):
        AttentionConfig(d_model=10, n_heads=3)
    with pytest.raises(TypeError, match="not both"):
        MultiHeadAttention(AttentionConfig(), d_model=8)
    mha = MultiHeadAttention(d_model=8, n_heads=2)
    with pytest.raises(ValueError, match="d_model=8"):
        mha(torch.randn(1, 3, 6))
    with pytest.raises(ValueError, match="unsqueeze"):
        mha(torch.randn(3, 8))
    assert AttentionConfig(d_model=8, n_heads=2).d_head == 4


def test_dropout_acts_on_the_weights_in_training_only():
    mha = MultiHeadAttention(d_model=16, n_heads=2, dropout=0.5)
    x = torch.randn(4, 10, 16)
    mha.eval()
    eval_out, eval_w = mha(x)
    assert torch.equal(eval_out, mha(x).output)  # deterministic in evaluation
    mha.train()
    train_out, train_w = mha(x)
    assert torch.allclose(train_w, eval_w)  # the returned weights are those before dropout
    assert not torch.allclose(train_out, eval_out)
    # dropout is unbiased: averaged over many draws the output approaches evaluation's
    torch.manual_seed(0)
    q, k, v = qkv(1, 6, 8)
    ref = scaled_dot_product_attention(q, k, v).output
    mean = torch.stack([scaled_dot_product_attention(q, k, v, dropout=0.5).output for _ in range(4000)]).mean(0)
    assert (mean - ref).abs().max() < 0.1
