"""The abr data side: simulator norms, the abr_simulated loader, the EPL reader and the peak picker."""

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from dualspace.abr.epl import read_epl, to_model_input
from dualspace.abr.peaks import peak_to_peak, pick_peaks, track_wave
from dualspace.data.abr_simulated import (HEARING_CLASSES, SimulatorConfig, expected_peaks, hearing_class,
                                          load_abr_simulated, simulate, wave_v_slope, waveform)

EPL = Path(__file__).parent / "data" / "ABR-EPL"  # copies of ../shared/data/ABR-EPL (BSD-3, LICENSE beside them)


def static(intensity, rate=10.0, age=25.0, sex=0.5, threshold=0.0, noise=0.05):
    """(N,6) static rows, broadcasting scalars."""
    cols = np.broadcast_arrays(*map(np.atleast_1d, (intensity, rate, age, sex, threshold, noise)))
    return np.stack(cols, axis=1).astype(np.float64)


def test_latencies_follow_adult_click_norms():
    p = expected_peaks(static([80.0, 60.0, 40.0]))
    assert 5.5 <= p[0, 2] <= 5.8 and 1.5 <= p[0, 0] <= 1.7 and 3.7 <= p[0, 1] <= 3.9
    per_10db = np.diff(p[:, 2]) / 2.0  # ms per 10 dB drop
    assert np.all((0.3 <= per_10db) & (per_10db <= 0.4))
    assert np.all((3.8 <= p[:, 2] - p[:, 0]) & (p[:, 2] - p[:, 0] <= 4.2))
    assert p[0, 5] == pytest.approx(0.5, abs=0.1) and p[0, 5] > p[1, 5] > p[2, 5] > 0


def test_rate_delays_wave_v_more_than_wave_i():
    p = expected_peaks(static(80.0, rate=[10.0, 70.0]))
    dv, di = p[1, 2] - p[0, 2], p[1, 0] - p[0, 0]
    assert 0.3 <= dv <= 0.5 and 0 <= di < dv


def test_conductive_loss_shifts_the_function_by_its_size():
    levels = np.array([50.0, 70.0, 90.0])
    conductive = expected_peaks(static(levels, threshold=30.0), conductive_db=np.full(3, 30.0))
    normal = expected_peaks(static(levels - 30.0))
    np.testing.assert_allclose(conductive, normal)


def test_cochlear_loss_steeper_near_threshold_and_near_normal_high():
    slope_loss = wave_v_slope(static(55.0, threshold=50.0))
    slope_normal = wave_v_slope(static(5.0, threshold=0.0))
    assert slope_loss[0] < slope_normal[0] < 0  # more negative = steeper
    high_loss, high_normal = expected_peaks(static(100.0, threshold=50.0)), expected_peaks(static(100.0))
    assert abs(high_loss[0, 2] - high_normal[0, 2]) < 0.1


def test_no_wave_at_or_below_threshold():
    p = expected_peaks(static([30.0, 40.0, 40.1], threshold=40.0))
    assert np.isnan(p[:2]).all() and np.isfinite(p[2]).all()
    assert np.abs(waveform(p[:2])).max() == 0.0
    d = simulate(400, seed=3)
    below = d["static"][:, 0] <= d["static"][:, 4]
    assert np.isnan(d["peaks"][below]).all()
    noise = d["static"][below, 5]
    np.testing.assert_allclose(d["signal"][below].std(axis=1), noise, rtol=0.05)  # nothing but the noise


def test_simulate_is_seeded_and_covers_every_class():
    a, b, c = simulate(300, 1), simulate(300, 1), simulate(300, 2)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["signal"], c["signal"])
    assert a["signal"].shape == (300, 200) and a["signal"].dtype == np.float32 and a["label"].dtype == np.int64
    assert set(a["label"]) == set(range(len(HEARING_CLASSES)))


def test_hearing_class_boundaries():
    thr = np.array([-5, 0, 25, 25.5, 26, 40, 41, 70, 70.5, 90])
    np.testing.assert_array_equal(hearing_class(thr), [0, 0, 0, 1, 1, 1, 2, 2, 3, 3])


def test_config_names_the_bad_key():
    with pytest.raises(ValueError, match="abr_simulated.data.p_male"):
        SimulatorConfig(p_male=1.5)
    with pytest.raises(ValueError, match="unknown keys"):
        load_abr_simulated(0, n_train=10, n_calib=5, n_test=5, colour="red")


