"""The trajectory study's stages, one function per rule of workflow/rules/trajectory.smk.

Files under results/trajectory/:
  data/{train,val,test}.h5    padded steps, mask, condition, goal (trajectory_data)
  data/geometry_stats.json    (dx, dy) mean and std of the train split only; every run reuses it
  data/load_report.json       what the loader read, skipped and dropped
  timing/cache_{split}.h5     D, w = dt / D, log-duration moments, mean profile and per-step variance
  geometry/model.pt           the (dx, dy) diffusion + length model;  geometry/samples.h5 its test-size draw
  timing/{variant}/model.pt   a timing model (a conditioning of the study)
  joint/model.pt, samples.h5  the joint (dx, dy, dt) diffusion baseline
  eval/{model}.csv, .h5       metrics and features of one timing model (or baseline) against the test split
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from ..diffusion.samplers import SamplerConfig
from ..io import atomic_path, load_checkpoint, read_h5, read_h5_attrs, save_torch, write_csv, write_h5, write_json
from ..two_sample import c2st
from . import evaluate as ev
from .baselines import ConstantTiming, MomentMatchedTiming, TimingCache, timing_cache
from .data import COND_COLUMNS, GeometryStats, choose_T, geometry_stats, load_records, normalise_geometry, \
    split_indices, to_steps
from .facts import timing_facts
from .geometry import PathDiffusionSettings, load_path_model, train_path_diffusion
from .timing import TimingConfig, TimingModel, compose_spatiotemporal_sequence, fit_timing, timing_targets

log = logging.getLogger("dualspace")

SPLITS = ("train", "val", "test")
STEP_FIELDS = ("steps", "mask", "cond", "octant", "distance", "start", "end", "index")


# ------------------------------------------------------------------------------------------- data


def prepare_paths(out: Mapping[str, str], stats_path: str | Path, report_path: str | Path, *, source: str | None,
                  on_bad: str, coverage: float, T: int | None, T_multiple: int, anchor: str, seed: int,
                  fractions: Mapping[str, float]) -> None:
    """rule trajectory_data: load and validate the records, pad them to T steps, split by seed, and write the
    splits, the train-only geometry stats and a load report.

    T = `T` when given, else the smallest length covering `coverage` of the paths; rounded up to a multiple of
    `T_multiple` (what the U-Net's down-sampling needs: extra padding changes nothing, it is masked).
    """
    records, report = load_records(source, on_bad)
    if report.n_bad:
        log.warning("%s: skipped %d bad records (first: record %d %s)", report.path, report.n_bad, *report.bad[0])
    lengths = [r.n_steps for r in records]
    T_cover = choose_T(lengths, coverage) if T is None else int(T)
    T_model = int(math.ceil(T_cover / T_multiple) * T_multiple)
    steps = to_steps(records, T_cover, anchor)
    if T_model > T_cover:  # pad to the multiple; the mask already excludes the new steps
        steps.steps = np.pad(steps.steps, ((0, 0), (0, T_model - T_cover), (0, 0)))
        steps.mask = np.pad(steps.mask, ((0, 0), (0, T_model - T_cover)))
    parts = split_indices(len(steps.steps), seed, fractions)
    if set(parts) != set(SPLITS):
        raise ValueError(f"trajectory.split.fractions must name exactly {list(SPLITS)}, got {sorted(parts)}")
    stats = geometry_stats(steps.steps[parts["train"]], steps.mask[parts["train"]])
    attrs = {"T": T_model, "T_cover": T_cover, "scale": steps.scale, "source": report.path,
             "source_sha256": report.sha256, "cond_columns": COND_COLUMNS, "anchor": anchor}
    for split in SPLITS:
        idx = parts[split]
        write_h5(out[split], {k: getattr(steps, k)[idx] for k in STEP_FIELDS}, {**attrs, "split": split})
    with atomic_path(stats_path) as tmp:
        stats.save(tmp)
    write_json({"source": report.path, "sha256": report.sha256, "records": report.n_total,
                 "loaded": report.n_loaded, "skipped_bad": report.n_bad, "bad": report.bad[:50],
                 "dropped_longer_than_T": int(len(steps.dropped)), "T": T_model, "T_cover": T_cover,
                 "split_sizes": {k: int(len(v)) for k, v in parts.items()}, "facts": timing_facts(records)},
                report_path)
    log.info("%d paths (%d bad skipped, %d longer than T=%d dropped); splits %s", len(steps.steps), report.n_bad,
             len(steps.dropped), T_cover, {k: len(v) for k, v in parts.items()})


def read_paths(path: str | Path) -> dict[str, np.ndarray]:
    """One split file of trajectory_data as arrays (steps (N, T, 3), mask, cond, ...)."""
    return read_h5(path, list(STEP_FIELDS))


def write_timing_cache(split_h5: str | Path, out_h5: str | Path) -> None:
    """rule trajectory_timing_cache: D, w and their moments for one split."""
    d = read_paths(split_h5)
    cache = timing_cache(d["steps"][..., 2], d["mask"])
    write_h5(out_h5, {"duration": cache.duration, "profile": cache.profile, "rel_mean": cache.rel_mean,
                      "rel_var": cache.rel_var},
             {"log_d_mean": cache.log_d_mean, "log_d_std": cache.log_d_std, "dt_median": cache.dt_median})


def read_timing_cache(path: str | Path) -> TimingCache:
    arrays, attrs = read_h5(path), read_h5_attrs(path)
    return TimingCache(arrays["duration"], arrays["profile"], float(attrs["log_d_mean"]), float(attrs["log_d_std"]),
                       arrays["rel_mean"], arrays["rel_var"], float(attrs["dt_median"]))


# ------------------------------------------------------------------------------------------ models


def train_geometry(train_h5: str | Path, stats_path: str | Path | None, out_path: str | Path, *,
                   settings: Mapping[str, Any], seed: int, length_k: int, joint: bool = False) -> None:
    """rule trajectory_geometry / trajectory_joint: train the path diffusion on the train split, (dx, dy)
    normalised with the stats file, or (dx, dy, dt) with its own per-channel stats (joint baseline)."""
    d = read_paths(train_h5)
    st = PathDiffusionSettings.from_dict(dict(settings), channels=3 if joint else 2, cond_in=d["cond"].shape[1])
    st.train.seed = seed
    stats = geometry_stats(d["steps"], d["mask"], channels=3) if joint else GeometryStats.load(stats_path)
    x = normalise_geometry(d["steps"], d["mask"], stats)
    log.info("training %s path diffusion on %s paths, T=%d: %s", "joint (dx, dy, dt)" if joint else "(dx, dy)",
             len(x), x.shape[1], {"model": st.model.to_dict(), "train": asdict(st.train)})
    train_path_diffusion(x, d["mask"], d["cond"], st, out_path, meta={"stats": stats.to_dict()}, length_k=length_k)


ENDPOINTS = ("project", "free")


def sample_paths(model_path: str | Path, test_h5: str | Path, out_h5: str | Path, *, sampler: Mapping[str, Any],
                 seed: int, endpoint: str = "project") -> None:
    """rule trajectory_sample: one generated path per test condition, its step count from the length model;
    written normalised (N, T, C) with the mask and conditions.

    endpoint="project": every x0 prediction is projected so that the steps sum to the goal (end - start);
    "free": the network alone decides where the path ends.
    """
    if endpoint not in ENDPOINTS:
        raise ValueError(f"trajectory.geometry.endpoint must be one of {ENDPOINTS}, got {endpoint!r}")
    model = load_path_model(model_path)
    d = read_paths(test_h5)
    mask = model.sample_mask(d["cond"], seed)
    target = None
    if endpoint == "project":
        stats = GeometryStats.from_dict(model.meta["stats"])
        n = mask.sum(1, keepdims=True)
        target = ((d["end"] - d["start"]) - n * stats.mean[:2]) / stats.std[:2]  # (N, 2) normalised sums
    x = model.sample(d["cond"], mask, seed + 1, SamplerConfig(**sampler), endpoint=target)
    write_h5(out_h5, {"x": x, "mask": mask, "cond": d["cond"]},
             {"model": str(model_path), "seed": seed, "endpoint": endpoint})


def train_timing(train_h5: str | Path, cache_h5: str | Path, out_path: str | Path, *, settings: Mapping[str, Any],
                 seed: int, geometry_path: str | Path | None = None) -> None:
    """rule trajectory_timing: fit one timing model (a variant of the conditioning study) on the train split."""
    d, cache = read_paths(train_h5), read_timing_cache(cache_h5)
    cfg = TimingConfig(**{**settings, "seed": seed})
    embed = load_path_model(geometry_path).cond if cfg.conditioning == "shared_embedding" else None
    log.info("training timing model %s on %d paths", asdict(cfg), len(cache.duration))
    model, history = fit_timing(d["cond"], cache.duration, cache.profile, d["mask"], cfg,
                                dxdy=d["steps"][..., :2], embed=embed)
    save_torch({"family": "trajectory_timing", "config": model.config(), "settings": asdict(cfg),
                "state": model.state_dict(), "duration_nll": torch.tensor(history["duration_nll"]),
                "profile_nll": torch.tensor(history["profile_nll"])}, out_path)


def load_timing(path: str | Path) -> TimingModel:
    ckpt = load_checkpoint(path, "timing model")
    if not isinstance(ckpt, dict) or ckpt.get("family") != "trajectory_timing":
        raise ValueError(f"{path} is not a trajectory timing checkpoint; rebuild it with snakemake")
    model = TimingModel.from_config(ckpt["config"])
    model.load_state_dict(ckpt["state"])
    return model.eval()


# ------------------------------------------------------------------------------------------ evaluation


def _c2st_row(prefix: str, real: Mapping[str, np.ndarray], fake: Mapping[str, np.ndarray], seed: int,
              folds: int, per_feature: bool = False) -> dict[str, float]:
    """C2ST accuracy and interval on every feature together; with per_feature, also on each feature alone
    (`{prefix}.{feature}`: which features give the generated set away)."""
    X, names = ev.feature_matrix(real)
    Y, _ = ev.feature_matrix(fake, names)
    r = c2st(X, Y, seed=seed, folds=folds, names=names)
    row = {f"{prefix}": r.accuracy, f"{prefix}_low": r.low, f"{prefix}_high": r.high, f"{prefix}_n": r.n}
    if per_feature:
        row.update({f"{prefix}.{k}": c2st(X[:, [i]], Y[:, [i]], seed=seed, folds=folds, names=[k]).accuracy
                    for i, k in enumerate(names)})
    return row


def _timing_model(name: str, timing_path: str | Path | None, cache: TimingCache):
    if name == "constant":
        return ConstantTiming(cache.dt_median)
    if name == "moment":
        return MomentMatchedTiming.from_cache(cache)
    return load_timing(timing_path)


def _duration_nll(model, cond: np.ndarray, steps: np.ndarray, mask: np.ndarray) -> float:
    """Mean lognormal NLL of the real test durations under the model (NaN for constant dt: no density)."""
    D, w = timing_targets(steps[..., 2], mask)
    if isinstance(model, MomentMatchedTiming):
        return float(model.duration_nll(D).mean())
    if isinstance(model, ConstantTiming):
        return float("nan")
    with torch.no_grad():
        nll_d, _ = model.nll(torch.as_tensor(cond), torch.as_tensor(D, dtype=torch.float32),
                             torch.as_tensor(w, dtype=torch.float32), torch.as_tensor(mask),
                             torch.as_tensor(steps[..., :2], dtype=torch.float32))
    return float(nll_d.mean())


def evaluate_model(name: str, test_h5: str | Path, samples_h5: str | Path, out_csv: str | Path,
                   out_h5: str | Path, *, stats_path: str | Path | None, timing_path: str | Path | None,
                   cache_h5: str | Path | None, eval_assign: bool, seed: int, folds: int,
                   per_feature: bool = True) -> None:
    """rule trajectory_evaluate: one timing model (or baseline) against the real test split.

    Geometry-only C2ST on the generated (dx, dy) (shape features; the end-point error is reported apart); dt-aware C2ST twice, with the timing model on the real test
    geometry (isolates the timing) and on the generated geometry (the product); the duration NLL of the real
    test paths; the Fitts-like duration-distance fit; 1-Wasserstein distances of every feature; with
    per_feature, the C2ST of each feature alone too (which features give a model away). The joint
    baseline generates (dx, dy, dt) itself: its dt is clamped to >= 0.5 ms (the share clamped is reported) and
    it has no 'real geometry' row. eval_assign=false: no timing, so every dt-aware column is absent.
    """
    real = read_paths(test_h5)
    smp = read_h5(samples_h5)
    mask_r, mask_g = real["mask"], smp["mask"].astype(bool)
    goal = real["end"] - real["start"]
    real_geo = ev.geometry_features(real["steps"][..., :2], mask_r, goal)
    real_tim = ev.timing_features(real["steps"], mask_r)
    row: dict[str, Any] = {"model": name, "n_test": len(mask_r)}
    feats: dict[str, np.ndarray] = {}
    if name == "joint":
        stats = GeometryStats.from_dict(load_path_model(timing_path).meta["stats"])  # the joint model's own
        seq = np.where(mask_g[..., None], smp["x"] * stats.std + stats.mean, 0.0)
        row["dt_clamped_share"] = float((seq[..., 2][mask_g] < 0.5).mean())
        seq[..., 2] = np.where(mask_g, np.maximum(seq[..., 2], 0.5), 0.0)
        gen_seq = seq
    else:
        stats = GeometryStats.load(stats_path)
        geometry = torch.as_tensor(smp["x"])
        gen_seq = None
        if eval_assign:
            model = _timing_model(name, timing_path, read_timing_cache(cache_h5))
            real_norm = torch.as_tensor(normalise_geometry(real["steps"], mask_r, stats))
            on_real, _ = compose_spatiotemporal_sequence(real_norm, torch.as_tensor(mask_r),
                                                         torch.as_tensor(real["cond"]), model, stats, seed=seed)
            gen_seq, _ = compose_spatiotemporal_sequence(geometry, torch.as_tensor(mask_g),
                                                         torch.as_tensor(smp["cond"]), model, stats, seed=seed + 1)
            gen_seq = gen_seq.numpy()
            on_real_tim = ev.timing_features(on_real.numpy(), mask_r)
            row.update(_c2st_row("c2st_timing_real_geometry", real_tim, on_real_tim, seed, folds,
                                 per_feature=per_feature))
            row["duration_nll"] = _duration_nll(model, real["cond"], real["steps"], mask_r)
            feats.update({f"real_geometry.{k}": v for k, v in on_real_tim.items()})
        dxdy = np.where(mask_g[..., None], smp["x"] * stats.std + stats.mean, 0.0)
    gen_geo = ev.geometry_features(gen_seq[..., :2] if gen_seq is not None else dxdy, mask_g, goal)
    # end_error is 0 on every real path by construction when the goal is the last point (anchor "points"), and
    # ~1e-4 px of float error on a projected sample: a classifier would split on rounding, not on shape. It is
    # reported on its own; the C2ST reads the shape.
    shape = [k for k in real_geo if k != "end_error"]
    row.update(_c2st_row("c2st_geometry", {k: real_geo[k] for k in shape}, {k: gen_geo[k] for k in shape}, seed,
                         folds, per_feature=per_feature))
    row.update(end_error_px_median_real=float(np.median(real_geo["end_error"])),
               end_error_px_median=float(np.median(gen_geo["end_error"])))
    feats.update({f"generated.{k}": v for k, v in gen_geo.items()})
    feats["generated_geometry"] = (gen_seq[..., :2] if gen_seq is not None else dxdy).astype(np.float32)
    if gen_seq is not None:
        gen_tim = ev.timing_features(gen_seq, mask_g)
        row.update(_c2st_row("c2st_timing", real_tim, gen_tim, seed, folds, per_feature=per_feature))
        slope, intercept = ev.duration_distance_fit(gen_tim["duration"], real["distance"])
        real_slope, real_intercept = ev.duration_distance_fit(real_tim["duration"], real["distance"])
        row.update({"fitts_slope": slope, "fitts_intercept": intercept, "fitts_slope_real": real_slope,
                    "fitts_intercept_real": real_intercept, "fitts_slope_rel_error": abs(slope / real_slope - 1)})
        row.update({f"w1_{k}": v for k, v in ev.wasserstein_table(real_tim, gen_tim).items()})
        feats.update({f"generated.{k}": v for k, v in gen_tim.items()})
        feats["generated_seq"] = gen_seq.astype(np.float32)
    row.update({f"w1_{k}": v for k, v in ev.wasserstein_table(real_geo, gen_geo).items()})
    feats["mask"] = mask_g
    write_h5(out_h5, feats, {"model": name})
    write_csv(pd.DataFrame([row]), out_csv)
    log.info("%s: %s", name, {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()})


def collect(csvs: Sequence[str | Path], out_csv: str | Path) -> pd.DataFrame:
    """rule trajectory_table: one row per evaluated model."""
    df = pd.concat([pd.read_csv(p) for p in csvs], ignore_index=True)
    write_csv(df, out_csv)
    return df


def figures(test_h5: str | Path, eval_h5: Mapping[str, str | Path], out: Mapping[str, str | Path]) -> None:
    """rule trajectory_figures: generated paths coloured by speed, feature histograms real vs each model, and
    the duration-distance relation."""
    real = read_paths(test_h5)
    goal = real["end"] - real["start"]
    real_feats = {**ev.geometry_features(real["steps"][..., :2], real["mask"], goal),
                  **ev.timing_features(real["steps"], real["mask"])}
    gens = {name: read_h5(p) for name, p in eval_h5.items()}
    fakes = {name: {k.split(".", 1)[1]: v for k, v in g.items() if k.startswith("generated.")}
             for name, g in gens.items()}
    first = next(iter(gens))
    ev.plot_paths(real["steps"], real["mask"], real["start"], out["real_paths"], title="real test paths")
    timed = "generated_seq" in gens[first]
    ev.plot_paths(gens[first]["generated_seq" if timed else "generated_geometry"], gens[first]["mask"],
                  real["start"], out["paths"], title=f"generated ({first})" + (", speed from the assembly helper"
                                                                              if timed else ", geometry only"))
    names = [k for k in ev.GEOMETRY_FEATURES + ev.TIMING_FEATURES if all(k in f for f in fakes.values())]
    ev.plot_feature_histograms(real_feats, fakes, names, out["histograms"])
    sets = {"real": (real_feats["duration"], real["distance"])}
    sets.update({name: (f["duration"], real["distance"]) for name, f in fakes.items() if "duration" in f})
    ev.plot_duration_distance(sets, out["duration_distance"])
