"""Mixture VAE: Gumbel-softmax, losses against torch.distributions / scipy, the ELBO by hand, conditioning at init,
shapes, checkpoints, config errors, a learning test on simulated prototypes, seeding, and the channel curriculum."""

from __future__ import annotations

import io
import logging
import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch import distributions as dist
from torch.nn import functional as F

from dualspace.mixture_vae.losses import (LogitMoG, LossConfig, bernoulli_nll, dirichlet_log_density, elbo,
                                          gaussian_nll, kl_categorical, kl_normal_std, logit_mog_log_density,
                                          mixture_vae_loss, pi_prior_penalty, usage_entropy)
from dualspace.mixture_vae.model import (CONDITIONINGS, LIKELIHOODS, BlockCondition, MixtureVAE, MixtureVAEConfig,
                                         gumbel_softmax_st)
from dualspace.mixture_vae.train import MixtureTrainConfig, collapse_signs, should_unlock, train_mixture_vae

torch.set_num_threads(1)
SMALL = dict(trunk=[8, 16], hidden=32, embed_dim=8)  # a tiny network: these tests check formulas, not capacity


def small(**kw) -> MixtureVAEConfig:
    return MixtureVAEConfig(**{**SMALL, **kw})


def seeded_model(cfg: MixtureVAEConfig, shape=(1, 8, 8), seed: int = 0) -> MixtureVAE:
    torch.manual_seed(seed)
    return MixtureVAE(cfg, shape).eval()


# -- straight-through Gumbel-softmax ---------------------------------------------------------------------------
def test_gumbel_st_forward_is_one_hot_and_backward_is_the_soft_gradient():
    logits = torch.randn(6, 5, requires_grad=True)
    w = torch.randn(6, 5)  # a linear read-out, so the gradient depends on the sample
    y = gumbel_softmax_st(logits, 0.7, torch.Generator().manual_seed(3), hard=True)
    assert torch.equal(y.detach(), F.one_hot(y.detach().argmax(-1), 5).float())
    (grad_st,) = torch.autograd.grad((y * w).sum(), logits)

    # the soft sample by hand, from the same uniforms
    u = torch.rand(6, 5, generator=torch.Generator().manual_seed(3))
    soft = torch.softmax((logits - torch.log(-torch.log(u))) / 0.7, -1)
    assert torch.equal(y.detach().argmax(-1), soft.detach().argmax(-1))
    (grad_soft,) = torch.autograd.grad((soft * w).sum(), logits)
    torch.testing.assert_close(grad_st, grad_soft)


def test_gumbel_argmax_follows_softmax_of_logits():
    logits = torch.tensor([1.0, 0.0, -0.5, 2.0])
    n = 40_000
    y = gumbel_softmax_st(logits.expand(n, 4), 0.5, torch.Generator().manual_seed(0))
    counts = y.sum(0).numpy()
    expected = torch.softmax(logits, 0).numpy() * n
    assert stats.chisquare(counts, expected).pvalue > 1e-3
    # and a wrong law is rejected by the same test (the test can fail)
    assert stats.chisquare(counts, np.full(4, n / 4)).pvalue < 1e-6


