"""Trajectory data: the cursory loader and its validation, padded steps, goal octants, splits, train-only stats."""

from __future__ import annotations

import gzip
import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pytest

from dualspace.trajectory.data import (COND_COLUMNS, DISPLACEMENT_SCALE_PX, GeometryStats, choose_T,
                                       geometry_stats, load_records, normalise_geometry, octant, split_indices,
                                       to_steps)
from dualspace.trajectory.facts import timing_facts

# The 10 records of cursory 2.1.0 whose timing repeats a timestamp (dt = 0), found by hand in the JSON.
CURSORY_BAD = [509, 1275, 1292, 1310, 1311, 1321, 1329, 1480, 2160, 2321]
CURSORY_SHA256 = "1bf3af168719a580e2c5d6fb439f894f9bfff72fc90147149cc531dee80b6203"  # cursory 2.1.0


@pytest.fixture(scope="module")
def cursory():
    """The package's records, loaded once (about a second)."""
    return load_records()


def path_record(n: int, seed: int, scale: float = 1.0) -> dict:
    """A random valid record of n points in the cursory JSON shape."""
    rng = np.random.default_rng(seed)
    points = np.cumsum(rng.integers(-20, 21, size=(n, 2)), axis=0) * scale + 500
    timing = np.cumsum(rng.integers(5, 30, size=n)).astype(float)
    return {"start": points[0].tolist(), "end": points[-1].tolist(), "points": points.tolist(),
            "timing": timing.tolist(), "length": 0.0}


def write(path, records, compress: bool):
    blob = json.dumps(records).encode()
    path.write_bytes(gzip.compress(blob) if compress else blob)
    return path


def load_records_from(raw: list) -> tuple:
    """load_records on a list of raw records, through a temporary JSON file."""
    with tempfile.TemporaryDirectory() as d:
        return load_records(write(Path(d) / "r.json", raw, compress=False))


def test_cursory_loads_with_its_ten_repeated_timestamps_reported(cursory):
    records, report = cursory
    assert report.n_total == 2356
    assert report.sha256 == CURSORY_SHA256
    assert report.n_loaded == len(records) == 2356 - len(CURSORY_BAD)
    assert [i for i, _ in report.bad] == CURSORY_BAD
    assert all("not strictly increasing" in why for _, why in report.bad)
    assert [r.index for r in records] == [i for i in range(2356) if i not in CURSORY_BAD]
    for r in records:
        assert len(r.points) >= 3 and len(r.points) == len(r.timing) and (np.diff(r.timing) > 0).all()
        assert np.isfinite(r.points).all()
    # the ranges: 14-148 points per path
    n = [len(r.points) for r in records]
    assert min(n) == 14 and max(n) == 148


@pytest.mark.parametrize("compress", [False, True])
def test_bad_records_are_skipped_and_counted_by_index(tmp_path, compress):
    good = [path_record(10, s) for s in range(4)]
    non_increasing = path_record(10, 10)
    non_increasing["timing"][5] = non_increasing["timing"][4]
    nan_point = path_record(10, 11)
    nan_point["points"][3][1] = float("nan")
    two_points = path_record(2, 12)
    mismatch = path_record(10, 13)
    mismatch["timing"] = mismatch["timing"][:-1]
    raw = [good[0], non_increasing, good[1], nan_point, good[2], two_points, mismatch, good[3]]
    path = write(tmp_path / ("own.json.gz" if compress else "own.json"), raw, compress)
    records, report = load_records(path)
    assert [r.index for r in records] == [0, 2, 4, 7]
    assert report.n_total == 8 and report.n_loaded == 4 and report.n_bad == 4
    why = dict(report.bad)
    assert sorted(why) == [1, 3, 5, 6]
    assert "not strictly increasing at point 5" in why[1]
    assert "not finite at position 3" in why[3]
    assert "2 points" in why[5]
    assert "10 points but 9 timestamps" in why[6]
    np.testing.assert_array_equal(records[1].points, np.asarray(good[1]["points"], dtype=float))


@pytest.mark.parametrize("bad, index, words", [
    ("timing", 1, "not strictly increasing"), ("nan", 2, "not finite"), ("short", 0, "2 points")])
