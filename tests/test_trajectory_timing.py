"""Trajectory timing: NLLs against scipy, the heads recover known laws, the aggregation property, and the
assembly helper's invariants."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from dualspace.trajectory.data import GeometryStats
from dualspace.trajectory.timing import (TimingConfig, TimingModel, compose_spatiotemporal_sequence,
                                         dirichlet_nll, fit_timing, lognormal_nll, mean_profile,
                                         sample_dirichlet, timing_targets)


@pytest.fixture(autouse=True)
def one_thread():
    """Single-threaded torch, restored afterwards (the machine is shared)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def prefix_mask(lengths, T: int) -> torch.Tensor:
    """(B, T) bool: True on the first lengths[b] steps of row b."""
    return torch.arange(T)[None, :] < torch.as_tensor(lengths)[:, None]


def uniform_model(T: int, alpha: float, knots: int | None = None, cond_dim: int = 3) -> TimingModel:
    """A TimingModel whose profile head outputs the same concentration `alpha` everywhere."""
    model = TimingModel(cond_dim, T, hidden=8, knots=knots)
    with torch.no_grad():
        model.profile_head.weight.zero_()
        model.profile_head.bias.fill_(math.log(math.expm1(alpha - model.eps)))  # softplus^-1
    return model


def test_lognormal_nll_matches_scipy():
    rng = np.random.default_rng(0)
    log_d, mu = rng.normal(6, 1, 200), rng.normal(6, 1, 200)
    log_sigma = rng.normal(-1, 0.7, 200)
    ours = lognormal_nll(*(torch.tensor(v) for v in (log_d, mu, log_sigma))).numpy()
    ref = -stats.lognorm.logpdf(np.exp(log_d), s=np.exp(log_sigma), scale=np.exp(mu))
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-10)


def test_dirichlet_nll_matches_scipy_and_ignores_masked_steps():
    rng = np.random.default_rng(1)
    B, T = 8, 12
    lengths = rng.integers(2, T + 1, B)
    lengths[0] = T
    alpha = rng.gamma(2.0, 2.0, (B, T)) + 0.05
    w = np.zeros((B, T))
    for b, n in enumerate(lengths):
        w[b, :n] = rng.dirichlet(alpha[b, :n])
    mask = prefix_mask(lengths, T)
    ours = dirichlet_nll(torch.tensor(w), torch.tensor(alpha), mask).numpy()
    ref = [-stats.dirichlet.logpdf(w[b, :n], alpha[b, :n]) for b, n in enumerate(lengths)]
    np.testing.assert_allclose(ours, ref, rtol=1e-9)

    # anything on the masked steps (zeros, junk, negative concentrations) changes neither value nor gradient
    junk_w, junk_a = w.copy(), alpha.copy()
    pad = ~mask.numpy()
    junk_w[pad] = rng.uniform(0, 5, pad.sum())
    junk_a[pad] = rng.uniform(-3, 3, pad.sum())
    grads = []
    for a_np, w_np in [(alpha, w), (junk_a, junk_w)]:
        a = torch.tensor(a_np, requires_grad=True)
        dirichlet_nll(torch.tensor(w_np), a, mask).sum().backward()
        grads.append(a.grad)
    np.testing.assert_allclose(dirichlet_nll(torch.tensor(junk_w), torch.tensor(junk_a), mask).numpy(), ours)
    assert torch.isfinite(grads[1]).all() and (grads[1][~mask] == 0).all()
    torch.testing.assert_close(grads[0], grads[1])


def test_timing_targets_duration_and_profile():
    dt = np.array([[10.0, 20.0, 30.0, 99.0], [5.0, 5.0, 0.0, 0.0]])
    mask = np.array([[True, True, True, False], [True, True, False, False]])
    D, w = timing_targets(dt, mask)
    np.testing.assert_allclose(D, [60.0, 10.0])
    np.testing.assert_allclose(w, [[1 / 6, 1 / 3, 1 / 2, 0], [0.5, 0.5, 0, 0]])
    with pytest.raises(ValueError, match="path 1 .*dt <= 0"):
        timing_targets(np.array([[1.0, 2.0], [1.0, 0.0]]), np.ones((2, 2), bool))


def ramp(T: int) -> np.ndarray:
    """The known profile law of the synthetic paths: concentrations rising from 2 to 8 along the path."""
    return 2 + 6 * np.arange(T) / (T - 1)


def synthetic_paths(n: int, T: int, seed: int):
    """Conditions c in [-1, 1], log D = 6 + 0.8 c + 0.3 eps, profiles ~ Dirichlet(ramp[:k]) over k = 5..T steps."""
    rng = np.random.default_rng(seed)
    c = rng.uniform(-1, 1, (n, 1))
    D = np.exp(6 + 0.8 * c[:, 0] + 0.3 * rng.normal(size=n))
    lengths = rng.integers(5, T + 1, n)
    w = np.zeros((n, T))
    for i, k in enumerate(lengths):
        w[i, :k] = rng.dirichlet(ramp(T)[:k])
    return c.astype(np.float32), D, w, prefix_mask(lengths, T).numpy()