# -- loss terms against independent computations -------------------------------------------------------------
def test_kl_normal_std_matches_torch_and_monte_carlo():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(3, 4, 2, generator=g), torch.randn(3, 4, 2, generator=g)
    ours = kl_normal_std(mu, logvar)
    assert ours.shape == (3, 4)
    ref = dist.kl_divergence(dist.Normal(mu, (0.5 * logvar).exp()), dist.Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(ours, ref)
    q = dist.Normal(mu[0, 0].double(), (0.5 * logvar[0, 0]).exp().double())
    z = q.sample((400_000,))
    mc = (q.log_prob(z) - dist.Normal(0.0, 1.0).log_prob(z)).sum(-1).mean()
    assert abs(mc.item() - ours[0, 0].item()) < 0.02 * max(1.0, ours[0, 0].item())


def test_kl_categorical_matches_torch_and_is_safe_at_zero():
    g = torch.Generator().manual_seed(1)
    q = torch.softmax(torch.randn(5, 4, generator=g), -1)
    log_pi = torch.log_softmax(torch.randn(4, generator=g), -1)
    ref = dist.kl_divergence(dist.Categorical(probs=q), dist.Categorical(logits=log_pi))
    torch.testing.assert_close(kl_categorical(q, log_pi), ref)
    # q = 0 where pi = 0 (a locked channel): finite value and finite gradients
    logits = torch.tensor([[0.3, -1.0, -math.inf]], requires_grad=True)
    q0 = torch.softmax(logits, -1)
    lp = torch.log_softmax(torch.tensor([0.0, 0.5, -math.inf]), -1)
    kl = kl_categorical(q0, lp)
    kl.sum().backward()
    ref0 = dist.kl_divergence(dist.Categorical(probs=q0[:, :2]), dist.Categorical(logits=lp[:2]))
    torch.testing.assert_close(kl, ref0)
    assert torch.isfinite(logits.grad[:, :2]).all()


def test_dirichlet_log_density_matches_scipy():
    rng = np.random.default_rng(0)
    for alpha in ([0.5, 0.5, 0.5], [2.0, 1.0, 3.5, 0.7]):
        p = rng.dirichlet(np.ones(len(alpha)), size=4)
        ours = dirichlet_log_density(torch.tensor(p), torch.tensor(alpha, dtype=torch.float64))
        ref = [stats.dirichlet.logpdf(pi, alpha) for pi in p]
        np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-10)
    # scalar alpha and the pi penalty from log pi
    p = rng.dirichlet(np.ones(5))
    np.testing.assert_allclose(dirichlet_log_density(torch.tensor(p), 0.5).item(),
                               stats.dirichlet.logpdf(p, [0.5] * 5), rtol=1e-10)
    np.testing.assert_allclose(pi_prior_penalty(torch.tensor(np.log(p)), 2.0).item(),
                               -stats.dirichlet.logpdf(p, [2.0] * 5), rtol=1e-10)


def test_reconstruction_nlls_match_torch_distributions():
    g = torch.Generator().manual_seed(2)
    x, mean, log_sigma = (torch.randn(3, 1, 4, 4, generator=g) for _ in range(3))
    ref = -dist.Normal(mean, log_sigma.exp()).log_prob(x).flatten(1).sum(-1)
    torch.testing.assert_close(gaussian_nll(x, mean, log_sigma), ref)
    xb = torch.randint(0, 2, (3, 1, 4, 4), generator=g).float() * 2 - 1  # {-1, 1} images
    logits = torch.randn(3, 1, 4, 4, generator=g)
    ref = -dist.Bernoulli(logits=logits).log_prob((xb + 1) / 2).flatten(1).sum(-1)
    torch.testing.assert_close(bernoulli_nll(xb, logits), ref)


def test_usage_entropy_by_hand():
    q = torch.tensor([[0.7, 0.3, 0.0], [0.1, 0.5, 0.4]])
    qbar = np.array([0.4, 0.4, 0.2])
    assert usage_entropy(q).item() == pytest.approx(-(qbar * np.log(qbar)).sum(), rel=1e-6)
    assert usage_entropy(torch.tensor([[1.0, 0.0], [1.0, 0.0]])).item() == 0.0


def test_logit_mog_density_matches_scipy():
    g = torch.Generator().manual_seed(4)
    logits, means = torch.randn(3, 4, generator=g, dtype=torch.float64), torch.randn(4, 4, generator=g,
                                                                                     dtype=torch.float64)
    scale = 0.8
    ours = logit_mog_log_density(logits, means, torch.tensor(math.log(scale), dtype=torch.float64))
    ref = [np.log(np.mean([stats.multivariate_normal(m, scale ** 2 * np.eye(4)).pdf(lv) for m in means.numpy()]))
           for lv in logits.numpy()]
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-10)