def test_refuse_names_file_record_and_problem(tmp_path, bad, index, words):
    raw = [path_record(8, s) for s in range(3)]
    if bad == "timing":
        raw[index]["timing"][3] = raw[index]["timing"][2] - 1
    elif bad == "nan":
        raw[index]["points"][0][0] = float("nan")
    else:
        raw[index] = path_record(2, 9)
    path = write(tmp_path / "mine.json", raw, compress=False)
    with pytest.raises(ValueError, match=rf"mine\.json: record {index} .*{words}"):
        load_records(path, on_bad="refuse")
    assert load_records(path, on_bad="skip")[1].bad[0][0] == index


def test_unknown_on_bad_missing_file_and_wrong_top_level(tmp_path):
    with pytest.raises(ValueError, match="on_bad must be one of"):
        load_records(on_bad="ignore")
    with pytest.raises(FileNotFoundError, match="nowhere.json"):
        load_records(tmp_path / "nowhere.json")
    path = write(tmp_path / "dict.json", {"points": []}, compress=False)
    with pytest.raises(ValueError, match="expected a JSON list"):
        load_records(path)


def test_choose_T_is_the_smallest_covering_length(cursory):
    records, _ = cursory
    lengths = np.array([r.n_steps for r in records])
    T = choose_T(lengths, 0.99)
    assert (lengths <= T).mean() >= 0.99
    assert (lengths <= T - 1).mean() < 0.99
    assert choose_T([5, 1, 3, 2], 1.0) == 5 and choose_T([5, 1, 3, 2], 0.5) == 2
    assert choose_T(range(1, 11), 0.95) == 10 and choose_T(range(1, 11), 0.9) == 9
    rng = np.random.default_rng(0)
    for cov in rng.uniform(0.01, 1, 50):
        lengths = rng.integers(1, 40, rng.integers(1, 60))
        T = choose_T(lengths, cov)
        assert (lengths <= T).mean() >= cov and (lengths <= T - 1).mean() < cov


