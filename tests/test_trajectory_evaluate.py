"""Trajectory evaluation: features against brute-force loops and known paths, the C2ST against its chance
level and scipy's beta quantiles, Wasserstein and the duration-distance law against closed forms, figures."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import torch
from scipy import stats
from threadpoolctl import threadpool_limits

from dualspace.data.base import DataMissingError
from dualspace.two_sample import C2ST, c2st
from dualspace.trajectory.data import GeometryStats, load_records, to_steps
from dualspace.trajectory.evaluate import (GEOMETRY_FEATURES, TIMING_FEATURES, duration_distance_fit,
                                           feature_matrix, geometry_features, plot_duration_distance,
                                           plot_feature_histograms, plot_paths, timing_features,
                                           wasserstein_table)
from dualspace.trajectory.facts import timing_facts
from dualspace.trajectory.timing import TimingModel, compose_spatiotemporal_sequence


@pytest.fixture(autouse=True)
def one_thread():
    """Single-threaded torch and OpenMP (the gradient boosting), restored afterwards (the machine is shared)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        yield
    torch.set_num_threads(n)


def random_paths(lengths, T: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, T, 3) float32 wandering paths with some zero-length steps and garbage (NaN, huge, dt <= 0) in the
    padding, their (N, T) mask and an (N, 2) goal near each path's end."""
    rng = np.random.default_rng(seed)
    N = len(lengths)
    seq = np.stack([rng.normal(5, 20, (N, T)), rng.normal(-3, 20, (N, T)), rng.lognormal(2.5, 0.6, (N, T))], -1)
    seq[rng.random((N, T)) < 0.15, :2] = 0.0  # the cursor did not move this step
    mask = np.arange(T)[None, :] < np.asarray(lengths)[:, None]
    garbage = np.where(rng.random((N, T, 3)) < 0.5, np.nan, rng.normal(0, 1e6, (N, T, 3)))
    seq = np.where(mask[..., None], seq, garbage).astype(np.float32)
    goal = np.nansum(np.where(mask[..., None], seq[..., :2], 0.0), axis=1) + rng.normal(0, 10, (N, 2))
    return seq, mask, goal


def percentile(xs: list[float], q: float) -> float:
    """Linear-interpolation percentile by hand (numpy's default method)."""
    xs = sorted(xs)
    rank = q / 100 * (len(xs) - 1)
    lo = math.floor(rank)
    return xs[lo] + (rank - lo) * (xs[min(lo + 1, len(xs) - 1)] - xs[lo])


def brute_geometry(steps: list[tuple[float, float]], goal: tuple[float, float]) -> dict[str, float]:
    """Geometry features of one path's active (dx, dy) steps, by loops."""
    lengths = [math.hypot(dx, dy) for dx, dy in steps]
    total = sum(lengths)
    headings = [math.atan2(dy, dx) for (dx, dy), l in zip(steps, lengths) if l > 0]
    turns = [abs((b - a + math.pi) % (2 * math.pi) - math.pi) for a, b in zip(headings, headings[1:])]
    ex, ey = sum(s[0] for s in steps), sum(s[1] for s in steps)
    g = math.hypot(*goal)
    ux, uy = goal[0] / g, goal[1] / g
    x = y = dev = 0.0
    for dx, dy in steps:
        x, y = x + dx, y + dy
        along = x * ux + y * uy
        dev = max(dev, math.hypot(x - along * ux, y - along * uy))
    return {"n_steps": len(steps), "path_length": total, "straightness": g / total,
            "end_error": math.hypot(ex - goal[0], ey - goal[1]),
            "curvature": sum(turns) / len(turns) if turns else 0.0,
            "step_p50": percentile(lengths, 50), "step_p95": percentile(lengths, 95), "max_deviation": dev}


