"""A mixture of K VAEs (Kingma & Welling 2014) sharing one encoder and one decoder, each with its own latent channel.

The encoder gives responsibilities q(c|x) over K channels and a Gaussian posterior q(z_k|x) per channel; a channel
is picked with a straight-through Gumbel-softmax sample (Jang et al. 2017; Maddison et al. 2017), and the decoder
p(x|z, c) sees the channel through a learned embedding e_c = E[c] that modulates every block: conditional instance
norm (Dumoulin et al. 2017) written as FiLM (Perez et al. 2018) after a GroupNorm without affine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from ..nn.random import draw
from ..settings import ConfigBase, is_int

FAMILY = "mixture_vae"
FORMAT_VERSION = 1
CONDITIONINGS = ("cin", "film", "concat", "none")
LIKELIHOODS = ("gaussian", "bernoulli")


@dataclass
class MixtureVAEConfig(ConfigBase):
    """Architecture of the mixture VAE (what a checkpoint must match to be reloaded)."""

    SECTION: ClassVar[str] = "mixture_vae.model"

    K: int = 10  # latent channels (mixture components)
    D: int = 2  # latent dimension per channel
    conditioning: str = "cin"  # how e_c enters the decoder: cin, film (per block), concat (to z), none
    cin_stable: bool = True  # False: the reference's normalise-then-FiLM with default-init gamma ~ 0 (broken)
    embed_dim: int = 32  # channel embedding e_c
    trunk: list[int] = field(default_factory=lambda: [32, 64, 128])  # conv widths of the encoder (mirrored)
    hidden: int = 256  # fully connected width between the trunk and the heads
    likelihood: str = "gaussian"  # p(x|z,c): heteroscedastic Gaussian, or Bernoulli on (x + 1) / 2
    sigma_min: float = 0.1  # clamp of the Gaussian sigma, data units ([-1, 1] images); with a wide range
    sigma_max: float = 0.25  # (0.02, 1) the decoder explains the digits as noise and z and c go unused

    def __post_init__(self):
        self.trunk = list(self.trunk)
        self.require(is_int(self.K) and self.K >= 1, "K", "must be an integer >= 1")
        self.require(is_int(self.D) and self.D >= 1, "D", "must be an integer >= 1")
        self.require(self.conditioning in CONDITIONINGS, "conditioning", f"must be one of {CONDITIONINGS}")
        self.require(isinstance(self.cin_stable, bool), "cin_stable", "must be true or false")
        self.require(is_int(self.embed_dim) and self.embed_dim >= 1, "embed_dim", "must be an integer >= 1")
        self.require(len(self.trunk) >= 1 and all(is_int(w) and w >= 1 for w in self.trunk), "trunk",
                     "must be a non-empty list of positive integer widths")
        self.require(is_int(self.hidden) and self.hidden >= 1, "hidden", "must be an integer >= 1")
        self.require(self.likelihood in LIKELIHOODS, "likelihood", f"must be one of {LIKELIHOODS}")
        self.require(isinstance(self.sigma_min, (int, float)) and self.sigma_min > 0, "sigma_min", "must be > 0")
        self.require(isinstance(self.sigma_max, (int, float)) and self.sigma_max > self.sigma_min, "sigma_max",
                     f"must be > sigma_min = {self.sigma_min}")


def gumbel_softmax_st(logits: torch.Tensor, tau: float, generator: torch.Generator | None = None,
                      hard: bool = True) -> torch.Tensor:
    """Gumbel-softmax sample (Jang et al. 2017 eq. 1): y = softmax((logits + g) / tau), g ~ Gumbel(0, 1).

    hard: the straight-through version, one-hot(argmax y) in the forward pass and the gradient of y in the
    backward pass (one_hot - y.detach() + y). Written out so a torch.Generator seeds the noise.
    """
    u = draw(torch.rand, tuple(logits.shape), generator, logits.device)
    g = -torch.log(-torch.log(u.clamp_min(1e-20)))  # Gumbel(0, 1)
    y_soft = torch.softmax((logits + g) / tau, dim=-1)  # (B, K)
    if not hard:
        return y_soft
    y_hard = F.one_hot(y_soft.argmax(-1), logits.shape[-1]).to(y_soft.dtype)
    return y_hard - y_soft.detach() + y_soft


def groups(channels: int) -> int:
    return 8 if channels % 8 == 0 else 1


class BlockCondition(nn.Module):
    """How the channel embedding e enters one decoder block: cin, film, or not at all (concat, none)."""

    def __init__(self, mode: str, channels: int, embed_dim: int, stable: bool = True):
        super().__init__()
        self.mode, self.stable = mode, stable
        self.norm_enabled = True  # cin (stable) only: False = FiLM alone (warm start), True = norm, then FiLM
        if mode == "cin":
            self.norm = nn.GroupNorm(groups(channels), channels, affine=False)
        if mode in ("cin", "film"):
            self.affine = nn.Linear(embed_dim, 2 * channels)  # e -> (gamma, beta)
            if stable or mode == "film":  # zero init: (1 + 0) h + 0, the block starts as the identity on h
                nn.init.zeros_(self.affine.weight)
                nn.init.zeros_(self.affine.bias)

    def forward(self, h: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W), (B, embed_dim) -> (B, C, H, W)."""
        if self.mode not in ("cin", "film"):
            return h
        gamma, beta = self.affine(e)[:, :, None, None].chunk(2, dim=1)  # (B, C, 1, 1) each
        if self.mode == "cin" and not self.stable:
            return gamma * self.norm(h) + beta  # reference: default-init gamma ~ 0 multiplies the features away
        if self.mode == "cin" and self.norm_enabled:
            h = self.norm(h)
        return (1 + gamma) * h + beta


