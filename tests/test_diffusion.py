"""Diffusion generator: schedule, networks, samplers against the papers' formulas, CFG, training, resume."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch

from dualspace.data import load_dataset
from dualspace.diffusion import (DiffusionConfig, DiffusionGenerator, NoiseSchedule, SamplerConfig, TrainConfig,
                                 ddim_timesteps, ddpm_sample, train_diffusion)
from dualspace.generator import ConditionalGenerator, load_generator
from dualspace.nn import UNet, UNetConfig

TINY_2D = UNetConfig(dims=2, in_channels=1, base_channels=16, channel_mults=(1, 2), blocks_per_level=1)
TINY_1D = UNetConfig(dims=1, in_channels=9, base_channels=16, channel_mults=(1, 2), blocks_per_level=1)


def _randomize(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    # zero-initialised heads make eps == 0; give every weight a value so tests see real outputs
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return module


def test_cosine_schedule_matches_nichol_dhariwal():
    T, s = 200, 0.008
    sched = NoiseSchedule.cosine(T)
    f = lambda t: math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
    ref = np.array([f(t + 1) / f(0) for t in range(T)])
    # identical until beta hits its 0.999 cap at the very end
    np.testing.assert_allclose(sched.alpha_bar.numpy()[:-1], ref[:-1], rtol=1e-10)
    assert sched.betas.max() <= 0.999 and (sched.betas > 0).all()
    assert sched.alpha_bar[-1] < 1e-4


@pytest.mark.parametrize("cfg, shape", [
    (TINY_2D, (3, 1, 8, 8)),
    (UNetConfig(dims=2, in_channels=1, base_channels=16, channel_mults=(1, 2)), (2, 1, 28, 28)),
    (UNetConfig(dims=2, in_channels=3, base_channels=16, channel_mults=(1, 2, 2)), (2, 3, 32, 32)),
    (TINY_1D, (3, 9, 128)),
])
def test_unet_shapes(cfg, shape):
    net = _randomize(UNet(cfg))
    x = torch.randn(shape)
    out = net(x, torch.tensor([0, 5, 199][: shape[0]]), torch.randn(shape[0], cfg.cond_dim))
    assert out.shape == x.shape and torch.isfinite(out).all()
    assert out.is_contiguous()


def _model(net_cfg=TINY_2D, n_classes=3, shape=(1, 8, 8), clip=1.0, T=200):
    model = DiffusionGenerator(DiffusionConfig(net=net_cfg, T=T, clip_x0=clip), n_classes,
                               {"dataset": "toy", "shape": list(shape)})
    return _randomize(model).eval()


def test_guidance_formula_and_limits():
    model = _model()
    x = torch.randn(4, 1, 8, 8)
    t = torch.tensor([3, 50, 120, 199])
    e = model.cond(model.onehot(np.array([0, 1, 2, 1])))
    with torch.no_grad():
        eps_c = model.net(x, t, e)
        eps_u = model.net(x, t, model.cond.null.expand_as(e))
        torch.testing.assert_close(model.guided_eps(x, t, e, 2.5), eps_u + 2.5 * (eps_c - eps_u), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(model.guided_eps(x, t, e, 1.0), eps_c)
        torch.testing.assert_close(model.guided_eps(x, t, e, 0.0), eps_u)


def _reference_ddim(eps_fn, sched, x, S):
    # Song et al. 2021 eq. 12 with eta = 0, no clipping, written out independently
    ts = np.linspace(0, sched.T - 1, S).round().astype(int)[::-1]
    for j, i in enumerate(ts):
        ab = sched.alpha_bar[i].item()
        ab_prev = sched.alpha_bar[ts[j + 1]].item() if j + 1 < len(ts) else 1.0
        eps = eps_fn(x, torch.full((len(x),), int(i)))
        x0 = (x - math.sqrt(1 - ab) * eps) / math.sqrt(ab)
        x = math.sqrt(ab_prev) * x0 + math.sqrt(1 - ab_prev) * eps
    return x


@pytest.mark.parametrize("gamma", [1.0, 0.0])
def test_sampling_with_gamma_one_and_zero_reproduces_cond_and_uncond_models(gamma):
    # gamma = 1 must sample the conditional model, gamma = 0 the unconditional one
    model = _model(clip=None)
    labels = np.array([0, 1, 2, 2])
    cfg = SamplerConfig(sampler="ddim", steps=10, eta=0.0, guidance_scale=gamma, thresholding="none")
    got = model.sample(labels, seed=7, sampler=cfg, progress=False)
    x_T = torch.randn((4, 1, 8, 8), generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        e = model.cond(model.onehot(labels))
        e_used = e if gamma == 1.0 else model.cond.null.expand_as(e)
        ref = _reference_ddim(lambda x, t: model.net(x, t, e_used), model.schedule, x_T, 10)
    np.testing.assert_allclose(got, ref.numpy(), rtol=1e-4, atol=1e-4)


def test_ddpm_matches_ho_et_al_algorithm_2():
    # Algorithm 2: x_{t-1} = (x_t - beta_t / sqrt(1 - ab_t) eps) / sqrt(alpha_t) + sigma_t z, sigma_t^2 = beta~_t
    sched = NoiseSchedule.cosine(12)
    eps_fn = lambda x, t: 0.3 * x + 0.01 * t[:, None].float()  # noqa: E731
    x_T = torch.randn(5, 4)
    got = ddpm_sample(eps_fn, sched, x_T, SamplerConfig(thresholding="none"), None,
                      torch.Generator().manual_seed(3), progress=False)
    g = torch.Generator().manual_seed(3)
    x = x_T.double()
    for i in range(11, -1, -1):
        beta, alpha, ab = sched.betas[i], sched.alphas[i], sched.alpha_bar[i]
        eps = eps_fn(x, torch.full((5,), i)).double()
        x_new = (x - beta / torch.sqrt(1 - ab) * eps) / torch.sqrt(alpha)
        if i > 0:
            var = beta * (1 - sched.alpha_bar[i - 1]) / (1 - ab)
            x_new = x_new + torch.sqrt(var) * torch.randn(x.shape, generator=g).double()
        x = x_new
    np.testing.assert_allclose(got.numpy(), x.numpy(), rtol=1e-4, atol=1e-4)


def test_ddim_timesteps():
    ts = ddim_timesteps(200, 20)
    assert len(ts) == 20 and ts[0] == 199 and ts[-1] == 0 and ts == sorted(ts, reverse=True)
    assert ddim_timesteps(200, 500) == list(range(199, -1, -1))


@pytest.mark.parametrize("net_cfg, shape, clip", [(TINY_2D, (1, 8, 8), 1.0), (TINY_1D, (9, 128), None)])
@pytest.mark.parametrize("sampler", [SamplerConfig(sampler="ddpm", guidance_scale=2.0),
                                     SamplerConfig(sampler="ddim", steps=20, eta=0.0, guidance_scale=2.0),
                                     SamplerConfig(sampler="ddim", steps=20, eta=1.0, thresholding="dynamic")])
def test_samplers_finite_shape_range(net_cfg, shape, clip, sampler):
    model = _model(net_cfg, shape=shape, clip=clip, T=50)
    x = model.sample(np.array([0, 1, 2, 0, 1]), seed=0, sampler=sampler, progress=False)
    assert x.shape == (5, *shape) and x.dtype == np.float32 and np.isfinite(x).all()
    if clip is not None:
        assert x.min() >= -1.0 - 1e-5 and x.max() <= 1.0 + 1e-5
    # same seed, same drafts
    np.testing.assert_array_equal(x, model.sample(np.array([0, 1, 2, 0, 1]), seed=0, sampler=sampler, progress=False))


@pytest.fixture(scope="module")
def digits_train():
    s = load_dataset("digits", seed=0).splits["train"]
    return s.x, s.label


def test_loss_falls_on_digits(digits_train):
    x, y = digits_train
    losses = []
    train_cfg = TrainConfig(steps=150, batch_size=64, lr=2e-3, warmup=10, checkpoint_every=1000, seed=0)
    import tempfile, pathlib  # noqa: E401
    with tempfile.TemporaryDirectory() as d:
        train_diffusion(x, y, 10, DiffusionConfig(net=TINY_2D), train_cfg, pathlib.Path(d) / "m.pt",
                        on_step=lambda s, loss: losses.append(loss))
    assert len(losses) == 150
    assert np.mean(losses[-30:]) < 0.6 * np.mean(losses[:10])


def test_resume_after_interrupt_continues_from_checkpoint(tmp_path, digits_train, caplog):
    x, y = digits_train[0][:200], digits_train[1][:200]
    cfg = DiffusionConfig(net=TINY_2D)
    train_cfg = TrainConfig(steps=12, batch_size=16, checkpoint_every=4, seed=1)
    # reference: uninterrupted
    ref = train_diffusion(x, y, 10, cfg, train_cfg, tmp_path / "ref" / "model.pt")

    class Killed(Exception):
        pass

    def kill_at_6(step, loss):
        if step == 6:
            raise Killed

    out = tmp_path / "run" / "model.pt"
    with pytest.raises(Killed):
        train_diffusion(x, y, 10, cfg, train_cfg, out, on_step=kill_at_6)
    assert not out.exists() and (out.parent / "resume.pt").exists()
    seen = []
    with caplog.at_level(logging.INFO, logger="dualspace.diffusion"):
        model = train_diffusion(x, y, 10, cfg, train_cfg, out, on_step=lambda s, loss: seen.append(s))
    assert seen == list(range(5, 13))  # continued at step 5, after the checkpoint at 4
    assert "resuming" in caplog.text and "at step 4" in caplog.text
    assert not (out.parent / "resume.pt").exists()
    for k, v in ref.state_dict().items():
        torch.testing.assert_close(model.state_dict()[k], v, rtol=1e-5, atol=1e-6)


def test_non_finite_loss_names_the_step(tmp_path, digits_train):
    x = digits_train[0][:32].copy()
    x[:] = np.nan
    with pytest.raises(FloatingPointError, match="at step 1"):
        train_diffusion(x, digits_train[1][:32], 10, DiffusionConfig(net=TINY_2D),
                        TrainConfig(steps=3, batch_size=8), tmp_path / "m.pt")
    assert not (tmp_path / "m.pt").exists()


def test_checkpoint_roundtrip_and_mismatch(tmp_path, digits_train):
    x, y = digits_train[0][:64], digits_train[1][:64]
    path = tmp_path / "model.pt"
    model = train_diffusion(x, y, 10, DiffusionConfig(net=TINY_2D), TrainConfig(steps=2, batch_size=8), path,
                            data_meta={"dataset": "digits"})
    loaded = load_generator(path, dataset="digits", shape=(1, 8, 8), n_classes=10)
    assert isinstance(loaded, ConditionalGenerator)
    np.testing.assert_allclose(loaded.embed(np.arange(10)), model.embed(np.arange(10)), atol=1e-6)
    assert loaded.embed(np.arange(10)).shape == (10, 64)
    with pytest.raises(ValueError, match=r"model\.pt was trained for dataset='digits', but 'hapt' is expected"):
        load_generator(path, dataset="hapt")
    with pytest.raises(ValueError, match="n_classes=10, but 6"):
        load_generator(path, n_classes=6)
    # the file is plain tensors and containers: weights_only loading needs no allow-listing
    torch.load(path, weights_only=True)


def test_v_prediction_converts_to_eps():
    # Salimans & Ho 2022: v = sqrt(ab) eps - sqrt(1 - ab) x0 and x_t = sqrt(ab) x0 + sqrt(1 - ab) eps
    # => eps = sqrt(1 - ab) x_t + sqrt(ab) v; a network that outputs the true v yields the true eps
    model = DiffusionGenerator(DiffusionConfig(net=TINY_2D, prediction="v"), 3, {"shape": [1, 8, 8]})
    x0, noise = torch.randn(4, 1, 8, 8), torch.randn(4, 1, 8, 8)
    t = torch.tensor([0, 60, 150, 199])
    ab = model.schedule.alpha_bar[t].float().view(-1, 1, 1, 1)
    x_t = model.schedule.q_sample(x0, t, noise)
    v = ab.sqrt() * noise - (1 - ab).sqrt() * x0
    model.net.forward = lambda x, tt, e: v  # an oracle network
    e = torch.zeros(4, 64)
    torch.testing.assert_close(model.eps(x_t, t, e), noise, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="prediction"):
        DiffusionConfig(prediction="x0")


@pytest.mark.parametrize("dims, shape", [(1, (2, 9, 32)), (2, (2, 1, 8, 8))])
def test_circular_padding_makes_the_unet_shift_equivariant(dims, shape):
    # With circular padding every layer commutes with a circular shift by the downsampling factor (2 for two
    # levels): conv, GroupNorm, attention, nearest upsampling. One zero-padded border would break it, so this
    # checks that the padding mode reaches every convolution.
    cfg = UNetConfig(dims=dims, in_channels=shape[1], base_channels=16, channel_mults=(1, 2), blocks_per_level=1,
                     padding="circular")
    net = _randomize(UNet(cfg)).eval()
    x, t, e = torch.randn(shape), torch.tensor([3, 150]), torch.randn(2, cfg.cond_dim)
    shift = lambda a: torch.roll(a, 2, dims=-1)  # noqa: E731
    torch.testing.assert_close(net(shift(x), t, e), shift(net(x, t, e)), rtol=1e-4, atol=1e-5)
    zeros = _randomize(UNet(UNetConfig(**{**cfg.to_dict(), "padding": "zeros"}))).eval()
    assert not torch.allclose(zeros(shift(x), t, e), shift(zeros(x, t, e)), atol=1e-3)
    with pytest.raises(ValueError, match="padding"):
        UNetConfig(padding="mirror")


def test_class_normalisation_standardises_each_class_and_undoes_it_on_drafts():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 50)
    scale = np.array([[0.01, 1.0, 3.0], [2.0, 0.5, 0.02]])  # class x channel
    offset = np.array([[5.0, -1.0, 0.0], [0.0, 2.0, -7.0]])
    x = (rng.normal(size=(100, 3, 16)) * scale[labels][:, :, None] + offset[labels][:, :, None]).astype(np.float32)
    net = UNetConfig(dims=1, in_channels=3, base_channels=16, channel_mults=(1, 2), blocks_per_level=1)
    model = DiffusionGenerator(DiffusionConfig(net=net, clip_x0=None, prediction="v", normalize="class"), 2,
                               {"shape": [3, 16]})
    model.fit_class_scale(x, labels)
    for c in (0, 1):
        np.testing.assert_allclose(model.class_mean[c].numpy(), x[labels == c].mean(axis=(0, 2)), rtol=1e-5)
        np.testing.assert_allclose(model.class_std[c].numpy(), x[labels == c].std(axis=(0, 2)), rtol=1e-5)
    z = model.to_model(torch.as_tensor(x), torch.as_tensor(labels))
    for c in (0, 1):
        zc = z[torch.as_tensor(labels == c)]
        torch.testing.assert_close(zc.mean(dim=(0, 2)), torch.zeros(3), atol=1e-4, rtol=0)
        torch.testing.assert_close(zc.std(dim=(0, 2), unbiased=False), torch.ones(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(model.to_data(z, torch.as_tensor(labels)), torch.as_tensor(x), atol=1e-4, rtol=1e-5)
    # the untrained net predicts v = 0, i.e. x0 = sqrt(ab) x_t: drafts are the class's mean plus a shrunk
    # draw in standardised units, so their per-class offsets and scales follow the train data's
    drafts = model.sample(np.repeat([0, 1], 200), seed=0, sampler=SamplerConfig(sampler="ddim", steps=10,
                                                                                 thresholding="none"),
                          progress=False)
    for c in (0, 1):
        d = drafts[200 * c: 200 * (c + 1)]
        np.testing.assert_allclose(d.mean(axis=(0, 2)), offset[c], atol=0.1 * scale[c].max() + 1e-3)
        ratio = d.std(axis=(0, 2)) / scale[c]
        assert ratio.max() / ratio.min() < 1.3  # every channel at its own class's scale
    with pytest.raises(ValueError, match="clip_x0"):
        DiffusionConfig(normalize="class", clip_x0=1.0)


def test_class_normalised_loss_is_the_plain_loss_on_standardised_data():
    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1, 2], 8)
    x = (rng.normal(size=(24, 2, 16)) * (1 + labels)[:, None, None] + 3 * labels[:, None, None]).astype(np.float32)
    net = UNetConfig(dims=1, in_channels=2, base_channels=16, channel_mults=(1, 2), blocks_per_level=1)
    plain = DiffusionGenerator(DiffusionConfig(net=net, clip_x0=None), 3, {"shape": [2, 16]})
    norm = DiffusionGenerator(DiffusionConfig(net=net, clip_x0=None, normalize="class"), 3, {"shape": [2, 16]})
    _randomize(plain)
    norm.load_state_dict({**plain.state_dict(), "class_mean": norm.class_mean, "class_std": norm.class_std})
    norm.fit_class_scale(x, labels)
    mean = np.stack([x[labels == c].mean(axis=(0, 2)) for c in range(3)])[labels][:, :, None]
    std = np.stack([x[labels == c].std(axis=(0, 2)) for c in range(3)])[labels][:, :, None]
    onehot = torch.nn.functional.one_hot(torch.as_tensor(labels), 3).float()
    a = norm.loss(torch.as_tensor(x), onehot, 0.1, torch.Generator().manual_seed(0))
    b = plain.loss(torch.as_tensor((x - mean) / std, dtype=torch.float32), onehot, 0.1,
                   torch.Generator().manual_seed(0))
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("k", [1, 3])
def test_slow_components_apart_are_drawn_from_the_class_gaussian_fitted_on_train(k):
    """slow_apart = k: the per-class Gaussian of the train windows' k slowest DCT coefficients per channel (k = 1:
    the window mean) is fitted as np.mean / np.cov of coefficients computed with scipy's orthonormal DCT-II, drafts
    carry slow components drawn from it (their sample mean and covariance match), and the loss is the plain loss
    on the windows without their slow components."""
    from scipy.fft import dct, idct

    rng = np.random.default_rng(2)
    labels = np.repeat([0, 1], 400)
    mu = np.array([[1.0, -2.0], [0.0, 3.0]])
    cov = np.array([[[1.0, 0.8], [0.8, 1.0]], [[0.5, -0.3], [-0.3, 2.0]]])
    means = np.stack([rng.multivariate_normal(mu[c], cov[c]) for c in labels])  # (800, 2)
    drift = rng.normal(0, 0.5, (800, 2, 1)) * np.linspace(-1, 1, 16)  # a slow component beside the mean
    x = (rng.normal(0, 0.3, (800, 2, 16)) + means[:, :, None] + drift).astype(np.float32)
    net = UNetConfig(dims=1, in_channels=2, base_channels=16, channel_mults=(1, 2), blocks_per_level=1)
    model = DiffusionGenerator(DiffusionConfig(net=net, clip_x0=None, prediction="v", slow_apart=k), 2,
                               {"shape": [2, 16]})
    model.fit_slow_components(x, labels)
    coef = dct(x.astype(np.float64), type=2, norm="ortho", axis=-1)[..., :k].reshape(800, -1)  # channel-major
    for c in (0, 1):
        np.testing.assert_allclose(model.slow_mu[c].numpy(), coef[labels == c].mean(0), rtol=1e-5, atol=1e-6)
        L = model.slow_chol[c].double().numpy()
        cov_c = np.atleast_2d(np.cov(coef[labels == c], rowvar=False))
        ridged = cov_c + 1e-4 * np.trace(cov_c) / len(cov_c) * np.eye(len(cov_c))  # the documented ridge
        np.testing.assert_allclose(L @ L.T, ridged, rtol=1e-5, atol=1e-6)
    drafts = model.sample(np.repeat([0, 1], 2000), seed=0, progress=False,
                          sampler=SamplerConfig(sampler="ddim", steps=2, thresholding="none"))
    d_coef = dct(drafts.astype(np.float64), type=2, norm="ortho", axis=-1)[..., :k].reshape(4000, -1)
    for c in (0, 1):
        fitted = model.slow_chol[c].double().numpy()
        sigma = fitted @ fitted.T
        sd = np.sqrt(np.diag(sigma))
        se_mean = sd / np.sqrt(2000)  # 5 standard errors of a sample mean / covariance of 2000 Gaussian draws
        assert (np.abs(d_coef[2000 * c: 2000 * (c + 1)].mean(0) - model.slow_mu[c].numpy()) < 5 * se_mean).all()
        se_cov = np.sqrt((sigma ** 2 + np.outer(sd ** 2, sd ** 2)) / 2000)
        assert (np.abs(np.cov(d_coef[2000 * c: 2000 * (c + 1)], rowvar=False) - sigma) < 5 * se_cov).all()
    _randomize(model)  # the loss is the joint model's loss on the windows without their slow part
    joint = DiffusionGenerator(DiffusionConfig(net=net, clip_x0=None, prediction="v"), 2, {"shape": [2, 16]})
    joint.load_state_dict({key: v for key, v in model.state_dict().items() if not key.startswith("slow_")})
    onehot = torch.nn.functional.one_hot(torch.as_tensor(labels), 2).float()
    spectrum = dct(x.astype(np.float64), type=2, norm="ortho", axis=-1)
    spectrum[..., :k] = 0
    rest = idct(spectrum, type=2, norm="ortho", axis=-1).astype(np.float32)
    a = model.loss(torch.as_tensor(x), onehot, 0.1, torch.Generator().manual_seed(0))
    b = joint.loss(torch.as_tensor(rest), onehot, 0.1, torch.Generator().manual_seed(0))
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="for series"):
        DiffusionGenerator(DiffusionConfig(net=UNetConfig(dims=2), slow_apart=1), 2, {"shape": [1, 8, 8]})


def test_shifted_schedule_moves_log_snr_by_twice_the_log_shift():
    from dualspace.diffusion.schedule import NoiseSchedule

    base = NoiseSchedule.named("cosine", 200)
    for shift in (0.25, 2.0):
        s = NoiseSchedule.named("cosine", 200, shift)
        snr = lambda ab: torch.log(ab) - torch.log1p(-ab)  # noqa: E731
        end = int(torch.nonzero(s.betas >= 0.999)[0]) if (s.betas >= 0.999).any() else 200  # clamped from there
        assert end > 190
        torch.testing.assert_close(snr(s.alpha_bar)[:end], (snr(base.alpha_bar) + 2 * math.log(shift))[:end],
                                   rtol=0, atol=1e-6)
        assert (s.alpha_bar < base.alpha_bar).all() == (shift < 1)
    assert NoiseSchedule.named("cosine", 200, 1.0).betas.equal(base.betas)


def test_class_scale_with_slow_components_apart_is_the_std_of_the_rest():
    from scipy.fft import dct, idct

    rng = np.random.default_rng(3)
    labels = np.repeat([0, 1], 60)
    x = (rng.normal(0, [[0.1], [2.0]], (120, 2, 16)) + rng.normal(0, 5.0, (120, 2, 1))).astype(np.float32)
    net = UNetConfig(dims=1, in_channels=2, base_channels=16, channel_mults=(1, 2), blocks_per_level=1)
    model = DiffusionGenerator(DiffusionConfig(net=net, clip_x0=None, normalize="class", slow_apart=2), 2,
                               {"shape": [2, 16]})
    model.fit_class_scale(x, labels)
    spectrum = dct(x.astype(np.float64), type=2, norm="ortho", axis=-1)
    spectrum[..., :2] = 0
    rest = idct(spectrum, type=2, norm="ortho", axis=-1)
    for c in (0, 1):
        np.testing.assert_allclose(model.class_mean[c].numpy(), x[labels == c].mean(axis=(0, 2)), rtol=1e-5)
        np.testing.assert_allclose(model.class_std[c].numpy(), rest[labels == c].std(axis=(0, 2)), rtol=1e-4)


def test_fast_components_apart_are_independent_class_gaussians_and_the_rest_is_diffused():
    """fast_apart = k: per class, channel and component, the mean / std (ddof 1) of the k fastest DCT-II
    coefficients (scipy, orthonormal) of the train windows; drafts carry fast components with those moments (within
    5 standard errors); together with slow_apart the loss is the plain loss on the windows without both bands."""
    from scipy.fft import dct, idct

    rng = np.random.default_rng(4)
    labels = np.repeat([0, 1], 300)
    x = (rng.normal(0, 1, (600, 2, 16)) * np.array([[0.5], [2.0]]) + 3.0 * labels[:, None, None]).astype(np.float32)
    net = UNetConfig(dims=1, in_channels=2, base_channels=16, channel_mults=(1, 2), blocks_per_level=1)
    model = DiffusionGenerator(DiffusionConfig(net=net, clip_x0=None, prediction="v", slow_apart=2, fast_apart=5), 2,
                               {"shape": [2, 16]})
    model.fit_slow_components(x, labels)
    model.fit_fast_components(x, labels)
    spectrum = dct(x.astype(np.float64), type=2, norm="ortho", axis=-1)
    for c in (0, 1):
        fast = spectrum[labels == c][..., -5:]
        np.testing.assert_allclose(model.fast_mu[c].numpy(), fast.mean(0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(model.fast_sd[c].numpy(), fast.std(0, ddof=1), rtol=1e-5)
    drafts = model.sample(np.repeat([0, 1], 2000), seed=1, progress=False,
                          sampler=SamplerConfig(sampler="ddim", steps=2, thresholding="none"))
    d_fast = dct(drafts.astype(np.float64), type=2, norm="ortho", axis=-1)[..., -5:]
    for c in (0, 1):
        got, sd = d_fast[2000 * c: 2000 * (c + 1)], model.fast_sd[c].double().numpy()
        assert (np.abs(got.mean(0) - model.fast_mu[c].numpy()) < 5 * sd / np.sqrt(2000)).all()
        assert (np.abs(got.std(0) - sd) < 5 * sd / np.sqrt(2 * 2000)).all()
    _randomize(model)
    plain = DiffusionGenerator(DiffusionConfig(net=net, clip_x0=None, prediction="v"), 2, {"shape": [2, 16]})
    plain.load_state_dict({key: v for key, v in model.state_dict().items() if not key.startswith(("slow_", "fast_"))})
    spectrum[..., :2] = 0
    spectrum[..., -5:] = 0
    rest = idct(spectrum, type=2, norm="ortho", axis=-1).astype(np.float32)
    onehot = torch.nn.functional.one_hot(torch.as_tensor(labels), 2).float()
    a = model.loss(torch.as_tensor(x), onehot, 0.1, torch.Generator().manual_seed(0))
    b = plain.loss(torch.as_tensor(rest), onehot, 0.1, torch.Generator().manual_seed(0))
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_fast_scale_draws_each_windows_fast_band_rms_from_the_class_log_normal():
    """fast_scale: per class, the log fast-band RMS per channel of the train windows (scipy DCT) has its mean and
    covariance fitted (+ the documented ridge); the coefficients' moments are fitted in units of that RMS; drafts'
    log RMS has the fitted mean (5 standard errors) and spread."""
    from scipy.fft import dct

    rng = np.random.default_rng(5)
    labels = np.repeat([0, 1], 400)
    level = np.exp(rng.normal(-1.0 + 1.5 * labels[:, None, None], 0.6, (800, 2, 1)))  # still and fidgety windows
    x = (rng.normal(0, 1, (800, 2, 16)) * level).astype(np.float32)
    net = UNetConfig(dims=1, in_channels=2, base_channels=16, channel_mults=(1, 2), blocks_per_level=1)
    model = DiffusionGenerator(DiffusionConfig(net=net, clip_x0=None, prediction="v", fast_apart=6, fast_scale=True),
                               2, {"shape": [2, 16]})
    model.fit_fast_components(x, labels)
    fast = dct(x.astype(np.float64), type=2, norm="ortho", axis=-1)[..., -6:]
    rms = np.sqrt((fast ** 2).mean(-1)) + 1e-12
    for c in (0, 1):
        log_rms = np.log(rms[labels == c])
        np.testing.assert_allclose(model.fast_log_mu[c].numpy(), log_rms.mean(0), rtol=1e-5, atol=1e-6)
        cov = np.cov(log_rms, rowvar=False)
        L = model.fast_log_chol[c].double().numpy()
        np.testing.assert_allclose(L @ L.T, cov + 1e-4 * np.trace(cov) / 2 * np.eye(2), rtol=1e-5, atol=1e-7)
        unit = fast[labels == c] / rms[labels == c][..., None]
        np.testing.assert_allclose(model.fast_sd[c].numpy(), unit.std(0, ddof=1), rtol=1e-5)
    drafts = model.sample(np.repeat([0, 1], 2000), seed=2, progress=False,
                          sampler=SamplerConfig(sampler="ddim", steps=2, thresholding="none"))
    d_fast = dct(drafts.astype(np.float64), type=2, norm="ortho", axis=-1)[..., -6:]
    d_log = np.log(np.sqrt((d_fast ** 2).mean(-1)))
    for c in (0, 1):
        got, sd = d_log[2000 * c: 2000 * (c + 1)], np.sqrt(np.diag(np.cov(np.log(rms[labels == c]), rowvar=False)))
        # a drawn window's RMS is its drawn scale times the RMS of 6 unit-variance draws: its log mean moves by
        # E log of that (about -0.09 for 6 components), its spread grows a little
        assert (np.abs(got.mean(0) - model.fast_log_mu[c].numpy()) < 0.2).all()
        assert (got.std(0) > 0.8 * sd).all() and (got.std(0) < 1.5 * sd).all()
    with pytest.raises(ValueError, match="fast_apart > 0"):
        DiffusionConfig(fast_scale=True)


def test_rest_scale_fits_the_log_rms_of_the_diffused_part_and_drafts_carry_it():
    """rest_scale: per class, the log RMS per channel of the windows' diffused part (here: without the 2 slowest DCT
    components, scipy) has its mean and covariance fitted (+ the ridge); drafts' diffused parts have that log RMS
    (the draw sets it exactly: 5 standard errors of the mean); the loss is the plain loss on unit-RMS parts."""
    from scipy.fft import dct, idct

    rng = np.random.default_rng(6)
    labels = np.repeat([0, 1], 400)
    level = np.exp(rng.normal(-1.0 + 1.5 * labels[:, None, None], 0.5, (800, 2, 1)))
    x = (rng.normal(0, 1, (800, 2, 16)) * level + rng.normal(0, 2, (800, 2, 1))).astype(np.float32)
    net = UNetConfig(dims=1, in_channels=2, base_channels=16, channel_mults=(1, 2), blocks_per_level=1)
    model = DiffusionGenerator(DiffusionConfig(net=net, clip_x0=None, prediction="v", slow_apart=2, rest_scale=True),
                               2, {"shape": [2, 16]})
    model.fit_slow_components(x, labels)
    model.fit_rest_scale(x, labels)
    spectrum = dct(x.astype(np.float64), type=2, norm="ortho", axis=-1)
    spectrum[..., :2] = 0
    rest = idct(spectrum, type=2, norm="ortho", axis=-1)
    log_rms = np.log(np.sqrt((rest ** 2).mean(-1)))
    for c in (0, 1):
        lc = log_rms[labels == c]
        np.testing.assert_allclose(model.rest_log_mu[c].numpy(), lc.mean(0), rtol=1e-5, atol=1e-6)
        cov = np.cov(lc, rowvar=False)
        L = model.rest_log_chol[c].double().numpy()
        np.testing.assert_allclose(L @ L.T, cov + 1e-4 * np.trace(cov) / 2 * np.eye(2), rtol=1e-5, atol=1e-7)
    drafts = model.sample(np.repeat([0, 1], 2000), seed=3, progress=False,
                          sampler=SamplerConfig(sampler="ddim", steps=2, thresholding="none"))
    d_spec = dct(drafts.astype(np.float64), type=2, norm="ortho", axis=-1)
    d_spec[..., :2] = 0
    d_log = np.log(np.sqrt((idct(d_spec, type=2, norm="ortho", axis=-1) ** 2).mean(-1)))
    for c in (0, 1):
        got, sd = d_log[2000 * c: 2000 * (c + 1)], np.sqrt(np.diag(np.cov(log_rms[labels == c], rowvar=False)))
        assert (np.abs(got.mean(0) - model.rest_log_mu[c].numpy()) < 5 * sd / np.sqrt(2000)).all()
    _randomize(model)
    plain = DiffusionGenerator(DiffusionConfig(net=net, clip_x0=None, prediction="v"), 2, {"shape": [2, 16]})
    plain.load_state_dict({key: v for key, v in model.state_dict().items() if not key.startswith(("slow_", "rest_"))})
    unit = (rest / np.sqrt((rest ** 2).mean(-1, keepdims=True))).astype(np.float32)
    onehot = torch.nn.functional.one_hot(torch.as_tensor(labels), 2).float()
    a = model.loss(torch.as_tensor(x), onehot, 0.1, torch.Generator().manual_seed(0))
    b = plain.loss(torch.as_tensor(unit), onehot, 0.1, torch.Generator().manual_seed(0))
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