def brute_timing(steps: list[tuple[float, float, float]]) -> dict[str, float]:
    """Timing features of one path's active (dx, dy, dt) steps, by loops over explicit times: velocity at the
    middle of its step, acceleration between two velocities' times, jerk between two accelerations' times."""
    dts = [s[2] for s in steps]
    duration = sum(dts)
    med = percentile(dts, 50)
    mean = duration / len(dts)
    t = 0.0
    vel = []  # (time, vx, vy)
    for dx, dy, dt in steps:
        vel.append((t + dt / 2, dx / dt, dy / dt))
        t += dt

    def derivative(series):
        return [((t0 + t1) / 2, (x1 - x0) / (t1 - t0), (y1 - y0) / (t1 - t0))
                for (t0, x0, y0), (t1, x1, y1) in zip(series, series[1:])]

    acc = derivative(vel)
    jerk = derivative(acc)
    speeds = [math.hypot(vx, vy) for _, vx, vy in vel]
    fastest = speeds.index(max(speeds))
    return {"duration": duration, "dt_median": med,
            "dt_cv": math.sqrt(sum((d - mean) ** 2 for d in dts) / len(dts)) / mean,
            "dt_max_ratio": max(dts) / med, "pause_share": sum(d > 2.5 * med for d in dts) / len(dts),
            "speed_mean": sum(speeds) / len(speeds), "speed_p95": percentile(speeds, 95),
            "accel_p95": percentile([math.hypot(ax, ay) for _, ax, ay in acc], 95),
            "jerk_p95": percentile([math.hypot(jx, jy) for _, jx, jy in jerk], 95) if jerk else math.nan,
            "peak_speed_time": vel[fastest][0] / duration}


def active(seq: np.ndarray, mask: np.ndarray, i: int, channels: int) -> list[tuple[float, ...]]:
    """Row i's active steps as Python float tuples."""
    return [tuple(float(v) for v in s[:channels]) for s in seq[i][mask[i]]]


# ------------------------------------------------------------------------------------------- geometry


def test_geometry_features_match_loops_and_ignore_padding():
    lengths = [2, 3, 7, 30, 40, 40]
    seq, mask, goal = random_paths(lengths, 40, seed=0)
    feats = geometry_features(seq[..., :2], mask, goal)
    assert sorted(feats) == sorted(GEOMETRY_FEATURES)
    for i in range(len(lengths)):
        ref = brute_geometry(active(seq, mask, i, 2), tuple(goal[i]))
        for k, v in ref.items():
            assert feats[k][i] == pytest.approx(v, rel=1e-9, abs=1e-9), (k, i)
    clean = np.where(mask[..., None], seq[..., :2], 0.0)
    for k, v in geometry_features(clean, mask, goal).items():
        np.testing.assert_array_equal(v, feats[k], err_msg=k)


def test_straight_and_zigzag_paths_have_known_geometry():
    T = 12
    mask = np.arange(T)[None, :] < np.array([[10], [8], [8]])
    xy = np.zeros((3, T, 2))
    xy[0, :10] = (3.0, 4.0)  # straight, 50 px
    xy[1, :8] = np.tile([[1.0, 0.0], [0.0, 1.0]], (4, 1))  # staircase: every turn is pi/2
    xy[2, :8] = [[1, 0], [0, 1], [0, 0], [1, 0], [0, 1], [0, 0], [1, 0], [0, 1]]  # with zero steps: no heading
    goal = xy.sum(axis=1)
    f = geometry_features(xy, mask, goal)
    assert (f["straightness"][0], f["curvature"][0], f["end_error"][0], f["max_deviation"][0]) == (1, 0, 0, 0)
    assert f["path_length"][0] == pytest.approx(50)
    assert f["curvature"][1] == pytest.approx(math.pi / 2)
    assert f["straightness"][1] == pytest.approx(math.hypot(4, 4) / 8)
    assert f["max_deviation"][1] == pytest.approx(1 / math.sqrt(2))
    # row 2: the zero steps are skipped, so right -> down -> right ... still turns pi/2 at every step
    assert f["curvature"][2] == pytest.approx(math.pi / 2)


