r"""Fitting a scaling law to the book's own size sweep, with its uncertainty.

Explained on page 8.1, "Where LLMs are heading" (section 8.1.1); the sweep itself is page 1.1's
(:mod:`wmbook.lab.scale`, ``scripts/train_char_gpt_sizes.py``).

The loss of a model of :math:`N` parameters, all else fixed, is modelled as

.. math::

    L(N) = E + A\,N^{-\alpha},

with :math:`E` the loss no size removes (the entropy of the text plus what the fixed data and
steps cannot teach), :math:`A` a scale and :math:`\alpha` the exponent. Kaplan et al. (2020) fit
:math:`L = (N_c/N)^{\alpha_N}` (no :math:`E`) on non-embedding parameters and found
:math:`\alpha_N \approx 0.076`; Hoffmann et al. (2022) fit :math:`E + A/N^{\alpha} + B/D^{\beta}` and
found :math:`\alpha = 0.34`. :func:`fit_power_law` fits the three numbers by weighted least squares
(``scipy.optimize.curve_fit``) and returns their covariance; :func:`bootstrap_alpha` re-fits on
resampled seeds (a spread that does not rely on the model being right). :func:`fit_pure_power_law`
fits Kaplan's form, a straight line in log-log axes.

For page 8.1's sweep over size and data (one seed per point; :func:`wmbook.lab.scale.train_scale_sweep`),
:func:`bootstrap_power_law` gives intervals from resampled residuals or from a given seed noise, and
:func:`fit_joint_law` fits Hoffmann et al.'s :math:`L(N, D) = E + A N^{-\alpha} + B D^{-\beta}`
(:func:`bootstrap_joint_law` for its intervals).
"""
from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import numpy as np


def power_law(n, E: float, A: float, alpha: float):
    r""":math:`L(N) = E + A N^{-\alpha}` (``n`` a number or an array)."""
    return E + A * np.power(np.asarray(n, dtype=float), -alpha)


class PowerLawFit(NamedTuple):
    """The fitted :math:`E, A, \\alpha`, their covariance (3×3, in that order), the sd of
    :math:`\\alpha`, the number of points and the degrees of freedom left (points − 3)."""

    E: float
    A: float
    alpha: float
    cov: np.ndarray
    alpha_sd: float
    n_points: int
    dof: int

    def predict(self, n):
        """The fitted curve at ``n``."""
        return power_law(n, self.E, self.A, self.alpha)


def _check_points(n, loss, sigma=None):
    n = np.asarray(n, dtype=float)
    loss = np.asarray(loss, dtype=float)
    if n.ndim != 1 or n.shape != loss.shape:
        raise ValueError(f"n and loss must be 1-D arrays of one length, got shapes {n.shape} and {loss.shape}")
    if len(np.unique(n)) < 3:
        raise ValueError(f"need at least 3 distinct sizes to fit E, A and alpha, got {len(np.unique(n))}")
    if np.any(n <= 0) or not np.all(np.isfinite(loss)):
        raise ValueError("sizes must be > 0 and losses finite")
    if sigma is not None:
        sigma = np.asarray(sigma, dtype=float)
        if sigma.shape != n.shape or np.any(sigma <= 0):
            raise ValueError(f"sigma must be positive with the shape of n {n.shape}, got {sigma}")
    return n, loss, sigma


