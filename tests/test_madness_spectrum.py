"""The denoiser-Jacobian spectrum of the MADness study against independent computations: a linear map,
torch.autograd.functional.jacobian, numpy eigvalsh, hand-computed spectra and synthetic series."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dualspace.diffusion.model import DiffusionConfig, DiffusionGenerator
from dualspace.madness.spectrum import (bootstrap_mean, denoiser_fn, denoiser_spectrum, eigenvalues,
                                        first_departure, jacobians, jacobians_loop, lanczos_spectrum,
                                        noised_probes, summaries)
from dualspace.nn.unet import UNetConfig


def reference_jacobians(f, x, *args) -> torch.Tensor:
    """J per probe by torch.autograd.functional.jacobian -> (P, D, D)."""
    D = x[0].numel()
    return torch.stack([torch.autograd.functional.jacobian(lambda x_p: f(x_p, *(a[p] for a in args)), x[p])
                        .reshape(D, D) for p in range(len(x))])


class MLP(torch.nn.Module):
    """f(x, c) = W2 tanh(W1 x + U c + b): a 2-layer denoiser-like map (D,) -> (D,) with a per-probe condition."""

    def __init__(self, D: int, hidden: int = 32, d_c: int = 3):
        super().__init__()
        self.l1, self.l2, self.u = torch.nn.Linear(D, hidden), torch.nn.Linear(hidden, D), torch.nn.Linear(d_c, hidden)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.l2(torch.tanh(self.l1(x) + self.u(c)))


def small_model() -> DiffusionGenerator:
    """The small test U-Net with its zero-initialised layers (residual conv2, attention out, head) drawn at
    random, so J is not 0."""
    torch.manual_seed(0)
    net = UNetConfig(base_channels=16, channel_mults=[1, 2], blocks_per_level=1, attention_heads=4, cond_dim=16,
                     in_channels=1, dims=2)
    model = DiffusionGenerator(DiffusionConfig(net=net, T=50), n_classes=10, data_meta={"shape": [1, 8, 8]})
    with torch.no_grad():
        for p in model.parameters():
            if (p == 0).all():
                p.normal_(0, 0.1)
    return model.eval()


def test_linear_denoiser_jacobian_is_A_and_eigenvalues_match_eigvalsh():
    torch.manual_seed(0)
    A = torch.randn(12, 12)
    x = torch.randn(5, 12)
    J = jacobians(lambda x_i: A @ x_i, x)
    assert J.shape == (5, 12, 12)
    torch.testing.assert_close(J, A.expand(5, 12, 12), rtol=0, atol=1e-6)
    A64 = A.double().numpy()
    ref = np.sort(np.linalg.eigvalsh(A64.T @ A64))[::-1]
    np.testing.assert_allclose(eigenvalues(J).numpy(), np.tile(ref, (5, 1)), rtol=1e-5, atol=1e-8)


def test_mlp_jacobians_match_autograd_and_the_loop():
    torch.manual_seed(1)
    f = MLP(10)
    x, c = torch.randn(4, 10), torch.randn(4, 3)
    ref = reference_jacobians(f, x, c)
    assert ref.abs().max() > 0.1
    torch.testing.assert_close(jacobians(f, x, c), ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(jacobians(f, x, c, chunk_size=3), ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(jacobians_loop(f, x, c), ref, rtol=1e-5, atol=1e-6)


def test_jacobians_reject_a_map_that_changes_shape():
    with pytest.raises(ValueError, match="same shape"):
        jacobians(lambda x_i: x_i[:3], torch.randn(2, 5))


def test_unet_denoiser_jacobians_match_autograd():
    model = small_model()
    x_t, t, e = noised_probes(model, np.random.default_rng(0).uniform(-1, 1, (2, 1, 8, 8)), np.array([3, 7]),
                              [10], seed=0)
    f = denoiser_fn(model)
    J = jacobians(f, x_t[0], t[0], e[0])  # (2, 64, 64)
    ref = reference_jacobians(f, x_t[0], t[0], e[0])
    assert J.shape == (2, 64, 64) and ref.abs().max() > 0.1
    torch.testing.assert_close(J, ref, rtol=1e-4, atol=1e-4)
    model.train()
    with pytest.raises(ValueError, match="eval"):
        denoiser_fn(model)


def test_noised_probes_are_the_same_for_another_generation():
    a, b = small_model(), small_model()
    with torch.no_grad():
        for p in b.cond.parameters():
            p.add_(1.0)  # another generation: another embedding, same schedule
    x0, labels = np.zeros((3, 1, 8, 8)), np.array([0, 1, 2])
    xa, ta, ea = noised_probes(a, x0, labels, [5, 40], seed=4)
    xb, tb, eb = noised_probes(b, x0, labels, [5, 40], seed=4)
    assert xa.shape == (2, 3, 1, 8, 8) and ta.shape == (2, 3) and ea.shape == (2, 3, 16)
    torch.testing.assert_close(xa, xb, rtol=0, atol=0)
    assert ta[1].tolist() == [40, 40, 40] and not torch.equal(ea, eb)
    # x0 = 0: x_t = sqrt(1 - alpha_bar_t) noise, one standard normal draw of seed 4 for both timesteps
    noise = torch.randn((3, 1, 8, 8), generator=torch.Generator().manual_seed(4))
    scale = (1 - a.schedule.alpha_bar[torch.tensor([5, 40])]).sqrt().float()
    torch.testing.assert_close(xa, scale.view(2, 1, 1, 1, 1) * noise)
    torch.testing.assert_close(noised_probes(a, x0, labels, [40], seed=4)[0][0], xa[1], rtol=0, atol=0)
    assert not torch.equal(noised_probes(a, x0, labels, [5, 40], seed=5)[0], xa)


def test_summaries_on_hand_computed_spectra():
    flat = summaries(np.array([[1.0, 1.0, 1.0, 1.0]]))
    np.testing.assert_allclose(flat["effective_rank"], [4.0])
    np.testing.assert_allclose(flat["entropy"], [math.log(4)])
    spike = summaries(np.array([[5.0, 0.0, 0.0]]))
    np.testing.assert_allclose(spike["effective_rank"], [1.0])
    np.testing.assert_allclose(spike["entropy"], [0.0], atol=1e-15)
    assert spike["top"][0] == 5.0 and spike["trace"][0] == 5.0
    two = summaries(np.array([[3.0, 1.0, np.nan]]))  # NaN = absent (Lanczos padding)
    np.testing.assert_allclose(two["entropy"], [-(0.75 * math.log(0.75) + 0.25 * math.log(0.25))])


def test_lanczos_top_k_and_hutchinson_trace_match_the_full_spectrum():
    torch.manual_seed(2)
    f = MLP(64, hidden=96)
    x, c = torch.randn(2, 64), torch.randn(2, 3)
    full = eigenvalues(jacobians(f, x, c)).numpy()  # (2, 64)
    top, trace = lanczos_spectrum(f, x, c, k=8, n_hutchinson=4000, seed=0)
    np.testing.assert_allclose(top, full[:, :8], rtol=1e-4)
    np.testing.assert_allclose(trace, full.sum(1), rtol=0.05)
    top, _ = lanczos_spectrum(lambda x_i, c_i: 2 * x_i, torch.randn(1, 4), torch.zeros(1, 1), k=6, n_hutchinson=2)
    np.testing.assert_allclose(top[0, :3], [4.0, 4.0, 4.0], rtol=1e-6)
    assert np.isnan(top[0, 3:]).all()  # eigsh gives at most D - 1: padded to k


def test_denoiser_spectrum_full_and_lanczos_agree_on_the_unet():
    model = small_model()
    x0, labels = np.random.default_rng(1).uniform(-1, 1, (2, 1, 8, 8)), np.array([1, 5])
    full = denoiser_spectrum(model, x0, labels, [5, 30], seed=0)
    assert full["eigenvalues"].shape == (2, 2, 64) and full["effective_rank"].shape == (2, 2)
    x_t, t, e = noised_probes(model, x0, labels, [5, 30], seed=0)
    ref = reference_jacobians(denoiser_fn(model), x_t[1], t[1], e[1]).double()
    np.testing.assert_allclose(full["trace"][1], (ref ** 2).sum((1, 2)).numpy(), rtol=1e-4)
    lz = denoiser_spectrum(model, x0, labels, [30], seed=0, method="lanczos", k=4, n_hutchinson=8)
    assert lz["eigenvalues"].shape == (1, 2, 4)
    np.testing.assert_allclose(lz["eigenvalues"][0], full["eigenvalues"][1, :, :4], rtol=1e-3)
    np.testing.assert_allclose(lz["top"][0], full["top"][1], rtol=1e-3)


def test_bootstrap_sd_is_close_to_the_standard_error():
    values = np.random.default_rng(3).normal(2.0, 1.5, 400)
    mean, sd = bootstrap_mean(values, n_boot=1000, seed=0)
    assert mean == pytest.approx(values.mean())
    assert sd == pytest.approx(values.std(ddof=1) / math.sqrt(400), rel=0.15)


def test_first_departure():
    ref_mean, ref_sd = 1.0, 0.1
    step = [1.0, 1.0, 1.02, 0.98, 2.0, 2.0]  # +10 sd from generation 4
    assert first_departure(step, ref_mean, ref_sd) == 4
    assert first_departure([1.0] * 6, ref_mean, ref_sd) is None
    assert first_departure([1.0, 1.0, 1.2, 1.2], ref_mean, ref_sd, k_sigma=3.0) is None  # 2 sd < 3 sd
    assert first_departure([1.0, 1.0, 1.2], ref_mean, 0.0) == 2  # sd 0: any change counts
    assert first_departure([5.0, 1.0], ref_mean, ref_sd, start=1) is None  # generation 0 is not compared