# -- the test ELBO assembled by hand ----------------------------------------------------------------------------
def test_elbo_k1_is_the_standard_vae_elbo():
    model = seeded_model(small(K=1, D=2))
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    ours = elbo(model, x, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        _, mu, logvar = model.encode(x)
        std = (0.5 * logvar).exp()
        z = mu + std * torch.randn(mu.shape, generator=torch.Generator().manual_seed(5))
        dec = model.decode(z[:, 0], torch.zeros(4, dtype=torch.long))
        log_px = dist.Normal(dec["mean"], dec["log_sigma"].exp()).log_prob(x).flatten(1).sum(-1)
        kl = dist.kl_divergence(dist.Normal(mu, std), dist.Normal(0.0, 1.0)).sum((1, 2))
    torch.testing.assert_close(ours, log_px - kl)


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_elbo_k3_enumerates_channels(likelihood):
    model = seeded_model(small(K=3, likelihood=likelihood), seed=1)
    with torch.no_grad():
        model.pi_logits.copy_(torch.tensor([0.2, -0.4, 0.1]))
    x = (torch.rand(5, 1, 8, 8) > 0.5).float() * 2 - 1
    ours = elbo(model, x, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        logits, mu, logvar = model.encode(x)
        std = (0.5 * logvar).exp()
        z = mu + std * torch.randn(mu.shape, generator=torch.Generator().manual_seed(6))
        total = torch.zeros(5)
        for k in range(3):
            dec = model.decode(z[:, k], torch.full((5,), k))
            if likelihood == "gaussian":
                log_px = dist.Normal(dec["mean"], dec["log_sigma"].exp()).log_prob(x)
            else:
                log_px = dist.Bernoulli(logits=dec["x_logits"]).log_prob((x + 1) / 2)
            kl = dist.kl_divergence(dist.Normal(mu[:, k], std[:, k]), dist.Normal(0.0, 1.0)).sum(-1)
            total += torch.softmax(logits, -1)[:, k] * (log_px.flatten(1).sum(-1) - kl)
        total -= dist.kl_divergence(dist.Categorical(logits=logits), dist.Categorical(logits=model.pi_logits))
    torch.testing.assert_close(ours, total)


def test_training_loss_assembled_by_hand():
    model = seeded_model(small(K=3))
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    cfg = LossConfig(beta=0.5, regulariser="kl_pi", kl_c_weight=2.0, usage_entropy_weight=0.3, alpha_pi=2.0)
    out = model(x, 1.0, generator=torch.Generator().manual_seed(0))
    loss, terms = mixture_vae_loss(out, x, cfg, model.log_pi(), n_data=100)
    recon = -dist.Normal(out["mean"], out["log_sigma"].exp()).log_prob(x).flatten(1).sum(-1)
    kl_z = dist.kl_divergence(dist.Normal(out["mu"], (0.5 * out["logvar"]).exp()), dist.Normal(0.0, 1.0)).sum((1, 2))
    kl_c = dist.kl_divergence(dist.Categorical(probs=out["q"]), dist.Categorical(logits=model.pi_logits))
    qbar = out["q"].mean(0)
    pi = torch.softmax(model.pi_logits, 0).detach().numpy()
    ref = (recon + 0.5 * kl_z + 2.0 * kl_c).mean() + 0.3 * (qbar * qbar.log()).sum() \
        - stats.dirichlet.logpdf(pi, [2.0] * 3) / 100
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)
    assert terms["recon"] == pytest.approx(recon.mean().item(), rel=1e-5)
    # the logit mixture prior instead of KL(q || pi); sparsity sign on the usage entropy; no pi penalty
    cfg = LossConfig(beta=0.5, regulariser="logit_mog", kl_c_weight=2.0, usage_entropy_weight=0.3,
                     usage_entropy_sign="sparsity", logit_mog_radius=4.0, logit_mog_scale=1.5)
    mog = LogitMoG(3, 4.0, 1.5)
    loss, _ = mixture_vae_loss(out, x, cfg, model.log_pi(), n_data=100, logit_mog=mog)
    prior = dist.MixtureSameFamily(dist.Categorical(probs=torch.ones(3) / 3),
                                   dist.Independent(dist.Normal(4.0 * torch.eye(3), 1.5), 1))
    ref = (recon + 0.5 * kl_z - 2.0 * prior.log_prob(out["logits_raw"])).mean() - 0.3 * (qbar * qbar.log()).sum()
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)


