"""The timing stream: a path's total duration D ~ LogNormal(mu, sigma^2) and its normalised profile
w = dt / D ~ Dirichlet(alpha) over the path's active steps, both predicted from the goal condition by one
shared conditioner; and the one assembly helper that turns generated geometry into (dx, dy, dt).

Short paths use the Dirichlet over their own n active steps. By the aggregation property this is the law of
a length-T Dirichlet draw with its tail zeroed and renormalised (a Dirichlet's components restricted to a
subset and renormalised are Dirichlet with the restricted concentrations), so nothing depends on T.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..runtime import pick_device
from .data import GeometryStats

LOG_2PI = math.log(2 * math.pi)


def lognormal_nll(log_d: torch.Tensor, mu: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """Elementwise -log p(D) of D ~ LogNormal(mu, sigma^2), given log D; a density over D (includes log D)."""
    z = (log_d - mu) * torch.exp(-log_sigma)
    return 0.5 * z**2 + log_sigma + 0.5 * LOG_2PI + log_d


def dirichlet_nll(w: torch.Tensor, alpha: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, T) profile, concentrations and mask -> (B,) -log Dir(w_active; alpha_active) over the active steps.

    Masked steps contribute nothing, whatever their w and alpha (their values are swapped for 1 before any
    log, so neither the value nor the gradient can become NaN). Active w must be > 0 and sum to 1.
    """
    mask = mask.bool()
    one = torch.ones((), dtype=alpha.dtype, device=alpha.device)
    a = torch.where(mask, alpha, one)  # masked -> 1: lgamma(1) = 0 and (a - 1) log w = 0
    log_w = torch.log(torch.where(mask, w, one))
    log_norm = torch.lgamma((a * mask).sum(-1)) - (torch.lgamma(a) * mask).sum(-1)  # log B(alpha)^-1
    return -(log_norm + ((a - 1) * log_w).sum(-1))


def mean_profile(alpha: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, T) -> (B, T) the Dirichlet mean alpha_t / sum(alpha) over each path's active steps, zero on padding."""
    a = alpha * mask
    return a / a.sum(-1, keepdim=True)


