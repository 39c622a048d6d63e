"""Draft fidelity diagnostics (dualspace.fidelity, rule fidelity): each statistic against an independent
computation (scipy's periodogram, loops), real data against itself (near neutral), and real data with white
noise or edge spikes added (flagged), so the check can fail."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import signal

from dualspace import fidelity as fd
from dualspace.artifacts import DraftSamples, Region
from dualspace.data import load_dataset
from dualspace.data.files import write_split
from dualspace.stages.metrics import draft_fidelity

CFG = fd.FidelityConfig()


@pytest.fixture(scope="module")
def hapt():
    """Real HAPT windows (the package's raw recordings), test split: (N, 9, 128)."""
    return load_dataset("hapt", seed=0)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0, calib_fraction=0.2, test_fraction=0.2)


def test_power_spectrum_equals_scipy_periodogram():
    x = np.random.default_rng(0).normal(size=(5, 3, 64)).cumsum(-1)
    _, p = signal.periodogram(x, window="hann", detrend="constant", scaling="density", axis=-1)
    ref = p.reshape(-1, p.shape[-1]).mean(0)
    ref[1:-1] /= 2  # scipy's one-sided density doubles every bin but DC and Nyquist
    np.testing.assert_allclose(fd.power_spectrum(x), ref, rtol=1e-10)


def test_edge_interior_and_profile_by_loops():
    x = np.random.default_rng(1).normal(size=(4, 2, 20))
    edge, inner = [], []
    for w in x.reshape(-1, 20):
        dev = np.abs(w - np.median(w))
        edge += [dev[0], dev[19]]
        inner += list(dev[5:15])
    assert fd.edge_interior(x, 5) == pytest.approx(np.mean(edge) / np.mean(inner), rel=1e-12)
    prof = [np.mean([abs(w[t] - np.median(w)) for w in x.reshape(-1, 20)]) for t in range(20)]
    np.testing.assert_allclose(fd.deviation_profile(x), prof, rtol=1e-12)
    with pytest.raises(ValueError, match="no interior"):
        fd.edge_interior(x, 10)


def test_within_std_ratio_by_loops():
    rng = np.random.default_rng(8)
    a, b = rng.normal(size=(7, 3, 16)) * 2, rng.normal(size=(5, 3, 16))
    ref = np.mean([np.median([np.std(w[ch]) for w in a]) / np.median([np.std(w[ch]) for w in b]) for ch in range(3)])
    assert fd.within_std_ratio(a, b) == pytest.approx(ref, rel=1e-12)


def test_autocorrelation_by_loops():
    x = np.random.default_rng(2).normal(size=(3, 2, 30)).cumsum(-1)
    for lag, got in zip([1, 3], fd.autocorrelation(x, [1, 3])):
        vals = []
        for w in x.reshape(-1, 30):
            d = w - w.mean()
            vals.append(sum(d[t] * d[t + lag] for t in range(30 - lag)) / sum(d * d))
        assert got == pytest.approx(np.mean(vals), rel=1e-12)


def test_radial_power_spectrum_by_loops():
    x = np.random.default_rng(3).normal(size=(3, 1, 8, 8))
    H = W = 8
    sums, counts = {}, {}
    for img in x[:, 0]:
        d = img - img.mean()
        for u in range(H):
            for v in range(W):
                f = sum(d[a, b] * np.exp(-2j * np.pi * (u * a / H + v * b / W)) for a in range(H) for b in range(W))
                fu, fv = (u if u < H / 2 else u - H), (v if v < W / 2 else v - W)
                if u == H // 2:
                    fu = -H // 2
                if v == W // 2:
                    fv = -W // 2
                r = int(np.rint(np.hypot(fu, fv)))
                sums[r] = sums.get(r, 0) + abs(f) ** 2 / (H * W) / len(x)
                counts[r] = counts.get(r, 0) + 1 / len(x)
    ref = np.array([sums[r] / counts[r] for r in sorted(sums)])
    np.testing.assert_allclose(fd.radial_power_spectrum(x), ref, rtol=1e-9, atol=1e-12)  # DC: 0 up to rounding


def test_band_ratio_of_a_scaled_signal_is_log10_of_the_power_factor():
    x = np.random.default_rng(4).normal(size=(50, 2, 128))
    p, p2 = fd.power_spectrum(x), fd.power_spectrum(2 * x)
    freq = np.arange(len(p)) / 64
    for band in CFG.bands.values():
        assert fd.band_log_ratio(p2, p, freq, band) == pytest.approx(np.log10(4), abs=1e-12)
    # the high band [40/64, 1] holds bins 40..64, the Nyquist bin included; DC never counts
    q = np.zeros_like(p)
    q[64] = 1.0
    assert fd.band_log_ratio(p + q, p, freq, [0.625, 1.0]) > 0
    assert fd.band_log_ratio(p + q, p, freq, [0.0, 0.625]) == 0.0