# -- conditioning at initialisation -----------------------------------------------------------------------------
def test_cin_stable_at_init_is_groupnorm_for_any_embedding():
    torch.manual_seed(0)
    block = BlockCondition("cin", 16, 8, stable=True)
    h = torch.randn(3, 16, 4, 4) * 3 + 1
    for e in (torch.randn(3, 8), 10 * torch.randn(3, 8)):
        torch.testing.assert_close(block(h, e), F.group_norm(h, 8))
    block.norm_enabled = False  # warm start: FiLM alone, the identity at init
    torch.testing.assert_close(block(h, torch.randn(3, 8)), h)


def test_film_at_init_is_identity_and_reference_cin_is_not():
    torch.manual_seed(0)
    h, e = torch.randn(3, 16, 4, 4) * 3 + 1, torch.randn(3, 8)
    torch.testing.assert_close(BlockCondition("film", 16, 8)(h, e), h)
    broken = BlockCondition("cin", 16, 8, stable=False)(h, e)
    normed = F.group_norm(h, 8)
    assert not torch.allclose(broken, normed, atol=0.1) and not torch.allclose(broken, h, atol=0.1)
    # default-init gamma is small: the reference block shrinks the normalised features (|gamma| ~ 0.5, not 1)
    block = BlockCondition("cin", 16, 32, stable=False)
    assert block.affine(torch.randn(1000, 32))[:, :16].abs().mean() < 0.75


@pytest.mark.parametrize("conditioning,stable,same", [("cin", True, True), ("film", True, True),
                                                      ("cin", False, False), ("concat", True, False)])
def test_decoder_ignores_the_channel_at_init_only_with_zero_init_conditioning(conditioning, stable, same):
    model = seeded_model(small(K=3, conditioning=conditioning, cin_stable=stable))
    z = torch.randn(4, 2)
    with torch.no_grad():
        a = model.decode(z, torch.zeros(4, dtype=torch.long))["mean"]
        b = model.decode(z, torch.ones(4, dtype=torch.long))["mean"]
    assert torch.allclose(a, b) == same


# -- shapes, masks, checkpoints, configs ------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28)])
@pytest.mark.parametrize("conditioning", CONDITIONINGS)
@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_shapes(shape, conditioning, likelihood):
    K, D, B = 4, 2, 3
    model = seeded_model(small(K=K, D=D, conditioning=conditioning, likelihood=likelihood), shape)
    x = torch.rand(B, *shape) * 2 - 1
    out = model(x, 1.0, generator=torch.Generator().manual_seed(0))
    assert out["logits"].shape == out["q"].shape == out["weights"].shape == (B, K)
    assert out["mu"].shape == out["logvar"].shape == out["z_all"].shape == (B, K, D)
    assert out["z"].shape == (B, D) and out["channel"].shape == (B,)
    torch.testing.assert_close(out["z"], out["z_all"][torch.arange(B), out["channel"]])
    assert out["mean"].shape == (B, *shape)
    if likelihood == "gaussian":
        lo, hi = math.log(model.cfg.sigma_min), math.log(model.cfg.sigma_max)
        assert out["log_sigma"].shape == (B, *shape) and out["x_logits"] is None
        assert lo <= out["log_sigma"].min() and out["log_sigma"].max() <= hi
    else:
        assert out["log_sigma"] is None and out["x_logits"].shape == (B, *shape)
    dec = model.decode(torch.randn(B, D), torch.softmax(torch.randn(B, K), -1))  # soft channel weights
    assert dec["mean"].shape == (B, *shape)
    img = model.generate(torch.tensor([0, 3]), torch.Generator().manual_seed(0))
    assert img.shape == (2, *shape) and img.abs().max() <= 1


def test_channel_mask_locks_channels():
    model = seeded_model(small(K=5))
    with torch.no_grad():
        model.head_c.bias.copy_(torch.tensor([0.0, 0.0, 5.0, 5.0, 5.0]))  # locked channels would win
    mask = torch.tensor([True, True, False, False, False])
    x = torch.rand(200, 1, 8, 8) * 2 - 1
    out = model(x, 1.0, channel_mask=mask, generator=torch.Generator().manual_seed(0))
    assert set(out["channel"].tolist()) <= {0, 1}
    assert (out["q"][:, 2:] == 0).all() and (out["weights"][:, 2:] == 0).all()
    assert set(model(x, 1.0, generator=torch.Generator().manual_seed(0))["channel"].tolist()) & {2, 3, 4}


