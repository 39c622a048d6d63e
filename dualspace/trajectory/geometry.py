"""The geometry stream: a conditional diffusion model over padded step sequences, masked so that padding
contributes nothing; and a length model that says how many steps a generated path has.

The denoiser is the library's U-Net in 1-D (`UNetConfig(dims=1)`), with the path mask as one extra input
channel (the network must know where the path ends, to make its steps add up to the goal); its output's
mask channel is ignored. The condition vector (goal displacement, distance, octant one-hot: COND_COLUMNS)
goes through the library's ConditionEncoder, an MLP, with a learned null embedding for classifier-free
guidance. The schedule, DDPM/DDIM samplers and EMA are the library's. The same class with channels=3 is
the joint (dx, dy, dt) baseline that the factorised design replaces.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .. import __version__
from ..diffusion.ema import EMA
from ..diffusion.samplers import SAMPLERS, SamplerConfig
from ..diffusion.schedule import NoiseSchedule
from ..diffusion.train import optimizer_step
from ..io import load_checkpoint, save_torch
from ..nn import ConditionEncoder, UNet, UNetConfig
from ..runtime import pick_device

FAMILY = "trajectory_diffusion"
PREDICTIONS = ("eps", "v")


@dataclass
class PathDiffusionConfig:
    """Denoiser and schedule of the path diffusion; stored in checkpoints, so plain types only."""

    channels: int = 2  # data channels: 2 = (dx, dy) geometry; 3 = (dx, dy, dt), the joint baseline
    cond_in: int = 11  # length of the condition vector (COND_COLUMNS)
    base_channels: int = 32  # U-Net width of the first level
    channel_mults: tuple[int, ...] = (1, 2)  # U-Net levels; the path length T must be divisible by 2^(levels-1)
    blocks_per_level: int = 1
    attention_heads: int = 4  # self-attention at the lowest resolution (0 = none)
    cond_dim: int = 64  # width of the condition embedding e = g(cond)
    diffusion_steps: int = 200  # T of the noise schedule (not the path length)
    schedule: str = "cosine"
    prediction: str = "v"  # "eps" or "v": v keeps x0 bounded at the last cosine steps (z-scored data)

    def __post_init__(self):
        self.channel_mults = tuple(int(m) for m in self.channel_mults)
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"trajectory.geometry.model.prediction must be one of {PREDICTIONS}, "
                             f"got {self.prediction!r}")
        if self.channels not in (2, 3):
            raise ValueError(f"channels must be 2 (dx, dy) or 3 (dx, dy, dt), got {self.channels}")

    def unet(self) -> UNetConfig:
        """The U-Net: data channels + the mask channel in (and out; the mask output is ignored)."""
        return UNetConfig(dims=1, in_channels=self.channels + 1, base_channels=self.base_channels,
                          channel_mults=self.channel_mults, blocks_per_level=self.blocks_per_level,
                          attention_heads=self.attention_heads, cond_dim=self.cond_dim,
                          groups=min(8, self.base_channels))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["channel_mults"] = list(self.channel_mults)
        return d


@dataclass
class PathTrainConfig:
    """Optimisation of the path diffusion."""

    steps: int = 1500  # optimizer steps
    batch_size: int = 128
    lr: float = 1e-3  # AdamW peak learning rate
    warmup: int = 100  # linear warm-up steps
    ema_decay: float = 0.995
    grad_clip: float = 1.0
    p_drop: float = 0.1  # probability of the null condition (classifier-free guidance training)
    seed: int = 0
    device: str = "cpu"


@dataclass
class PathDiffusionSettings:
    """Model + training, the `trajectory.geometry` config section."""

    model: PathDiffusionConfig = field(default_factory=PathDiffusionConfig)
    train: PathTrainConfig = field(default_factory=PathTrainConfig)

    @classmethod
    def from_dict(cls, d: dict[str, Any], channels: int = 2, cond_in: int = 11) -> "PathDiffusionSettings":
        model = {**d.get("model", {}), "channels": channels, "cond_in": cond_in}
        return cls(PathDiffusionConfig(**model), PathTrainConfig(**d.get("train", {})))


class LengthModel(nn.Module):
    """How many steps a generated path gets: the step count of a train path drawn at random among the k
    train paths whose goal displacement is nearest to the condition's (an empirical conditional law)."""

    def __init__(self, goals: torch.Tensor, lengths: torch.Tensor, k: int = 16):
        super().__init__()
        if len(goals) != len(lengths) or not len(goals):
            raise ValueError(f"LengthModel needs one length per goal, got {len(goals)} goals, {len(lengths)} lengths")
        self.k = min(int(k), len(goals))
        self.register_buffer("goals", goals.float())  # (N, 2) goal / scale of the train paths
        self.register_buffer("lengths", lengths.long())  # (N,) their step counts

    def sample(self, goal: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """(B, 2) goal / scale -> (B,) step counts."""
        near = torch.cdist(goal.float(), self.goals).topk(self.k, largest=False).indices  # (B, k)
        pick = torch.randint(self.k, (len(goal),), generator=generator)
        return self.lengths[near[torch.arange(len(goal)), pick]]


class PathDiffusion(nn.Module):
    """p_theta(x | cond, mask) over (B, C, T) normalised step channels, padding masked out."""

    def __init__(self, cfg: PathDiffusionConfig, T: int, meta: dict[str, Any] | None = None):
        super().__init__()
        levels = len(cfg.channel_mults)
        if T % 2 ** (levels - 1):
            raise ValueError(f"path length T={T} must be divisible by 2^(levels-1) = {2 ** (levels - 1)} for "
                             f"channel_mults {list(cfg.channel_mults)}; pick another T or fewer levels")
        self.cfg, self.T, self.meta = cfg, T, dict(meta or {})
        self.net = UNet(cfg.unet(), channels_last=True)
        self.cond = ConditionEncoder(cfg.cond_in, cfg.cond_dim)
        self.schedule = NoiseSchedule.named(cfg.schedule, cfg.diffusion_steps)
        self.lengths: LengthModel | None = None

    @property
    def device(self) -> torch.device:
        return self.cond.null.device

    def denoise(self, x: torch.Tensor, t: torch.Tensor, e: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The network's raw output (eps or v) for the data channels, (B, C, T)."""
        out = self.net(torch.cat([x, mask[:, None].to(x.dtype)], dim=1), t, e)
        return out[:, : self.cfg.channels]

    def eps(self, x: torch.Tensor, t: torch.Tensor, e: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """eps_theta(x_t, t, e); from v as eps = sqrt(1 - ab) x_t + sqrt(ab) v (Salimans & Ho 2022)."""
        out = self.denoise(x, t, e, mask)
        if self.cfg.prediction == "eps":
            return out
        ab = self.schedule.at(self.schedule.alpha_bar, t, x.dim())
        return (1 - ab).sqrt() * x + ab.sqrt() * out

    def loss(self, x0: torch.Tensor, cond: torch.Tensor, mask: torch.Tensor, p_drop: float,
             generator: torch.Generator) -> torch.Tensor:
        """Masked simple loss: mean over active steps of ||target - net(x_t, t, e)||^2 (padding contributes 0)."""
        t, noise, drop = self.schedule.training_draws(x0, p_drop, generator)
        e = self.cond(cond)
        e = torch.where(drop[:, None], self.cond.null_like(e), e)
        pred = self.denoise(self.schedule.q_sample(x0, t, noise), t, e, mask)
        target = self.schedule.target(x0, t, noise, self.cfg.prediction)
        m = mask[:, None].to(pred.dtype)  # (B, 1, T)
        return ((pred - target) ** 2 * m).sum() / (m.sum() * self.cfg.channels).clamp_min(1)

    @torch.no_grad()
    def sample(self, cond: np.ndarray, mask: np.ndarray, seed: int, sampler: SamplerConfig,
               progress: bool = True, endpoint: np.ndarray | None = None) -> np.ndarray:
        """One normalised path per row of cond (N, cond_in) and mask (N, T) -> (N, T, C) float32, 0 on padding.

        endpoint (N, 2): what the first two channels must sum to over each path's active steps (the goal in
        normalised units). Every x0 prediction of the sampler is projected onto that constraint (the
        least-squares correction: the residual spread evenly over the active steps) and eps re-derived from
        it, as thresholding does (Ho et al. 2020 eq. 15; Saharia et al. 2022): the network keeps shaping the
        path while its end point is held at the goal.
        """
        cond = torch.as_tensor(np.asarray(cond), dtype=torch.float32)
        mask = torch.as_tensor(np.asarray(mask), dtype=torch.bool)
        if cond.shape != (len(mask), self.cfg.cond_in) or mask.shape[1:] != (self.T,):
            raise ValueError(f"sample: cond {tuple(cond.shape)} and mask {tuple(mask.shape)} do not match "
                             f"(N, {self.cfg.cond_in}) and (N, {self.T})")
        gen = torch.Generator().manual_seed(int(seed))
        out = []
        for start in tqdm(range(0, len(cond), sampler.batch_size), desc=f"sample paths ({sampler.sampler})",
                          disable=not progress):
            c = cond[start:start + sampler.batch_size].to(self.device)
            m = mask[start:start + sampler.batch_size].to(self.device)
            x_T = torch.randn((len(c), self.cfg.channels, self.T), generator=gen).to(self.device)
            noise_gen = torch.Generator().manual_seed(int(torch.randint(2**62, (1,), generator=gen)))
            e = self.cond(c)
            gamma = sampler.guidance_scale
            target = None if endpoint is None else torch.as_tensor(
                np.asarray(endpoint[start:start + sampler.batch_size]), dtype=torch.float32).to(self.device)

            def eps_fn(x, t):
                if gamma == 1.0:
                    eps = self.eps(x, t, e, m)
                else:
                    both = self.eps(torch.cat([x, x]), torch.cat([t, t]), torch.cat([e, self.cond.null_like(e)]),
                                    torch.cat([m, m]))
                    eps_c, eps_u = both.chunk(2)
                    eps = eps_u + gamma * (eps_c - eps_u)
                return eps if target is None else self.project_eps(x, t, eps, m, target)

            x = SAMPLERS[sampler.sampler](eps_fn, self.schedule, x_T, sampler, None, noise_gen, progress=False)
            out.append((x * m[:, None]).transpose(1, 2).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.T, self.cfg.channels), np.float32)

    def project_eps(self, x: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, mask: torch.Tensor,
                    target: torch.Tensor) -> torch.Tensor:
        """eps whose x0 prediction has its first two channels summing to `target` (B, 2) over the active steps."""
        ab = self.schedule.at(self.schedule.alpha_bar, t, x.dim())
        x0 = (x - (1 - ab).sqrt() * eps) / ab.sqrt()
        m = mask[:, None].to(x.dtype)  # (B, 1, T)
        resid = (target - (x0[:, :2] * m).sum(-1)) / m.sum(-1).clamp_min(1)  # (B, 2)
        x0 = torch.cat([x0[:, :2] + resid[..., None] * m, x0[:, 2:]], dim=1)
        return (x - ab.sqrt() * x0) / (1 - ab).sqrt()

    def sample_mask(self, cond: np.ndarray, seed: int) -> np.ndarray:
        """(N, T) prefix masks with step counts from the length model (goal = the first two cond columns)."""
        if self.lengths is None:
            raise ValueError("this path model has no length model; pass the masks explicitly")
        gen = torch.Generator().manual_seed(int(seed))
        n = self.lengths.sample(torch.as_tensor(np.asarray(cond)[:, :2]), gen)
        return (torch.arange(self.T)[None, :] < n[:, None]).numpy()

    def checkpoint(self, **extra: Any) -> dict[str, Any]:
        """Everything needed to rebuild the model; loads with torch.load(weights_only=True)."""
        return {"family": FAMILY, "dualspace_version": __version__, "config": self.cfg.to_dict(), "T": self.T,
                "meta": self.meta, "state": {k: v.detach().cpu() for k, v in self.state_dict().items()}, **extra}

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any]) -> "PathDiffusion":
        model = cls(PathDiffusionConfig(**ckpt["config"]), int(ckpt["T"]), ckpt.get("meta"))
        state = dict(ckpt["state"])
        if "lengths.goals" in state:
            model.lengths = LengthModel(state["lengths.goals"], state["lengths.lengths"], int(ckpt.get("length_k", 16)))
        model.load_state_dict(state)
        return model.eval()