def test_loader_contract_and_train_zscore():
    ds = load_abr_simulated(seed=5, n_train=200, n_calib=80, n_test=70)
    assert ds.name == "abr_simulated" and ds.kind == "series" and ds.n_classes == 4 and ds.shape == (1, 200)
    assert [len(ds.splits[s].label) for s in ("train", "calib", "test")] == [200, 80, 70]
    raw = simulate(350, 5)["signal"]  # the loader's single draw
    train = ds.splits["train"]
    # undo the z-score and find the train rows among the raw draw; then recompute the stats by hand
    mean, std = float(ds.normalization["mean"][0]), float(ds.normalization["std"][0])
    back = train.x[:, 0] * std + mean
    rows = [int(np.argmin(np.abs(raw - r).max(axis=1))) for r in back]
    assert np.abs(raw[rows] - back).max() < 1e-4 and len(set(rows)) == 200
    assert mean == pytest.approx(raw[rows].mean(), abs=1e-5) and std == pytest.approx(raw[rows].std(), rel=1e-4)
    for s in ds.splits.values():
        assert s.extras["static"].shape == (len(s.label), 6) and s.extras["peaks"].shape == (len(s.label), 6)
        np.testing.assert_array_equal(s.label, hearing_class(s.extras["static"][:, 4]))
        # absent waves: peak_present false, peaks 0 (split files hold finite values); present ones are positive
        present = s.extras["peak_present"]
        assert present.dtype == bool and present.shape == (len(s.label), 3)
        assert (s.extras["peaks"][:, :3][~present] == 0).all() and (s.extras["peaks"][:, :3][present] > 0).all()
        below = s.extras["static"][:, 0] <= s.extras["static"][:, 4]
        assert not present[below].any() and present[~below, 2].all()
    assert ds.provenance["simulated"] and ds.provenance["seed"] == 5


def test_registry_lists_abr_simulated():
    from dualspace.data import dataset_spec

    assert dataset_spec("abr_simulated").kind == "series"


@pytest.mark.parametrize("name, n_levels, lo, averages", [("ABR-52-3", 12, 10, 512), ("CAP-139-5", 13, 0, 128)])
def test_read_epl_files(name, n_levels, lo, averages):
    s = read_epl(EPL / name)
    assert s.signals.shape == (n_levels, 1700) and s.sample_period_us == 10 and s.averages == averages
    assert s.levels[0] == lo and s.levels[-1] == 80 and s.rep_rate_per_s == 40 and s.frequency_khz == 16
    x, st = to_model_input(s)
    assert x.shape == (n_levels, 200) and st.shape == (n_levels, 6)
    np.testing.assert_array_equal(st[:, 0], s.levels)
    assert np.isnan(st[:, 2:]).all()
    # a 5:1 decimation keeps the slow shape: compare with every 5th native sample, away from sharp features
    assert np.corrcoef(x[-1], s.signals[-1, :1000:5])[0, 1] > 0.95


@pytest.mark.parametrize("damage", ["short_last_row", "column_missing", "non_numeric", "no_header"])
def test_read_epl_rejects_damaged_files(tmp_path, damage):
    text = (EPL / "ABR-52-3").read_bytes().decode("latin-1")
    head, data = text.split(":DATA", 1)
    rows = data.split("\r\n")
    if damage == "short_last_row":
        last = [i for i, r in enumerate(rows) if r.strip()][-1]
        rows[last] = "\t".join(rows[last].split("\t")[:5])
    elif damage == "column_missing":
        rows = ["\t".join(r.split("\t")[:-1]) for r in rows]
    elif damage == "non_numeric":
        rows[10] = rows[10].replace("-", "x", 1)
    else:
        head = head.replace("LEVEL SWEEP", "OTHER")
    bad = tmp_path / "damaged-epl"
    bad.write_bytes((head + ":DATA" + "\r\n".join(rows)).encode("latin-1"))
    with pytest.raises(ValueError, match="damaged-epl"):
        read_epl(bad)


def test_pick_peaks_recovers_simulated_latencies():
    d = simulate(3000, 11)
    st, truth = d["static"], d["peaks"]
    q = pick_peaks(d["signal"], noise_uv=st[:, 5])
    well_above = st[:, 0] >= st[:, 4] + 20
    found = well_above & np.isfinite(q[:, 2])
    assert found.sum() / well_above.sum() > 0.75  # detection rate of wave V
    assert np.abs(q[found, 2] - truth[found, 2]).mean() < 0.22  # ms, wave V (0.16 measured)
    strong = found & (truth[:, 5] > 10 * st[:, 5])
    assert np.abs(q[strong, 2] - truth[strong, 2]).mean() < 0.06  # 0.03 measured
    below = st[:, 0] <= st[:, 4]
    assert np.isfinite(q[below, 2]).mean() < 0.08  # false detections on noise alone


def test_track_wave_one_on_the_real_sweep():
    s = read_epl(EPL / "ABR-52-3")
    fs = 1e6 / s.sample_period_us
    latency, amplitude = track_wave(s.signals, s.levels, fs, window_ms=(1.0, 2.0), max_step_ms=0.3, trough_ms=0.6)
    above = s.levels >= 25
    assert np.isfinite(latency[above]).all()
    assert spearmanr(s.levels[above], amplitude[above])[0] > 0.8
    assert spearmanr(s.levels[above], latency[above])[0] < -0.8
    p2p = peak_to_peak(s.signals, fs, (0.8, 3.0))
    assert p2p[s.levels == 15][0] == pytest.approx(0.35, rel=0.15)
    assert p2p[s.levels == 80][0] == pytest.approx(5.7, rel=0.15)