def test_checkpoint_round_trip():
    model = seeded_model(small(K=3, conditioning="cin"))
    model.norm_enabled = False
    with torch.no_grad():
        model.pi_logits.copy_(torch.tensor([0.1, 0.2, 0.3]))
    model.unlocked[2] = False
    buf = io.BytesIO()
    torch.save(model.checkpoint(), buf)
    buf.seek(0)
    ckpt = torch.load(buf, weights_only=True)
    assert ckpt["family"] == "mixture_vae" and ckpt["in_shape"] == [1, 8, 8]
    loaded = MixtureVAE.from_checkpoint(ckpt)
    assert loaded.norm_enabled is False and loaded.unlocked.tolist() == [True, True, False]
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    a = model(x, 0.5, generator=torch.Generator().manual_seed(1))
    b = loaded(x, 0.5, generator=torch.Generator().manual_seed(1))
    for key in ("q", "mu", "mean", "log_sigma"):
        assert torch.equal(a[key], b[key])
    torch.testing.assert_close(elbo(model, x, generator=torch.Generator().manual_seed(0)),
                               elbo(loaded, x, generator=torch.Generator().manual_seed(0)))
    with pytest.raises(ValueError, match="diffusion"):
        MixtureVAE.from_checkpoint({**ckpt, "family": "diffusion"})


@pytest.mark.parametrize("cls,kw,key", [
    (MixtureVAEConfig, {"K": 0}, "mixture_vae.model.K"),
    (MixtureVAEConfig, {"D": 0}, "mixture_vae.model.D"),
    (MixtureVAEConfig, {"conditioning": "foo"}, "mixture_vae.model.conditioning"),
    (MixtureVAEConfig, {"sigma_max": 0.01}, "mixture_vae.model.sigma_max"),
    (LossConfig, {"regulariser": "bar"}, "mixture_vae.loss.regulariser"),
    (LossConfig, {"beta": -1.0}, "mixture_vae.loss.beta"),
    (MixtureTrainConfig, {"epochs": 0}, "mixture_vae.train.epochs"),
    (MixtureTrainConfig, {"unlock_usage": 1.5}, "mixture_vae.train.unlock_usage"),
])
def test_bad_config_names_the_key(cls, kw, key):
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        cls(**kw)


def test_from_dict_round_trip_and_unknown_keys():
    cfg = MixtureVAEConfig(K=4, trunk=[16, 32])
    assert MixtureVAEConfig.from_dict(cfg.to_dict()) == cfg
    assert LossConfig.from_dict(LossConfig(beta=2.0).to_dict()) == LossConfig(beta=2.0)
    with pytest.raises(ValueError, match="Kk"):
        MixtureVAEConfig.from_dict({"Kk": 3})