def fit_power_law(n: Sequence[float], loss: Sequence[float], sigma: Sequence[float] | None = None) -> PowerLawFit:
    r"""Fit :math:`L = E + A N^{-\alpha}` by (weighted) least squares.

    ``sigma`` (optional): the standard error of each loss; then the covariance is computed from
    these errors (``absolute_sigma=True``), which a fit with one degree of freedom needs. Without
    it, the covariance is scaled by the residuals (and is infinite with no degree of freedom left).
    Sizes are divided by their geometric mean inside the fit (better conditioned); :math:`A` is
    returned for :math:`N` in its own units. Bounds: :math:`0 \le E < \min L`, :math:`A > 0`,
    :math:`0 < \alpha < 3`.
    """
    import warnings

    from scipy.optimize import OptimizeWarning, curve_fit

    n, loss, sigma = _check_points(n, loss, sigma)
    ref = float(np.exp(np.mean(np.log(n))))
    x = n / ref
    # start: E a little below the smallest loss, then a straight line through log(L - E) vs log N
    E0 = 0.9 * loss.min()
    slope, icpt = np.polyfit(np.log(x), np.log(loss - E0), 1)
    p0 = (E0, float(np.exp(icpt)), float(min(max(-slope, 1e-3), 2.9)))
    upper_E = float(loss.min()) - 1e-9
    with warnings.catch_warnings():  # no degree of freedom and no sigma: the covariance is undefined (inf below)
        warnings.simplefilter("ignore", OptimizeWarning)
        popt, pcov = curve_fit(power_law, x, loss, p0=p0, sigma=sigma, absolute_sigma=sigma is not None,
                               bounds=([0.0, 1e-12, 1e-6], [upper_E, np.inf, 3.0]), maxfev=20000)
    E, A_x, alpha = (float(v) for v in popt)
    # A in units of N: A_x x^-alpha = A_x (N/ref)^-alpha  =>  A = A_x ref^alpha ; var(A) rescaled alike
    scale = ref ** alpha
    if np.all(np.isfinite(pcov)):
        J = np.diag([1.0, scale, 1.0])
        cov = J @ pcov @ J.T
    else:
        pcov = cov = np.full((3, 3), np.inf)
    return PowerLawFit(E, A_x * scale, alpha, cov, float(math.sqrt(max(pcov[2, 2], 0.0))), len(n), len(n) - 3)


def fit_pure_power_law(n: Sequence[float], loss: Sequence[float]) -> tuple[float, float]:
    r"""Kaplan et al.'s form :math:`L = (N_c/N)^{\alpha_N}`: a least-squares line
    :math:`\log L = \alpha_N \log N_c - \alpha_N \log N`; returns :math:`(\alpha_N, N_c)`."""
    n, loss, _ = _check_points(n, loss)
    if np.any(loss <= 0):
        raise ValueError("a pure power law needs positive losses")
    slope, icpt = np.polyfit(np.log(n), np.log(loss), 1)
    alpha = -float(slope)
    return alpha, float(np.exp(icpt / alpha)) if alpha != 0 else float("nan")


def seed_table(runs: Sequence[dict], size_key: str = "parameters", loss_key: str = "val_loss") -> dict[float, list[float]]:
    """``{size: [loss of each seed]}`` from the run records of a sweep log (page 1.1's ``log["runs"]``)."""
    table: dict[float, list[float]] = {}
    for r in runs:
        table.setdefault(float(r[size_key]), []).append(float(r[loss_key]))
    if not table:
        raise ValueError("no runs")
    return dict(sorted(table.items()))