def load_path_model(path: str | Path) -> PathDiffusion:
    """A trained PathDiffusion from its checkpoint file (weights_only load; a clear error when damaged)."""
    ckpt = load_checkpoint(path, "path diffusion checkpoint")
    if not isinstance(ckpt, dict) or ckpt.get("family") != FAMILY:
        raise ValueError(f"{path} is not a trajectory path-diffusion checkpoint; rebuild it with snakemake")
    return PathDiffusion.from_checkpoint(ckpt)


def train_path_diffusion(x: np.ndarray, mask: np.ndarray, cond: np.ndarray, settings: PathDiffusionSettings,
                         out_path: str | Path | None = None, meta: dict[str, Any] | None = None,
                         length_k: int = 16, progress: bool = True) -> tuple[PathDiffusion, list[float]]:
    """Train on normalised paths x (N, T, C), masks (N, T) and conditions (N, cond_in); the EMA model samples.

    The length model is the train set's (goal, step count) table. Writes the checkpoint to `out_path` when given.
    """
    cfg, tr = settings.model, settings.train
    x = np.asarray(x, dtype=np.float32)
    N, T, C = x.shape
    if C != cfg.channels or mask.shape != (N, T) or cond.shape != (N, cfg.cond_in):
        raise ValueError(f"train_path_diffusion: x {x.shape}, mask {mask.shape}, cond {cond.shape} disagree "
                         f"with channels={cfg.channels}, cond_in={cfg.cond_in}")
    if not np.isfinite(x).all():
        raise ValueError("train_path_diffusion: the normalised paths contain NaN/inf")
    device = pick_device(tr.device)
    torch.manual_seed(tr.seed)  # weight init
    model = PathDiffusion(cfg, T, meta).to(device)
    ema = EMA(model, tr.ema_decay)
    opt = torch.optim.AdamW(model.parameters(), lr=tr.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / max(1, tr.warmup)))
    gen = torch.Generator().manual_seed(tr.seed)
    x_all = torch.as_tensor(x).transpose(1, 2).contiguous().to(device)  # (N, C, T)
    m_all = torch.as_tensor(np.asarray(mask, dtype=bool)).to(device)
    c_all = torch.as_tensor(np.asarray(cond, dtype=np.float32)).to(device)
    losses: list[float] = []
    model.train()
    bar = tqdm(range(tr.steps), desc="train path diffusion", disable=not progress, mininterval=2.0)
    for step in bar:
        idx = torch.randint(0, N, (min(tr.batch_size, N),), generator=gen).to(device)
        loss = model.loss(x_all[idx], c_all[idx], m_all[idx], tr.p_drop, gen)
        value = loss.item()
        if not math.isfinite(value):
            raise FloatingPointError(f"non-finite path-diffusion loss at step {step + 1}; lower "
                                     "trajectory.geometry.train.lr")
        optimizer_step(model, loss, opt, sched, ema, tr.grad_clip)
        losses.append(value)
        if step % 50 == 49:
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
    final = ema.model.cpu().eval()
    final.lengths = LengthModel(torch.as_tensor(np.asarray(cond)[:, :2]), torch.as_tensor(np.asarray(mask).sum(1)),
                                length_k)
    if out_path is not None:
        save_torch(final.checkpoint(train=asdict(tr), length_k=final.lengths.k, losses=torch.tensor(losses)),
                   out_path)
    return final, losses
