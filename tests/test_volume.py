"""Region log-volumes against closed forms (Gaussian balls: chi-square radius, ball volume) and a fine grid."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import gammaln, logsumexp
from scipy.stats import chi2, multivariate_normal

from dualspace.nn.mdn import MDN
from dualspace.volume import GaussianMixture, log_volumes, scale_grid

ALPHAS = np.array([0.5, 0.8, 0.9, 0.95, 0.99])
N = 4000


def _gaussian(d: int, kind: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    # (mu, Sigma): diagonal with scales over a factor e^2, or a random SPD matrix
    rng = np.random.default_rng(seed)
    mu = rng.normal(size=d)
    if kind == "diag":
        return mu, np.diag(np.exp(rng.uniform(-1, 1, d)) ** 2)
    a = rng.normal(size=(d, d))
    return mu, a @ a.T / d + 0.1 * np.eye(d)


def _ball(d: int, logdet: float, alphas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # tau = alpha-quantile of -log N(y; mu, Sigma) under y ~ N, and log Vol{-log N <= tau}, in closed form
    r2 = chi2.ppf(alphas, d)
    tau = d / 2 * math.log(2 * math.pi) + logdet / 2 + r2 / 2
    log_vol = d / 2 * math.log(math.pi) - gammaln(d / 2 + 1) + d / 2 * np.log(r2) + logdet / 2
    return tau, log_vol


def _assert_close(est, truth):
    for e, t in zip(est, truth):
        assert e.se <= 0.1, f"se {e.se:.3f} too large (estimate {e.log_volume:.3f}, truth {t:.3f})"
        assert abs(e.log_volume - t) <= max(4 * e.se, 0.05), f"{e.log_volume:.3f} vs {t:.3f} (se {e.se:.3f})"


@pytest.mark.parametrize("kind", ["diag", "full"])
@pytest.mark.parametrize("d", [2, 16, 64])
def test_gaussian_ball_volumes(d, kind):
    mu, cov = _gaussian(d, kind, seed=d)
    logdet = np.linalg.slogdet(cov)[1]
    tau, truth = _ball(d, logdet, ALPHAS)
    g = GaussianMixture(np.zeros(1), mu[None], np.linalg.cholesky(cov)[None])
    est = log_volumes(g, tau, N, seed=1)
    _assert_close(est, truth)
    assert all(0 < e.inside <= N and e.n == N for e in est)


def test_default_grid_brackets_the_boundary_scale():
    # s* = r / sqrt(d): the scale whose typical radius is the region's boundary
    d = 64
    mu, cov = _gaussian(d, "diag")
    tau, _ = _ball(d, np.linalg.slogdet(cov)[1], ALPHAS)
    grid = scale_grid(GaussianMixture(np.zeros(1), mu[None], np.linalg.cholesky(cov)[None]), tau)
    s_star = np.sqrt(chi2.ppf(ALPHAS, d) / d)
    assert grid[0] < s_star.min() and grid[-1] > s_star.max()
    assert np.all(np.diff(np.log(grid)) < 0.03)  # neighbours a few percent apart


def _two_components():
    log_w = np.log([0.7, 0.3])
    means = np.array([[0.0, 0.0], [1.5, 0.5]])
    covs = np.array([[[1.0, 0.3], [0.3, 0.5]], [[0.6, -0.2], [-0.2, 1.2]]])
    return log_w, means, covs


def test_two_component_mixture_against_grid():
    log_w, means, covs = _two_components()
    taus = np.array([1.8, 2.4, 4.1, 6.4, 8.7])  # p-mass of R ~ 0.1, 0.5, 0.9, 0.99, 0.999
    lo, hi, cells = np.array([-7.0, -7.0]), np.array([8.5, 8.0]), 2000
    axes = [np.linspace(a, b, cells, endpoint=False) + (b - a) / cells / 2 for a, b in zip(lo, hi)]
    y = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 2)
    score = -logsumexp([lw + multivariate_normal(m, c).logpdf(y) for lw, m, c in zip(log_w, means, covs)], axis=0)
    edge = score.reshape(cells, cells)
    assert min(edge[0].min(), edge[-1].min(), edge[:, 0].min(), edge[:, -1].min()) > taus.max()  # box holds R
    cell_area = np.prod((hi - lo) / cells)
    truth = [math.log((score <= t).sum() * cell_area) for t in taus]

    g = GaussianMixture(log_w, means, np.linalg.cholesky(covs))
    _assert_close(log_volumes(g, taus, N, seed=2), truth)


def test_monotone_infinite_and_empty():
    rng = np.random.default_rng(3)
    d, K = 16, 3
    log_w = np.log([0.5, 0.3, 0.2])
    means, sigmas = rng.normal(0, 2, (K, d)), np.exp(rng.uniform(-0.5, 0.5, (K, d)))
    g = GaussianMixture.diagonal(log_w, means, sigmas)
    # max_y p(y) <= sum_k w_k N_k(mu_k), so below -log of that no y is in R
    peak = logsumexp([lw + multivariate_normal(m, np.diag(s**2)).logpdf(m) for lw, m, s in zip(log_w, means, sigmas)])
    taus = np.linspace(-peak + 2, -peak + 30, 25)
    est = log_volumes(g, np.concatenate([[-peak - 1.0], taus, [np.inf]]), N, seed=4)
    empty, est, unbounded = est[0], est[1:-1], est[-1]
    assert empty.log_volume == -math.inf and empty.inside == 0
    assert unbounded.log_volume == math.inf and unbounded.se == 0
    assert np.all(np.diff([e.log_volume for e in est]) >= 0)
    assert np.all(np.diff([e.inside for e in est]) >= 0)


def test_same_seed_same_draws():
    log_w, means, covs = _two_components()
    g = GaussianMixture(log_w, means, np.linalg.cholesky(covs))
    a, b, c = (log_volumes(g, [3.0], 500, seed=s)[0] for s in (7, 7, 8))
    assert a == b and a.log_volume != c.log_volume


def test_log_prob_matches_scipy():
    log_w, means, covs = _two_components()
    rng = np.random.default_rng(5)
    y = rng.normal(0, 3, (50, 2))
    ref = logsumexp([lw + multivariate_normal(m, c).logpdf(y) for lw, m, c in zip(log_w, means, covs)], axis=0)
    g = GaussianMixture(log_w + 3.0, means, np.linalg.cholesky(covs))  # unnormalised weights are normalised
    np.testing.assert_allclose(g.log_prob(y), ref, rtol=1e-12)
    scaled = logsumexp([lw + multivariate_normal(m, 2.5**2 * c).logpdf(y)
                        for lw, m, c in zip(log_w, means, covs)], axis=0)
    np.testing.assert_allclose(g.scaled(2.5).log_prob(y), scaled, rtol=1e-12)

    sigmas = np.exp(rng.normal(size=(2, 2)))
    diag = GaussianMixture.diagonal(log_w, means, sigmas)
    ref = logsumexp([lw + multivariate_normal(m, np.diag(s**2)).logpdf(y) for lw, m, s in zip(log_w, means, sigmas)],
                    axis=0)
    np.testing.assert_allclose(diag.log_prob(y), ref, rtol=1e-12)


def test_sample_moments():
    log_w, means, covs = _two_components()
    g = GaussianMixture(log_w, means, np.linalg.cholesky(covs))
    y = g.sample(200_000, np.random.default_rng(6))
    w = np.exp(log_w)
    mean = w @ means
    cov = sum(wk * (c + np.outer(m - mean, m - mean)) for wk, m, c in zip(w, means, covs))
    np.testing.assert_allclose(y.mean(0), mean, atol=0.01)
    np.testing.assert_allclose(np.cov(y, rowvar=False), cov, atol=0.02)


def test_from_mdn_matches_torch():
    torch.manual_seed(0)
    mdn = MDN(cond_dim=3, y_dim=4, n_components=2, hidden=16).double()
    with torch.no_grad():
        for p in mdn.parameters():
            p.normal_(0, 0.5)
    e = np.random.default_rng(7).normal(size=3)
    y = np.random.default_rng(8).normal(size=(20, 4))
    ref = mdn.log_prob(torch.as_tensor(y), torch.as_tensor(e)[None].expand(20, 3)).detach().numpy()
    g = GaussianMixture.from_mdn(mdn, e)
    assert g.means.shape == (2, 4) and g.chol.dtype == np.float64
    np.testing.assert_allclose(g.log_prob(y), ref, rtol=1e-10)
    # a float32 MDN (as trained) reads out in float64 within float32 round-off
    np.testing.assert_allclose(GaussianMixture.from_mdn(mdn.float(), e).log_prob(y), ref, rtol=1e-5)
    with pytest.raises(ValueError, match="one condition"):
        GaussianMixture.from_mdn(mdn, np.zeros((2, 3)))


def test_no_saturation_at_high_alpha_in_d64():
    # the old estimator gave the same value at alpha 0.85, 0.9, 0.95 in d = 64; the increments must be right
    d, alphas = 64, np.array([0.85, 0.9, 0.95])
    mu, cov = _gaussian(d, "diag", seed=9)
    tau, truth = _ball(d, np.linalg.slogdet(cov)[1], alphas)
    est = log_volumes(GaussianMixture(np.zeros(1), mu[None], np.linalg.cholesky(cov)[None]), tau, N, seed=10)
    rise, true_rise = np.diff([e.log_volume for e in est]), np.diff(truth)
    assert np.all(true_rise > 1.0)  # 1.3 and 1.9 nats
    for r, t, a, b in zip(rise, true_rise, est, est[1:]):
        assert abs(r - t) <= max(4 * (a.se + b.se), 0.05), f"rise {r:.3f} vs closed form {t:.3f}"