@pytest.fixture(scope="module")
def fitted():
    """A timing model fitted on 3,000 synthetic paths with a known law (a few seconds)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    cond, D, w, mask = synthetic_paths(3000, T=16, seed=0)
    cfg = TimingConfig(hidden=32, steps=1000, batch_size=256, seed=0)
    yield fit_timing(cond, D, w, mask, cfg, progress=False)
    torch.set_num_threads(n)


def test_duration_head_recovers_mu_and_sigma(fitted):
    model, history = fitted
    assert np.mean(history["duration_nll"][-50:]) < np.mean(history["duration_nll"][:50])
    grid = torch.linspace(-0.9, 0.9, 7)[:, None]
    with torch.no_grad():
        mu, log_sigma, _ = model(grid)
    np.testing.assert_allclose(mu.numpy(), 6 + 0.8 * grid[:, 0].numpy(), atol=0.05)
    np.testing.assert_allclose(log_sigma.exp().numpy(), 0.3, rtol=0.1)

    # on fresh paths: the fitted law is as good as the true one, a doubled or halved sigma clearly worse
    cond, D, _, _ = synthetic_paths(4000, T=16, seed=1)
    c, log_d = torch.tensor(cond), torch.tensor(np.log(D), dtype=torch.float32)
    with torch.no_grad():
        mu, log_sigma, _ = model(c)
    true = lognormal_nll(log_d, 6 + 0.8 * c[:, 0], torch.full_like(log_d, math.log(0.3))).mean().item()
    fit = lognormal_nll(log_d, mu, log_sigma).mean().item()
    assert abs(fit - true) < 0.03
    for factor in (2.0, 0.5):  # expected excess: log f + (1/f^2 - 1) / 2 = 0.32 and 0.81 nats
        wrong = lognormal_nll(log_d, mu, log_sigma + math.log(factor)).mean().item()
        assert wrong - fit > 0.25


def test_profile_head_recovers_known_concentrations(fitted):
    model, history = fitted
    assert np.mean(history["profile_nll"][-50:]) < np.mean(history["profile_nll"][:50])
    with torch.no_grad():
        _, _, alpha = model(torch.linspace(-0.9, 0.9, 7)[:, None])
    # the fit starts from one flat moment-matched concentration; the ramp 2 -> 8 must be learned
    np.testing.assert_allclose(alpha.numpy(), np.broadcast_to(ramp(16), alpha.shape), rtol=0.12)


def test_profile_head_with_uniform_alpha_gives_a_constant_profile_in_expectation():
    T, n, N, a = 10, 7, 20000, 3.0
    for knots in (None, 4):
        model = uniform_model(T, a, knots)
        cond = torch.zeros(N, 3)
        mask = prefix_mask([n] * N, T)
        _, w = model.sample(cond, mask, seed=0)
        var = (1 / n) * (1 - 1 / n) / (n * a + 1)  # Dirichlet variance of one step
        assert (w[:, n:] == 0).all()
        np.testing.assert_allclose(w[:, :n].mean(0).numpy(), 1 / n, atol=5 * math.sqrt(var / N))
        np.testing.assert_allclose(w[:, :n].var(0).numpy(), var, rtol=0.1)
        _, w_mean = model.sample(cond[:3], mask[:3], deterministic=True)
        np.testing.assert_allclose(w_mean[:, :n].numpy(), 1 / n, rtol=1e-6)


def test_knot_template_is_linearly_upsampled():
    T, K = 13, 4
    model = TimingModel(2, T, hidden=8, knots=K)
    knots = np.array([-1.0, 2.0, 0.5, 3.0])
    with torch.no_grad():
        model.profile_head.weight.zero_()
        model.profile_head.bias.copy_(torch.tensor(knots))
        _, _, alpha = model(torch.zeros(1, 2))
    raw = np.interp(np.linspace(0, K - 1, T), np.arange(K), knots)
    np.testing.assert_allclose(alpha[0].numpy(), np.log1p(np.exp(raw)) + model.eps, rtol=1e-6)


def test_aggregation_property_active_steps_vs_zeroed_tail():
    """Dirichlet over the n active steps == a length-T Dirichlet with its tail zeroed and renormalised."""
    T, n, N = 12, 5, 40000
    alpha = torch.tensor(np.random.default_rng(2).gamma(2.0, 1.5, T) + 0.3)
    ours = sample_dirichlet(alpha.expand(N, T), prefix_mask([n] * N, T), torch.Generator().manual_seed(0))
    torch.manual_seed(1)
    full = torch.distributions.Dirichlet(alpha).sample((N,))
    tail = full[:, :n] / full[:, :n].sum(-1, keepdim=True)
    assert (ours[:, n:] == 0).all()
    a, b = ours[:, :n].numpy(), tail.numpy()
    for f in (lambda x: x, lambda x: x[:, :, None] * x[:, None, :]):  # first and second moments
        fa, fb = f(a), f(b)
        se = np.sqrt((fa.var(0) + fb.var(0)) / N)
        assert (np.abs(fa.mean(0) - fb.mean(0)) < 5 * se + 1e-12).all()
    a0 = alpha[:n].sum().item()
    np.testing.assert_allclose(a.mean(0), (alpha[:n] / a0).numpy(), atol=5 * a.std(0).max() / math.sqrt(N))


def assembly_case(B: int = 6, T: int = 15, seed: int = 0):
    torch.manual_seed(seed)
    model = TimingModel(3, T, hidden=16).eval()
    lengths = torch.tensor([T, 2, 7, 11, 3, T][:B])
    return model, torch.randn(B, T, 2), prefix_mask(lengths, T), torch.randn(B, 3)


def test_assembly_dt_positive_sums_to_D_zero_on_padding():
    model, geometry, mask, cond = assembly_case()
    stats = GeometryStats(np.array([1.5, -2.0]), np.array([20.0, 9.0]))
    seq, out_mask = compose_spatiotemporal_sequence(geometry, mask, cond, model, stats, seed=3)
    assert seq.shape == (*mask.shape, 3) and torch.equal(out_mask, mask)
    D, _ = model.sample(cond, mask, seed=3)
    dt = seq[..., 2]
    assert (dt[mask] > 0).all() and (dt[~mask] == 0).all()
    torch.testing.assert_close(dt.sum(-1), D, rtol=1e-5, atol=0)
    expect = geometry.numpy() * stats.std + stats.mean
    np.testing.assert_allclose(seq[..., :2][mask].numpy(), expect[mask.numpy()], rtol=1e-6)
    assert (seq[..., :2][~mask] == 0).all()
    again, _ = compose_spatiotemporal_sequence(geometry, mask, cond, model, stats, seed=3)
    other, _ = compose_spatiotemporal_sequence(geometry, mask, cond, model, stats, seed=4)
    assert torch.equal(again, seq) and not torch.equal(other, seq)
    with pytest.raises(ValueError, match="transpose"):
        compose_spatiotemporal_sequence(geometry.transpose(1, 2), mask, cond, model, stats)


def test_assembly_deterministic_mode_returns_the_mean_profile():
    model, geometry, mask, cond = assembly_case()
    stats = GeometryStats(np.zeros(2), np.ones(2))
    seq, _ = compose_spatiotemporal_sequence(geometry, mask, cond, model, stats, deterministic=True)
    with torch.no_grad():
        mu, _, alpha = model(cond)
    a = alpha.numpy() * mask.numpy()
    w = a / a.sum(1, keepdims=True)
    np.testing.assert_allclose(seq[..., 2].numpy(), np.exp(mu.numpy())[:, None] * w, rtol=1e-5)
    torch.testing.assert_close(mean_profile(alpha, mask), torch.tensor(w, dtype=torch.float32))


def test_assembly_keeps_dt_positive_for_extreme_concentrations():
    T, N = 15, 200
    model = uniform_model(T, alpha=1.001e-3)  # alpha ~ eps: gamma draws at the smallest float
    with torch.no_grad():
        model.profile_head.bias[0] = 1e9  # one huge step: the others' share underflows after normalising
    mask = prefix_mask(torch.randint(2, T + 1, (N,), generator=torch.Generator().manual_seed(0)), T)
    seq, _ = compose_spatiotemporal_sequence(torch.zeros(N, T, 2), mask, torch.zeros(N, 3), model,
                                             GeometryStats(np.zeros(2), np.ones(2)))
    assert (seq[..., 2][mask] > 0).all() and (seq[..., 2][~mask] == 0).all()


def test_sampled_duration_follows_the_lognormal_of_the_head():
    model, _, _, cond = assembly_case()
    N = 20000
    c = cond[2:3].expand(N, -1)
    D, _ = model.sample(c, torch.ones(N, model.T, dtype=torch.bool), seed=1)
    with torch.no_grad():
        mu, log_sigma, _ = model(cond[2:3])
    sigma = log_sigma.exp().item()
    log_d = D.log().double()
    assert abs(log_d.mean().item() - mu.item()) < 5 * sigma / math.sqrt(N)
    assert abs(log_d.std().item() / sigma - 1) < 5 / math.sqrt(2 * N)
    assert stats.kstest(D.numpy(), stats.lognorm(s=sigma, scale=math.exp(mu.item())).cdf).pvalue > 1e-3


def test_fit_timing_is_reproducible_from_its_seed():
    cond, D, w, mask = synthetic_paths(200, T=8, seed=3)
    cfg = TimingConfig(hidden=8, steps=15, batch_size=32, seed=5)
    (m1, h1), (m2, h2) = (fit_timing(cond, D, w, mask, cfg, progress=False) for _ in range(2))
    assert h1 == h2
    _, h3 = fit_timing(cond, D, w, mask, TimingConfig(hidden=8, steps=15, batch_size=32, seed=6), progress=False)
    assert h3 != h1
    for (k, v1), v2 in zip(m1.state_dict().items(), m2.state_dict().values()):
        assert torch.equal(v1, v2), k
    with pytest.raises(ValueError, match="disagree"):
        fit_timing(cond[:10], D, w, mask, cfg, progress=False)
