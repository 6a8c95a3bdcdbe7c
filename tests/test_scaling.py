"""wmbook.lab.scaling (page 8.1, section 8.1.1): the one-seed bootstrap of L(N) and Chinchilla's joint
law L(N, D) = E + A N^-alpha + B D^-beta. (The older fitting functions are tested in
tests/test_scaling_contrastive_lora.py.)"""
from __future__ import annotations

import numpy as np
import pytest

from wmbook.lab import scaling as S

SIZES = np.array([55008, 119376, 208320, 459936, 809856, 1.8e6, 3.2e6])
DATA = np.array([192000.0, 384000.0, 768000.0])


def _grid():
    n, d = np.meshgrid(SIZES, DATA)
    return n.ravel(), d.ravel()


def test_joint_law_values():
    assert S.joint_law(([100.0], [10_000.0]), 1.0, 10.0, 0.5, 100.0, 0.5)[0] == pytest.approx(3.0)
    assert S.CHINCHILLA_BETA == 0.28 and S.CHINCHILLA_ALPHA == 0.34


def test_the_joint_fit_without_noise_is_exact():
    n, d = _grid()
    truth = dict(E=1.5, A=50.0, alpha=0.3, B=400.0, beta=0.35)
    fit = S.fit_joint_law(n, d, S.joint_law((n, d), **truth))
    for key, want in truth.items():
        assert getattr(fit, key) == pytest.approx(want, rel=1e-3), key
    assert fit.n_points == 21 and fit.dof == 16 and fit.cov.shape == (5, 5)
    assert np.allclose(fit.predict(n, d), S.joint_law((n, d), **truth), atol=1e-9)
    again = S.fit_joint_law(n, d, S.joint_law((n, d), **truth), start=fit)  # one start, from the fit
    assert again.alpha == pytest.approx(fit.alpha, rel=1e-6)


def test_the_joint_fit_with_noise_and_its_bootstrap_cover_the_truth():
    n, d = _grid()
    rng = np.random.default_rng(0)
    loss = S.joint_law((n, d), 1.5, 50.0, 0.3, 400.0, 0.35) + 0.01 * rng.standard_normal(len(n))
    fit = S.fit_joint_law(n, d, loss)
    assert abs(fit.alpha - 0.3) < 4 * fit.alpha_sd + 0.02 and abs(fit.beta - 0.35) < 4 * fit.beta_sd + 0.05
    boot = S.bootstrap_joint_law(n, d, loss, n_boot=60, seed=0)
    assert boot.shape[1] == 5 and len(boot) >= 50
    lo, hi = np.percentile(boot[:, 2], [2.5, 97.5])
    assert lo - 0.03 < 0.3 < hi + 0.03 and hi - lo < 0.3
    param = S.bootstrap_joint_law(n, d, loss, n_boot=30, seed=0, noise=0.01)
    assert param.shape[1] == 5 and not np.allclose(param[:, 2], boot[: len(param), 2])


def test_the_joint_fit_refuses_points_that_cannot_pin_the_data_term():
    n, d = _grid()
    two = d != DATA[1]  # two data sizes only: B and beta enter through one difference
    with pytest.raises(ValueError, match="3 distinct data sizes"):
        S.fit_joint_law(n[two], d[two], np.linspace(3, 2, two.sum()))
    with pytest.raises(ValueError, match="more than 5 points"):
        S.fit_joint_law([1, 2, 3, 4, 5], [1, 2, 3, 1, 2], [5, 4, 3, 2, 1])
    with pytest.raises(ValueError, match="shape of n"):
        S.fit_joint_law([1, 2, 3, 4, 5, 6], [1, 2, 3], [6, 5, 4, 3, 2, 1])


def test_bootstrap_power_law_spreads_around_the_truth():
    rng = np.random.default_rng(3)
    loss = S.power_law(SIZES, 1.5, 50.0, 0.3) + 0.01 * rng.standard_normal(len(SIZES))
    for noise in (None, 0.01):
        boot = S.bootstrap_power_law(SIZES, loss, n_boot=150, seed=0, noise=noise)
        assert boot.shape[1] == 3 and len(boot) >= 140
        lo, hi = np.percentile(boot[:, 2], [2.5, 97.5])
        assert lo - 0.03 < 0.3 < hi + 0.03, (noise, lo, hi)
    # more noise, wider interval
    narrow = np.ptp(np.percentile(S.bootstrap_power_law(SIZES, loss, 150, 0, noise=0.002)[:, 2], [5, 95]))
    wide = np.ptp(np.percentile(S.bootstrap_power_law(SIZES, loss, 150, 0, noise=0.02)[:, 2], [5, 95]))
    assert wide > 2 * narrow
    with pytest.raises(ValueError, match="noise must be an sd > 0"):
        S.bootstrap_power_law(SIZES, loss, noise=0.0)


def test_a_bootstrap_whose_refits_all_fail_says_so():
    def refit(y):
        raise RuntimeError("no convergence")

    with pytest.raises(RuntimeError, match="all 3 refits failed"):
        S._refits(np.ones(4), np.zeros(4), refit, 3, 0, None)
    with pytest.raises(ValueError, match="noise must be an sd > 0"):
        n, d = _grid()
        S.bootstrap_joint_law(n, d, S.joint_law((n, d), 1.5, 50.0, 0.3, 400.0, 0.35), noise=-1.0)