class DecoderBlock(nn.Module):
    """Upsample to `size`, 3x3 conv, condition on e, SiLU."""

    def __init__(self, c_in: int, c_out: int, size: tuple[int, int], cfg: MixtureVAEConfig):
        super().__init__()
        self.size = size
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.cond = BlockCondition(cfg.conditioning, c_out, cfg.embed_dim, cfg.cin_stable)

    def forward(self, h: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        if tuple(h.shape[-2:]) != self.size:
            h = F.interpolate(h, size=self.size, mode="nearest")
        return F.silu(self.cond(self.conv(h), e))


class MixtureVAE(nn.Module):
    """q(c|x), q(z_k|x) for k = 1..K from a shared conv trunk; p(x|z, c) from one decoder conditioned on E[c]."""

    def __init__(self, cfg: MixtureVAEConfig, in_shape: tuple[int, int, int] = (1, 28, 28)):
        super().__init__()
        self.cfg, self.in_shape = cfg, tuple(int(s) for s in in_shape)
        C, H, W = self.in_shape
        K, D, width = cfg.K, cfg.D, cfg.trunk
        # stride 2 while a side is larger than 4: 28 -> 14 -> 7 -> 4, 8 -> 4 -> 4 -> 4
        sizes = [(H, W)]
        for _ in width:
            sizes.append(tuple(math.ceil(s / 2) if s > 4 else s for s in sizes[-1]))
        layers, c = [], C
        for w, (h_in, w_in) in zip(width, sizes):
            layers += [nn.Conv2d(c, w, 3, stride=(1 + (h_in > 4), 1 + (w_in > 4)), padding=1), nn.SiLU()]
            c = w
        self.bottom = (width[-1], *sizes[-1])  # (C, H, W) of the trunk's last feature map
        n_bottom = math.prod(self.bottom)
        self.trunk = nn.Sequential(*layers, nn.Flatten(), nn.Linear(n_bottom, cfg.hidden), nn.SiLU())
        self.head_c = nn.Linear(cfg.hidden, K)  # logits of q(c|x)
        self.head_z = nn.Linear(cfg.hidden, 2 * K * D)  # (mu, logvar) of q(z_k|x) for every k

        self.embed = nn.Parameter(torch.randn(K, cfg.embed_dim))  # E: e_c = E[c], soft weights w -> w @ E
        dec_in = D + (cfg.embed_dim if cfg.conditioning == "concat" else 0)
        self.dec_in = nn.Sequential(nn.Linear(dec_in, cfg.hidden), nn.SiLU(), nn.Linear(cfg.hidden, n_bottom),
                                    nn.SiLU())
        outs = [width[0], *width[:-1]]  # block i maps width[i] -> width[i-1] at the size of trunk layer i's input
        self.blocks = nn.ModuleList(DecoderBlock(width[i], outs[i], sizes[i], cfg) for i in reversed(range(len(width))))
        self.head_x = nn.Conv2d(width[0], C * (2 if cfg.likelihood == "gaussian" else 1), 3, padding=1)

        self.pi_logits = nn.Parameter(torch.zeros(K))  # prior pi = softmax(pi_logits) over channels
        self.register_buffer("unlocked", torch.ones(K, dtype=torch.bool))  # curriculum state, default mask
        self._norm_enabled = True

    @property
    def norm_enabled(self) -> bool:
        """cin (stable) warm start: False runs every block as FiLM only, True puts the GroupNorm in front."""
        return self._norm_enabled

    @norm_enabled.setter
    def norm_enabled(self, on: bool) -> None:
        self._norm_enabled = bool(on)
        for blk in self.blocks:
            blk.cond.norm_enabled = self._norm_enabled

    def log_pi(self, channel_mask: torch.Tensor | None = None) -> torch.Tensor:
        """log pi (K,), renormalised over the unlocked channels (locked ones -inf)."""
        mask = self.unlocked if channel_mask is None else channel_mask
        return torch.log_softmax(self.pi_logits.masked_fill(~mask, -math.inf), dim=-1)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, C, H, W) -> logits (B, K), mu (B, K, D), logvar (B, K, D)."""
        h = self.trunk(x)
        mu, logvar = self.head_z(h).view(len(x), self.cfg.K, 2 * self.cfg.D).chunk(2, dim=-1)
        return self.head_c(h), mu, logvar

    def channel_weights(self, channel: torch.Tensor) -> torch.Tensor:
        """Channel index (B,) or weights (B, K) -> (B, K) float weights."""
        if not channel.is_floating_point():
            return F.one_hot(channel.long(), self.cfg.K).to(self.embed.dtype)
        return channel

    def decode(self, z: torch.Tensor, channel: torch.Tensor) -> dict[str, torch.Tensor | None]:
        """z (B, D) and channel (B,) or weights (B, K) -> mean (B, C, H, W) in data units, and log_sigma
        (Gaussian) or x_logits (Bernoulli logits of (x + 1) / 2), the other None; (B, C, H, W) each.

        The Gaussian mean is unbounded (not tanh): background pixels sit exactly at -1, which tanh reaches only
        at -inf pre-activation, and a small learned sigma would push it there. log sigma is squashed smoothly
        into [log sigma_min, log sigma_max] (a sigmoid, so it keeps a gradient at the bounds)."""
        e = self.channel_weights(channel) @ self.embed  # (B, embed_dim)
        inp = torch.cat([z, e], dim=-1) if self.cfg.conditioning == "concat" else z
        h = self.dec_in(inp).view(len(z), *self.bottom)
        for blk in self.blocks:
            h = blk(h, e)
        out = self.head_x(h)
        if self.cfg.likelihood == "bernoulli":  # logits of x01 = (x + 1) / 2
            return {"mean": 2 * torch.sigmoid(out) - 1, "log_sigma": None, "x_logits": out}
        mean, raw = out.chunk(2, dim=1)
        lo, hi = math.log(self.cfg.sigma_min), math.log(self.cfg.sigma_max)
        return {"mean": mean, "log_sigma": lo + (hi - lo) * torch.sigmoid(raw), "x_logits": None}

    def forward(self, x: torch.Tensor, tau: float, hard: bool = True, channel_mask: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> dict[str, torch.Tensor | None]:
        """Encode, pick a channel by Gumbel-softmax at temperature tau, sample every z_k, decode the picked one.

        channel_mask (K,) bool, False = locked (never picked; logits -inf); None = the model's `unlocked`."""
        logits_raw, mu, logvar = self.encode(x)
        mask = self.unlocked if channel_mask is None else channel_mask.to(x.device)
        logits = logits_raw.masked_fill(~mask, -math.inf)  # (B, K)
        weights = gumbel_softmax_st(logits, tau, generator, hard)  # (B, K)
        eps = draw(torch.randn, tuple(mu.shape), generator, x.device)
        z_all = mu + torch.exp(0.5 * logvar) * eps  # (B, K, D) reparameterised
        z = (weights[..., None] * z_all).sum(1)  # (B, D) the picked channel's z, gradient to weights
        return {"logits": logits, "logits_raw": logits_raw, "q": torch.softmax(logits, -1), "weights": weights,
                "channel": weights.argmax(-1), "mu": mu, "logvar": logvar, "z_all": z_all, "z": z,
                "channel_mask": mask, **self.decode(z, weights)}

    @torch.no_grad()
    def generate(self, channel: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """channel (N,) -> decoded means (N, C, H, W) of z ~ N(0, I), clipped to the data range [-1, 1]."""
        channel = torch.as_tensor(channel, dtype=torch.long, device=self.embed.device)
        z = draw(torch.randn, (len(channel), self.cfg.D), generator, self.embed.device)
        return self.decode(z, channel)["mean"].clamp(-1, 1)

    def checkpoint(self, **extra: Any) -> dict[str, Any]:
        """Everything needed to rebuild this model; loads with torch.load(weights_only=True)."""
        return {"family": FAMILY, "format_version": FORMAT_VERSION, "config": self.cfg.to_dict(),
                "in_shape": list(self.in_shape), "norm_enabled": self.norm_enabled,
                "state": {k: v.detach().cpu() for k, v in self.state_dict().items()}, **extra}

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any]) -> "MixtureVAE":
        if ckpt.get("family") != FAMILY:
            raise ValueError(f"checkpoint of family {ckpt.get('family')!r}, not {FAMILY!r}: load it with that "
                             "family's model class")
        model = cls(MixtureVAEConfig.from_dict(ckpt["config"]), tuple(ckpt["in_shape"]))
        model.load_state_dict(ckpt["state"])
        model.norm_enabled = ckpt["norm_enabled"]
        return model.eval()
