"""The timing stream: a path's total duration D ~ LogNormal(mu, sigma^2) and its normalised profile
w = dt / D ~ Dirichlet(alpha) over the path's active steps, both predicted by one shared conditioner from the
goal condition (and, by choice, from features of the geometry being timed: `path_summary` per path,
`step_features` per step, with per-step pause classes); and the one assembly helper that turns generated
geometry into (dx, dy, dt).

Short paths use the Dirichlet over their own n active steps. By the aggregation property this is the law of
a length-T Dirichlet draw with its tail zeroed and renormalised (a Dirichlet's components restricted to a
subset and renormalised are Dirichlet with the restricted concentrations), so nothing depends on T.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..nn import ConditionEncoder
from ..runtime import pick_device
from .data import GeometryStats
from .study import CONDITIONINGS, PROFILES

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


def pause_classes(profile: np.ndarray | torch.Tensor, mask: np.ndarray | torch.Tensor,
                  edges: tuple[float, ...]) -> torch.Tensor:
    """(N, T) profiles -> (N, T) int64 pause class of each step: 0 when w_t < edges[0] x the path's median w,
    k when it lies in [edges[k-1], edges[k]) x the median (the last class open-ended); 0 on padding.

    The ratio w_t / median(w) equals dt_t / median(dt): a step's length in units of the path's polling interval.
    """
    w = torch.as_tensor(profile, dtype=torch.float64)
    mask = torch.as_tensor(mask, dtype=torch.bool)
    med = torch.nanquantile(torch.where(mask, w, torch.nan), 0.5, dim=-1)  # numpy's median (mean of the middle two)
    ratio = w / med[:, None]
    z = torch.bucketize(ratio, torch.tensor(edges, dtype=torch.float64), right=True)
    return torch.where(mask, z, torch.zeros_like(z))


N_SUMMARY = 5  # path_summary columns
N_STEP = 5  # step_features channels


def _step_lengths(dxdy: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.hypot(dxdy[..., 0], dxdy[..., 1]) * mask  # (B, T) px


def _turning(dxdy: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, T) absolute turning angle between step t-1 and step t (0 at the first step and on padding)."""
    a = torch.atan2(dxdy[..., 1], dxdy[..., 0])
    turn = torch.remainder(a[:, 1:] - a[:, :-1] + math.pi, 2 * math.pi) - math.pi
    turn = torch.cat([torch.zeros_like(turn[:, :1]), turn.abs()], dim=1)
    return turn * (mask & torch.roll(mask, 1, dims=1))


def path_summary(dxdy: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, T, 2) px steps -> (B, 5) features of the geometry the timing may condition on: log step count, log mean
    step length, log path length, straightness (|sum of steps| / path length), mean absolute turning angle."""
    mask = mask.bool()
    n = mask.sum(-1).clamp_min(1).to(dxdy.dtype)
    s = _step_lengths(dxdy, mask)
    length = s.sum(-1).clamp_min(1e-3)
    chord = torch.hypot(*(dxdy * mask[..., None]).sum(1).unbind(-1))
    return torch.stack([n.log(), (length / n).log(), length.log(), chord / length,
                        _turning(dxdy, mask).sum(-1) / n], dim=-1)


def step_features(dxdy: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, T, 2) px steps -> (B, 5, T) per-step inputs of the profile: log1p(step length / the path's mean),
    relative position t / n, first-step and last-step indicators, absolute turning angle; zero on padding."""
    mask = mask.bool()
    m = mask.to(dxdy.dtype)
    n = m.sum(-1, keepdim=True).clamp_min(1)
    s = _step_lengths(dxdy, mask)
    pos = torch.arange(mask.shape[1], device=dxdy.device, dtype=dxdy.dtype)[None, :]
    first = (pos == 0).to(dxdy.dtype).expand_as(m)
    last = (pos == n - 1).to(dxdy.dtype)
    feats = torch.stack([torch.log1p(s / (s.sum(-1, keepdim=True) / n)), pos / n, first, last,
                         _turning(dxdy, mask)], dim=1)
    return feats * m[:, None]


