"""The ABR study's settings and config checks, its physiology checks (against waveforms whose peaks are known),
its stages, and the `cvae` generator family."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from conftest import ROOT
from dualspace.abr import evaluate as ev
from dualspace.data.abr_simulated import FS_HZ, STATIC_NAMES, expected_peaks, simulate, waveform
from dualspace.abr.study import mode_settings as abr_mode_settings
from dualspace.config import config_problems

SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
EPL = ROOT / "tests" / "data" / "ABR-EPL"  # copies of ../shared/data/ABR-EPL (BSD-3, LICENSE beside them)
TINY = {"model": {"latent_dim": 4, "conv_channels": [4], "encoder_hidden": [16], "hidden": [16]},
        "train": {"epochs": 2, "batch_size": 32, "progress": False}}


def _config() -> dict:
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def test_mode_settings_layer_overrides_and_set_the_mode():
    a = {"model": {"latent_dim": 64}, "loss": {"max_beta": 0.5}, "train": {"epochs": 80},
         "mode_overrides": {"joint": {"loss": {"max_beta": 0.1}}}}
    assert abr_mode_settings(a, "legacy") == {"loss": {"max_beta": 0.5}, "train": {"epochs": 80},
                                              "model": {"joint_generation": False, "latent_dim": 64}}
    assert abr_mode_settings(a, "joint")["loss"] == {"max_beta": 0.1}
    assert abr_mode_settings(a, "joint")["model"]["joint_generation"] is True
    reordered = {k: a[k] for k in reversed(list(a))}
    assert repr(abr_mode_settings(reordered, "joint")) == repr(abr_mode_settings(a, "joint"))


@pytest.mark.parametrize("edit, expected", [
    (lambda c: c["abr"]["model"].update(latent_dim=0), "abr.model.latent_dim must be an integer >= 1"),
    (lambda c: c["abr"]["loss"].update(likelihood="laplace"), "abr.loss.likelihood must be one of"),
    (lambda c: c["abr"]["train"].update(epoks=3), "epoks"),
    (lambda c: c["abr"].update(modes=["legacy", "joint_v2"]), "config key abr.modes[1]"),
    (lambda c: c["abr"]["mode_overrides"]["joint"].update(model={"joint_generation": False}),
     "abr.mode_overrides.joint.model.joint_generation: set by the mode"),
    (lambda c: c["abr"]["eval"].update(intensity_range=[80, 60]), "abr.eval.intensity_range"),
    (lambda c: c["abr_simulated"]["generator"]["cvae"]["model"].update(hidden=[]),
     "config key abr_simulated.generator.cvae: abr.model.hidden must be a non-empty list"),
    (lambda c: c["abr_simulated"]["data"].update(n_trian=10), "abr_simulated.data"),
])
def test_bad_settings_name_their_key(edit, expected):
    config = _config()
    edit(config)
    problems = config_problems(config, SCHEMA)
    assert any(expected in p for p in problems), problems


def _clean(static: np.ndarray, peaks: np.ndarray | None = None) -> np.ndarray:
    """Noiseless waveforms with the given (or the rule's) peaks."""
    peaks = expected_peaks(static) if peaks is None else peaks
    return waveform(np.nan_to_num(peaks)).astype(np.float32)


def test_physiology_passes_the_rule_and_fails_a_wrong_slope():
    """Waveforms drawn with the rule's own peaks pass every check; waveforms whose wave V latency moves twice as
    fast with intensity fail the slope check (by ~100%), and responses drawn below threshold fail that check."""
    static = simulate(1500, 3)["static"]
    static[:, 5] = 0.02  # low residual noise: the picker's threshold is 3.5 x this
    good = ev.physiology(_clean(static), static, FS_HZ)
    assert good["li_slope_rel_error"] < 0.05 and good["ipl_I_V_error"] < 0.1
    assert good["wave_below_threshold"] == 0
    steep = expected_peaks(static)
    steep[:, 2] += (steep[:, 2] - 5.6) * 1.0  # twice the rule's latency change from 80 dB (5.6 ms)
    bad = ev.physiology(_clean(static, steep), static, FS_HZ)
    assert bad["li_slope_rel_error"] > 0.6, bad
    # a response where the rule has none: every row's peaks at 70 dB drawn whatever its threshold
    loud = static.copy()
    loud[:, 0] = 70.0
    fake = _clean(static, expected_peaks(np.where(np.arange(6) == 4, 0.0, loud)))
    assert ev.physiology(fake, static, FS_HZ)["wave_below_threshold"] > 0.9


def test_picker_validation_counts_by_hand():
    d = simulate(400, 5)
    out = ev.picker_validation(d["signal"], d["static"], d["peaks"], FS_HZ)
    picked = ev.pick_peaks(d["signal"], fs_hz=FS_HZ, noise_uv=d["static"][:, 5])
    truth, got = np.isfinite(d["peaks"][:, 2]), np.isfinite(picked[:, 2])
    assert out["picker_detection_V"] == pytest.approx(got[truth].mean())
    assert out["picker_false_alarm_V"] == pytest.approx(got[~truth].mean())
    assert out["picker_latency_mae_V"] == pytest.approx(np.abs(picked[truth & got, 2] - d["peaks"][truth & got, 2]).mean())


def test_static_marginals_against_scipy():
    a, b = simulate(300, 1)["static"], simulate(300, 2)["static"]
    out = ev.static_marginals(a, b)
    for j, name in enumerate(STATIC_NAMES):
        assert out[f"static_{name}_ks"] == pytest.approx(stats.ks_2samp(a[:, j], b[:, j]).statistic)
    assert out["static_corr_max_abs_diff"] == pytest.approx(np.abs(np.corrcoef(a.T) - np.corrcoef(b.T)).max())
    same = ev.static_marginals(a, a)
    assert same["static_corr_max_abs_diff"] == 0 and all(same[f"static_{n}_ks"] == 0 for n in STATIC_NAMES)


def test_study_arrays_undo_the_split_file(tmp_path):
    from dualspace.abr.stages import study_arrays
    from dualspace.data import prepare

    outputs = {s: tmp_path / f"{s}.h5" for s in ("train", "calib", "test")}
    prepare("abr_simulated", 4, {"n_train": 40, "n_calib": 20, "n_test": 20}, outputs)
    d = simulate(80, 4)
    arrays = study_arrays(outputs["test"])
    # every test row is one of the simulator's draws, in uV, with NaN exactly where that draw has no wave
    rows = [int(np.argmin(np.abs(d["signal"] - s).max(1))) for s in arrays["signal"]]
    np.testing.assert_allclose(arrays["signal"], d["signal"][rows], atol=1e-5)
    np.testing.assert_array_equal(np.isnan(arrays["peaks"]), np.isnan(d["peaks"][rows]))
    np.testing.assert_allclose(arrays["peaks"], d["peaks"][rows], atol=1e-6)
    np.testing.assert_array_equal(arrays["static"], d["static"][rows])


def test_epl_tracks_on_the_real_sweeps(tmp_path):
    from dualspace.abr.stages import epl_tracks

    picker = {"window_ms": [1.0, 2.0], "max_step_ms": 0.3, "p2p_window_ms": [0.8, 3.0]}
    with pytest.raises(ValueError, match="abr.epl_root"):
        epl_tracks(None, tmp_path / "t.csv", tmp_path / "f", picker)
    assert not (tmp_path / "t.csv").exists()
    epl_tracks(EPL, tmp_path / "t.csv", tmp_path / "f", picker)
    t = pd.read_csv(tmp_path / "t.csv")
    assert sorted(t["file"].unique()) == ["ABR-52-3", "CAP-139-5"] and len(t) == 12 + 13
    abr = t[(t["file"] == "ABR-52-3") & (t["level_db"] >= 25)]
    assert stats.spearmanr(abr["level_db"], abr["latency_ms"]).statistic < -0.8
    p2p = t[t["file"] == "ABR-52-3"].set_index("level_db")["peak_to_peak"]
    assert p2p[15] == pytest.approx(0.35, rel=0.15) and p2p[80] == pytest.approx(5.7, rel=0.15)
    assert {p.name for p in (tmp_path / "f").iterdir()} == {"ABR-52-3.png", "CAP-139-5.png"}


def _tiny_split():
    from dualspace.data import Split

    d = simulate(120, 6)
    x = ((d["signal"] - d["signal"].mean()) / d["signal"].std())[:, None, :].astype(np.float32)
    return Split(x, d["label"])


def test_family_trains_a_class_conditional_generator_the_stages_can_load(tmp_path):
    """Through the registry: train, load with load_generator (weights_only), embed = one-hot, drafts (N, 1, 200)
    seeded, and temperature 0 = the decoder at z = 0 given one-hot(c)."""
    import torch

    from dualspace.data import one_hot
    from dualspace.generator import family, load_generator

    fam = family("cvae")
    cfg = fam.make_config(TINY, "abr_simulated.generator.cvae")
    meta = {"dataset": "abr_simulated", "kind": "series", "class_names": ["normal", "mild", "moderate", "severe"]}
    fam.train(_tiny_split(), cfg, tmp_path / "model.pt", n_classes=4, meta=meta, seed=0)
    gen = load_generator(tmp_path / "model.pt", dataset="abr_simulated", kind="series", shape=[1, 200], n_classes=4)
    assert gen.n_classes == 4 and gen.cond_dim == 4 and gen.family == "cvae"
    labels = np.repeat(np.arange(4), 5)
    np.testing.assert_array_equal(gen.embed(labels), np.eye(4, dtype=np.float32)[labels])
    drafts = gen.sample(labels, seed=1)
    assert drafts.shape == (20, 1, 200) and np.isfinite(drafts).all()
    np.testing.assert_array_equal(drafts, gen.sample(labels, seed=1))
    assert not np.array_equal(drafts, gen.sample(labels, seed=2))
    at_zero = gen.sample(labels, seed=1, sampler=fam.make_sampler({"temperature": 0.0, "observation_noise": False}, "s"))
    with torch.no_grad():
        direct = gen.model.decode(torch.zeros(20, 4), one_hot(labels, 4))["signal"] * gen.model.signal_scale
    np.testing.assert_allclose(at_zero[:, 0], direct.numpy(), atol=1e-6)
    # with observation noise, drafts scatter about the decoder mean with the train residuals' covariance,
    # recomputed here from the posterior-mean reconstructions of the train rows (the family holds out a
    # seeded 10% for early stopping: the same rows are recovered by the same draw)
    from dualspace.abr.train import reconstruct

    split = _tiny_split()
    rng = np.random.default_rng(0)
    val = np.zeros(len(split.label), bool)
    val[rng.choice(len(val), round(0.1 * len(val)), replace=False)] = True
    x, static = split.x[~val, 0], one_hot(split.label[~val], 4)
    resid = x - reconstruct(gen.model, x, static)["signal"]
    many = np.zeros(4000, np.int64)
    noisy = gen.sample(many, seed=3, sampler=fam.make_sampler({"temperature": 0.0}, "s"))[:, 0] - direct.numpy()[0]
    np.testing.assert_allclose(noisy.var(0), resid.var(0, ddof=1), rtol=0.15)
    assert abs(np.corrcoef(noisy[:, 50], noisy[:, 51])[0, 1] - np.corrcoef(resid[:, 50], resid[:, 51])[0, 1]) < 0.1
    with pytest.raises(ValueError, match="out of range"):
        gen.embed(np.array([4]))


def test_family_refuses_what_it_cannot_model(tmp_path):
    from dualspace.data import Split
    from dualspace.generator import family

    fam = family("cvae")
    split = _tiny_split()
    with pytest.raises(ValueError, match="single-channel series"):
        fam.train(Split(np.repeat(split.x, 2, axis=1), split.label), fam.make_config(TINY, "s"), tmp_path / "m.pt",
                  n_classes=4, meta={}, seed=0)
    joint = fam.make_config({**TINY, "model": {**TINY["model"], "joint_generation": True}}, "s")
    with pytest.raises(ValueError, match="legacy-mode CVAE given the class"):
        fam.train(split, joint, tmp_path / "m.pt", n_classes=4, meta={}, seed=0)
    assert not (tmp_path / "m.pt").exists()
