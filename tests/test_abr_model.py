"""ABR CVAE: shapes in both modes, the KL against its closed form and Monte Carlo, the beta warm-up, masked losses and
the BCE term by hand, legacy checkpoints, early stopping with the best weights restored, active units, input errors."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch
from torch import distributions as dist
from torch.nn import functional as F

from dualspace.abr.losses import (LossConfig, beta_at, cvae_loss, joint_cvae_loss, kl_per_unit, masked_bce,
                                  masked_mse, static_loss)
from dualspace.abr.model import FULL_SCALE, CVAE, CVAEConfig
from dualspace.io import CheckpointError
from dualspace.abr.train import TrainConfig, active_units, evaluate_cvae, reconstruct, train_cvae

torch.set_num_threads(1)
TINY = dict(conv_channels=[4], encoder_hidden=[32], hidden=[32], latent_dim=4)  # formulas, not capacity


def fake_abr(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A toy ABR set: a Gaussian bump whose latency falls with intensity, NaN-holed statics and peaks."""
    rng = np.random.default_rng(seed)
    static = np.stack([rng.uniform(20, 90, n), rng.uniform(10, 50, n), rng.uniform(1, 80, n),
                       rng.integers(0, 2, n), rng.uniform(0, 60, n), rng.uniform(0.01, 0.1, n)], 1)
    lat = 5.5 - 0.03 * static[:, 0]
    t = np.linspace(0, 10, 200)
    signal = 0.5 * np.exp(-0.5 * ((t - lat[:, None]) / 0.4) ** 2) + rng.normal(0, 0.02, (n, 200))
    peaks = np.stack([lat - 4, lat - 2, lat, 0.2 + 0 * lat, 0.3 + 0 * lat, 0.5 + 0 * lat], 1)
    static[rng.random((n, 6)) < 0.05] = np.nan
    peaks[rng.random((n, 6)) < 0.2] = np.nan
    return {k: v.astype(np.float32) for k, v in dict(signal=signal, static=static, peaks=peaks).items()}


def fitted(data: dict, seed: int = 0, **kw) -> CVAE:
    torch.manual_seed(seed)
    model = CVAE(CVAEConfig(**{**TINY, **kw}))
    model.fit_scaling(data["signal"], data["static"], data["peaks"])
    return model.eval()


# -- shapes (the design's smoke test) ---------------------------------------------------------------------------
@pytest.mark.parametrize("joint", [False, True])
def test_forward_loss_and_sample_shapes(joint):
    data = fake_abr(16)
    model = fitted(data, joint_generation=joint, peak_head=True)
    out = model(data["signal"], data["static"], generator=torch.Generator().manual_seed(0))
    assert out["mu"].shape == out["logvar"].shape == out["z"].shape == (16, 4)
    assert out["signal"].shape == (16, 200) and out["peaks"].shape == (16, 6)
    assert (out["static"] is None) == (not joint) and (not joint or out["static"].shape == (16, 6))
    batch = model.standardise(data["signal"], data["static"], data["peaks"])
    fn = (lambda *a: joint_cvae_loss(*a, model.cfg.categorical)) if joint else cvae_loss
    terms = fn(out, batch, 0.5, LossConfig())
    assert set(terms) == {"loss", "signal", "static", "peaks", "kl"} and terms["loss"].shape == ()
    assert all(torch.isfinite(v) for v in terms.values())
    terms["loss"].backward()
    gen = torch.Generator().manual_seed(1)
    s = model.sample(7, generator=gen) if joint else model.sample(static=data["static"][:7], generator=gen)
    assert s["signal"].shape == (7, 200) and s["static"].shape == (7, 6) and s["peaks"].shape == (7, 6)
    if joint:  # the categorical column (sex) is drawn 0/1, the others are finite physical values
        assert set(np.unique(s["static"][:, 3])) <= {0.0, 1.0} and np.isfinite(s["static"]).all()
    rec = reconstruct(model, data["signal"], data["static"])
    assert rec["signal"].shape == (16, 200) and ("static" in rec) == joint


def test_class_conditional_use_and_sizes():
    onehot = np.eye(3, dtype=np.float32)[np.arange(12) % 3]
    model = CVAE(CVAEConfig(static_dim=3, categorical=[], signal_len=32, **{**TINY, "conv_channels": [4, 8]}))
    model.fit_scaling(np.random.default_rng(0).normal(size=(12, 32)), onehot)
    assert model(np.zeros((12, 32)), onehot)["peaks"] is None
    assert model.sample(static=onehot)["signal"].shape == (12, 32) and "peaks" not in model.sample(static=onehot)
    count = lambda **kw: sum(p.numel() for p in CVAE(CVAEConfig(**kw)).parameters())  # noqa: E731
    assert count(**FULL_SCALE, joint_generation=True, peak_head=True) == 4_722_452
    assert count(**FULL_SCALE) == 4_713_224


