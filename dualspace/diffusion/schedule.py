"""Noise schedules for DDPM: beta_t, alpha_t = 1 - beta_t and alpha_bar_t = prod_{s<=t} alpha_s."""

from __future__ import annotations

import math

import torch


class NoiseSchedule:
    """Precomputed schedule tensors for T steps, indexed by 0-based t in [0, T)."""

    def __init__(self, betas: torch.Tensor):
        self.betas = betas.double()  # (T,)
        self.T = len(betas)
        self.alphas = 1.0 - self.betas
        self.alpha_bar = torch.cumprod(self.alphas, dim=0)
        # alpha_bar_{t-1}, with alpha_bar_{-1} = 1 (x_{-1} is the clean sample)
        self.alpha_bar_prev = torch.cat([torch.ones(1, dtype=torch.float64), self.alpha_bar[:-1]])

    @classmethod
    def cosine(cls, T: int, s: float = 0.008, max_beta: float = 0.999) -> "NoiseSchedule":
        """Nichol & Dhariwal 2021, eq. 17: alpha_bar(t) = f(t)/f(0), f(t) = cos^2(((t/T + s)/(1 + s)) pi/2)."""
        f = lambda t: math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
        betas = [min(1 - f(t + 1) / f(t), max_beta) for t in range(T)]
        return cls(torch.tensor(betas, dtype=torch.float64))

    @classmethod
    def linear(cls, T: int, beta_1: float = 1e-4, beta_T: float = 0.02) -> "NoiseSchedule":
        """Ho et al. 2020: betas linear from beta_1 to beta_T (scaled for T != 1000)."""
        scale = 1000 / T
        return cls(torch.linspace(scale * beta_1, scale * beta_T, T, dtype=torch.float64))

    @classmethod
    def named(cls, name: str, T: int, shift: float = 1.0) -> "NoiseSchedule":
        if name not in ("cosine", "linear"):
            raise ValueError(f"unknown beta schedule '{name}'; use 'cosine' or 'linear'")
        base = getattr(cls, name)(T)
        return base if shift == 1.0 else base.shifted(shift)

    def shifted(self, shift: float, max_beta: float = 0.999) -> "NoiseSchedule":
        """The same schedule with log SNR(t) moved by 2 log(shift) at every t (Hoogeboom et al. 2023, "simple
        diffusion", eq. 4: a shifted cosine for high resolutions). shift < 1 adds noise at every step: a signal of
        L correlated values has ~L times the per-value SNR in its mean, so a shift of ~1/sqrt(L) puts the
        decision about the mean back into the steps where the model can still see it."""
        if shift <= 0:
            raise ValueError(f"schedule shift must be > 0, got {shift}")
        ab = self.alpha_bar
        ab_shift = torch.sigmoid(torch.log(ab) - torch.log1p(-ab) + 2 * math.log(shift))
        prev = torch.cat([torch.ones(1, dtype=torch.float64), ab_shift[:-1]])
        return NoiseSchedule((1 - ab_shift / prev).clamp(max=max_beta))

    def at(self, values: torch.Tensor, t: torch.Tensor, ndim: int) -> torch.Tensor:
        """values[t] as float32, shaped (B, 1, ..., 1) to broadcast over a batch of rank `ndim`."""
        return values.to(t.device)[t].float().view(-1, *([1] * (ndim - 1)))

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Forward process (Ho et al. eq. 4): x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps."""
        ab = self.at(self.alpha_bar, t, x0.dim())
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise

    def training_draws(self, x0: torch.Tensor, p_drop: float,
                       generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One training batch's randomness, in a fixed order (resumes and reruns reproduce it): timesteps t (B,),
        noise like x0, and the flags (B,) of the examples whose condition is dropped (classifier-free guidance)."""
        b = len(x0)
        t = torch.randint(0, self.T, (b,), generator=generator).to(x0.device)
        noise = torch.randn(x0.shape, generator=generator).to(x0.device)
        drop = (torch.rand(b, generator=generator) < p_drop).to(x0.device)
        return t, noise, drop

    def target(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, prediction: str) -> torch.Tensor:
        """What the network regresses: eps (Ho et al. 2020) or v = sqrt(ab) eps - sqrt(1 - ab) x0 (Salimans & Ho)."""
        if prediction == "eps":
            return noise
        ab = self.at(self.alpha_bar, t, x0.dim())
        return ab.sqrt() * noise - (1 - ab).sqrt() * x0