def inverse_softplus(y: float) -> float:
    """x with softplus(x) = y (y > 0)."""
    return y + math.log(-math.expm1(-y))


@dataclass
class TimingLaw:
    """What the heads say about a batch of paths: log D ~ N(mu, sigma^2); pause class z_t ~ Cat(pause_logits_t);
    w ~ Dirichlet(alpha_t * m_{z_t}) over the active steps (m_0 = 1; no pause classes: w ~ Dirichlet(alpha))."""

    mu: torch.Tensor  # (B,) log ms
    log_sigma: torch.Tensor  # (B,)
    alpha: torch.Tensor  # (B, T) base concentrations
    pause_logits: torch.Tensor | None  # (B, T, K + 1) or None
    log_multiplier: torch.Tensor | None  # (K + 1,) log m_z, m_0 = 1


class TimingModel(nn.Module):
    """Shared conditioner (2-layer MLP) with a duration head (mu_D, log sigma_D) and a profile head.

    Conditioner input (`conditioning`): "goal" = the condition vector; "goal_geometry" = the condition vector and
    `path_summary` of the geometry being timed; "shared_embedding" = the geometry diffusion's condition embedding
    e = g(cond) (a frozen copy, `embed`) and `path_summary`.
    Profile (`profile`): "position" = one concentration per step position (or K knots linearly upsampled to T)
    from the conditioner; "steps" = concentrations computed per step by a small 1-D conv over `step_features` of
    the geometry and the conditioner output, with optional pause classes (`pause_edges`): each step's class z_t
    (its dt in units of the path's median dt, binned at the edges) has its own logits, and a class-z step's
    concentration is multiplied by a learned m_z, so rare long steps tied to the geometry can be drawn.

    The duration head works in standardised log-duration: mu = m + s * out_0, log sigma = log s + out_1, with
    (m, s) the train mean and std of log D (buffers set by `fit_timing`), so an untrained head starts at the
    marginal law instead of at log D = 0.
    """

    def __init__(self, cond_dim: int, T: int, hidden: int = 64, knots: int | None = None, eps: float = 1e-3,
                 conditioning: str = "goal", profile: str = "position", pause_edges: tuple[float, ...] = (),
                 step_hidden: int = 32, embed: ConditionEncoder | None = None):
        super().__init__()
        if conditioning not in CONDITIONINGS:
            raise ValueError(f"timing conditioning must be one of {CONDITIONINGS}, got {conditioning!r}")
        if profile not in PROFILES:
            raise ValueError(f"timing profile must be one of {PROFILES}, got {profile!r}")
        if knots is not None and not 1 <= knots <= T:
            raise ValueError(f"profile knots K must lie in [1, T={T}], got {knots}")
        if profile == "steps" and conditioning == "goal":
            raise ValueError("profile 'steps' reads the geometry: use conditioning 'goal_geometry' or "
                             "'shared_embedding'")
        if pause_edges and (profile != "steps" or list(pause_edges) != sorted(pause_edges) or pause_edges[0] <= 1):
            raise ValueError(f"pause_edges need profile 'steps' and increasing values > 1, got {list(pause_edges)}")
        if conditioning == "shared_embedding" and embed is None:
            raise ValueError("conditioning 'shared_embedding' needs the geometry model's condition encoder (embed)")
        self.cond_dim, self.T, self.hidden, self.knots, self.eps = cond_dim, T, hidden, knots, eps
        self.conditioning, self.profile, self.pause_edges = conditioning, profile, tuple(float(e) for e in pause_edges)
        self.step_hidden = step_hidden
        self.embed = embed.requires_grad_(False) if conditioning == "shared_embedding" else None
        geometric = conditioning != "goal"
        in_dim = (embed.cond_dim if self.embed is not None else cond_dim) + (N_SUMMARY if geometric else 0)
        self.conditioner = nn.Sequential(nn.Linear(in_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU())
        self.duration_head = nn.Linear(hidden, 2)  # (mu, log sigma) in standardised log-duration
        n_classes = len(self.pause_edges) + 1
        if profile == "position":
            self.profile_head = nn.Linear(hidden, knots or T)  # pre-softplus concentrations per knot or step
        else:
            self.profile_head = nn.Sequential(
                nn.Conv1d(N_STEP + 1 + hidden, step_hidden, 5, padding=2), nn.SiLU(),
                nn.Conv1d(step_hidden, step_hidden, 5, padding=2), nn.SiLU(),
                nn.Conv1d(step_hidden, 1 + (n_classes if self.pause_edges else 0), 1))
            self.log_multiplier = nn.Parameter(torch.log(torch.tensor([1.0, *self.pause_edges]) * 1.5)[1:]) \
                if self.pause_edges else None
        self.register_buffer("log_d_mean", torch.zeros(()))
        self.register_buffer("log_d_std", torch.ones(()))
        self.register_buffer("summary_mean", torch.zeros(N_SUMMARY))
        self.register_buffer("summary_std", torch.ones(N_SUMMARY))

    def config(self) -> dict:
        """Constructor arguments, to rebuild the model from a checkpoint (the encoder's weights are in the state)."""
        embed = None if self.embed is None else {"n_classes": self.embed.n_classes, "cond_dim": self.embed.cond_dim,
                                                 "hidden": self.embed.mlp[0].out_features}
        return {"cond_dim": self.cond_dim, "T": self.T, "hidden": self.hidden, "knots": self.knots, "eps": self.eps,
                "conditioning": self.conditioning, "profile": self.profile, "pause_edges": list(self.pause_edges),
                "step_hidden": self.step_hidden, "embed": embed}

    @classmethod
    def from_config(cls, cfg: dict) -> "TimingModel":
        cfg = dict(cfg)
        e = cfg.pop("embed", None)
        return cls(**cfg, embed=ConditionEncoder(e["n_classes"], e["cond_dim"], e["hidden"]) if e else None)

    @property
    def reads_geometry(self) -> bool:
        return self.conditioning != "goal"

    def law(self, cond: torch.Tensor, dxdy: torch.Tensor | None = None,
            mask: torch.Tensor | None = None) -> TimingLaw:
        """The heads on a batch: cond (B, cond_dim); dxdy (B, T, 2) px and mask (B, T) when the model reads the
        geometry."""
        if cond.dim() != 2 or cond.shape[1] != self.cond_dim:
            raise ValueError(f"expected a condition of shape (B, {self.cond_dim}), got {tuple(cond.shape)}")
        x = self.embed(cond) if self.embed is not None else cond
        if self.reads_geometry:
            if dxdy is None or mask is None:
                raise ValueError(f"timing conditioning {self.conditioning!r} needs the geometry (dxdy, mask)")
            mask = mask.bool()
            summary = (path_summary(dxdy.float(), mask) - self.summary_mean) / self.summary_std
            x = torch.cat([x, summary], dim=-1)
        h = self.conditioner(x)
        out = self.duration_head(h)
        mu = self.log_d_mean + self.log_d_std * out[:, 0]
        log_sigma = torch.log(self.log_d_std) + out[:, 1]
        logits = log_m = None
        if self.profile == "position":
            raw = self.profile_head(h)  # (B, K or T)
            if self.knots is not None:
                raw = F.interpolate(raw[:, None], size=self.T, mode="linear", align_corners=True)[:, 0]
        else:
            inp = torch.cat([step_features(dxdy.float(), mask), mask[:, None].float(),
                             h[:, :, None].expand(-1, -1, self.T)], dim=1)
            out = self.profile_head(inp)  # (B, 1 [+ K + 1], T)
            raw = out[:, 0]
            if self.pause_edges:
                logits = out[:, 1:].transpose(1, 2)  # (B, T, K + 1)
                log_m = torch.cat([torch.zeros(1, device=h.device), self.log_multiplier])
        return TimingLaw(mu, log_sigma, F.softplus(raw) + self.eps, logits, log_m)

    def forward(self, cond: torch.Tensor, dxdy: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, cond_dim) -> mu (B,), log sigma (B,) of log D [log ms], base concentrations alpha (B, T)."""
        law = self.law(cond, dxdy, mask)
        return law.mu, law.log_sigma, law.alpha

    def nll(self, cond: torch.Tensor, duration: torch.Tensor, profile: torch.Tensor, mask: torch.Tensor,
            dxdy: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-path duration NLL (lognormal, D in ms) and profile NLL (Dirichlet over active steps, plus the
        pause classes' categorical NLL when the model has them), each (B,)."""
        law = self.law(cond, dxdy, mask)
        z = None if law.pause_logits is None else pause_classes(profile, mask, self.pause_edges).to(cond.device)
        nll_w = dirichlet_nll(profile, self.concentrations(law, z), mask)
        if z is not None:
            ce = F.cross_entropy(law.pause_logits.reshape(-1, law.pause_logits.shape[-1]), z.reshape(-1),
                                 reduction="none").view_as(z)
            nll_w = nll_w + (ce * mask).sum(-1)
        return lognormal_nll(torch.log(duration), law.mu, law.log_sigma), nll_w

    @staticmethod
    def concentrations(law: TimingLaw, z: torch.Tensor | None) -> torch.Tensor:
        """(B, T) alpha_t * m_{z_t} for pause classes z (observed in training, drawn in sampling); alpha without."""
        if law.pause_logits is None:
            return law.alpha
        return law.alpha * law.log_multiplier[z].exp()

    @torch.no_grad()
    def sample(self, cond: torch.Tensor, mask: torch.Tensor, seed: int = 0, deterministic: bool = False,
               dxdy: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Duration D (B,) [ms] and profile w (B, T) over each path's active steps (zero on padding).

        deterministic: D = exp(mu) (the lognormal's median) and w = the Dirichlet mean with every step in its
        most likely pause class; otherwise one draw z ~ Cat, D ~ LogNormal(mu, sigma^2), w ~ Dirichlet,
        reproducible from `seed`.
        """
        mask = torch.as_tensor(mask, dtype=torch.bool, device=cond.device)
        if mask.shape != (len(cond), self.T):
            raise ValueError(f"mask has shape {tuple(mask.shape)}, expected (B={len(cond)}, T={self.T})")
        if not mask.any(-1).all():
            raise ValueError("every path needs at least one active step in the mask")
        law = self.law(cond, dxdy, mask)
        gen = torch.Generator(device=cond.device).manual_seed(seed)
        z = None
        if law.pause_logits is not None:
            z = law.pause_logits.argmax(-1) if deterministic else torch.multinomial(
                law.pause_logits.softmax(-1).reshape(-1, law.pause_logits.shape[-1]), 1, generator=gen
            ).view(mask.shape)
        alpha = self.concentrations(law, z)
        if deterministic:
            return law.mu.exp(), mean_profile(alpha, mask)
        eps = torch.randn(law.mu.shape, generator=gen, device=law.mu.device, dtype=law.mu.dtype)
        return torch.exp(law.mu + law.log_sigma.exp() * eps), sample_dirichlet(alpha, mask, gen)


@dataclass
class TimingConfig:
    """Timing model and its optimisation; one AdamW per head and one for the shared conditioner."""

    conditioning: str = "goal"  # "goal", "goal_geometry" or "shared_embedding" (see TimingModel)
    profile: str = "position"  # "position" or "steps" (see TimingModel)
    pause_edges: tuple[float, ...] = ()  # pause classes in units of the path's median dt ("steps" only)
    hidden: int = 64  # width of the shared conditioner
    step_hidden: int = 32  # width of the per-step profile conv ("steps" only)
    knots: int | None = None  # K profile knots upsampled to T ("position" only; None = one per step)
    eps: float = 1e-3  # alpha = softplus(.) + eps
    steps: int = 2000  # optimizer steps
    batch_size: int = 256
    lr_conditioner: float = 1e-3  # AdamW of the shared conditioner
    lr_duration: float = 3e-3  # AdamW of the duration head
    lr_profile: float = 3e-3  # AdamW of the profile head
    weight_decay: float = 0.0
    seed: int = 0  # weight init and mini-batch order
    device: str = "cpu"  # a few thousand paths: the CPU is fast enough

    def __post_init__(self):
        self.pause_edges = tuple(float(e) for e in self.pause_edges)


def fit_timing(cond: np.ndarray, duration: np.ndarray, profile: np.ndarray, mask: np.ndarray,
               cfg: TimingConfig | None = None, progress: bool = True, dxdy: np.ndarray | None = None,
               embed: ConditionEncoder | None = None) -> tuple[TimingModel, dict[str, list[float]]]:
    """Train a TimingModel on train paths: cond (N, C), duration D (N,) ms, profile w (N, T), mask (N, T), and
    the real geometry dxdy (N, T, 2) px when the conditioning reads it (`embed`: the geometry model's condition
    encoder, for "shared_embedding").

    Loss per batch: mean duration NLL + mean profile NLL / (mean active steps); the division puts the profile
    term, a sum over ~50 steps, on the per-step scale of the duration term in the shared conditioner.
    The profile's bias starts at the moment-matched flat concentration alpha_0 = 1 / Var(n * w_t) over the
    steps of pause class 0 (for a flat Dirichlet of n steps, n * w_t has mean 1 and variance
    (n - 1) / (n alpha_0 + 1) ~ 1 / alpha_0). Returns the model (eval mode, on the CPU) and the per-step losses.
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
    model = TimingModel(cond_t.shape[1], T, cfg.hidden, cfg.knots, cfg.eps, cfg.conditioning, cfg.profile,
                        cfg.pause_edges, cfg.step_hidden, copy.deepcopy(embed) if embed is not None else None)
    model = model.to(device)
    g_t = None
    if model.reads_geometry:
        if dxdy is None or np.shape(dxdy) != (N, T, 2):
            raise ValueError(f"fit_timing: conditioning {cfg.conditioning!r} needs the train geometry dxdy (N, T, 2)")
        g_t = torch.as_tensor(dxdy, dtype=torch.float32, device=device)
        summary = path_summary(g_t, m_t)
        model.summary_mean.copy_(summary.mean(0))
        model.summary_std.copy_(summary.std(0).clamp_min(1e-3) if N > 1 else torch.ones(N_SUMMARY))
    log_d = torch.log(d_t)
    model.log_d_mean.fill_(log_d.mean().item())
    model.log_d_std.fill_(max(log_d.std().item(), 1e-3) if N > 1 else 1.0)
    n_active = m_t.sum(-1, keepdim=True).float()
    usual = m_t & (pause_classes(w_t.cpu(), m_t.cpu(), cfg.pause_edges).to(device) == 0)
    alpha_0 = 1.0 / float(((n_active * w_t - 1) ** 2)[usual].mean().clamp_min(1e-3))
    bias = model.profile_head.bias if cfg.profile == "position" else model.profile_head[-1].bias[:1]
    with torch.no_grad():
        bias.fill_(inverse_softplus(min(max(alpha_0, 0.05), 1e3)))
    profile_scale = 1.0 / n_active.mean().item()

    params = {"conditioner": list(model.conditioner.parameters()), "duration": list(model.duration_head.parameters()),
              "profile": list(model.profile_head.parameters()) + ([model.log_multiplier] if cfg.pause_edges else [])}
    opts = [torch.optim.AdamW(params[part], lr=lr, weight_decay=cfg.weight_decay) for part, lr in
            [("conditioner", cfg.lr_conditioner), ("duration", cfg.lr_duration), ("profile", cfg.lr_profile)]]
    gen = torch.Generator().manual_seed(cfg.seed)  # mini-batch order
    history: dict[str, list[float]] = {"duration_nll": [], "profile_nll": []}
    model.train()
    for _ in tqdm(range(cfg.steps), desc="train timing", disable=not progress, mininterval=2.0):
        idx = torch.randint(N, (min(cfg.batch_size, N),), generator=gen).to(device)
        nll_d, nll_w = model.nll(cond_t[idx], d_t[idx], w_t[idx], m_t[idx], None if g_t is None else g_t[idx])
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
    D, w = timing_model.sample(cond, mask, seed=seed, deterministic=deterministic, dxdy=dxdy)
    dt = (D[:, None] * w).to(geometry.dtype)  # (B, T) ms, zero on padding
    return torch.cat([dxdy, dt[..., None]], dim=-1), mask