# -- KL, beta, masked losses ------------------------------------------------------------------------------------
def test_kl_closed_form_by_hand_and_monte_carlo():
    mu, logvar = torch.tensor([[0.0, 1.5, -0.7]]), torch.tensor([[0.0, -1.0, 0.8]])
    by_hand = [0.5 * (math.exp(lv) + m * m - 1 - lv) for m, lv in zip(mu[0].tolist(), logvar[0].tolist())]
    torch.testing.assert_close(kl_per_unit(mu, logvar)[0], torch.tensor(by_hand))
    assert by_hand[0] == 0.0

    q, p = dist.Normal(mu[0], torch.exp(0.5 * logvar[0])), dist.Normal(0.0, 1.0)
    torch.manual_seed(0)
    z = q.sample((200_000,))
    log_ratio = (q.log_prob(z) - p.log_prob(z)).double()  # (n, 3)
    est, se = log_ratio.mean(0), log_ratio.std(0) / math.sqrt(len(z))
    assert ((est - torch.tensor(by_hand, dtype=torch.float64)).abs() <= 4 * se + 1e-9).all(), (est, by_hand, se)


def test_beta_warmup():
    assert [beta_at(e, 0.5, 20) for e in (0, 10, 20, 30)] == [0.0, 0.25, 0.5, 0.5]
    assert beta_at(0, 0.5, 0) == 0.5


def test_masked_mse_by_hand_and_finite_gradients():
    pred = torch.tensor([[1.0, 2.0, 3.0], [0.5, -1.0, 4.0]], requires_grad=True)
    target = torch.tensor([[1.5, math.nan, 1.0], [math.nan, 0.0, math.nan]])
    expected = (0.5 ** 2 + 2.0 ** 2 + 1.0 ** 2) / 3
    loss = masked_mse(pred, target)
    assert loss.item() == pytest.approx(expected)
    loss.backward()
    assert torch.isfinite(pred.grad).all()
    assert torch.equal(pred.grad == 0, torch.isnan(target))  # no gradient to a missing value
    assert masked_mse(pred, torch.full_like(target, math.nan)).item() == 0.0

    # the same inside cvae_loss: the peak term of a batch with absent waves
    out = {"mu": torch.zeros(2, 3), "logvar": torch.zeros(2, 3), "signal": torch.zeros(2, 4), "peaks": pred,
           "static": None}
    batch = {"signal": torch.ones(2, 4), "peaks": target}
    terms = cvae_loss(out, batch, 0.3, LossConfig(peak_loss_weight=0.8))
    assert terms["peaks"].item() == pytest.approx(expected) and terms["kl"].item() == 0.0
    assert terms["loss"].item() == pytest.approx(1.0 + 0.8 * expected)


def test_static_loss_bce_matches_torch_binary_cross_entropy():
    logits = torch.tensor([[0.3, -1.2, 2.0], [1.0, 0.7, -0.4], [-0.2, 0.1, 0.9]], requires_grad=True)
    target = torch.tensor([[0.5, 1.0, -1.0], [math.nan, 0.0, 2.0], [1.0, math.nan, math.nan]])
    cat = [1]  # column 1 is Bernoulli; 0 and 2 are standardised continuous
    obs = ~torch.isnan(target[:, 1])
    bce = F.binary_cross_entropy(torch.sigmoid(logits[obs, 1]), target[obs, 1])
    cont = logits[:, [0, 2]].detach()
    t = target[:, [0, 2]]
    ok = ~torch.isnan(t)
    mse = ((cont[ok] - t[ok]) ** 2).mean()
    assert masked_bce(logits[:, cat], target[:, cat]).item() == pytest.approx(bce.item(), rel=1e-6)
    got = static_loss(logits, target, cat)
    assert got.item() == pytest.approx((bce + mse).item(), rel=1e-6)
    got.backward()
    assert torch.isfinite(logits.grad).all() and (logits.grad[~torch.isfinite(target)] == 0).all()

    out = {"mu": torch.zeros(3, 2), "logvar": torch.zeros(3, 2), "signal": torch.zeros(3, 4), "peaks": None,
           "static": logits}
    terms = joint_cvae_loss(out, {"signal": torch.zeros(3, 4), "static": target}, 0.5,
                            LossConfig(static_loss_weight=2.0), cat)
    assert terms["loss"].item() == pytest.approx(2.0 * (bce + mse).item(), rel=1e-6)