def test_to_steps_rebuilds_points_and_timing_by_cumulative_sum(cursory):
    records, _ = cursory
    T = 60
    s = to_steps(records, T)
    n_steps = np.array([r.n_steps for r in records])
    assert len(s.dropped) == (n_steps > T).sum() and len(s.index) == (n_steps <= T).sum()
    assert s.steps.shape == (len(s.index), T, 3) and s.cond.shape == (len(s.index), len(COND_COLUMNS))
    for row in [0, 1, len(s.index) // 2, len(s.index) - 1]:
        r = records[s.index[row]]
        n = r.n_steps
        assert s.mask[row].sum() == n and s.mask[row, :n].all()
        assert (s.steps[row, n:] == 0).all()
        pts = s.start[row] + np.concatenate([[[0, 0]], np.cumsum(s.steps[row, :n, :2], axis=0)])
        np.testing.assert_allclose(pts, r.points, atol=1e-3)
        times = s.t0[row] + np.concatenate([[0], np.cumsum(s.steps[row, :n, 2])])
        np.testing.assert_allclose(times, r.timing, atol=1e-3)
        np.testing.assert_allclose(s.end[row], r.points[-1])
    with pytest.raises(ValueError, match="T=12 keeps no path .*shortest of the 2346 paths has 13 steps"):
        to_steps(records, 12)
    goal = s.end - s.start
    np.testing.assert_allclose(s.cond[:, :2], goal / DISPLACEMENT_SCALE_PX, rtol=1e-6)
    np.testing.assert_allclose(s.cond[:, 2], np.hypot(*goal.T) / DISPLACEMENT_SCALE_PX, rtol=1e-6)
    np.testing.assert_array_equal(s.cond[:, 3:].argmax(1), s.octant)


def test_to_steps_record_anchor_uses_the_records_start_and_end():
    raw = path_record(6, 0)
    raw["start"] = [0.0, 0.0]
    (r,), _ = load_records_from([raw])
    s = to_steps([r], T=10, anchor="record")
    np.testing.assert_array_equal(s.start[0], [0, 0])
    assert s.distance[0] == pytest.approx(math.hypot(*r.end))
    with pytest.raises(ValueError, match="anchor"):
        to_steps([r], T=10, anchor="goal")


def test_octant_of_known_displacements():
    disp = np.array([[10, 1], [1, 10], [-1, 10], [-10, 1], [-10, -1], [-1, -10], [1, -10], [10, -1],
                     [1, 0], [1, 1], [0, 1], [-1, 1], [-1, 0], [-1, -1], [0, -1], [1, -1], [0, 0]])
    assert octant(disp).tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7, 0]
    # off the boundaries it agrees with the angle in degrees
    rng = np.random.default_rng(0)
    d = rng.normal(size=(2000, 2)) * 300
    degrees = np.degrees(np.arctan2(d[:, 1], d[:, 0])) % 360
    np.testing.assert_array_equal(octant(d), (degrees // 45).astype(int))


def test_split_indices_deterministic_disjoint_and_covering():
    a, b, c = split_indices(1001, seed=3), split_indices(1001, seed=3), split_indices(1001, seed=4)
    assert list(a) == ["train", "val", "test"]
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["train"], c["train"])
    assert sorted(np.concatenate(list(a.values())).tolist()) == list(range(1001))
    assert [len(v) for v in a.values()] == [801, 100, 100]
    with pytest.raises(ValueError, match="sum to 1"):
        split_indices(10, 0, {"train": 0.5, "test": 0.4})


def test_geometry_stats_masked_train_only_and_floored(tmp_path):
    raw = [path_record(int(n), s) for s, n in enumerate(np.random.default_rng(1).integers(5, 30, 60))]
    records, _ = load_records_from(raw)
    s = to_steps(records, T=32)
    split = split_indices(len(s.index), seed=0)
    tr = split["train"]
    stats = geometry_stats(s.steps[tr], s.mask[tr])
    # independent: pool every train path's own differences
    pooled = np.concatenate([np.diff(records[s.index[i]].points, axis=0) for i in tr])
    np.testing.assert_allclose(stats.mean, pooled.mean(0))
    np.testing.assert_allclose(stats.std, pooled.std(0))

    # val/test records replaced by wildly different paths: the train stats do not move
    edited = [path_record(len(r["points"]), 1000 + k, scale=50.0) for k, r in enumerate(raw)]
    held = {int(s.index[i]) for k in ("val", "test") for i in split[k]}
    raw2 = [edited[i] if i in held else r for i, r in enumerate(raw)]
    s2 = to_steps(load_records_from(raw2)[0], T=32)
    split2 = split_indices(len(s2.index), seed=0)
    assert not np.allclose(s2.steps[split2["val"]], s.steps[split["val"]])
    stats2 = geometry_stats(s2.steps[split2["train"]], s2.mask[split2["train"]])
    np.testing.assert_array_equal(stats2.mean, stats.mean)
    np.testing.assert_array_equal(stats2.std, stats.std)

    # padding values never enter; a constant channel gets the floor
    junk = s.steps[tr].copy()
    junk[~s.mask[tr]] = 1e6
    np.testing.assert_allclose(geometry_stats(junk, s.mask[tr]).mean, stats.mean)
    flat = s.steps[tr].copy()
    flat[..., 1] = 7.0
    assert geometry_stats(flat, s.mask[tr]).std[1] == 1e-3

    z = normalise_geometry(s.steps, s.mask, stats)
    assert (z[~s.mask] == 0).all()
    np.testing.assert_allclose(z[s.mask] * stats.std + stats.mean, s.steps[s.mask][:, :2], atol=1e-3)
    stats.save(tmp_path / "stats.json")
    back = GeometryStats.load(tmp_path / "stats.json")
    np.testing.assert_array_equal(back.mean, stats.mean)
    np.testing.assert_array_equal(back.std, stats.std)


def test_timing_facts_by_hand():
    raw = [{"points": [[0, 0], [1, 0], [2, 0], [3, 0], [4, 0]], "timing": [0, 10, 20, 30, 100], "start": [0, 5]},
           {"points": [[0, 0], [0, 1], [0, 2]], "timing": [5, 12, 19]},
           {"points": [[0, 0]] * 7, "timing": [0, 17, 34, 51, 68, 85, 102]}]
    f = timing_facts(load_records_from(raw)[0], coverage=1.0)
    assert f["paths"] == 3 and (f["points_min"], f["points_max"]) == (3, 7)
    assert f["path_median_step_ms_share"] == {10: 1 / 3, 7: 1 / 3, 17: 1 / 3}
    assert f["pause_step_share"] == 1 / 12  # the 70 ms step of path 0 (> 2.5 x 10 ms)
    assert f["paths_with_pause_share"] == 1 / 3
    assert f["step_ms_median"] == 17.0 and f["T_cover_1"] == 6
    assert (f["duration_s_p50"], f["start_off_first_point"], f["start_gap_px_max"]) == (0.1, 1, 5.0)
