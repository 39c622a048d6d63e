"""Timing baselines the factorised model must beat, with the same `sample` interface as TimingModel, so the one
assembly helper times any of them: constant dt, and the moment-matched Dirichlet + lognormal without
conditioning. (The third baseline, the joint (dx, dy, dt) diffusion, is `PathDiffusion(channels=3)`.)"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .timing import lognormal_nll, mean_profile, sample_dirichlet, timing_targets


@dataclass
class TimingCache:
    """The timing of one split's real paths and its moments: what the timing rules read instead of raw steps."""

    duration: np.ndarray  # (N,) ms, D = sum of dt
    profile: np.ndarray  # (N, T) w = dt / D, zero on padding
    log_d_mean: float  # mean of log D
    log_d_std: float  # std of log D
    rel_mean: np.ndarray  # (T,) mean over paths of n * w_t (a path's step in units of its mean step), by position
    rel_var: np.ndarray  # (T,) variance of n * w_t by position (0 where fewer than 2 paths reach it)
    dt_median: float  # median active dt, ms


def timing_cache(dt: np.ndarray, mask: np.ndarray) -> TimingCache:
    """(N, T) step durations and mask -> the split's TimingCache."""
    mask = np.asarray(mask, dtype=bool)
    D, w = timing_targets(dt, mask)
    rel = np.where(mask, w * mask.sum(1, keepdims=True), np.nan)  # (N, T)
    count = mask.sum(0)
    with np.errstate(invalid="ignore"):
        rel_mean = np.where(count > 0, np.nanmean(np.where(count > 0, rel, 0.0), axis=0), 0.0)
        rel_var = np.where(count > 1, np.nanvar(np.where(count > 1, rel, 0.0), axis=0, ddof=1), 0.0)
    log_d = np.log(D)
    return TimingCache(D, w, float(log_d.mean()), float(log_d.std(ddof=1)), rel_mean, rel_var,
                       float(np.median(np.asarray(dt)[mask])))


class ConstantTiming:
    """Baseline 1: every step lasts `dt_ms` (the train median), so D = n * dt_ms."""

    def __init__(self, dt_ms: float):
        self.dt_ms = float(dt_ms)

    def sample(self, cond: torch.Tensor, mask: torch.Tensor, seed: int = 0, deterministic: bool = False,
               dxdy: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        m = torch.as_tensor(mask, dtype=torch.float32)
        n = m.sum(-1)
        return n * self.dt_ms, m / n[:, None]


class MomentMatchedTiming:
    """Baseline 2: D ~ LogNormal(train mean and std of log D) and w ~ Dirichlet(alpha) with alpha_t =
    mean_t / var_t of n * w_t by position (moment matching: a flat Dirichlet of n steps with concentration a per
    step has Var(n w_t) ~ 1 / a), nothing conditioned on the goal or the geometry."""

    def __init__(self, log_d_mean: float, log_d_std: float, rel_mean: np.ndarray, rel_var: np.ndarray):
        self.log_d_mean, self.log_d_std = float(log_d_mean), float(log_d_std)
        rel_mean = np.asarray(rel_mean, dtype=np.float64)
        var = np.asarray(rel_var, dtype=np.float64)
        fallback = np.median(var[var > 0]) if (var > 0).any() else 1.0
        self.alpha = torch.tensor(rel_mean / np.where(var > 0, var, fallback), dtype=torch.float32).clamp_min(1e-3)

    @classmethod
    def from_cache(cls, cache: TimingCache) -> "MomentMatchedTiming":
        return cls(cache.log_d_mean, cache.log_d_std, cache.rel_mean, cache.rel_var)

    def duration_nll(self, duration: np.ndarray) -> np.ndarray:
        log_d = torch.log(torch.as_tensor(duration, dtype=torch.float64))
        mu = torch.full_like(log_d, self.log_d_mean)
        return lognormal_nll(log_d, mu, torch.full_like(log_d, math.log(self.log_d_std))).numpy()

    def sample(self, cond: torch.Tensor, mask: torch.Tensor, seed: int = 0, deterministic: bool = False,
               dxdy: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        mask = torch.as_tensor(mask, dtype=torch.bool)
        alpha = self.alpha[None, : mask.shape[1]].expand(mask.shape)
        if deterministic:
            return torch.full((len(mask),), math.exp(self.log_d_mean)), mean_profile(alpha, mask)
        gen = torch.Generator().manual_seed(seed)
        z = torch.randn(len(mask), generator=gen)
        return torch.exp(self.log_d_mean + self.log_d_std * z), sample_dirichlet(alpha, mask, gen)