# -- checkpoints --------------------------------------------------------------------------------------------------
def test_legacy_checkpoint_loads_with_weights_only_and_gives_identical_outputs(tmp_path):
    data = fake_abr(8)
    legacy = fitted(data, joint_generation=False, peak_head=False)
    state = legacy.state_dict()
    assert not any(k.startswith(("static_head", "peak_head", "peak_")) for k in state)  # no head weights at all
    # the file as the legacy configuration wrote it: no mode, none of the keys added for the joint mode
    config = {k: v for k, v in legacy.cfg.to_dict().items()
              if k not in ("peak_head", "peak_dim", "joint_generation", "categorical")}
    torch.save({"family": "abr_cvae", "format_version": 1, "config": config,
                "state_dict": {k: v.clone() for k, v in state.items()}, "trained_on": "abr_simulated"},
               tmp_path / "legacy.pt")
    loaded = CVAE.from_checkpoint(torch.load(tmp_path / "legacy.pt", weights_only=True))
    assert loaded.cfg.mode == "legacy" and not hasattr(loaded, "static_head")
    z = torch.randn(8, 4, generator=torch.Generator().manual_seed(0))
    a, b = legacy.forward_legacy(z, data["static"]), loaded.forward_legacy(z, data["static"])
    assert torch.equal(a["signal"], b["signal"]) and a["static"] is b["static"] is None
    sa = legacy.sample(static=data["static"], generator=torch.Generator().manual_seed(5))
    sb = loaded.sample(static=data["static"], generator=torch.Generator().manual_seed(5))
    assert np.array_equal(sa["signal"], sb["signal"])

    # and the current format round-trips
    ckpt = loaded.checkpoint(seed=3)
    assert ckpt["mode"] == "legacy" and ckpt["seed"] == 3
    torch.save(ckpt, tmp_path / "now.pt")
    again = CVAE.from_checkpoint(torch.load(tmp_path / "now.pt", weights_only=True))
    assert torch.equal(again.signal_scale, legacy.signal_scale)


def test_checkpoint_errors_name_the_problem():
    model = fitted(fake_abr(8), joint_generation=True, peak_head=True)
    ckpt = model.checkpoint()
    extra = {**ckpt, "state_dict": {**ckpt["state_dict"], "bogus.weight": torch.zeros(1)}}
    with pytest.raises(CheckpointError, match=r"unexpected \['bogus.weight'\]"):
        CVAE.from_checkpoint(extra)
    shape = {**ckpt, "config": {**ckpt["config"], "latent_dim": 5}}
    with pytest.raises(CheckpointError, match="wrong shape.*enc_out.weight"):
        CVAE.from_checkpoint(shape)
    with pytest.raises(CheckpointError, match=r"unknown keys \['dropout'\] in abr.model"):
        CVAE.from_checkpoint({**ckpt, "config": {**ckpt["config"], "dropout": 0.1}})
    with pytest.raises(CheckpointError, match="mode 'legacy' disagrees"):
        CVAE.from_checkpoint({**ckpt, "mode": "legacy"})
    no_heads = {**ckpt, "state_dict": {k: v for k, v in ckpt["state_dict"].items() if "head" not in k or
                                       k.startswith("signal")}}
    with pytest.raises(CheckpointError, match="missing.*peak_head.weight"):
        CVAE.from_checkpoint(no_heads)
    with pytest.raises(ValueError, match="reserved"):
        model.checkpoint(config={})


