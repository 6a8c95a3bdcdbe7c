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


# --- the fused path (need_weights=False) and the input checks ------------------------------------

from wmbook.nn.attention import fused_attention  # noqa: E402

MASKS = {
    "none": lambda T: None,
    "causal": lambda T: causal_mask(T),
    "padding": lambda T: padding_mask([T, 3], T=T)[:, None],  # (B, 1, 1, T)
    "padding_causal": lambda T: (padding_mask([T, 3], T=T) & causal_mask(T))[:, None],  # (B, 1, T, T)
    "float": lambda T: torch.randn(T, T),
}


@pytest.mark.parametrize("mask_kind", sorted(MASKS))
@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_fused_path_gives_the_formulas_output_and_gradients(mask_kind, temperature):
    q, k, v = qkv(2, 4, 7, 16, d_v=12)
    mask = MASKS[mask_kind](7)
    grads = []
    for fn in (lambda a, b, c: scaled_dot_product_attention(a, b, c, mask, temperature).output,
               lambda a, b, c: fused_attention(a, b, c, mask, temperature)):
        a, b, c = (t.clone().requires_grad_(True) for t in (q, k, v))
        out = fn(a, b, c)
        out.sin().sum().backward()
        grads.append([out, a.grad, b.grad, c.grad])
    (ours, *ours_grads), (fused, *fused_grads) = grads
    assert fused.shape == (2, 4, 7, 12)
    assert (ours - fused).abs().max() <= 1e-6
    for g, h in zip(ours_grads, fused_grads):
        assert (g - h).abs().max() <= 1e-5


def test_fused_path_with_a_cache_of_earlier_keys():
    """Queries for the last 2 of 9 positions, as a KV cache produces them."""
    q, k, v = qkv(2, 4, 2, 8, T_k=9)
    mask = causal_mask(2, 9)
    ours, _ = scaled_dot_product_attention(q, k, v, mask=mask)
    assert (ours - fused_attention(q, k, v, mask=mask)).abs().max() <= 1e-6


def test_fused_dropout_acts_on_the_weights_like_the_formula():
    """PyTorch's kernel drops attention weights with dropout_p and rescales by 1/(1-p), as F.dropout does:
    on the CPU it even draws the same mask from the same seed."""
    q, k, v = qkv(2, 3, 6, 8)
    torch.manual_seed(1)
    ours, _ = scaled_dot_product_attention(q, k, v, mask=causal_mask(6), dropout=0.3)
    torch.manual_seed(1)
    fused = fused_attention(q, k, v, mask=causal_mask(6), dropout=0.3)
    assert (ours - fused).abs().max() <= 1e-6
    assert (ours - scaled_dot_product_attention(q, k, v, mask=causal_mask(6)).output).abs().max() > 1e-2


@pytest.mark.parametrize("mask_kind", ["none", "causal", "padding"])
def test_multihead_need_weights_false_is_the_same_layer(mask_kind):
    mha = MultiHeadAttention(d_model=24, n_heads=3)
    x = torch.randn(2, 6, 24)
    mask = {"none": None, "causal": causal_mask(6), "padding": padding_mask([6, 2])}[mask_kind]  # (B, 1, T)
    results = []
    for need_weights in (True, False):
        mha.zero_grad()
        out, w = mha(x, mask=mask, need_weights=need_weights)
        out.square().sum().backward()
        results.append((out, w, {n: p.grad.clone() for n, p in mha.named_parameters()}))
    (out, w, grads), (fused, no_w, fused_grads) = results
    assert w.shape == (2, 3, 6, 6) and no_w is None
    assert (out - fused).abs().max() <= 1e-6
    for name in grads:
        assert (grads[name] - fused_grads[name]).abs().max() <= 1e-5, name


def test_multihead_dropout_is_the_same_on_both_paths():
    mha = MultiHeadAttention(d_model=16, n_heads=2, dropout=0.5).train()
    x = torch.randn(3, 8, 16)
    torch.manual_seed(3)
    out = mha(x, mask=causal_mask(8)).output
    torch.manual_seed(3)
    fused = mha(x, mask=causal_mask(8), need_weights=False).output
    assert (out - fused).abs().max() <= 1e-6
    mha.eval()  # no dropout in evaluation, on either path
    assert torch.equal(mha(x, need_weights=False).output, mha(x, need_weights=False).output)


@pytest.mark.parametrize("attend", [scaled_dot_product_attention, fused_attention])
def test_input_errors_are_value_errors_that_say_what_to_do(attend):
    q, k, v = qkv(2, 5, 8)
    with pytest.raises(ValueError, match=r"batch dimensions .* do not match; give q, k and v the same"):
        attend(q, k[:1].expand(3, 5, 8), v[:1].expand(3, 5, 8))
    with pytest.raises(ValueError, match=r"batch dimensions .* do not match"):
        attend(q, k, torch.randn(3, 5, 8))
    ids = torch.randint(0, 10, (2, 5, 8))
    with pytest.raises(ValueError, match=r"q has dtype torch.int64; attention needs floating-point .* q.float\(\)"):
        attend(ids, k, v)
    with pytest.raises(ValueError, match=r"v has dtype torch.int64.*v.float\(\)"):
        attend(q, k, ids)
    with pytest.raises(ValueError, match=r"share one dtype.*k.to\(q.dtype\)"):
        attend(q, k.double(), v)
    with pytest.raises(ValueError, match="does not broadcast"):
        attend(q, k, v, mask=torch.ones(4, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="no key to attend to"):
        attend(q, k, v, mask=torch.zeros(5, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="row of all -inf"):
        attend(q, k, v, mask=torch.full((5, 1), float("-inf")))
    assert attend(q, k[:1], v[:1]) is not None  # a batch of 1 broadcasts, as in torch


def test_multihead_input_errors():
    mha = MultiHeadAttention(d_model=8, n_heads=2)
    with pytest.raises(ValueError, match=r"query has dtype torch.int64.*nn.Embedding"):
        mha(torch.randint(0, 5, (1, 3, 8)))
    with pytest.raises(ValueError, match="batch and key lengths disagree"):
        mha(torch.randn(2, 3, 8), torch.randn(3, 4, 8))
