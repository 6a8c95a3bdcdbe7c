"""Distillation losses (page 4.2): closed forms, references, gradients, errors."""

import pytest
import torch
import torch.nn.functional as F

from wmbook.lab.distill import guide_soft_loss, hard_distillation_loss, hinton_loss, soft_term


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(16, 10, generator=g), 3 * torch.randn(16, 10, generator=g), torch.randint(0, 10, (16,), generator=g)


def test_soft_term_equals_kl_plus_teacher_entropy(batch):
    zs, zt, _ = batch
    for tau in (1.0, 4.0):
        p_t = F.softmax(zt / tau, -1)
        kl = F.kl_div(F.log_softmax(zs / tau, -1), p_t, reduction="batchmean")
        entropy = -(p_t * p_t.log()).sum(-1).mean()
        assert torch.allclose(soft_term(zs, zt, tau), kl + entropy, atol=1e-5)
        # and torch's cross_entropy with probability targets
        assert torch.allclose(soft_term(zs, zt, tau), F.cross_entropy(zs / tau, p_t), atol=1e-6)


def test_guide_loss_is_the_written_formula(batch):
    zs, zt, y = batch
    alpha, tau = 0.3, 2.0
    expected = alpha * F.cross_entropy(zs, y) + (1 - alpha) * F.cross_entropy(zs / tau, F.softmax(zt / tau, -1))
    assert torch.allclose(guide_soft_loss(zs, zt, y, alpha, tau), expected, atol=1e-6)
    assert torch.allclose(hinton_loss(zs, zt, y, alpha, tau),
                          alpha * F.cross_entropy(zs, y) + (1 - alpha) * tau**2 * soft_term(zs, zt, tau), atol=1e-6)
    assert torch.allclose(hinton_loss(zs, zt, None, alpha, tau), tau**2 * soft_term(zs, zt, tau))


def test_t_squared_keeps_the_soft_gradient_scale(batch):
    zs, zt, _ = batch
    zs, zt = zs - zs.mean(-1, keepdim=True), zt - zt.mean(-1, keepdim=True)
    norms = {}
    for tau in (5.0, 20.0, 80.0):
        z = zs.clone().requires_grad_(True)
        soft_term(z, zt, tau).backward()
        norms[tau] = z.grad.norm().item()
        # closed form for large tau: d/dz_s = (z_s - z_t) / (B * n_classes * tau^2)
        approx = (zs - zt) / (zs.shape[0] * zs.shape[1] * tau**2)
        if tau >= 20:  # the first-order expansion of the softmax needs |z / tau| << 1
            assert (z.grad - approx).abs().max() <= 0.15 * approx.abs().max()
    assert norms[20.0] / norms[80.0] == pytest.approx(16, rel=0.05)  # 1/tau^2
    assert (norms[20.0] * 20**2) / (norms[80.0] * 80**2) == pytest.approx(1, rel=0.05)


def test_hard_distillation_uses_the_teachers_argmax(batch):
    zs, zt, y = batch
    expected = F.cross_entropy(zs, y) + 0.5 * F.cross_entropy(zs, zt.argmax(-1))
    assert torch.allclose(hard_distillation_loss(zs, zt, y, lam=0.5), expected)


def test_no_gradient_reaches_the_teacher(batch):
    zs, zt, y = batch
    zs, zt = zs.clone().requires_grad_(True), zt.clone().requires_grad_(True)
    (guide_soft_loss(zs, zt, y) + hinton_loss(zs, zt, y) + hard_distillation_loss(zs, zt, y)).backward()
    assert zt.grad is None and zs.grad is not None


def test_errors(batch):
    zs, zt, y = batch
    with pytest.raises(ValueError, match="same shape"):
        hinton_loss(zs, zt[:, :5], y)
    with pytest.raises(ValueError, match=r"labels must be \(batch,\)"):
        guide_soft_loss(zs, zt, y[:3])
    with pytest.raises(ValueError, match="tau must be > 0"):
        soft_term(zs, zt, 0.0)
    with pytest.raises(ValueError, match="alpha"):
        guide_soft_loss(zs, zt, y, alpha=1.5)
    with pytest.raises(ValueError, match=r"\(batch, classes\)"):
        hard_distillation_loss(zs[None], zt[None], y)
    with pytest.raises(ValueError, match="labels must lie"):
        hard_distillation_loss(zs, zt, y + 10)


def _students(seeds, sizes=(8, 6, 3)):
    from wmbook.lab.distill import mlp
    out = []
    for s in seeds:
        torch.manual_seed(s)
        out.append(mlp(list(sizes)))
    return out