def test_geometry_features_never_sees_dt():
    assert list(inspect.signature(geometry_features).parameters) == ["dxdy", "mask", "goal"]
    seq, mask, goal = random_paths([5, 9], 10, seed=1)
    with pytest.raises(ValueError, match=r"\(N, T, 2\).*seq\[\.\.\., :2\]"):
        geometry_features(seq, mask, goal)
    changed = seq.copy()
    changed[..., 2] *= 7.0
    a, b = geometry_features(seq[..., :2], mask, goal), geometry_features(changed[..., :2], mask, goal)
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_bad_masks_and_goals_are_refused():
    seq, mask, goal = random_paths([5, 9], 10, seed=2)
    holey = mask.copy()
    holey[1, 2] = False
    with pytest.raises(ValueError, match="mask row 1 is not a prefix"):
        geometry_features(seq[..., :2], holey, goal)
    short = mask.copy()
    short[0, 1:] = False
    with pytest.raises(ValueError, match="path 0 has 1 active steps"):
        geometry_features(seq[..., :2], short, goal)
    with pytest.raises(ValueError, match="goal"):
        geometry_features(seq[..., :2], mask, goal[:1])


# --------------------------------------------------------------------------------------------- timing


def test_timing_features_match_loops_and_ignore_padding():
    lengths = [2, 3, 7, 30, 40, 40]
    seq, mask, _ = random_paths(lengths, 40, seed=3)
    seq[3, 4, 2] = 200.0  # a pause
    feats = timing_features(seq, mask)
    assert sorted(feats) == sorted(TIMING_FEATURES)
    for i in range(len(lengths)):
        ref = brute_timing(active(seq, mask, i, 3))
        for k, v in ref.items():
            if math.isnan(v):
                assert math.isnan(feats[k][i]), (k, i)
            else:
                assert feats[k][i] == pytest.approx(v, rel=1e-9, abs=1e-12), (k, i)
    assert feats["pause_share"][3] > 0
    clean = np.where(mask[..., None], seq, 0.0)
    for k, v in timing_features(clean, mask).items():
        np.testing.assert_array_equal(v, feats[k], err_msg=k)


def test_constant_speed_path_has_no_acceleration():
    T = 20
    seq = np.zeros((2, T, 3))
    seq[:, :, :] = (3.0, 4.0, 10.0)
    mask = np.arange(T)[None, :] < np.array([[20], [15]])
    f = timing_features(seq, mask)
    np.testing.assert_allclose(f["duration"], [200, 150])
    np.testing.assert_allclose(f["speed_mean"], 0.5)
    np.testing.assert_allclose(f["dt_cv"], 0, atol=1e-15)
    np.testing.assert_allclose(f["dt_max_ratio"], 1)
    np.testing.assert_allclose(f["pause_share"], 0)
    np.testing.assert_allclose(f["accel_p95"], 0, atol=1e-15)
    np.testing.assert_allclose(f["jerk_p95"], 0, atol=1e-15)


def test_uniform_acceleration_and_speed_peak():
    # steps of equal dt whose speed grows linearly: |a| is constant, jerk is 0, the peak is the last step
    T, dt = 10, 4.0
    speeds = 0.5 + 0.25 * np.arange(T)
    seq = np.stack([speeds * dt, np.zeros(T), np.full(T, dt)], -1)[None]
    f = timing_features(seq, np.ones((1, T), bool))
    assert f["accel_p95"][0] == pytest.approx(0.25 / dt)
    assert f["jerk_p95"][0] == pytest.approx(0, abs=1e-12)
    assert f["peak_speed_time"][0] == pytest.approx((T - 0.5) / T)


@pytest.mark.parametrize("bad", [0.0, -1.0, np.nan, np.inf])
def test_timing_features_refuse_bad_dt_naming_the_path(bad):
    seq, mask, _ = random_paths([5, 9, 9], 10, seed=4)
    seq[2, 3, 2] = bad
    with pytest.raises(ValueError, match="path 2"):
        timing_features(seq, mask)
    with pytest.raises(ValueError, match=r"\(N, T, 3\)"):
        timing_features(seq[..., :2], mask)


# ----------------------------------------------------------------------------------------------- C2ST


