"""Trajectory models and stages: the masked path-diffusion loss, the length model, pause classes and the
pause-aware profile NLL against scipy, the baselines' moments, the timing cache by brute force, train-only
stats that val/test data cannot move, and bad input that stops with a clear error and writes nothing."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy import stats

from dualspace.trajectory.study import problems as study_problems
from dualspace.trajectory.baselines import ConstantTiming, MomentMatchedTiming, timing_cache
from dualspace.trajectory.geometry import (LengthModel, PathDiffusion, PathDiffusionConfig,
                                           PathDiffusionSettings, train_path_diffusion)
from dualspace.trajectory.stages import prepare_paths, read_paths
from dualspace.trajectory.timing import (TimingModel, dirichlet_nll, fit_timing, path_summary, pause_classes,
                                         step_features)
from test_trajectory_timing import one_thread, prefix_mask  # noqa: F401 (one_thread: an autouse fixture)


# ------------------------------------------------------------------------------------------ geometry


def small_path_model(T: int = 16, channels: int = 2, prediction: str = "v") -> PathDiffusion:
    torch.manual_seed(0)
    cfg = PathDiffusionConfig(channels=channels, cond_in=3, base_channels=8, attention_heads=0, cond_dim=8,
                              diffusion_steps=20, prediction=prediction)
    model = PathDiffusion(cfg, T)
    torch.nn.init.normal_(model.net.head[-1].weight, std=0.1)  # the zero-initialised head would predict 0
    return model


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_masked_loss_is_the_mse_over_active_steps_only(prediction, monkeypatch):
    model = small_path_model(prediction=prediction)
    B, T = 5, 16
    mask = prefix_mask([16, 3, 9, 12, 5], T)
    x0 = torch.randn(B, 2, T) * mask[:, None]
    cond = torch.randn(B, 3)
    loss = model.loss(x0, cond, mask, 0.0, torch.Generator().manual_seed(1))

    # the same draws by hand: t, noise, drop flags in the order `loss` takes them
    g = torch.Generator().manual_seed(1)
    t = torch.randint(0, 20, (B,), generator=g)
    noise = torch.randn(x0.shape, generator=g)
    torch.rand(B, generator=g)
    ab = model.schedule.at(model.schedule.alpha_bar, t, 3)
    x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
    with torch.no_grad():
        pred = model.denoise(x_t, t, model.cond(cond), mask)
    target = noise if prediction == "eps" else ab.sqrt() * noise - (1 - ab).sqrt() * x0
    sq = ((pred - target) ** 2).sum(1).numpy()  # (B, T)
    expect = sq[mask.numpy()].sum() / (mask.sum().item() * 2)
    assert loss.item() == pytest.approx(expect, rel=1e-5)

    # whatever the network says on padded steps changes nothing
    real = model.denoise
    monkeypatch.setattr(model, "denoise", lambda *a: real(*a) + 1e3 * (~a[3])[:, None].float())
    again = model.loss(x0, cond, mask, 0.0, torch.Generator().manual_seed(1))
    assert again.item() == pytest.approx(loss.item(), rel=1e-6)


def test_sampled_paths_are_zero_on_padding_and_reproducible():
    from dualspace.diffusion.samplers import SamplerConfig

    model = small_path_model().eval()
    mask = prefix_mask([16, 4, 10], 16).numpy()
    cond = np.random.default_rng(0).normal(size=(3, 3)).astype(np.float32)
    sampler = SamplerConfig(sampler="ddim", steps=4, guidance_scale=1.5, thresholding="none")
    x = model.sample(cond, mask, 7, sampler, progress=False)
    assert x.shape == (3, 16, 2) and (x[~mask] == 0).all() and np.isfinite(x).all()
    assert np.array_equal(x, model.sample(cond, mask, 7, sampler, progress=False))
    assert not np.array_equal(x, model.sample(cond, mask, 8, sampler, progress=False))

    # endpoint projection: the active steps sum to the target, whatever the sampler
    target = np.array([[3.0, -2.0], [0.5, 0.5], [-4.0, 1.0]])
    for s in (sampler, SamplerConfig(sampler="ddpm", guidance_scale=1.0, thresholding="none")):
        xp = model.sample(cond, mask, 7, s, progress=False, endpoint=target)
        np.testing.assert_allclose(xp.sum(1), target, atol=1e-3)
        assert (xp[~mask] == 0).all()
    assert np.abs(x.sum(1) - target).max() > 0.1  # without projection they do not


def test_path_length_must_fit_the_unet_levels():
    with pytest.raises(ValueError, match="divisible by"):
        PathDiffusion(PathDiffusionConfig(channel_mults=(1, 2, 2)), T=90)
    with pytest.raises(ValueError, match="prediction must be one of"):
        PathDiffusionSettings.from_dict({"model": {"prediction": "x0"}})


def test_length_model_draws_among_the_k_nearest_goals():
    goals = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [5.0, 5.0], [5.1, 5.0]])
    lengths = torch.tensor([10, 11, 12, 50, 60])
    lm = LengthModel(goals, lengths, k=2)
    g = torch.Generator().manual_seed(0)
    near_far = lm.sample(torch.tensor([[5.05, 5.0]] * 200 + [[0.0, 0.0]] * 200), g)
    assert set(near_far[:200].tolist()) == {50, 60} and set(near_far[200:].tolist()) <= {10, 11, 12}
    assert LengthModel(goals, lengths, k=1).sample(goals, g).tolist() == lengths.tolist()


def test_trained_checkpoint_reloads_with_its_length_model(tmp_path):
    from dualspace.trajectory.geometry import load_path_model

    rng = np.random.default_rng(0)
    N, T = 40, 8
    mask = prefix_mask(rng.integers(3, T + 1, N), T).numpy()
    x = (rng.normal(size=(N, T, 2)) * mask[..., None]).astype(np.float32)
    cond = rng.normal(size=(N, 3)).astype(np.float32)
    st = PathDiffusionSettings.from_dict({"model": {"base_channels": 8, "attention_heads": 0, "cond_dim": 8,
                                                    "diffusion_steps": 10}, "train": {"steps": 3, "batch_size": 8}},
                                         cond_in=3)
    model, losses = train_path_diffusion(x, mask, cond, st, tmp_path / "m.pt", progress=False)
    back = load_path_model(tmp_path / "m.pt")
    for (k, a), b in zip(model.state_dict().items(), back.state_dict().values()):
        assert torch.equal(a, b), k
    assert np.array_equal(back.sample_mask(cond, 3), model.sample_mask(cond, 3))
    assert set(back.sample_mask(cond, 3).sum(1)) <= set(mask.sum(1))


# ------------------------------------------------------------------------------------------ timing


def test_pause_classes_by_hand():
    dt = np.array([[10, 10, 30, 10, 100, 10, 0, 0], [7, 7, 8, 20, 7, 60, 7, 200]], dtype=float)
    mask = dt > 0
    w = dt / dt.sum(1, keepdims=True)
    z = pause_classes(w, mask, (2.5, 4.0, 8.0))
    # row 0: median 10 -> ratios 1, 1, 3, 1, 10, 1; row 1: median 7.5 -> 0.93, .., 2.67, .., 8, .., 26.7
    assert z.tolist() == [[0, 0, 1, 0, 3, 0, 0, 0], [0, 0, 0, 1, 0, 3, 0, 3]]


def test_summary_and_step_features_by_hand():
    dxdy = torch.tensor([[[3.0, 4.0], [3.0, 4.0], [0.0, 10.0], [9.0, 9.0]]])
    mask = torch.tensor([[True, True, True, False]])
    s = path_summary(dxdy, mask)[0].numpy()
    turn = math.acos((3 * 0 + 4 * 10) / (5 * 10))  # the one turn, between steps 1 and 2
    np.testing.assert_allclose(s, [math.log(3), math.log(20 / 3), math.log(20), math.hypot(6, 18) / 20, turn / 3],
                               rtol=1e-5)
    f = step_features(dxdy, mask)[0].numpy()  # (5, T)
    np.testing.assert_allclose(f[0, :3], np.log1p(np.array([5, 5, 10]) / (20 / 3)), rtol=1e-6)
    np.testing.assert_allclose(f[1, :3], [0, 1 / 3, 2 / 3], rtol=1e-6)
    assert f[2].tolist() == [1, 0, 0, 0] and f[3].tolist() == [0, 0, 1, 0]
    np.testing.assert_allclose(f[4], [0, 0, turn, 0], atol=1e-6)
    assert (f[:, 3] == 0).all()


def pause_model(T: int = 10) -> TimingModel:
    torch.manual_seed(0)
    model = TimingModel(3, T, hidden=8, conditioning="goal_geometry", profile="steps", pause_edges=(2.5, 6.0),
                        step_hidden=8)
    with torch.no_grad():
        model.log_multiplier.copy_(torch.log(torch.tensor([3.0, 9.0])))
    return model.eval()


def test_pause_profile_nll_is_categorical_plus_dirichlet_by_scipy():
    model = pause_model()
    rng = np.random.default_rng(1)
    B, T = 4, 10
    lengths = [10, 4, 7, 9]
    mask = prefix_mask(lengths, T)
    dt = rng.uniform(5, 20, (B, T))
    dt[0, 3], dt[2, 1], dt[3, 8] = 200.0, 40.0, 80.0
    dt = dt * mask.numpy()
    D = dt.sum(1)
    w = dt / D[:, None]
    dxdy = torch.tensor(rng.normal(size=(B, T, 2)) * 10, dtype=torch.float32) * mask[..., None]
    cond = torch.tensor(rng.normal(size=(B, 3)), dtype=torch.float32)
    with torch.no_grad():
        _, nll_w = model.nll(cond, torch.tensor(D, dtype=torch.float32), torch.tensor(w, dtype=torch.float32), mask,
                             dxdy)
        law = model.law(cond, dxdy, mask)
    z = pause_classes(w, mask, (2.5, 6.0)).numpy()
    mult = np.array([1.0, 3.0, 9.0])
    for b, n in enumerate(lengths):
        alpha = law.alpha[b, :n].double().numpy() * mult[z[b, :n]]
        logp = torch.log_softmax(law.pause_logits[b, :n].double(), -1).numpy()
        expect = -stats.dirichlet.logpdf(w[b, :n], alpha) - logp[np.arange(n), z[b, :n]].sum()
        assert nll_w[b].item() == pytest.approx(expect, rel=2e-4)


def test_pause_classes_are_drawn_with_their_probabilities():
    model = pause_model(T=6)
    N = 4000
    cond = torch.zeros(N, 3)
    mask = prefix_mask([6] * N, 6)
    dxdy = torch.ones(N, 6, 2)
    with torch.no_grad():
        model.profile_head[-1].weight.zero_()
        model.profile_head[-1].bias.copy_(torch.tensor([math.log(math.expm1(50.0)), 0.0, math.log(0.25), -30]))
    _, w = model.sample(cond, mask, seed=0, dxdy=dxdy)
    # classes 0 / 1 / 2 with probabilities 0.8 / 0.2 / ~0: a class-1 step has mean share 3x a class-0 step
    ratio = (w / w.median(-1, keepdim=True).values).numpy()
    p1 = (ratio > 2).mean()
    assert abs(p1 - 0.2) < 5 * math.sqrt(0.2 * 0.8 / (N * 6)) and (ratio < 6).all()
    _, w_det = model.sample(cond[:2], mask[:2], deterministic=True, dxdy=dxdy[:2])
    np.testing.assert_allclose(w_det.numpy(), 1 / 6, rtol=1e-5)  # every step in its most likely class 0


def test_geometry_conditioned_fit_learns_pauses_tied_to_the_geometry():
    """Synthetic law: a step is a pause (dt x 5) exactly when its displacement is tiny; the fitted pause head
    must find them (an unconditioned model cannot beat the 10% base rate)."""
    rng = np.random.default_rng(0)
    N, T = 600, 12
    dxdy = rng.normal(10, 1, (N, T, 2))
    tiny = rng.random((N, T)) < 0.1
    dxdy[tiny] = 0.1
    dt = np.where(tiny, 50.0, 10.0) * rng.uniform(0.97, 1.03, (N, T))
    mask = np.ones((N, T), bool)
    D = dt.sum(1)
    cfg_kw = dict(conditioning="goal_geometry", profile="steps", pause_edges=(2.5,), hidden=16, step_hidden=16,
                  steps=300, batch_size=128)
    from dualspace.trajectory.timing import TimingConfig
    model, _ = fit_timing(np.zeros((N, 3), np.float32), D, dt / D[:, None], mask, TimingConfig(**cfg_kw),
                          progress=False, dxdy=dxdy)
    with torch.no_grad():
        law = model.law(torch.zeros(N, 3), torch.tensor(dxdy, dtype=torch.float32), torch.tensor(mask))
    p_pause = law.pause_logits.softmax(-1)[..., 1].numpy()
    assert p_pause[tiny].mean() > 0.8 and p_pause[~tiny].mean() < 0.05


# ------------------------------------------------------------------------------------------ baselines


def test_timing_cache_moments_by_brute_force():
    rng = np.random.default_rng(0)
    T = 6
    lengths = [6, 3, 5, 2]
    dt = rng.uniform(5, 30, (4, T)) * prefix_mask(lengths, T).numpy()
    cache = timing_cache(dt, dt > 0)
    for t in range(T):
        rel = [dt[i, t] / dt[i].sum() * n for i, n in enumerate(lengths) if t < n]
        assert cache.rel_mean[t] == pytest.approx(np.mean(rel))
        assert cache.rel_var[t] == pytest.approx(np.var(rel, ddof=1) if len(rel) > 1 else 0.0)
    D = dt.sum(1)
    assert cache.log_d_mean == pytest.approx(np.log(D).mean()) and cache.log_d_std == pytest.approx(np.log(D).std(ddof=1))
    assert cache.dt_median == pytest.approx(np.median(dt[dt > 0]))


def test_baselines_sample_their_laws():
    mask = prefix_mask([5, 3], 6)
    D, w = ConstantTiming(17.0).sample(torch.zeros(2, 3), mask)
    np.testing.assert_allclose((D[:, None] * w).numpy(), 17.0 * mask.numpy())

    rel_mean, rel_var = np.ones(6), np.full(6, 0.05)  # flat profile, alpha = 20 per step
    mm = MomentMatchedTiming(6.5, 0.3, rel_mean, rel_var)
    N = 20000
    D, w = mm.sample(torch.zeros(N, 3), prefix_mask([5] * N, 6), seed=0)
    assert abs(D.log().mean().item() - 6.5) < 5 * 0.3 / math.sqrt(N)
    var = (1 / 5) * (1 - 1 / 5) / (5 * 20 + 1)  # Dirichlet(20, ..., 20) over 5 steps
    np.testing.assert_allclose(w[:, :5].var(0).numpy(), var, rtol=0.1)
    log_d = np.log(np.array([500.0, 700.0]))
    np.testing.assert_allclose(mm.duration_nll(np.exp(log_d)), -stats.lognorm(s=0.3, scale=math.exp(6.5)).logpdf(
        np.exp(log_d)), rtol=1e-9)


# ------------------------------------------------------------------------------------------ stages


def records(n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        k = int(rng.integers(4, 12))
        pts = np.cumsum(rng.integers(-20, 21, (k, 2)), axis=0) + 500
        out.append({"points": pts.tolist(), "timing": np.cumsum(rng.integers(5, 30, k)).astype(float).tolist()})
    return out


def prepare(tmp_path, recs, name: str = "run", **kw):
    src = tmp_path / f"{name}.json"
    src.write_text(json.dumps(recs))
    d = tmp_path / name
    d.mkdir()
    out = {s: d / f"{s}.h5" for s in ("train", "val", "test")}
    args = dict(source=str(src), on_bad="skip", coverage=1.0, T=None, T_multiple=2, anchor="points", seed=0,
                fractions={"train": 0.6, "val": 0.2, "test": 0.2})
    prepare_paths(out, d / "stats.json", d / "report.json", **{**args, **kw})
    return d, out


def test_geometry_stats_ignore_val_and_test_data(tmp_path):
    recs = records(50)
    d0, out = prepare(tmp_path, recs, "base")
    test_rows = read_paths(out["test"])["index"]
    train_rows = read_paths(out["train"])["index"]
    moved = [dict(r) for r in recs]
    for i in list(test_rows) + list(read_paths(out["val"])["index"]):
        moved[i]["points"] = (np.array(moved[i]["points"]) * 7.0).tolist()  # val/test paths 7x larger
    d1, _ = prepare(tmp_path, moved, "moved")
    assert (d0 / "stats.json").read_text() == (d1 / "stats.json").read_text()
    moved[int(train_rows[0])]["points"] = (np.array(moved[int(train_rows[0])]["points"]) * 7.0).tolist()
    d2, _ = prepare(tmp_path, moved, "train_moved")
    assert (d0 / "stats.json").read_text() != (d2 / "stats.json").read_text()  # the check can fail


def test_T_is_rounded_up_to_the_unet_multiple_and_masked(tmp_path):
    d, out = prepare(tmp_path, records(30), T_multiple=4)
    p = read_paths(out["train"])
    assert p["steps"].shape[1] % 4 == 0 and p["steps"].shape[1] >= p["mask"].sum(1).max()
    report = json.loads((d / "report.json").read_text())
    assert report["T"] == p["steps"].shape[1] and report["T"] - report["T_cover"] < 4


@pytest.mark.parametrize("bad, kw, match", [
    ({"points": [[0, 0], [1, 1], [2, 2]], "timing": [0, 10, 10]}, {"on_bad": "refuse"},
     r"record 7 timing is not strictly increasing"),
    (None, {"T": 2}, r"T=2 keeps no path"),
])
def test_bad_input_stops_with_a_clear_error_and_writes_nothing(tmp_path, bad, kw, match):
    recs = records(20)
    if bad is not None:
        recs[7] = bad
    with pytest.raises(ValueError, match=match):
        prepare(tmp_path, recs, **kw)
    assert list((tmp_path / "run").iterdir()) == []


def test_trajectory_config_cross_checks():
    import yaml
    from pathlib import Path

    t = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "config.yaml").read_text())["trajectory"]
    assert study_problems({"trajectory": t}) == []
    t["timing"]["default"] = "nope"
    t["timing"]["variants"]["bad"] = {"conditioning": "goal", "profile": "steps"}
    t["data"]["fractions"]["test"] = 0.3
    t["timing"]["variants"]["joint"] = {"conditioning": "goal"}
    problems = "\n".join(study_problems({"trajectory": t}))
    assert "trajectory.timing.variants.joint: 'joint' names a baseline" in problems
    assert "trajectory.timing.default: 'nope'" in problems
    assert "trajectory.timing.variants.bad: profile 'steps' reads the geometry" in problems
    assert "trajectory.data.fractions" in problems


def test_dirichlet_nll_matches_scipy_with_pause_multiplied_alpha():
    """dirichlet_nll is what the pause profile reuses; checked here on concentrations spanning 0.3-300."""
    rng = np.random.default_rng(4)
    alpha = torch.tensor(rng.uniform(0.3, 300, (3, 7)))
    w = torch.tensor(np.stack([rng.dirichlet(a) for a in alpha.numpy()]))
    nll = dirichlet_nll(w, alpha, torch.ones(3, 7, dtype=torch.bool)).numpy()
    np.testing.assert_allclose(nll, [-stats.dirichlet.logpdf(w[i].numpy(), alpha[i].numpy()) for i in range(3)],
                               rtol=1e-9)
