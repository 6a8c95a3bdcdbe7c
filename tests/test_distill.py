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