def timing_sets(n: int, T: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, T, 2) normalised geometry and a (n, T) mask, drawn from one fixed distribution."""
    rng = np.random.default_rng(seed)
    geometry = rng.normal(0.3, 1.0, (n, T, 2)).astype(np.float32)
    return geometry, np.arange(T)[None, :] < rng.integers(T // 2, T + 1, n)[:, None]


def test_c2st_same_distribution_is_near_chance():
    # two independent draws of geometry and condition, each assembled with its own seed by one TimingModel
    T, n = 24, 300
    torch.manual_seed(0)
    model = TimingModel(cond_dim=3, T=T, hidden=16)
    model.log_d_mean.fill_(math.log(700.0))  # untrained, but with human-scale durations (ms)
    stats_ = GeometryStats(np.array([2.0, -1.0]), np.array([8.0, 6.0]))
    sets = []
    for seed in (1, 2):
        g, m = timing_sets(n, T, seed)
        cond = torch.as_tensor(np.random.default_rng(seed + 10).normal(size=(n, 3)), dtype=torch.float32)
        seq, m = compose_spatiotemporal_sequence(torch.as_tensor(g), torch.as_tensor(m), cond, model, stats_,
                                                 seed=seed)
        sets.append(feature_matrix(timing_features(seq.numpy(), m.numpy()))[0])
    r = c2st(*sets, seed=0)
    assert isinstance(r, C2ST) and r.n == 2 * n and r.folds == 5
    assert r.low <= 0.5 <= r.high or r.accuracy < 0.6, r


def test_c2st_tells_constant_from_lognormal_dt_and_its_interval_is_clopper_pearson():
    rng = np.random.default_rng(5)
    T, n = 24, 200
    g, mask = timing_sets(n, T, seed=3)
    xy = g * 10
    constant = np.concatenate([xy, np.full((n, T, 1), 15.0)], -1)
    lognormal = np.concatenate([xy, 15.0 * rng.lognormal(0, 1, (n, T, 1))], -1)
    real = feature_matrix(timing_features(constant, mask))[0]
    fake = feature_matrix(timing_features(lognormal, mask))[0]
    r = c2st(real, fake[: n - 50], seed=1, folds=4)  # unequal sizes: balanced to the smaller
    assert r.accuracy > 0.95 and r.n == 2 * (n - 50) and r.folds == 4
    k = round(r.accuracy * r.n)
    low = stats.beta.ppf(0.025, k, r.n - k + 1) if k > 0 else 0.0
    high = stats.beta.ppf(0.975, k + 1, r.n - k) if k < r.n else 1.0
    assert r.low == pytest.approx(low, abs=1e-9) and r.high == pytest.approx(high, abs=1e-9)
    assert r.low <= r.accuracy <= r.high
    assert c2st(real, fake[: n - 50], seed=1, folds=4) == r  # seeded


def test_c2st_refuses_non_finite_features_naming_the_column():
    rng = np.random.default_rng(6)
    feats = {"a": rng.normal(size=50), "b": rng.normal(size=50), "c": rng.normal(size=50)}
    X, names = feature_matrix(feats)
    bad = X.copy()
    bad[7, 1] = np.nan
    with pytest.raises(ValueError, match=r"'b'.*row 7"):
        c2st(X, bad, names=names)
    with pytest.raises(ValueError, match="column 1"):
        c2st(bad, X)
    with pytest.raises(ValueError, match="same F"):
        c2st(X, X[:, :2])


def test_feature_matrix_stacks_sorted_or_chosen_columns():
    feats = {"z": np.arange(3.0), "a": -np.arange(3.0), "m": np.ones(3)}
    X, names = feature_matrix(feats)
    assert names == ["a", "m", "z"]
    np.testing.assert_array_equal(X[:, 2], feats["z"])
    X, names = feature_matrix(feats, ["z", "a"])
    assert names == ["z", "a"] and X.shape == (3, 2)
    with pytest.raises(ValueError, match="nope"):
        feature_matrix(feats, ["nope"])
    with pytest.raises(ValueError, match="one length"):
        feature_matrix({"a": np.ones(3), "b": np.ones(4)})


# ------------------------------------------------------------------------------- distances and the law


def test_wasserstein_table_matches_sorted_differences_on_shared_features():
    rng = np.random.default_rng(7)
    real = {"a": rng.normal(size=100), "b": rng.exponential(size=100), "only_real": np.ones(100)}
    fake = {"a": rng.normal(1, 2, size=100), "b": rng.exponential(size=100)}
    table = wasserstein_table(real, fake)
    assert sorted(table) == ["a", "b"]
    for k in table:  # equal sample sizes: W1 = mean |sorted(x) - sorted(y)|
        assert table[k] == pytest.approx(np.abs(np.sort(real[k]) - np.sort(fake[k])).mean())
    with pytest.raises(ValueError, match="'a'"):
        wasserstein_table({"a": np.array([1.0, np.nan])}, {"a": np.ones(2)})


def test_duration_distance_fit_recovers_a_known_law():
    rng = np.random.default_rng(8)
    distance = rng.uniform(50, 2500, 2000)
    a, b = 4.5, 0.4
    assert duration_distance_fit(np.exp(a) * distance**b, distance) == pytest.approx((b, a), abs=1e-9)
    duration = np.exp(a) * distance**b * rng.lognormal(0, 0.2, 2000)
    slope, intercept = duration_distance_fit(duration, distance)
    assert slope == pytest.approx(b, abs=0.03) and intercept == pytest.approx(a, abs=0.2)
    with pytest.raises(ValueError, match="> 0"):
        duration_distance_fit(np.array([1.0, -2.0]), np.array([1.0, 2.0]))


# -------------------------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def real_steps():
    try:
        records, _ = load_records()
    except DataMissingError as e:
        pytest.skip(f"cursory data missing: {e}")
    return records, to_steps(records, T=92)


def test_real_paths_give_finite_features_consistent_with_timing_facts(real_steps):
    records, s = real_steps
    geo = geometry_features(s.steps[..., :2], s.mask, s.end - s.start)
    tim = timing_features(s.steps, s.mask)
    assert all(np.isfinite(v).all() for v in [*geo.values(), *tim.values()])
    assert geo["end_error"].max() < 0.05 and geo["straightness"].max() <= 1 + 1e-6  # anchor="points"
    kept = [records[i] for i in s.index]
    np.testing.assert_allclose(tim["duration"], [r.timing[-1] - r.timing[0] for r in kept], rtol=1e-5)
    facts = timing_facts(kept)
    pooled = (tim["pause_share"] * geo["n_steps"]).sum() / geo["n_steps"].sum()
    assert pooled == pytest.approx(facts["pause_step_share"], abs=1e-3)
    slope, _ = duration_distance_fit(tim["duration"], s.distance)
    assert 0 < slope < 1  # longer moves take longer, but less than proportionally


# ---------------------------------------------------------------------------------------------- figures


def only_png(tmp_path, name):
    """The figure exists, is a non-empty PNG, and is the only file in tmp_path (no temp file left)."""
    out = tmp_path / name
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 1000
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_figures_write_one_png_each(tmp_path):
    seq, mask, goal = random_paths([5, 9, 12, 12], 12, seed=9)
    start = np.full((4, 2), 500.0)
    geo = geometry_features(seq[..., :2], mask, goal)
    fake = {k: v * 1.1 for k, v in geo.items()}
    for name, draw in [
        ("hist.png", lambda p: plot_feature_histograms(geo, {"model": fake, "other": geo}, ["path_length",
                                                       "curvature", "n_steps"], p)),
        ("timed.png", lambda p: plot_paths(seq, mask, start, p, n=3, title="timed")),
        ("geometry.png", lambda p: plot_paths(seq[..., :2], mask, start, p)),
        ("law.png", lambda p: plot_duration_distance({"real": (geo["path_length"], geo["n_steps"]),
                                                      "model": (fake["path_length"], fake["n_steps"])}, p)),
    ]:
        sub = tmp_path / name.removesuffix(".png")
        sub.mkdir()
        draw(sub / name)
        only_png(sub, name)
