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


#: Published exponents, as the papers state them (page 8.1 cites them).
KAPLAN_ALPHA_N = 0.076  # Kaplan et al. 2020, L(N) = (N_c/N)^alpha_N, N_c = 8.8e13 non-embedding parameters
CHINCHILLA_ALPHA = 0.34  # Hoffmann et al. 2022, L(N, D) = E + A/N^alpha + B/D^beta: E 1.69, A 406.4, B 410.7, beta 0.28

__all__ = ["CHINCHILLA_ALPHA", "KAPLAN_ALPHA_N", "PowerLawFit", "bootstrap_alpha", "fit_power_law",
           "fit_pure_power_law", "mean_points", "non_embedding", "power_law", "seed_table", "synthetic_sweep"]
