"""Generated paths against real ones: per-path geometry features (dx, dy only, never dt), timing features
(the full (dx, dy, dt) sequence, whose dt comes from `compose_spatiotemporal_sequence`), a classifier
two-sample test (C2ST, in dualspace.two_sample), per-feature Wasserstein distances, a Fitts-like duration-distance law, and figures.

Paths are padded step sequences: x (N, T, C) with a mask (N, T) that is True on a prefix of each row (at
least 2 steps). Padding values are never read. Numpy in, numpy out.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from scipy import stats

from ..plots import save, style
from ..two_sample import finite_columns
import matplotlib.pyplot as plt  # noqa: E402  (after dualspace.plots, which selects the Agg backend)

PAUSE_FACTOR = 2.5  # a pause: a step longer than 2.5 x its path's median dt (as in facts.timing_facts)
MIN_STEPS = 2

GEOMETRY_FEATURES = ["n_steps", "path_length", "straightness", "end_error", "curvature", "step_p50", "step_p95",
                     "max_deviation"]
TIMING_FEATURES = ["duration", "dt_median", "dt_cv", "dt_max_ratio", "pause_share", "speed_mean", "speed_p95",
                   "accel_p95", "jerk_p95", "peak_speed_time"]


# ---------------------------------------------------------------------------------------------- checks


def _paths(x: np.ndarray, mask: np.ndarray, channels: int, who: str, hint: str) -> tuple[np.ndarray, np.ndarray]:
    """Validated (N, T, channels) float64 steps, zero on padding, and the (N, T) bool prefix mask."""
    x = np.asarray(x, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    if x.ndim != 3 or x.shape[-1] != channels:
        raise ValueError(f"{who}: expected steps of shape (N, T, {channels}), got {x.shape}; {hint}")
    if mask.shape != x.shape[:2]:
        raise ValueError(f"{who}: mask {mask.shape} does not match the steps' (N, T) = {x.shape[:2]}")
    not_prefix = (mask[:, 1:] & ~mask[:, :-1]).any(axis=1)
    if not_prefix.any():
        raise ValueError(f"{who}: mask row {int(np.flatnonzero(not_prefix)[0])} is not a prefix (True, then False)")
    short = mask.sum(axis=1) < MIN_STEPS
    if short.any():
        raise ValueError(f"{who}: path {int(np.flatnonzero(short)[0])} has {int(mask[short][0].sum())} active "
                         f"steps, at least {MIN_STEPS} are needed")
    bad = (mask & ~np.isfinite(x).all(axis=-1)).any(axis=1)
    if bad.any():
        raise ValueError(f"{who}: path {int(np.flatnonzero(bad)[0])} has a non-finite value in an active step")
    return np.where(mask[..., None], x, 0.0), mask


# -------------------------------------------------------------------------------------- row statistics


def _row_percentile(values: np.ndarray, valid: np.ndarray, q: float) -> np.ndarray:
    """(N, T) values -> (N,) q-th percentile (linear) of each row's valid entries; NaN for a row with none."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "All-NaN slice": the row's NaN is the answer
        return np.nanpercentile(np.where(valid, values, np.nan), q, axis=1)