def sample_dirichlet(alpha: torch.Tensor, mask: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """(B, T) -> (B, T) one draw of Dirichlet(alpha_active) per row over its active steps, zero on padding.

    Gamma construction: g_t ~ Gamma(alpha_t, 1), w = g / sum(g). torch's sampler returns g >= the smallest
    normal float even for alpha << 1, but the division can still underflow when another step's draw is huge;
    w is raised to the smallest normal float, so every active step keeps w > 0 (the sum moves by <= T * 1e-38).
    """
    mask = mask.bool()
    a = torch.where(mask, alpha, torch.ones_like(alpha))
    g = torch._standard_gamma(a, generator=generator) * mask  # the sampler behind torch.distributions.Gamma
    w = g / g.sum(-1, keepdim=True)
    return torch.where(mask, w.clamp_min(torch.finfo(w.dtype).tiny), torch.zeros_like(w))


def timing_targets(dt: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, T) step durations and mask -> total duration D (N,) and profile w = dt / D (N, T), zero on padding."""
    mask = np.asarray(mask, dtype=bool)
    dt = np.where(mask, np.asarray(dt, dtype=np.float64), 0.0)
    if (dt[mask] <= 0).any():
        row = int(np.flatnonzero(((dt <= 0) & mask).any(axis=1))[0])
        raise ValueError(f"path {row} has an active step with dt <= 0; the Dirichlet profile needs dt > 0")
    D = dt.sum(axis=1)
    return D, dt / D[:, None]


def inverse_softplus(y: float) -> float:
    """x with softplus(x) = y (y > 0)."""
    return y + math.log(-math.expm1(-y))


class TimingModel(nn.Module):
    """Shared conditioner (2-layer MLP on the condition) with a duration head (mu_D, log sigma_D) and a profile
    head (Dirichlet concentrations alpha = softplus(.) + eps over T steps, or over K knots linearly upsampled).

    The duration head works in standardised log-duration: mu = m + s * out_0, log sigma = log s + out_1, with
    (m, s) the train mean and std of log D (buffers set by `fit_timing`), so an untrained head starts at the
    marginal law instead of at log D = 0.
    """

    def __init__(self, cond_dim: int, T: int, hidden: int = 64, knots: int | None = None, eps: float = 1e-3):
        super().__init__()
        if knots is not None and not 1 <= knots <= T:
            raise ValueError(f"profile knots K must lie in [1, T={T}], got {knots}")
        self.cond_dim, self.T, self.hidden, self.knots, self.eps = cond_dim, T, hidden, knots, eps
        self.conditioner = nn.Sequential(nn.Linear(cond_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU())
        self.duration_head = nn.Linear(hidden, 2)  # (mu, log sigma) in standardised log-duration
        self.profile_head = nn.Linear(hidden, knots or T)  # pre-softplus concentrations per knot or step
        self.register_buffer("log_d_mean", torch.zeros(()))
        self.register_buffer("log_d_std", torch.ones(()))

    def config(self) -> dict:
        """Constructor arguments, to rebuild the model from a checkpoint."""
        return {"cond_dim": self.cond_dim, "T": self.T, "hidden": self.hidden, "knots": self.knots, "eps": self.eps}

    def forward(self, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, cond_dim) -> mu (B,), log sigma (B,) of log D [log ms], alpha (B, T)."""
        if cond.dim() != 2 or cond.shape[1] != self.cond_dim:
            raise ValueError(f"expected a condition of shape (B, {self.cond_dim}), got {tuple(cond.shape)}")
        h = self.conditioner(cond)
        out = self.duration_head(h)
        mu = self.log_d_mean + self.log_d_std * out[:, 0]
        log_sigma = torch.log(self.log_d_std) + out[:, 1]
        raw = self.profile_head(h)  # (B, K or T)
        if self.knots is not None:
            raw = F.interpolate(raw[:, None], size=self.T, mode="linear", align_corners=True)[:, 0]
        return mu, log_sigma, F.softplus(raw) + self.eps

    def nll(self, cond: torch.Tensor, duration: torch.Tensor, profile: torch.Tensor,
            mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-path duration NLL (lognormal, D in ms) and profile NLL (Dirichlet over active steps), each (B,)."""
        mu, log_sigma, alpha = self(cond)
        return lognormal_nll(torch.log(duration), mu, log_sigma), dirichlet_nll(profile, alpha, mask)

    @torch.no_grad()
    def sample(self, cond: torch.Tensor, mask: torch.Tensor, seed: int = 0,
               deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Duration D (B,) [ms] and profile w (B, T) over each path's active steps (zero on padding).

        deterministic: D = exp(mu) (the lognormal's median) and w = the Dirichlet mean; otherwise one draw
        D ~ LogNormal(mu, sigma^2), w ~ Dirichlet(alpha_active), reproducible from `seed`.
        """
        mask = torch.as_tensor(mask, dtype=torch.bool, device=cond.device)
        if mask.shape != (len(cond), self.T):
            raise ValueError(f"mask has shape {tuple(mask.shape)}, expected (B={len(cond)}, T={self.T})")
        if not mask.any(-1).all():
            raise ValueError("every path needs at least one active step in the mask")
        mu, log_sigma, alpha = self(cond)
        if deterministic:
            return mu.exp(), mean_profile(alpha, mask)
        gen = torch.Generator(device=cond.device).manual_seed(seed)
        z = torch.randn(mu.shape, generator=gen, device=mu.device, dtype=mu.dtype)
        return torch.exp(mu + log_sigma.exp() * z), sample_dirichlet(alpha, mask, gen)


@dataclass
class TimingConfig:
    """Timing model and its optimisation; one AdamW per head and one for the shared conditioner."""

    hidden: int = 64  # width of the shared conditioner
    knots: int | None = None  # K profile knots upsampled to T (None = one concentration per step)
    eps: float = 1e-3  # alpha = softplus(.) + eps
    steps: int = 2000  # optimizer steps
    batch_size: int = 256
    lr_conditioner: float = 1e-3  # AdamW of the shared conditioner
    lr_duration: float = 3e-3  # AdamW of the duration head
    lr_profile: float = 3e-3  # AdamW of the profile head
    weight_decay: float = 0.0
    seed: int = 0  # weight init and mini-batch order
    device: str = "cpu"  # a few thousand paths: the CPU is fast enough


def fit_timing(cond: np.ndarray, duration: np.ndarray, profile: np.ndarray, mask: np.ndarray,
               cfg: TimingConfig | None = None, progress: bool = True) -> tuple[TimingModel, dict[str, list[float]]]:
    """Train a TimingModel on train paths: cond (N, C), duration D (N,) ms, profile w (N, T), mask (N, T).

    Loss per batch: mean duration NLL + mean profile NLL / (mean active steps); the division puts the profile
    term, a sum over ~50 steps, on the per-step scale of the duration term in the shared conditioner.
    The profile head's bias starts at the moment-matched flat concentration alpha_0 = 1 / Var(n * w_t)
    (for a flat Dirichlet of n steps, n * w_t has mean 1 and variance (n - 1) / (n alpha_0 + 1) ~ 1 / alpha_0).
    Returns the model (eval mode, on the CPU) and the per-step losses.
    """
    cfg = cfg or TimingConfig()
    device = pick_device(cfg.device)
    cond_t = torch.as_tensor(cond, dtype=torch.float32, device=device)
    d_t = torch.as_tensor(duration, dtype=torch.float32, device=device)
    w_t = torch.as_tensor(profile, dtype=torch.float32, device=device)
    m_t = torch.as_tensor(mask, dtype=torch.bool, device=device)
    N, T = m_t.shape
    if cond_t.shape[0] != N or d_t.shape != (N,) or w_t.shape != (N, T):
        raise ValueError(f"fit_timing: cond {tuple(cond_t.shape)}, duration {tuple(d_t.shape)}, profile "
                         f"{tuple(w_t.shape)} and mask {(N, T)} disagree")
    if not (d_t > 0).all():
        raise ValueError("fit_timing: every duration must be > 0 (lognormal)")

    torch.manual_seed(cfg.seed)  # weight init
    model = TimingModel(cond_t.shape[1], T, cfg.hidden, cfg.knots, cfg.eps).to(device)
    log_d = torch.log(d_t)
    model.log_d_mean.fill_(log_d.mean().item())
    model.log_d_std.fill_(max(log_d.std().item(), 1e-3) if N > 1 else 1.0)
    n_active = m_t.sum(-1, keepdim=True).float()
    alpha_0 = 1.0 / float(((n_active * w_t - 1) ** 2)[m_t].mean().clamp_min(1e-3))
    with torch.no_grad():
        model.profile_head.bias.fill_(inverse_softplus(min(max(alpha_0, 0.05), 1e3)))
    profile_scale = 1.0 / n_active.mean().item()

    opts = [torch.optim.AdamW(part.parameters(), lr=lr, weight_decay=cfg.weight_decay) for part, lr in
            [(model.conditioner, cfg.lr_conditioner), (model.duration_head, cfg.lr_duration),
             (model.profile_head, cfg.lr_profile)]]
    gen = torch.Generator().manual_seed(cfg.seed)  # mini-batch order
    history: dict[str, list[float]] = {"duration_nll": [], "profile_nll": []}
    model.train()
    for _ in tqdm(range(cfg.steps), desc="train timing", disable=not progress, mininterval=2.0):
        idx = torch.randint(N, (min(cfg.batch_size, N),), generator=gen).to(device)
        nll_d, nll_w = model.nll(cond_t[idx], d_t[idx], w_t[idx], m_t[idx])
        loss = nll_d.mean() + profile_scale * nll_w.mean()
        for opt in opts:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        for opt in opts:
            opt.step()
        history["duration_nll"].append(nll_d.mean().item())
        history["profile_nll"].append(nll_w.mean().item())
    return model.cpu().eval(), history


def compose_spatiotemporal_sequence(
    geometry: torch.Tensor, mask: torch.Tensor, cond: torch.Tensor, timing_model: TimingModel,
    stats: GeometryStats, deterministic: bool = False, seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The one assembly helper: normalised geometry (B, T, 2) -> sequences (B, T, 3) of (dx px, dy px, dt ms)
    and their mask (B, T), zero on padding. Every dt-aware metric takes its dt from here.

    (dx, dy) = geometry * std + mean (train stats); D, w from `timing_model.sample` (deterministic: exp(mu) and
    the mean profile); dt = D * w, so dt > 0 on active steps and sums to D.
    A U-Net's channels-first (B, 2, T) output goes in as `x.transpose(1, 2)`.
    """
    mask = torch.as_tensor(mask, dtype=torch.bool, device=geometry.device)
    if geometry.dim() != 3 or geometry.shape[-1] != 2 or geometry.shape[:2] != mask.shape:
        raise ValueError(f"geometry must be (B, T, 2) matching the mask {tuple(mask.shape)}, got "
                         f"{tuple(geometry.shape)} (channels-first U-Net output: pass x.transpose(1, 2))")
    mean = torch.as_tensor(stats.mean, dtype=geometry.dtype, device=geometry.device)
    std = torch.as_tensor(stats.std, dtype=geometry.dtype, device=geometry.device)
    dxdy = (geometry * std + mean) * mask[..., None]  # (B, T, 2) px
    D, w = timing_model.sample(cond, mask, seed=seed, deterministic=deterministic)
    dt = (D[:, None] * w).to(geometry.dtype)  # (B, T) ms, zero on padding
    return torch.cat([dxdy, dt[..., None]], dim=-1), mask
