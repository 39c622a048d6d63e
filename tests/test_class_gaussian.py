"""The class-Gaussian baseline against independent computations: numpy eigh of np.cov, scipy's density, moments."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

from dualspace.class_gaussian import (ClassGaussianConfig, ClassGaussianGenerator, ClassGaussianSampler,
                                      fit_class_gaussian)


def gaussian_classes(rng, n_per_class, D, scale=1.0):
    """Rows of correlated Gaussians, one random mean and covariance per class; (N, D) float32, (N,) int."""
    xs, ys = [], []
    for c, n in enumerate(n_per_class):
        A = rng.normal(size=(D, D)) * scale
        xs.append(rng.normal(size=D) * 3 + rng.normal(size=(n, D)) @ A.T)
        ys.append(np.full(n, c))
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys)


def ppca_reference(x_c, q, min_variance=1e-4):
    """W W^T of Tipping & Bishop eq. 7-8 from numpy eigh of np.cov (normaliser n - 1), and psi = the data
    variances less diag(W W^T), floored at min_variance."""
    S = np.cov(x_c.astype(np.float64), rowvar=False)  # ddof = 1
    lam, U = np.linalg.eigh(S)
    lam, U = lam[::-1], U[:, ::-1]
    s2 = lam[q:].mean()
    W = U[:, :q] * np.sqrt(np.maximum(lam[:q] - s2, 0))
    var = np.var(x_c.astype(np.float64), axis=0, ddof=1)
    return W @ W.T, np.maximum(var - np.diag(W @ W.T), min_variance)


def model_cov(gen, c):
    return gen.W[c] @ gen.W[c].T + np.diag(gen.psi[c])


def test_fitted_covariance_when_n_exceeds_D():
    rng = np.random.default_rng(0)
    x, y = gaussian_classes(rng, [400, 300], D=6)
    gen = fit_class_gaussian(x, y, 2, ClassGaussianConfig(rank=2))
    assert gen.W.shape == (2, 6, 2)
    for c in range(2):
        WWt, psi = ppca_reference(x[y == c], q=2)
        np.testing.assert_allclose(gen.mean[c], x[y == c].astype(np.float64).mean(0), atol=1e-10)
        np.testing.assert_allclose(gen.W[c] @ gen.W[c].T, WWt, atol=1e-8)
        np.testing.assert_allclose(model_cov(gen, c), WWt + np.diag(psi), atol=1e-8)
        # no floor active here: the model's marginal variances are the data's
        np.testing.assert_allclose(np.diag(model_cov(gen, c)), np.var(x[y == c], 0, ddof=1), rtol=1e-6)


def test_gram_route_when_n_below_D_matches_full_covariance():
    rng = np.random.default_rng(1)
    # class 1: q = n - 1 = 3 < rank (padded with zero columns) and W W^T takes all the variance: psi = the floor
    x, y = gaussian_classes(rng, [20, 4], D=50)
    gen = fit_class_gaussian(x.reshape(-1, 2, 25), y, 2, ClassGaussianConfig(rank=5))
    assert gen.W.shape == (2, 50, 5) and gen.shape == (2, 25)
    for c, q in [(0, 5), (1, 3)]:
        WWt, psi = ppca_reference(x[y == c], q=q)
        np.testing.assert_allclose(gen.W[c] @ gen.W[c].T, WWt, atol=1e-8 * np.abs(WWt).max())
        np.testing.assert_allclose(gen.psi[c], psi, rtol=1e-6, atol=1e-8 * np.abs(WWt).max())
    np.testing.assert_allclose(gen.psi[1], 1e-4)


def test_log_prob_equals_scipy():
    rng = np.random.default_rng(2)
    x, y = gaussian_classes(rng, [50, 60, 70], D=6)
    gen = fit_class_gaussian(x, y, 3, ClassGaussianConfig(rank=3))
    points = rng.normal(size=(30, 6)) * 4
    labels = rng.integers(0, 3, size=30)
    want = [multivariate_normal(gen.mean[c], model_cov(gen, c)).logpdf(p) for p, c in zip(points, labels)]
    np.testing.assert_allclose(gen.log_prob(points, labels), want, rtol=1e-10)


def test_sample_moments_and_temperature():
    rng = np.random.default_rng(3)
    x, y = gaussian_classes(rng, [200], D=5)
    gen = fit_class_gaussian(x, y, 1, ClassGaussianConfig(rank=2))
    N = 20000
    labels = np.zeros(N, dtype=int)
    for t in (1.0, 0.5):
        draws = gen.sample(labels, seed=4, sampler=ClassGaussianSampler(temperature=t), progress=False)
        C = t ** 2 * model_cov(gen, 0)
        d = np.sqrt(np.diag(C))
        # 5 standard errors: of a mean, sqrt(C_ii / N); of a covariance entry, sqrt((C_ij^2 + C_ii C_jj) / N)
        assert np.all(np.abs(draws.mean(0) - gen.mean[0]) < 5 * d / np.sqrt(N))
        se_cov = np.sqrt((C ** 2 + np.outer(d ** 2, d ** 2)) / N)
        assert np.all(np.abs(np.cov(draws, rowvar=False) - C) < 5 * se_cov)


def test_seed_reproducible_and_labels_kept_in_order():
    rng = np.random.default_rng(5)
    x = np.concatenate([100.0 * c + rng.normal(size=(30, 1, 2, 3)) for c in range(3)]).astype(np.float32)
    gen = fit_class_gaussian(x, np.repeat(np.arange(3), 30), 3, ClassGaussianConfig(rank=2))
    labels = rng.integers(0, 3, size=50)
    sampler = ClassGaussianSampler(batch_size=7)  # several blocks
    a = gen.sample(labels, seed=11, sampler=sampler, progress=False)
    assert a.shape == (50, 1, 2, 3) and a.dtype == np.float32
    np.testing.assert_array_equal(a, gen.sample(labels, seed=11, sampler=sampler, progress=False))
    assert not np.allclose(a, gen.sample(labels, seed=12, sampler=sampler, progress=False))
    nearest = np.abs(a.reshape(50, -1).mean(1)[:, None] - 100.0 * np.arange(3)).argmin(1)
    np.testing.assert_array_equal(nearest, labels)


def test_checkpoint_roundtrip():
    rng = np.random.default_rng(6)
    x, y = gaussian_classes(rng, [40, 40], D=8)
    meta = {"dataset": "toy", "kind": "series", "class_names": ["a", "b"], "channel_names": ["v"]}
    gen = fit_class_gaussian(x.reshape(-1, 1, 8), y, 2, ClassGaussianConfig(rank=3, clip=4.0), meta)
    buf = io.BytesIO()
    torch.save(gen.checkpoint(epoch=0), buf)
    buf.seek(0)
    ckpt = torch.load(buf, weights_only=True)
    assert ckpt["family"] == "class_gaussian" and ckpt["epoch"] == 0
    back = ClassGaussianGenerator.from_checkpoint(ckpt)
    assert back.cfg == gen.cfg and back.data_meta == {**meta, "shape": [1, 8]} and back.cond_dim == 2
    labels = np.array([1, 0, 1, 1])
    np.testing.assert_array_equal(back.sample(labels, seed=3, progress=False),
                                  gen.sample(labels, seed=3, progress=False))
    points = rng.normal(size=(4, 1, 8))
    np.testing.assert_array_equal(back.log_prob(points, labels), gen.log_prob(points, labels))


def test_errors_name_the_problem():
    x = np.zeros((5, 3), np.float32) + np.arange(5)[:, None]
    with pytest.raises(ValueError, match=r"class 1 \('cat'\) has 1 training example"):
        fit_class_gaussian(x, np.array([0, 0, 1, 2, 2]), 3, ClassGaussianConfig(),
                           {"class_names": ["dog", "cat", "cow"]})
    gen = fit_class_gaussian(x, np.array([0, 0, 1, 1, 1]), 2, ClassGaussianConfig())
    np.testing.assert_array_equal(gen.embed(np.array([1, 0, 1])), [[0, 1], [1, 0], [0, 1]])
    with pytest.raises(ValueError, match=r"label 2 is out of range.*\[0, 2\)"):
        gen.embed(np.array([0, 2]))


def test_clip_bounds_drafts():
    rng = np.random.default_rng(7)
    x, y = gaussian_classes(rng, [30, 30], D=10, scale=2.0)
    labels = np.repeat([0, 1], 100)
    free = fit_class_gaussian(x, y, 2, ClassGaussianConfig(rank=2)).sample(labels, seed=0, progress=False)
    clipped = fit_class_gaussian(x, y, 2, ClassGaussianConfig(rank=2, clip=1.0)).sample(labels, seed=0, progress=False)
    assert np.abs(free).max() > 1
    assert np.abs(clipped).max() <= 1
    np.testing.assert_array_equal(clipped, np.clip(free, -1, 1))
