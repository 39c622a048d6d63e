"""EMA, DDIM with eta > 0 and x0 thresholding against the papers' formulas, written out here in float64."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from dualspace.diffusion import NoiseSchedule, SamplerConfig, ddim_sample, ddpm_sample
from dualspace.diffusion.ema import EMA
from dualspace.diffusion.samplers import _predict_x0, threshold_x0

# A short schedule with explicit betas: the expected values below take alpha_bar from these numbers
# (np.cumprod), not from NoiseSchedule, so a wrong cumulative product would show up too.
BETAS = np.linspace(0.02, 0.45, 30)


def _eps_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    # a fixed stand-in for the network: nonlinear in x and depends on t, so every step matters
    return 0.5 * torch.tanh(x) + 0.02 * t.view(-1, *([1] * (x.dim() - 1))).to(x.dtype)


def _warmup_decay(decay: float, k: int) -> float:
    # EMA warm-up: d_k = min(decay, (1 + k) / (10 + k)), k = updates so far including this one
    return min(decay, (1 + k) / (10 + k))


# ---------------------------------------------------------------------------------------------- EMA


@pytest.mark.parametrize("decay", [0.3, 0.999])
def test_ema_follows_its_formula_with_warmup(decay):
    # decay = 0.3: d = 2/11, 3/12, then capped at 0.3 from k = 3 on (4/13 > 0.3); decay = 0.999: warm-up throughout.
    # A counter read before the increment (d_1 = 1/10), lerp towards p with weight d instead of 1 - d,
    # or no warm-up each change the expected weights by far more than the tolerance.
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    ema = EMA(model, decay=decay)
    expected = {n: p.detach().double().clone() for n, p in model.named_parameters()}
    steps = [{n: torch.randn(p.shape, dtype=torch.float64) for n, p in model.named_parameters()} for _ in range(5)]
    for k, delta in enumerate(steps, start=1):
        with torch.no_grad():
            for n, p in model.named_parameters():
                p.add_(delta[n].float())  # a known parameter change, as an optimiser step would make
        model.train()(torch.randn(8, 3))  # moves the BatchNorm running statistics
        ema.update(model)
        d = _warmup_decay(decay, k)
        theta = {n: p.detach().double() for n, p in model.named_parameters()}
        expected = {n: d * expected[n] + (1 - d) * theta[n] for n in expected}
        assert ema.updates == k
        got = dict(ema.model.named_parameters())
        for n in expected:
            np.testing.assert_allclose(got[n].double().numpy(), expected[n].numpy(), rtol=1e-6, atol=1e-7, err_msg=n)
        # buffers (running mean/var, num_batches_tracked) are copied, not averaged
        for (name, b_ema), b in zip(ema.model.named_buffers(), model.buffers()):
            assert torch.equal(b_ema, b), name
    assert dict(ema.model.named_buffers())["1.num_batches_tracked"].item() == 5
    # copies, not aliases: changing the live model does not reach the EMA model until the next update
    before = [t.clone() for t in (*ema.model.parameters(), *ema.model.buffers())]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    model.train()(torch.randn(8, 3))
    for a, b in zip(before, (*ema.model.parameters(), *ema.model.buffers())):
        assert torch.equal(a, b)
    assert not any(p.requires_grad for p in ema.model.parameters())


def test_ema_of_a_plain_linear_layer_by_hand():
    # two updates written out as numbers: d_1 = 2/11, d_2 = 3/12 (decay 0.999 is not reached)
    model = nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, -2.0]]))
        model.bias.fill_(0.5)
    ema = EMA(model, decay=0.999)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[3.0, 0.0]]))
        model.bias.fill_(-1.0)
    ema.update(model)
    w1 = 2 / 11 * np.array([1.0, -2.0]) + 9 / 11 * np.array([3.0, 0.0])
    b1 = 2 / 11 * 0.5 + 9 / 11 * -1.0
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.0, 4.0]]))
        model.bias.fill_(2.0)
    ema.update(model)
    w2 = 3 / 12 * w1 + 9 / 12 * np.array([0.0, 4.0])
    b2 = 3 / 12 * b1 + 9 / 12 * 2.0
    np.testing.assert_allclose(ema.model.weight.numpy()[0], w2, rtol=1e-6)
    np.testing.assert_allclose(ema.model.bias.numpy()[0], b2, rtol=1e-6)
    assert ema.updates == 2


# ------------------------------------------------------------------------------- DDIM with eta > 0


def _reference_ddim_eta(x_T: torch.Tensor, S: int, eta: float, seed: int, sigma2_fn=None) -> torch.Tensor:
    """Song et al. 2021, eq. 12 with sigma_t(eta) of eq. 16, in float64; noise replayed from `seed` in step order.

    sigma2_fn(ab_t, ab_prev, beta_t) overrides sigma^2 (used to plug in the DDPM posterior variance)."""
    T = len(BETAS)
    alpha_bar = np.cumprod(1.0 - BETAS)
    # uniform skip: S timesteps from T-1 down to 0 (T, S chosen so that no i (T-1)/(S-1) ends in .5)
    ts = [int(v) for v in np.linspace(0, T - 1, S).round()[::-1]]
    g = torch.Generator().manual_seed(seed)
    x = x_T.double()
    for j, i in enumerate(ts):
        ab_t = alpha_bar[i]
        ab_prev = alpha_bar[ts[j + 1]] if j + 1 < len(ts) else 1.0
        eps = _eps_fn(x.float(), torch.full((len(x),), i)).double()
        x0 = (x - math.sqrt(1 - ab_t) * eps) / math.sqrt(ab_t)
        if sigma2_fn is None:
            sigma2 = (eta * math.sqrt((1 - ab_prev) / (1 - ab_t)) * math.sqrt(1 - ab_t / ab_prev)) ** 2
        else:
            sigma2 = sigma2_fn(ab_t, ab_prev, BETAS[i])
        x = math.sqrt(ab_prev) * x0 + math.sqrt(max(1 - ab_prev - sigma2, 0.0)) * eps
        if sigma2 > 0:
            x = x + math.sqrt(sigma2) * torch.randn(x.shape, generator=g, dtype=torch.float32).double()
    return x


@pytest.mark.parametrize("eta, S", [(0.5, 8), (1.0, 8), (0.3, 30)])
def test_ddim_with_eta_matches_song_et_al_eq_12_and_16(eta, S):
    # Wrong implementations this catches (checked by running them against this test): sigma without either
    # factor, sigma^2 used as sigma, sigma not scaled by eta, the direction term sqrt(1 - ab_prev) without
    # "- sigma^2", or ab_prev read at t - 1 instead of the next DDIM timestep (S < T cases); each moves the
    # output by >> 1e-4.
    sched = NoiseSchedule(torch.tensor(BETAS))
    x_T = torch.randn((4, 2, 3), generator=torch.Generator().manual_seed(1))
    cfg = SamplerConfig(sampler="ddim", steps=S, eta=eta, thresholding="none")
    got = ddim_sample(_eps_fn, sched, x_T, cfg, None, torch.Generator().manual_seed(11), progress=False)
    ref = _reference_ddim_eta(x_T, S, eta, seed=11)
    np.testing.assert_allclose(got.numpy(), ref.numpy(), rtol=1e-4, atol=1e-5)
    # the noise matters: another seed gives another sample
    other = ddim_sample(_eps_fn, sched, x_T, cfg, None, torch.Generator().manual_seed(12), progress=False)
    assert np.abs(other.numpy() - ref.numpy()).max() > 1e-2


def test_ddim_eta_one_over_all_steps_has_ddpm_posterior_variance():
    # With S = T (consecutive steps) and eta = 1, sigma_t^2 must equal the DDPM posterior variance
    # beta~_t = (1 - ab_{t-1}) / (1 - ab_t) beta_t (Ho et al. 2020, eq. 7; Song et al. 2021, below eq. 16).
    T = len(BETAS)
    alpha_bar = np.cumprod(1.0 - BETAS)
    for t in range(1, T):
        ab_t, ab_prev = alpha_bar[t], alpha_bar[t - 1]
        sigma2 = (1 - ab_prev) / (1 - ab_t) * (1 - ab_t / ab_prev)
        assert sigma2 == pytest.approx((1 - ab_prev) / (1 - ab_t) * BETAS[t], rel=1e-12)
    # ... and ddim_sample uses that variance at every step: a reference that plugs in beta~_t directly
    # (not the eta formula) reproduces it; a sigma missing either factor would not.
    sched = NoiseSchedule(torch.tensor(BETAS))
    x_T = torch.randn((3, 5), generator=torch.Generator().manual_seed(2))
    cfg = SamplerConfig(sampler="ddim", steps=T, eta=1.0, thresholding="none")
    got = ddim_sample(_eps_fn, sched, x_T, cfg, None, torch.Generator().manual_seed(5), progress=False)
    ref = _reference_ddim_eta(x_T, T, 1.0, seed=5,
                              sigma2_fn=lambda ab_t, ab_prev, beta_t: (1 - ab_prev) / (1 - ab_t) * beta_t)
    np.testing.assert_allclose(got.numpy(), ref.numpy(), rtol=1e-4, atol=1e-5)
    # eq. 12 with sigma^2 = beta~_t is the DDPM posterior q(x_{t-1} | x_t, x0): the ancestral sampler, fed the
    # same noise in the same order (T - 1 draws each), lands on the same sample
    ddpm = ddpm_sample(_eps_fn, sched, x_T, SamplerConfig(thresholding="none"), None,
                       torch.Generator().manual_seed(5), progress=False)
    np.testing.assert_allclose(got.numpy(), ddpm.numpy(), rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------------------ thresholding


def _imagen_dynamic(x0: np.ndarray, p: float) -> np.ndarray:
    """Saharia et al. 2022, sec. 2.3: s = max(quantile_p |x0|, 1) per sample; x0 <- clip(x0, -s, s) / s."""
    out = np.empty_like(x0)
    for b in range(len(x0)):
        s = max(np.quantile(np.abs(x0[b]).ravel(), p), 1.0)  # numpy's default interpolation is "linear"
        out[b] = np.clip(x0[b], -s, s) / s
    return out


# 10 values per sample, p = 0.8: numpy puts the quantile at sorted position 0.8 * 9 = 7.2, between two
# distinct values, so 'lower', 'higher', 'nearest' or 'midpoint' would give other numbers. torch.quantile's
# default interpolation is also 'linear' (the same definition), which threshold_x0 relies on.
X0 = np.array([
    [0.1, -0.4, 2.0, 3.0, -2.5, 0.7, 1.5, -5.0, 0.2, 4.0],  # |x0| quantile 3.0 + 0.2 (4.0 - 3.0) = 3.2 > 1
    [0.1, -0.2, 0.3, -0.4, 0.5, 0.6, -0.7, 0.8, 0.9, 3.0],  # quantile 0.82 <= 1: only the 3.0 clipped to 1
    [-1.2, -1.4, -1.1, -1.3, -1.6, -9.0, -1.0, -1.5, -1.7, -1.8],  # negative: quantile of |x0|, not of x0
]).reshape(3, 2, 5)
P = 0.8


def test_dynamic_thresholding_matches_imagen():
    q = np.quantile(np.abs(X0).reshape(3, -1), P, axis=1)
    assert q[0] > 1 and q[1] <= 1 and q[2] > 1  # the three cases above
    expected = _imagen_dynamic(X0, P)
    # hand check of the numbers for the first two samples: sorted |x0| of sample 0 has 3.0 and 4.0 at 7 and 8
    np.testing.assert_allclose(expected[0], np.clip(X0[0], -3.2, 3.2) / 3.2)
    np.testing.assert_allclose(expected[1], np.clip(X0[1], -1, 1))
    for dtype in (torch.float32, torch.float64):
        got = threshold_x0(torch.tensor(X0, dtype=dtype), "dynamic", 1.0, P)
        assert got.dtype == dtype and got.shape == X0.shape
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6, atol=1e-7)
    assert np.abs(expected).max() <= 1.0


def test_dynamic_thresholding_with_another_clip_is_imagen_in_units_of_clip():
    # data in [-c, c]: divide by c, apply Imagen's rule for [-1, 1], multiply by c
    c = 2.0
    expected = c * _imagen_dynamic(X0 / c, P)
    got = threshold_x0(torch.tensor(X0, dtype=torch.float32), "dynamic", c, P)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6, atol=1e-7)


def test_static_and_none_thresholding():
    x0 = torch.tensor(X0, dtype=torch.float32)
    static = threshold_x0(x0, "static", 1.5, P)
    np.testing.assert_array_equal(static.numpy(), np.clip(X0, -1.5, 1.5).astype(np.float32))
    assert threshold_x0(x0, "none", 1.0, P) is x0
    # no clip range known (clip_x0 = None): nothing to clip to, whatever the mode
    assert threshold_x0(x0, "dynamic", None, P) is x0 and threshold_x0(x0, "static", None, P) is x0


@pytest.mark.parametrize("mode", ["none", "static", "dynamic"])
def test_predict_x0_keeps_x_t_consistent(mode):
    # x0_hat = (x_t - sqrt(1 - ab) eps) / sqrt(ab) (Ho et al. eq. 15), thresholded; the returned eps must satisfy
    # x_t = sqrt(ab) x0_thresholded + sqrt(1 - ab) eps_returned. Returning the network's eps unchanged after
    # clipping breaks this identity (the raw x0 here exceeds the clip range, so clipping does act).
    sched = NoiseSchedule(torch.tensor(BETAS))
    alpha_bar = np.cumprod(1.0 - BETAS)
    t = torch.tensor([3, 10, 17, 25])
    g = torch.Generator().manual_seed(4)
    x = 2.0 * torch.randn((4, 2, 6), generator=g)
    eps = 0.3 * torch.randn((4, 2, 6), generator=g)
    cfg = SamplerConfig(thresholding=mode, dynamic_quantile=0.9)
    x0_got, eps_got = _predict_x0(sched, x, t, eps, cfg, clip=1.0)

    ab = alpha_bar[t.numpy()].reshape(-1, 1, 1)
    x_np, eps_np = x.double().numpy(), eps.double().numpy()
    x0_raw = (x_np - np.sqrt(1 - ab) * eps_np) / np.sqrt(ab)
    assert np.abs(x0_raw).max() > 1.5
    if mode == "none":
        x0_exp = x0_raw
    elif mode == "static":
        x0_exp = np.clip(x0_raw, -1.0, 1.0)
    else:
        x0_exp = _imagen_dynamic(x0_raw, 0.9)
    np.testing.assert_allclose(x0_got.numpy(), x0_exp, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.sqrt(ab) * x0_got.double().numpy() + np.sqrt(1 - ab) * eps_got.double().numpy(),
                               x_np, rtol=1e-5, atol=1e-5)
    if mode == "none":
        assert eps_got is eps  # nothing thresholded: the network's eps passes through
    else:
        # and the re-derived eps is the closed form (x_t - sqrt(ab) x0_thr) / sqrt(1 - ab)
        np.testing.assert_allclose(eps_got.numpy(), (x_np - np.sqrt(ab) * x0_exp) / np.sqrt(1 - ab),
                                   rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("sampler,eta", [("ddpm", 0.0), ("ddim", 0.0), ("ddim", 1.0)])
def test_the_last_step_returns_the_x0_prediction_without_noise(sampler, eta):
    """Issue 17 asked whether residual noise in drafts comes from the last step: both samplers return
    x0_hat = (x_1 - sqrt(1 - ab_0) eps(x_1, 0)) / sqrt(ab_0) computed from their last input, nothing added."""
    sched = NoiseSchedule(torch.tensor(BETAS))
    ab0 = 1 - BETAS[0]  # alpha_bar at t = 0
    seen = []

    def eps_fn(x, t):
        seen.append((x.clone(), int(t[0])))
        return _eps_fn(x, t)

    cfg = SamplerConfig(sampler=sampler, steps=7, eta=eta, thresholding="none")
    fn = ddpm_sample if sampler == "ddpm" else ddim_sample
    out = fn(eps_fn, sched, torch.randn(4, 2, 6, dtype=torch.float64), cfg, None,
             torch.Generator().manual_seed(0), progress=False)
    x_last, t_last = seen[-1]
    assert t_last == 0
    x0_hat = (x_last - math.sqrt(1 - ab0) * _eps_fn(x_last, torch.zeros(4, dtype=torch.long))) / math.sqrt(ab0)
    torch.testing.assert_close(out, x0_hat, rtol=1e-6, atol=1e-5)  # float32 schedule lookups; noise would be ~0.1