def _row_mean(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(N, T) values -> (N,) mean over each row's valid entries (rows have at least one)."""
    return np.where(valid, values, 0.0).sum(axis=1) / valid.sum(axis=1)


def _norm(v: np.ndarray) -> np.ndarray:
    """(..., 2) -> (...) Euclidean length."""
    return np.hypot(v[..., 0], v[..., 1])


# ------------------------------------------------------------------------------------ geometry features


def _mean_turning(xy: np.ndarray, moving: np.ndarray) -> np.ndarray:
    """(N, T, 2) steps, (N, T) moving -> (N,) mean |turning angle| [rad] between consecutive moving steps
    (zero-length steps are skipped, since they have no heading); 0 for a path with fewer than 2 moving steps."""
    N, T = moving.shape
    latest = np.maximum.accumulate(np.where(moving, np.arange(T), -1), axis=1)  # last moving step at or before t
    prev = np.concatenate([np.full((N, 1), -1), latest[:, :-1]], axis=1)  # ... strictly before t
    pair = moving & (prev >= 0)  # (N, T): step t turns from step prev[t]
    a = np.take_along_axis(xy, np.maximum(prev, 0)[..., None], axis=1)  # (N, T, 2)
    cross = a[..., 0] * xy[..., 1] - a[..., 1] * xy[..., 0]
    turn = np.abs(np.arctan2(cross, (a * xy).sum(-1)))
    count = pair.sum(axis=1)
    return np.where(pair, turn, 0.0).sum(axis=1) / np.maximum(count, 1)


def _max_deviation(xy: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """(N, T, 2) steps (zero on padding), (N, 2) goal -> (N,) max distance [px] of the visited points from the
    infinite line through the start along `goal` (from the start itself when the goal is 0)."""
    pos = np.cumsum(xy, axis=1)  # (N, T, 2) point after each step; padding repeats the last one
    g = _norm(goal)
    off_line = np.abs(pos[..., 0] * goal[:, None, 1] - pos[..., 1] * goal[:, None, 0]) / np.where(g > 0, g, 1)[:, None]
    dist = np.where(g[:, None] > 0, off_line, _norm(pos))
    return np.maximum(dist.max(axis=1), 0.0)


def geometry_features(dxdy: np.ndarray, mask: np.ndarray, goal: np.ndarray) -> dict[str, np.ndarray]:
    """Per-path shape features of (dx, dy) steps; never sees dt (a 3-channel array is refused).

    dxdy (N, T, 2) px, mask (N, T) prefix, goal (N, 2) px (end - start). Returns (N,) float64 arrays:
    n_steps; path_length (sum of step lengths, px); straightness (|goal| / path_length, 0 for a path that never
    moves); end_error (|sum of steps - goal|, px); curvature (mean |turning angle| between consecutive
    non-zero steps, rad); step_p50, step_p95 (step length percentiles over active steps, px); max_deviation
    (max distance of the visited points from the start->goal line, px).
    """
    xy, mask = _paths(dxdy, mask, 2, "geometry_features", "pass seq[..., :2]: geometry features never see dt")
    goal = np.asarray(goal, dtype=np.float64)
    if goal.shape != (len(xy), 2) or not np.isfinite(goal).all():
        raise ValueError(f"geometry_features: goal must be finite of shape ({len(xy)}, 2), got {goal.shape}")
    length = _norm(xy)  # (N, T) px, 0 on padding
    path_length = length.sum(axis=1)
    return {
        "n_steps": mask.sum(axis=1).astype(np.float64),
        "path_length": path_length,
        "straightness": np.divide(_norm(goal), path_length, out=np.zeros(len(xy)), where=path_length > 0),
        "end_error": _norm(xy.sum(axis=1) - goal),
        "curvature": _mean_turning(xy, length > 0),
        "step_p50": _row_percentile(length, mask, 50),
        "step_p95": _row_percentile(length, mask, 95),
        "max_deviation": _max_deviation(xy, goal),
    }


# -------------------------------------------------------------------------------------- timing features


def _difference(values: np.ndarray, widths: np.ndarray, valid: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One order of time derivative on a non-uniform grid: values (N, K, 2), each held over an interval of
    width widths (N, K) centred between its neighbours' -> (N, K-1, 2) d_k = (x_{k+1} - x_k) / h_k with
    h_k = (w_k + w_{k+1}) / 2 the distance between the two centres, the new widths h (N, K-1), and validity.
    From velocities over steps (widths dt) this is acceleration; applied again, jerk."""
    ok = valid[:, :-1] & valid[:, 1:]
    h = np.where(ok, (widths[:, :-1] + widths[:, 1:]) / 2, 1.0)
    d = (values[:, 1:] - values[:, :-1]) / h[..., None]
    return np.where(ok[..., None], d, 0.0), h, ok


def _check_dt(dt: np.ndarray, mask: np.ndarray) -> None:
    """ValueError naming the first path with an active dt <= 0."""
    bad = (mask & ~(dt > 0)).any(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"timing_features: path {i} has an active step with dt <= 0 "
                         f"(min {dt[i][mask[i]].min():g} ms); every active dt must be > 0")


def timing_features(seq: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
    """Per-path dt-aware features of (dx px, dy px, dt ms) sequences (B, T, 3) from the assembly helper.

    seq (N, T, 3), mask (N, T) prefix. Returns (N,) float64 arrays: duration (sum dt, ms); dt_median; dt_cv
    (std / mean of the path's dt); dt_max_ratio (max dt / median dt); pause_share (share of steps with
    dt > PAUSE_FACTOR x median dt); speed_mean, speed_p95 (over steps of |v| = step length / dt, px/ms);
    accel_p95 (px/ms^2) and jerk_p95 (px/ms^3) from `_difference`; peak_speed_time (mid-time of the fastest
    step, the first on ties, as a fraction of duration). jerk_p95 is NaN for a path of 2 steps.
    ValueError if an active dt is <= 0 or non-finite.
    """
    x, mask = _paths(seq, mask, 3, "timing_features", "timing features need (dx, dy, dt) from "
                     "compose_spatiotemporal_sequence")
    xy, dt = x[..., :2], x[..., 2]
    _check_dt(dt, mask)
    n = mask.sum(axis=1)
    duration = dt.sum(axis=1)
    dt_median = _row_percentile(dt, mask, 50)
    dt_mean = duration / n
    dt_std = np.sqrt(_row_mean((dt - dt_mean[:, None]) ** 2, mask))
    v = xy / np.where(mask, dt, 1.0)[..., None]  # (N, T, 2) px/ms, 0 on padding
    speed = _norm(v)
    a, h, a_ok = _difference(v, dt, mask)  # (N, T-1, 2) px/ms^2
    j, _, j_ok = _difference(a, h, a_ok)  # (N, T-2, 2) px/ms^3
    t_mid = np.cumsum(dt, axis=1) - dt / 2  # (N, T) ms, middle of each step
    fastest = np.argmax(np.where(mask, speed, -np.inf), axis=1)
    return {
        "duration": duration,
        "dt_median": dt_median,
        "dt_cv": dt_std / dt_mean,
        "dt_max_ratio": dt.max(axis=1) / dt_median,
        "pause_share": (mask & (dt > PAUSE_FACTOR * dt_median[:, None])).sum(axis=1) / n,
        "speed_mean": _row_mean(speed, mask),
        "speed_p95": _row_percentile(speed, mask, 95),
        "accel_p95": _row_percentile(_norm(a), a_ok, 95),
        "jerk_p95": _row_percentile(_norm(j), j_ok, 95),
        "peak_speed_time": t_mid[np.arange(len(dt)), fastest] / duration,
    }


# ---------------------------------------------------------------------------------- two-sample metrics


def feature_matrix(feats: Mapping[str, np.ndarray], names: Sequence[str] | None = None
                   ) -> tuple[np.ndarray, list[str]]:
    """Features dict of (N,) arrays -> (N, F) float64 matrix and its column names: `names` in their order,
    or every feature in sorted-name order."""
    names = sorted(feats) if names is None else list(names)
    missing = [k for k in names if k not in feats]
    if missing or not names:
        raise ValueError(f"feature_matrix: no feature named {missing} among {sorted(feats)}" if missing
                         else "feature_matrix: no features to stack")
    cols = [np.asarray(feats[k], dtype=np.float64) for k in names]
    shapes = {k: c.shape for k, c in zip(names, cols)}
    if any(c.ndim != 1 or len(c) != len(cols[0]) for c in cols):
        raise ValueError(f"feature_matrix: every feature must be (N,) of one length, got {shapes}")
    return np.stack(cols, axis=1), names


def wasserstein_table(real: Mapping[str, np.ndarray], fake: Mapping[str, np.ndarray]) -> dict[str, float]:
    """1-Wasserstein distance between real and fake values of every feature both dicts have, by name."""
    shared = sorted(set(real) & set(fake))
    if not shared:
        raise ValueError(f"wasserstein_table: no shared feature between {sorted(real)} and {sorted(fake)}")
    out = {}
    for k in shared:
        r, f = np.asarray(real[k], dtype=np.float64), np.asarray(fake[k], dtype=np.float64)
        finite_columns(r[:, None], [k], "wasserstein_table (real)")
        finite_columns(f[:, None], [k], "wasserstein_table (fake)")
        out[k] = float(stats.wasserstein_distance(r, f))
    return out


def duration_distance_fit(duration: np.ndarray, distance: np.ndarray) -> tuple[float, float]:
    """(slope b, intercept a) of the least-squares line log D = a + b log distance (a Fitts-like law:
    D = e^a distance^b); duration and distance (N,) must be > 0."""
    d, r = np.asarray(duration, dtype=np.float64), np.asarray(distance, dtype=np.float64)
    if d.shape != r.shape or d.ndim != 1 or len(d) < 2:
        raise ValueError(f"duration_distance_fit: need two (N,) arrays, N >= 2, got {d.shape} and {r.shape}")
    if not (np.isfinite(d) & np.isfinite(r) & (d > 0) & (r > 0)).all():
        raise ValueError("duration_distance_fit: every duration and distance must be finite and > 0 (log-log fit)")
    if np.ptp(np.log(r)) == 0:
        raise ValueError("duration_distance_fit: all distances are equal, so the slope is undefined")
    slope, intercept = np.polyfit(np.log(r), np.log(d), 1)
    return float(slope), float(intercept)


# ------------------------------------------------------------------------------------------------ figures


def _grid(n: int, ncols: int, size: float):
    """Figure with n panels on a grid of `ncols` columns; unused panels hidden. Returns (fig, flat axes)."""
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False,
                             layout="constrained")
    for ax in axes.flat[n:]:
        ax.axis("off")
    return fig, axes.flat[:n]


def plot_feature_histograms(real: Mapping[str, np.ndarray], fakes: Mapping[str, Mapping[str, np.ndarray]],
                            names: Sequence[str], path: str | Path, bins: int = 40) -> None:
    """One panel per feature: real (grey, filled) against each generated set (lines), density histograms on
    shared bins spanning the real set's 0.5-99.5th percentiles widened by half their range on each side (values
    outside are counted in the edge bins), so one set's outliers cannot squeeze the others into one bin."""
    style()
    fig, axes = _grid(len(names), 4, 2.6)
    for ax, k in zip(axes, names):
        sets = {"real": np.asarray(real[k], dtype=np.float64)}
        sets.update({name: np.asarray(f[k], dtype=np.float64) for name, f in fakes.items()})
        sets = {name: v[np.isfinite(v)] for name, v in sets.items()}
        lo, hi = np.percentile(sets["real"], [0.5, 99.5])
        lo, hi = lo - 0.5 * (hi - lo), hi + 0.5 * (hi - lo)
        edges = np.linspace(lo, hi if hi > lo else lo + 1, bins + 1)
        for i, (name, v) in enumerate(sets.items()):
            look = dict(color="0.6", alpha=0.6) if name == "real" else dict(histtype="step", lw=1.2,
                                                                           color=f"C{i - 1}")
            ax.hist(np.clip(v, edges[0], edges[-1]), bins=edges, density=True, label=name, **look)
        ax.set_title(k, fontsize=8)
        ax.tick_params(labelsize=6)
    axes[0].legend(fontsize=6)
    save(fig, path)


def plot_paths(seq: np.ndarray, mask: np.ndarray, start: np.ndarray, path: str | Path, n: int = 16,
               title: str = "") -> None:
    """The first n paths on a grid, in screen pixels (y down) from `start` (N, 2): points coloured by step
    speed [px/ms] on one shared scale when seq is (N, T, 3), a plain line for (N, T, 2) geometry."""
    seq, mask, start = np.asarray(seq, dtype=np.float64), np.asarray(mask, dtype=bool), np.asarray(start)
    n = min(n, len(seq))
    timed = seq.shape[-1] == 3
    speed = _norm(seq[..., :2]) / np.where(mask, seq[..., 2], 1.0) if timed else None  # (N, T)
    vmax = np.percentile(speed[:n][mask[:n]], 99) if timed else None
    style()
    fig, axes = _grid(n, int(np.ceil(np.sqrt(n))), 2.2)
    for i, ax in enumerate(axes):
        k = int(mask[i].sum())
        pts = start[i] + np.concatenate([[[0.0, 0.0]], np.cumsum(seq[i, :k, :2], axis=0)])  # (k + 1, 2)
        ax.plot(pts[:, 0], pts[:, 1], color="0.7" if timed else "C0", lw=0.8)
        if timed:
            sc = ax.scatter(pts[1:, 0], pts[1:, 1], c=speed[i, :k], s=5, cmap="viridis", vmin=0, vmax=vmax)
        ax.plot(*pts[0], "k+", ms=6)
        ax.set_aspect("equal", adjustable="datalim")
        ax.invert_yaxis()
        ax.tick_params(labelsize=5)
    if timed:
        fig.colorbar(sc, ax=list(axes), shrink=0.6, label="speed [px/ms]")
    fig.suptitle(title, fontsize=9)
    save(fig, path)


def plot_duration_distance(sets: Mapping[str, tuple[np.ndarray, np.ndarray]], path: str | Path) -> None:
    """Duration [ms] against distance [px], log-log, one colour per set {name: (duration, distance)}, with its
    fitted line D = e^a distance^b and slope b in the legend."""
    style()
    fig, ax = plt.subplots(figsize=(4.5, 4))
    for i, (name, (duration, distance)) in enumerate(sets.items()):
        b, a = duration_distance_fit(duration, distance)
        ax.scatter(distance, duration, s=3, alpha=0.3, color=f"C{i}")
        r = np.geomspace(np.min(distance), np.max(distance), 50)
        ax.plot(r, np.exp(a) * r**b, color=f"C{i}", lw=1.5, label=f"{name}: slope {b:.2f}")
    ax.set(xscale="log", yscale="log", xlabel="distance [px]", ylabel="duration [ms]",
           title="duration against distance")
    ax.legend(fontsize=7)
    save(fig, path)