def test_stacked_mlp_is_its_students_side_by_side():
    from wmbook.lab.distill import StackedMLP
    models = _students((0, 1, 2))
    stacked = StackedMLP(models)
    x = torch.randn(3, 5, 8)
    out = stacked(x)
    for k, m in enumerate(models):
        assert torch.allclose(out[k], m(x[k]), atol=1e-6)
    for m, u in zip(models, stacked.unstack()):
        assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), u.state_dict().values()))


def test_stacked_loss_is_the_sum_of_the_students_losses(batch):
    from wmbook.lab.distill import stacked_loss
    zs, zt, y = batch
    zs, zt, y = zs.view(4, 4, 10), zt.view(4, 4, 10), y.view(4, 4)
    for fn, args, kw in ((hinton_loss, (zt, y), {"alpha": 0.3, "tau": 2.0}), (hinton_loss, (zt, None), {}),
                         (F.cross_entropy, (y,), {}), (hard_distillation_loss, (zt, y), {"lam": 0.5})):
        expected = sum(fn(zs[k], *(a if a is None else a[k] for a in args), **kw) for k in range(4))
        assert torch.allclose(stacked_loss(fn, zs, *args, **kw), expected, atol=1e-5)
    with pytest.raises(ValueError, match=r"\(students, batch\)"):
        stacked_loss(F.cross_entropy, zs, y[:2])
    with pytest.raises(ValueError, match=r"\(students, batch, classes\)"):
        stacked_loss(F.cross_entropy, zs[0], y[0])


def test_training_stacked_equals_training_each_student_alone():
    """AdamW is element-wise and the loss a sum: K students at once = K runs (without clipping)."""
    import wmbook
    from wmbook.lab.distill import StackedMLP, stacked_loss
    g = torch.Generator().manual_seed(0)
    X, Y = torch.randn(40, 8, generator=g), torch.randint(0, 3, (40,), generator=g)
    seeds = (0, 1, 2)
    draws = {s: torch.randint(0, 40, (6, 16), generator=torch.Generator().manual_seed(s)) for s in seeds}
    alone = _students(seeds)
    for s, m in zip(seeds, alone):
        wmbook.train(m, lambda m, step, s=s: F.cross_entropy(m(X[draws[s][step]]), Y[draws[s][step]]),
                     steps=6, lr=1e-2, grad_clip=None, progress=False)
    stacked = StackedMLP(_students(seeds))
    idx = lambda step: torch.stack([draws[s][step] for s in seeds])  # noqa: E731
    wmbook.train(stacked, lambda m, step: stacked_loss(F.cross_entropy, m(X[idx(step)]), Y[idx(step)]),
                 steps=6, lr=1e-2, grad_clip=None, progress=False)
    for a, b in zip(alone, stacked.unstack()):
        for p, q in zip(a.parameters(), b.parameters()):
            assert torch.allclose(p, q, atol=1e-5)


def test_stacked_mlp_errors():
    from wmbook.lab.distill import StackedMLP, mlp
    with pytest.raises(ValueError, match="same layer sizes"):
        StackedMLP([mlp([8, 6, 3]), mlp([8, 5, 3])])
    with pytest.raises(ValueError, match="dropout"):
        StackedMLP([mlp([8, 6, 3], dropout=0.1)])
    with pytest.raises(ValueError, match=r"\(students=2, batch, features\)"):
        StackedMLP(_students((0, 1)))(torch.randn(5, 8))


def test_time_interleaved_runs_each_function_once_per_round_in_turn():
    from wmbook.lab.distill import time_interleaved
    calls = []
    ticks = iter(range(1000))
    out = time_interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                           rounds=3, warmup=1, clock=lambda: float(next(ticks)))
    assert calls == ["a", "b"] * 4
    assert out == {"a": [1.0] * 3, "b": [1.0] * 3}
    with pytest.raises(ValueError, match="rounds"):
        time_interleaved({"a": lambda: None}, rounds=0)


def test_count_keys_values_matches_the_kv_cache_formula():
    from wmbook import kv_cache_bytes
    from wmbook.lab.distill import count_keys_values
    from wmbook.nn.bert import BertConfig, BertModel
    cfg = BertConfig(vocab_size=50, d_model=32, n_heads=4, n_layers=3, d_ff=64, n_ctx=16)
    model = BertModel(cfg).eval()
    ids = torch.randint(0, 50, (2, 7))
    n = count_keys_values(model, ids, torch.ones_like(ids))
    assert n == 2 * cfg.n_layers * cfg.d_model * 2 * 7
    assert n == kv_cache_bytes(cfg.n_layers, cfg.n_heads, cfg.d_head, n_tokens=7, batch=2, bytes_per_value=1)
    with pytest.raises(ValueError, match="no key or value"):
        count_keys_values(torch.nn.Linear(3, 3), torch.randn(1, 3))