# -- training -----------------------------------------------------------------------------------------------------
def test_training_lowers_val_loss_early_stops_and_restores_best(caplog):
    train, val = fake_abr(96, seed=1), fake_abr(64, seed=2)
    loss_cfg = LossConfig(warmup_epochs=2)
    train_cfg = TrainConfig(epochs=60, batch_size=16, lr=3e-2, patience=2, progress=False)
    with caplog.at_level(logging.INFO, logger="dualspace.abr"):
        model, hist = train_cvae(train, val, CVAEConfig(**TINY, peak_head=True), loss_cfg, train_cfg, seed=0)
    losses = [r["val_loss"] for r in hist]
    assert min(losses) < 0.5 * losses[0]
    assert len(hist) < 60  # stopped early
    best = int(np.argmin(losses))
    assert len(hist) == max(best, loss_cfg.warmup_epochs - 1) + 1 + 2 and not any(r["best"] for r in hist[best + 1:])
    assert [r["beta"] for r in hist[:3]] == [0.0, 0.25, 0.5]
    assert len(hist[0]["kl_per_unit"]) == 4 and 0 <= hist[-1]["active_units"] <= 4
    assert "early stop" in caplog.text and "epoch 0 beta" in caplog.text
    # the returned weights are the best epoch's: their val loss (same noise seed) is the history's minimum
    again = evaluate_cvae(model, val, loss_cfg, loss_cfg.max_beta, seed=1)["terms"]["loss"]
    assert again == pytest.approx(min(losses), rel=1e-6)

    # equal seeds, equal weights
    short = TrainConfig(epochs=2, batch_size=16, progress=False)
    m1, _ = train_cvae(train, val, CVAEConfig(**TINY), loss_cfg, short, seed=4)
    m2, _ = train_cvae(train, val, CVAEConfig(**TINY), loss_cfg, short, seed=4)
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))


def test_active_units_counts_units_whose_posterior_mean_varies(monkeypatch):
    val = fake_abr(50, seed=3)
    model = fitted(val)
    scales = torch.tensor([0.0, 0.05, 0.2, 1.0])  # Var(mu_j) = scale_j^2 Var(rate), rate in units of its std
    col = torch.as_tensor(val["static"][:, 1])
    rate = (col - model.static_mean[1]) / model.static_std[1]
    rate = torch.where(torch.isnan(rate), 0.0, rate)
    monkeypatch.setattr(model, "encode", lambda s, c: (model.static_inputs(torch.as_tensor(c))[:, 1:2] * scales,
                                                       torch.zeros(len(c), 4)))
    ev = evaluate_cvae(model, val, LossConfig(), 0.5, seed=0)
    np.testing.assert_allclose(ev["mu"], (rate[:, None] * scales).numpy(), rtol=1e-6)
    var = rate.double().var(unbiased=False).item()
    expected = sum(s ** 2 * var > 0.01 for s in scales.tolist())
    assert active_units(ev["mu"], 0.01) == expected == 2
    np.testing.assert_allclose(ev["kl_per_unit"], 0.5 * (rate[:, None] * scales).square().mean(0).numpy(), rtol=1e-5)


# -- errors -------------------------------------------------------------------------------------------------------
def test_bad_inputs_are_value_errors_naming_the_problem():
    data = fake_abr(4)
    legacy = fitted(data)
    joint = fitted(data, joint_generation=True)
    with pytest.raises(ValueError, match=r"static must have shape \(N, 6\) \(abr.model.static_dim = 6\)"):
        legacy(data["signal"], data["static"][:, :5])
    bad = data["signal"].copy()
    bad[2, 7] = np.nan
    with pytest.raises(ValueError, match=r"signal has NaN or inf in 1 rows \(first: \[2\]\)"):
        legacy(bad, data["static"])
    with pytest.raises(ValueError, match=r"abr.model.signal_len = 200"):
        legacy(data["signal"][:, :100], data["static"])
    with pytest.raises(ValueError, match=r"legacy mode \(abr.model.joint_generation = false\).*static="):
        legacy.sample(3)
    with pytest.raises(ValueError, match="n = 3 but static has 4 rows"):
        legacy.sample(3, static=data["static"])
    with pytest.raises(ValueError, match="abr.model.joint_generation = true.*without static"):
        joint.sample(static=data["static"])
    with pytest.raises(ValueError, match="forward_legacy needs a legacy model"):
        joint.forward_legacy(torch.zeros(4, 4), data["static"])
    with pytest.raises(ValueError, match=r"unknown keys \['latent'\] in abr.model"):
        CVAEConfig.from_dict({"latent": 3})
    with pytest.raises(ValueError, match=r"abr.model.categorical must list distinct"):
        CVAEConfig(static_dim=3)  # the default categorical [3] is out of range for 3 columns
    with pytest.raises(ValueError, match=r"abr.train.patience must be an integer >= 1"):
        TrainConfig(patience=0)
    with pytest.raises(ValueError, match=r"abr.loss.warmup_epochs"):
        LossConfig(warmup_epochs=-1)
    with pytest.raises(ValueError, match="abr.model.peak_head is true but the train split has no 'peaks'"):
        train_cvae({"signal": data["signal"], "static": data["static"]}, data, CVAEConfig(**TINY, peak_head=True),
                   LossConfig(), TrainConfig(epochs=1, progress=False), 0)
