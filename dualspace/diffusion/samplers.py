"""Reverse-process samplers with classifier-free guidance: ancestral DDPM and DDIM.

Guidance convention (Ho & Salimans 2022, written as in most code bases):

    eps = eps_uncond + gamma * (eps_cond - eps_uncond)

so gamma = 1 is the plain conditional model, gamma = 0 the unconditional one and gamma > 1
sharpens towards the condition. Both halves run in one batched forward.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import torch
from tqdm.auto import tqdm

from .schedule import NoiseSchedule

# eps_fn(x_t, t) -> guided eps; t is a (B,) long tensor.
EpsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class SamplerConfig:
    """How drafts are drawn; stored beside drafts, so plain types only."""

    sampler: str = "ddpm"  # "ddpm" (ancestral, all T steps) or "ddim"
    steps: int = 50  # DDIM steps S (ignored by ddpm)
    eta: float = 0.0  # DDIM stochasticity: 0 deterministic, 1 ~ ancestral
    guidance_scale: float = 2.0  # gamma in eps_u + gamma (eps_c - eps_u)
    thresholding: str = "static"  # x0 prediction: "none", "static" (clip to +-clip_x0) or "dynamic"
    dynamic_quantile: float = 0.995  # Saharia et al. 2022 dynamic thresholding percentile
    batch_size: int = 512  # drafts per forward pass (before the CFG doubling)

    def __post_init__(self):
        if self.sampler not in ("ddpm", "ddim"):
            raise ValueError(f"sampler must be 'ddpm' or 'ddim', got '{self.sampler}'")
        if self.thresholding not in ("none", "static", "dynamic"):
            raise ValueError(f"thresholding must be 'none', 'static' or 'dynamic', got '{self.thresholding}'")
        if self.steps < 1:
            raise ValueError(f"sampler steps must be >= 1, got {self.steps}")

    def to_dict(self) -> dict:
        return asdict(self)


def threshold_x0(x0: torch.Tensor, mode: str, clip: float | None, quantile: float) -> torch.Tensor:
    """Keep the predicted clean sample in range: static clipping or dynamic thresholding (Imagen, sec. 2.3)."""
    if mode == "none" or clip is None:
        return x0
    if mode == "static":
        return x0.clamp(-clip, clip)
    # dynamic: s = per-sample quantile of |x0|, at least `clip`; clip to [-s, s] and rescale to [-clip, clip]
    s = torch.quantile(x0.flatten(1).abs().float(), quantile, dim=1).clamp(min=clip).to(x0.dtype)
    s = s.view(-1, *([1] * (x0.dim() - 1)))
    return x0.clamp(-s, s) * (clip / s)


def _predict_x0(schedule: NoiseSchedule, x: torch.Tensor, t: torch.Tensor, eps: torch.Tensor,
                cfg: SamplerConfig, clip: float | None) -> tuple[torch.Tensor, torch.Tensor]:
    """x0_hat = (x_t - sqrt(1 - ab_t) eps) / sqrt(ab_t), thresholded; eps re-derived from the thresholded x0."""
    ab = schedule.at(schedule.alpha_bar, t, x.dim())
    x0 = (x - (1 - ab).sqrt() * eps) / ab.sqrt()
    x0_t = threshold_x0(x0, cfg.thresholding, clip, cfg.dynamic_quantile)
    if x0_t is not x0:
        # keep x0 and eps consistent with x_t, otherwise DDIM steps off the trajectory
        eps = (x - ab.sqrt() * x0_t) / (1 - ab).sqrt()
    return x0_t, eps


@torch.no_grad()
def ddpm_sample(eps_fn: EpsFn, schedule: NoiseSchedule, x_T: torch.Tensor, cfg: SamplerConfig,
                clip: float | None, generator: torch.Generator | None = None, progress: bool = True) -> torch.Tensor:
    """Ancestral sampling over all T steps (Ho et al. 2020, Algorithm 2, in x0-parameterised form, eq. 6-7)."""
    x = x_T
    for i in tqdm(range(schedule.T - 1, -1, -1), desc="ddpm", leave=False, disable=not progress):
        t = torch.full((len(x),), i, device=x.device, dtype=torch.long)
        x0, _ = _predict_x0(schedule, x, t, eps_fn(x, t), cfg, clip)
        ab_t, ab_prev = schedule.alpha_bar[i].item(), schedule.alpha_bar_prev[i].item()
        beta_t, alpha_t = schedule.betas[i].item(), schedule.alphas[i].item()
        # posterior q(x_{t-1} | x_t, x0): eq. 7
        mean = (ab_prev ** 0.5 * beta_t / (1 - ab_t)) * x0 + (alpha_t ** 0.5 * (1 - ab_prev) / (1 - ab_t)) * x
        if i > 0:
            var = beta_t * (1 - ab_prev) / (1 - ab_t)
            x = mean + var ** 0.5 * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        else:
            x = mean
    return x


def ddim_timesteps(T: int, S: int) -> list[int]:
    """S timesteps from T-1 down to 0, evenly spaced (Song et al. 2021, 'uniform' skip)."""
    S = min(S, T)
    return sorted({round(i * (T - 1) / max(S - 1, 1)) for i in range(S)}, reverse=True)


@torch.no_grad()
def ddim_sample(eps_fn: EpsFn, schedule: NoiseSchedule, x_T: torch.Tensor, cfg: SamplerConfig,
                clip: float | None, generator: torch.Generator | None = None, progress: bool = True) -> torch.Tensor:
    """DDIM (Song et al. 2021, eq. 12) over S steps with stochasticity eta."""
    x = x_T
    ts = ddim_timesteps(schedule.T, cfg.steps)
    for j, i in enumerate(tqdm(ts, desc=f"ddim{cfg.steps}", leave=False, disable=not progress)):
        t = torch.full((len(x),), i, device=x.device, dtype=torch.long)
        x0, eps = _predict_x0(schedule, x, t, eps_fn(x, t), cfg, clip)
        ab_t = schedule.alpha_bar[i].item()
        ab_prev = schedule.alpha_bar[ts[j + 1]].item() if j + 1 < len(ts) else 1.0
        sigma = cfg.eta * ((1 - ab_prev) / (1 - ab_t) * (1 - ab_t / ab_prev)) ** 0.5
        x = ab_prev ** 0.5 * x0 + max(1 - ab_prev - sigma ** 2, 0.0) ** 0.5 * eps
        if sigma > 0:
            x = x + sigma * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return x


SAMPLERS = {"ddpm": ddpm_sample, "ddim": ddim_sample}