# -- training ---------------------------------------------------------------------------------------------------
def simulated_prototypes(n_per: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Simulated data: three well-separated 8x8 prototypes (horizontal bar, vertical bar, diagonal) + noise."""
    protos = -np.ones((3, 8, 8), np.float32)
    protos[0, 3:5, :] = 1
    protos[1, :, 3:5] = 1
    protos[2][np.eye(8, dtype=bool) | np.eye(8, k=1, dtype=bool)] = 1
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), n_per)
    x = protos[y] + 0.15 * rng.standard_normal((len(y), 8, 8)).astype(np.float32)
    return np.clip(x, -1, 1)[:, None], y


FAST = dict(epochs=6, batch_size=32, anneal_epochs=4, progress=False)


def test_training_clusters_simulated_prototypes():
    x, y = simulated_prototypes()
    train = MixtureTrainConfig(epochs=30, batch_size=16, anneal_epochs=15, progress=False)
    model, hist = train_mixture_vae(x, small(K=3), LossConfig(), train, seed=0, x_val=x[:30])
    with torch.no_grad():
        c = model.encode(torch.as_tensor(x))[0].argmax(-1).numpy()
    purity = sum(np.bincount(y[c == k]).max() for k in np.unique(c)) / len(y)
    assert purity > 0.9 and len(np.unique(c)) == 3
    assert len(hist) == 30 and {"tau", "loss", "kl_per_channel", "usage", "resp_entropy", "n_dead", "n_unlocked",
                                 "norm_enabled", "val_elbo"} <= set(hist[-1])
    assert len(hist[-1]["kl_per_channel"]) == len(hist[-1]["usage"]) == 3 and hist[-1]["n_dead"] == 0
    assert np.isfinite(hist[-1]["val_elbo"]) and hist[-1]["tau"] == pytest.approx(0.5)
    assert not model.training and next(model.parameters()).device.type == "cpu"


def test_training_is_seeded():
    x, _ = simulated_prototypes(20)
    cfg, loss, train = small(K=3), LossConfig(), MixtureTrainConfig(**{**FAST, "epochs": 2})
    a, hist_a = train_mixture_vae(x, cfg, loss, train, seed=0)
    b, hist_b = train_mixture_vae(x, cfg, loss, train, seed=0)
    for (name, wa), wb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(wa, wb), name
    assert [h["loss"] for h in hist_a] == [h["loss"] for h in hist_b]
    other, _ = train_mixture_vae(x, cfg, loss, train, seed=1)
    assert not torch.equal(other.embed, a.embed)


def test_film_warm_start_switches_the_norm_on():
    x, _ = simulated_prototypes(10)
    _, hist = train_mixture_vae(x, small(K=2), LossConfig(), MixtureTrainConfig(
        **{**FAST, "epochs": 3, "film_warmup_epochs": 2}), seed=0)
    assert [h["norm_enabled"] for h in hist] == [False, False, True]


def test_curriculum_locks_then_unlocks():
    x, _ = simulated_prototypes(20)
    train = MixtureTrainConfig(**{**FAST, "epochs": 3, "start_channels": 2, "unlock_usage": 0.0})
    model, hist = train_mixture_vae(x, small(K=4), LossConfig(), train, seed=0)
    assert hist[0]["n_unlocked"] == 2 and hist[0]["usage"][2:] == [0.0, 0.0]  # epoch 1 never routes to 2, 3
    assert [h["n_unlocked"] for h in hist] == [2, 3, 4]  # unlock_usage 0: one more channel after every epoch
    assert model.unlocked.tolist() == [True] * 4


def test_unlock_rule():
    cfg = MixtureTrainConfig(unlock_usage=0.8, unlock_every=2)
    unlocked = np.array([True, True, False, False])
    balanced, skewed = np.array([0.5, 0.5, 0, 0]), np.array([0.95, 0.05, 0, 0])
    assert should_unlock(balanced, unlocked, 2, cfg)  # H = log 2 >= 0.8 log 2
    assert not should_unlock(skewed, unlocked, 2, cfg)  # H = 0.199 < 0.8 log 2 = 0.555
    assert not should_unlock(balanced, unlocked, 1, cfg)  # too soon after the last unlock
    assert not should_unlock(np.full(4, 0.25), np.ones(4, bool), 5, cfg)  # nothing left to unlock
    # the threshold itself: H(p, 1 - p) = 0.8 log 2 at p = 0.24300..
    assert should_unlock(np.array([1 - 0.2431, 0.2431, 0, 0]), unlocked, 2, cfg)
    assert not should_unlock(np.array([1 - 0.2429, 0.2429, 0, 0]), unlocked, 2, cfg)


def test_collapse_signs_and_warning(caplog):
    unlocked = np.ones(4, bool)
    row = {"kl_per_channel": [0.001] * 4, "n_dead": 3, "resp_entropy": 0.99 * math.log(4)}
    signs = collapse_signs(row, unlocked)
    assert len(signs) == 3 and "posterior" in signs[0] and "channel" in signs[1] and "uniform" in signs[2]
    assert collapse_signs({"kl_per_channel": [1.0] * 4, "n_dead": 1, "resp_entropy": 0.2}, unlocked) == []
    x, _ = simulated_prototypes(10)
    with caplog.at_level(logging.WARNING, logger="dualspace.mixture_vae"):
        # beta huge: every posterior is pushed onto the prior
        _, hist = train_mixture_vae(x, small(K=2), LossConfig(beta=1e4), MixtureTrainConfig(
            **{**FAST, "epochs": 2}), seed=0)
    assert hist[-1]["collapse"] and all(sign in caplog.text for sign in hist[-1]["collapse"])
