"""Metric functions against references: torch-fidelity's Frechet distance, a direct O(N^2) MMD, the prdc package."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dualspace import distances


@pytest.fixture
def clouds():
    rng = np.random.default_rng(0)
    return rng.normal(size=(300, 6)), rng.normal(0.3, 1.2, size=(250, 6))


def test_frechet_matches_torch_fidelity(clouds):
    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_statistics_to_metric

    x, y = clouds
    stats = [{"mu": a.mean(0), "sigma": np.cov(a, rowvar=False)} for a in (x, y)]
    ref = fid_statistics_to_metric(stats[0], stats[1], verbose=False)[KEY_METRIC_FID]
    assert distances.frechet_distance(x, y) == pytest.approx(ref, rel=1e-10)
    assert distances.frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)


@pytest.mark.parametrize("n_x, n_y", [(40, 25), (40, 300), (300, 25)])
def test_frechet_with_fewer_samples_than_dimensions_matches_the_psd_square_root(n_x, n_y):
    # FID's case (200 drafts, 2048-d features): rank-deficient covariances, against the PSD square root of S1
    # (eigh; scipy's sqrtm may return a non-principal root of a singular matrix)
    rng = np.random.default_rng(1)
    mix = rng.normal(size=(64, 64))
    x, y = rng.normal(size=(n_x, 64)) @ mix, rng.normal(0.2, 1.1, size=(n_y, 64)) @ mix
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    w, v = np.linalg.eigh(s1)
    r1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T  # S1^{1/2}, so Tr((S1 S2)^{1/2}) = Tr((S1^{1/2} S2 S1^{1/2})^{1/2})
    ref_tr = np.sqrt(np.clip(np.linalg.eigvalsh(r1 @ s2 @ r1), 0, None)).sum()
    diff = x.mean(0) - y.mean(0)
    ref = diff @ diff + np.trace(s1) + np.trace(s2) - 2 * ref_tr
    assert distances.frechet_distance(x, y) == pytest.approx(ref, rel=1e-6)
    assert abs(distances.frechet_distance(x, x)) < 1e-9 * np.trace(s1)


def test_mmd_matches_direct_computation(clouds):
    x, y = clouds
    sigma = 1.7
    k = lambda a, b: np.exp(-((a[:, None, :] - b[None, :, :]) ** 2).sum(-1) / (2 * sigma**2))  # noqa: E731
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    m, n = len(x), len(y)
    ref = ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
           - 2 * kxy.mean())
    # a block smaller than the inputs exercises the blockwise sums
    assert distances.mmd2_unbiased(x, y, bandwidth=sigma, block=64) == pytest.approx(ref, rel=1e-9)
    # median heuristic: the median pairwise distance of the pooled sample
    z = np.concatenate([x, y])
    d = np.sqrt(((z[:, None] - z[None]) ** 2).sum(-1))[np.triu_indices(len(z), 1)]
    assert distances.median_bandwidth(x, y) == pytest.approx(np.median(d))
    assert abs(distances.mmd2_unbiased(x[:150], x[150:])) < 0.01 < distances.mmd2_unbiased(x, y)


def test_prdc_matches_prdc_package(clouds):
    from prdc import compute_prdc

    x, y = clouds
    ref = compute_prdc(real_features=x, fake_features=y, nearest_k=5)
    got = distances.prdc(x, y, k=5, block=50)
    for key in ("precision", "recall", "density", "coverage"):
        assert got[key] == pytest.approx(ref[key], abs=1e-12), key


def test_coverage_alone_matches_the_prdc_package():
    from prdc import compute_prdc

    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(300, 5)), rng.normal(0.5, 1.2, size=(80, 5))
    ref = compute_prdc(real_features=x, fake_features=y, nearest_k=5)["coverage"]
    assert distances.coverage(x, y, k=5, block=64) == pytest.approx(ref, abs=1e-12)
    # one fake point: the real points whose 5-NN ball holds it (brute force)
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    radius = np.sort(d, 1)[:, 5]
    assert distances.coverage(x, y[:1], k=5) == pytest.approx(np.mean(np.linalg.norm(x - y[0], axis=1) < radius))
    assert distances.coverage(x, y[:0], k=5) == 0.0


def test_logdet_cov_scales_with_spread():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(500, 4))
    assert distances.logdet_cov(2 * x) == pytest.approx(distances.logdet_cov(x) + 4 * math.log(4), abs=1e-9)