def mean_points(table: dict[float, list[float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sizes, mean loss and standard error of the mean (sd/√seeds, sd with n−1) per size."""
    n = np.array(list(table))
    losses = [np.asarray(v, dtype=float) for v in table.values()]
    if any(len(v) < 2 for v in losses):
        raise ValueError("need at least 2 seeds per size for a standard error")
    mean = np.array([v.mean() for v in losses])
    sem = np.array([v.std(ddof=1) / math.sqrt(len(v)) for v in losses])
    return n, mean, sem


def bootstrap_alpha(table: dict[float, list[float]], n_boot: int = 200, seed: int = 0) -> np.ndarray:
    r"""Exponents :math:`\alpha` fitted on ``n_boot`` resamples: at each size, the seeds' losses are drawn
    with replacement and averaged, then :func:`fit_power_law` (unweighted) is run on the means.
    Resamples whose fit fails are dropped (rare). Percentiles of the result give an interval."""
    rng = np.random.default_rng(seed)
    n = np.array(list(table))
    vals = [np.asarray(v, dtype=float) for v in table.values()]
    out = []
    for _ in range(n_boot):
        means = np.array([rng.choice(v, size=len(v), replace=True).mean() for v in vals])
        try:
            out.append(fit_power_law(n, means).alpha)
        except (RuntimeError, ValueError):
            continue
    return np.array(out)


def synthetic_sweep(sizes: Sequence[float], E: float, A: float, alpha: float, noise: float, seeds: int = 3,
                    seed: int = 0) -> dict[float, list[float]]:
    """A sweep with a known law: ``seeds`` losses per size, :math:`E + A N^{-\\alpha}` plus Gaussian noise of sd ``noise``."""
    rng = np.random.default_rng(seed)
    return {float(s): list(power_law(s, E, A, alpha) + noise * rng.standard_normal(seeds)) for s in sizes}


def non_embedding(parameters: int, d_model: int, vocab_size: int, n_ctx: int) -> int:
    """Parameters minus the token and position embeddings, :math:`(V + T)\\,d` (Kaplan et al.'s count)."""
    out = parameters - (vocab_size + n_ctx) * d_model
    if out <= 0:
        raise ValueError(f"the embeddings ({(vocab_size + n_ctx) * d_model}) are not smaller than the total ({parameters})")
    return out


def bootstrap_power_law(n: Sequence[float], loss: Sequence[float], n_boot: int = 200, seed: int = 0,
                        noise: float | None = None) -> np.ndarray:
    r"""Refits of :math:`L = E + A N^{-\alpha}` on ``n_boot`` synthetic copies of one-seed points; rows ``(E, A, alpha)``.

    Each copy is the fitted curve at ``n`` plus noise: with ``noise=None`` the fit's own residuals drawn
    with replacement (a residual bootstrap: no assumption on the noise's size, but with few points the
    residuals are few too), with ``noise`` = an sd, Gaussian noise of that sd (a parametric bootstrap,
    e.g. with the seed-to-seed sd measured elsewhere). Copies whose fit fails are dropped.
    Percentiles of a column give an interval.
    """
    n, loss, _ = _check_points(n, loss)
    if noise is not None and not noise > 0:
        raise ValueError(f"noise must be an sd > 0 (or None for resampled residuals), got {noise}")
    curve = fit_power_law(n, loss).predict(n)
    return _refits(curve, loss - curve, lambda y: fit_power_law(n, y)[:3], n_boot, seed, noise)


def _refits(curve: np.ndarray, resid: np.ndarray, refit, n_boot: int, seed: int, noise: float | None) -> np.ndarray:
    """``refit(curve + draw)`` for ``n_boot`` draws (resampled ``resid``, or Gaussian of sd ``noise``); failed fits dropped."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_boot):
        draw = rng.choice(resid, size=len(curve), replace=True) if noise is None else noise * rng.standard_normal(len(curve))
        try:
            out.append(tuple(refit(curve + draw)))
        except (RuntimeError, ValueError):
            continue
    if not out:
        raise RuntimeError(f"all {n_boot} refits failed")
    return np.array(out, dtype=float)


def joint_law(nd, E: float, A: float, alpha: float, B: float, beta: float):
    r"""Chinchilla's form :math:`L(N, D) = E + A N^{-\alpha} + B D^{-\beta}`; ``nd`` = (N array, D array)."""
    n, d = (np.asarray(v, dtype=float) for v in nd)
    return E + A * np.power(n, -alpha) + B * np.power(d, -beta)


class JointFit(NamedTuple):
    r"""The fitted :math:`E, A, \alpha, B, \beta` of :func:`fit_joint_law`, their covariance (5×5, that
    order; scaled by the residuals), the sds of the two exponents, the points and the degrees of freedom."""

    E: float
    A: float
    alpha: float
    B: float
    beta: float
    cov: np.ndarray
    alpha_sd: float
    beta_sd: float
    n_points: int
    dof: int

    def predict(self, n, d):
        """The fitted surface at sizes ``n`` and data ``d``."""
        return joint_law((n, d), self.E, self.A, self.alpha, self.B, self.beta)


def fit_joint_law(n: Sequence[float], d: Sequence[float], loss: Sequence[float], start: JointFit | None = None) -> JointFit:
    r"""Fit :math:`L(N, D) = E + A N^{-\alpha} + B D^{-\beta}` (Hoffmann et al. 2022) by least squares.

    Needs at least 3 distinct N and 3 distinct D (with two D values, :math:`B` and :math:`\beta` only
    enter through one difference and cannot both be fitted) and more points than the 5 parameters.
    N and D are divided by their geometric means inside the fit; :math:`A` and :math:`B` are
    returned in the units of N and D. Bounds: :math:`0 \le E < \min L`, :math:`A, B > 0`, exponents in (0, 3).
    The covariance is scaled by the residuals; an sd of ``inf`` (or a huge one) says that the points
    do not pin that parameter down. Without ``start`` the fit starts from 9 exponent pairs and keeps the
    best; with ``start`` (an earlier fit, e.g. in a bootstrap) from that fit only.
    """
    import warnings

    from scipy.optimize import OptimizeWarning, curve_fit

    n, loss, _ = _check_points(n, loss)
    d = np.asarray(d, dtype=float)
    if d.shape != n.shape or np.any(d <= 0):
        raise ValueError(f"d must be positive with the shape of n {n.shape}, got shape {d.shape}")
    if len(np.unique(d)) < 3:
        raise ValueError(f"need at least 3 distinct data sizes D to fit B and beta, got {len(np.unique(d))}")
    if len(n) <= 5:
        raise ValueError(f"need more than 5 points to fit 5 parameters, got {len(n)}")
    n_ref, d_ref = (float(np.exp(np.mean(np.log(v)))) for v in (n, d))
    x = np.vstack([n / n_ref, d / d_ref])
    upper_E = float(loss.min()) - 1e-9
    best = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)
        if start is None:  # a few starts: the surface has flat valleys
            starts = [(0.8 * upper_E, 0.1, a0, 0.1, b0) for a0 in (0.2, 0.5, 1.0) for b0 in (0.2, 0.5, 1.0)]
        else:
            starts = [(float(np.clip(start.E, 1e-9, 0.999 * upper_E)), start.A / n_ref ** start.alpha,
                       float(np.clip(start.alpha, 1e-5, 2.99)), start.B / d_ref ** start.beta,
                       float(np.clip(start.beta, 1e-5, 2.99)))]
        for p0 in starts:
            try:
                popt, pcov = curve_fit(lambda xx, E, A, al, B, be: joint_law(xx, E, A, al, B, be), x, loss, p0=p0,
                                       bounds=([0.0, 1e-12, 1e-6, 1e-12, 1e-6], [upper_E, np.inf, 3.0, np.inf, 3.0]),
                                       maxfev=20000)
            except RuntimeError:
                continue
            sse = float(np.sum((joint_law(x, *popt) - loss) ** 2))
            if best is None or sse < best[0] - 1e-12:
                best = (sse, popt, pcov)
    if best is None:
        raise RuntimeError("the joint fit did not converge from any start")
    _, popt, pcov = best
    E, A_x, alpha, B_x, beta = (float(v) for v in popt)
    sa, sb = n_ref ** alpha, d_ref ** beta
    if np.all(np.isfinite(pcov)):
        J = np.diag([1.0, sa, 1.0, sb, 1.0])
        cov = J @ pcov @ J.T
    else:
        pcov = cov = np.full((5, 5), np.inf)
    sd = np.sqrt(np.clip(np.diag(pcov), 0.0, None))
    return JointFit(E, A_x * sa, alpha, B_x * sb, beta, cov, float(sd[2]), float(sd[4]), len(n), len(n) - 5)


def bootstrap_joint_law(n: Sequence[float], d: Sequence[float], loss: Sequence[float], n_boot: int = 100,
                        seed: int = 0, noise: float | None = None) -> np.ndarray:
    r"""Like :func:`bootstrap_power_law` for :func:`fit_joint_law`: rows ``(E, A, alpha, B, beta)``."""
    if noise is not None and not noise > 0:
        raise ValueError(f"noise must be an sd > 0 (or None for resampled residuals), got {noise}")
    fit = fit_joint_law(n, d, loss)
    n, d, loss = (np.asarray(v, dtype=float) for v in (n, d, loss))
    curve = fit.predict(n, d)
    return _refits(curve, loss - curve, lambda y: fit_joint_law(n, d, y, start=fit)[:5], n_boot, seed, noise)


#: Published exponents, as the papers state them (page 8.1 cites them).
KAPLAN_ALPHA_N = 0.076  # Kaplan et al. 2020, L(N) = (N_c/N)^alpha_N, N_c = 8.8e13 non-embedding parameters
CHINCHILLA_ALPHA = 0.34  # Hoffmann et al. 2022, L(N, D) = E + A/N^alpha + B/D^beta: E 1.69, A 406.4, B 410.7, beta 0.28
CHINCHILLA_BETA = 0.28  # Hoffmann et al. 2022, the data exponent of the same fit

__all__ = ["CHINCHILLA_ALPHA", "CHINCHILLA_BETA", "JointFit", "KAPLAN_ALPHA_N", "PowerLawFit", "bootstrap_alpha",
           "bootstrap_joint_law", "bootstrap_power_law", "fit_joint_law", "fit_power_law", "fit_pure_power_law", "joint_law",
           "mean_points", "non_embedding", "power_law", "seed_table", "synthetic_sweep"]