def test_real_halves_are_near_neutral(hapt, digits):
    for ds, kind in ((hapt, "series"), (digits, "image")):
        s = ds.splits["test"]
        rows = fd.fidelity_table(s.x, s.label, {}, kind, ds.class_names, CFG, seed=0)
        assert {r["compared"] for r in rows} == {"real_half"}
        assert len(rows) == ds.n_classes + 1
        for r in rows:
            assert abs(r["psd_log10_high"]) < 0.15, (ds.name, r)
            assert abs(r["std_ratio"] - 1) < 0.15, (ds.name, r)
            if kind == "series":
                assert abs(r["edge_ratio"] - 1) < 0.2, (ds.name, r)
                assert r["class"] == "all" or abs(r["within_std_ratio"] - 1) < 0.15, (ds.name, r)


def _corrupt(x, how, rng):
    x = x.copy()
    if how == "noise":  # white noise at 20% of each window's own std
        x += 0.2 * x.std(axis=-1, keepdims=True) * rng.normal(size=x.shape).astype(np.float32)
    else:  # spikes at the first and last sample, 4 window stds
        s = 4 * x.std(axis=-1)
        x[..., 0] += s
        x[..., -1] -= s
    return x


@pytest.mark.parametrize("how,column", [("noise", "psd_log10_high"), ("spikes", "edge_ratio")])
def test_a_generator_that_adds_noise_or_edge_spikes_is_flagged(hapt, how, column):
    s = hapt.splits["test"]
    fake = _corrupt(s.x, how, np.random.default_rng(5))
    rows = pd.DataFrame(fd.fidelity_table(s.x, s.label, {"drafts": (fake, s.label)}, "series",
                                          hapt.class_names, CFG, seed=0))
    drafts = rows[(rows["compared"] == "drafts") & (rows["class"] != "all")]
    assert not drafts["ok"].any()
    if column == "psd_log10_high":
        assert (drafts[column] > CFG.tolerance["high_psd"]).all()
        assert (drafts["within_std_ratio"] > 1.01).all() and drafts["within_std_ratio"].notna().all()  # sqrt(1 + 0.2^2) = 1.02 for a window of pure noise
    else:
        assert (drafts[column] > 1 + CFG.tolerance["edge"]).all()
    # the same real data, unchanged, passes
    same = pd.DataFrame(fd.fidelity_table(s.x, s.label, {"drafts": (s.x, s.label)}, "series", hapt.class_names,
                                          CFG, seed=0))
    assert same[same["compared"] == "drafts"]["ok"].all()


def test_noisy_images_are_flagged(digits):
    s = digits.splits["test"]
    noisy = s.x + 0.3 * np.random.default_rng(6).normal(size=s.x.shape).astype(np.float32)
    rows = pd.DataFrame(fd.fidelity_table(s.x, s.label, {"drafts": (noisy, s.label)}, "image",
                                          digits.class_names, CFG, seed=0))
    drafts = rows[rows["compared"] == "drafts"]
    assert (drafts["psd_log10_high"] > 0.15).all() and not drafts["ok"].any()


def test_config_errors_name_the_key():
    with pytest.raises(ValueError, match="fidelity.bands.high"):
        fd.FidelityConfig.from_dict({"bands": {"high": [0.8, 0.5]}})
    with pytest.raises(ValueError, match="unknown key"):
        fd.FidelityConfig.from_dict({"edge": 3})
    with pytest.raises(ValueError, match="'high'"):
        fd.FidelityConfig.from_dict({"bands": {"low": [0.0, 0.5]}})


def test_stage_writes_table_and_figure_and_flags_spiky_drafts(hapt, tmp_path):
    write_split(tmp_path / "test.h5", hapt, "test")
    write_split(tmp_path / "train.h5", hapt, "train")
    s = hapt.splits["test"]
    fake = _corrupt(s.x, "spikes", np.random.default_rng(7))
    attrs = {"dataset": "hapt", "n_classes": hapt.n_classes, "class_names": hapt.class_names, "K": 0}
    DraftSamples(fake, s.label, attrs).write(tmp_path / "samples.h5")
    ok = np.flatnonzero(np.arange(len(s.label)) % 2 == 0)
    Region(ok, ok[:6], {"dataset": "hapt", "alpha": 0.9}).write(
        tmp_path / "region.h5", DraftSamples(fake, s.label, attrs),
        type("Scores", (), {"phi": np.zeros((len(s.label), 2)), "y": np.zeros((len(s.label), 2)),
                            "score": np.zeros(len(s.label))})())
    df = draft_fidelity(tmp_path / "test.h5", tmp_path / "train.h5", tmp_path / "samples.h5", tmp_path / "region.h5", 0.9,
                        CFG.to_dict(), 0, tmp_path / "fidelity.csv", tmp_path / "fidelity.png", dataset="hapt")
    back = pd.read_csv(tmp_path / "fidelity.csv")
    assert len(back) == len(df) == 4 * (hapt.n_classes + 1)
    assert set(back["compared"]) == {"real_half", "train", "drafts", "accepted"}
    per_class = back[back["class"] != "all"]
    assert per_class[per_class["compared"] == "real_half"]["ok"].all()
    assert not per_class[per_class["compared"].isin(["drafts", "accepted"])]["ok"].any()
    acc = back[(back["compared"] == "accepted") & (back["class"] == "all")]
    assert int(acc["n_other"].iloc[0]) == len(ok)
    assert (tmp_path / "fidelity.png").stat().st_size > 10_000
