"""The mixture VAE's objective: reconstruction, latent KLs, a channel-choice regulariser, usage entropy; the test ELBO.

Per example x, with q = q(c|x) and the channel c picked by Gumbel-softmax (model.py):

    loss = -log p(x | z_c, c) + beta * sum_k KL(q(z_k|x) || N(0, I)) + kl_c_weight * R(q) + usage term

(the reference formulation: the latent KL of every channel, not only the picked one). R is one of
KL(q(c|x) || pi), minus a logistic-normal mixture log-density of the logits, or minus a Dirichlet log-density of q.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from ..nn.random import draw
from ..settings import ConfigBase
from .model import MixtureVAE

REGULARISERS = ("kl_pi", "logit_mog", "dirichlet_point")
USAGE_SIGNS = ("spread", "sparsity")
P_MIN = 1e-6  # points on the simplex are clamped to [P_MIN, 1] before a log


@dataclass
class LossConfig(ConfigBase):
    """Weights and choices of the training objective."""

    SECTION: ClassVar[str] = "mixture_vae.loss"

    beta: float = 3.0  # weight of sum_k KL(q(z_k|x) || N(0, I)); > 1 makes z dearer than c, so c takes the class
    regulariser: str = "logit_mog"  # channel-choice regulariser R: kl_pi (the reference), logit_mog, dirichlet_point
    pi: str = "learned"  # kl_pi: pi = softmax of free logits ("learned") or uniform ("fixed")
    alpha_pi: float = 1.0  # Dirichlet MAP prior on a learned pi (1 = flat, > 1 pulls pi to uniform)
    kl_c_weight: float = 1.0  # weight of R
    usage_entropy_weight: float = 50.0  # weight of H(mean_b q(c|x_b)); must match recon gaps of tens of nats
    usage_entropy_sign: str = "spread"  # spread: reward high usage entropy; sparsity: penalise it
    dirichlet_point_alpha: float = 0.5  # dirichlet_point: R = -log Dir(q; alpha), alpha < 1 rewards sparse q
    logit_mog_radius: float = 5.0  # logit_mog: component means start at radius * one-hot(k)
    logit_mog_scale: float = 1.0  # logit_mog: std of each isotropic component
    logit_mog_learn_scale: bool = False  # logit_mog: learn the std too (the means are always learned)

    def __post_init__(self):
        num = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)  # noqa: E731
        self.require(num(self.beta) and self.beta >= 0, "beta", "must be a number >= 0")
        self.require(self.regulariser in REGULARISERS, "regulariser", f"must be one of {REGULARISERS}")
        self.require(self.pi in ("learned", "fixed"), "pi", "must be 'learned' or 'fixed'")
        self.require(num(self.alpha_pi) and self.alpha_pi > 0, "alpha_pi", "must be > 0")
        self.require(num(self.kl_c_weight) and self.kl_c_weight >= 0, "kl_c_weight", "must be a number >= 0")
        self.require(num(self.usage_entropy_weight) and self.usage_entropy_weight >= 0, "usage_entropy_weight",
                     "must be a number >= 0")
        self.require(self.usage_entropy_sign in USAGE_SIGNS, "usage_entropy_sign", f"must be one of {USAGE_SIGNS}")
        self.require(num(self.dirichlet_point_alpha) and self.dirichlet_point_alpha > 0, "dirichlet_point_alpha",
                     "must be > 0")
        self.require(num(self.logit_mog_radius), "logit_mog_radius", "must be a finite number")
        self.require(num(self.logit_mog_scale) and self.logit_mog_scale > 0, "logit_mog_scale", "must be > 0")
        self.require(isinstance(self.logit_mog_learn_scale, bool), "logit_mog_learn_scale", "must be true or false")


def kl_normal_std(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp logvar) || N(0, I)) = 0.5 sum_d (exp logvar + mu^2 - 1 - logvar); (B, K, D) -> (B, K)."""
    return 0.5 * (logvar.exp() + mu.square() - 1 - logvar).sum(-1)


def kl_categorical(q: torch.Tensor, log_pi: torch.Tensor) -> torch.Tensor:
    """KL(q || pi) = sum_k q_k (log q_k - log pi_k), with 0 log 0 = 0 (also where log pi = -inf); (B, K) -> (B,)."""
    on = q > 0
    log_pi = torch.where(on, log_pi.expand_as(q), 0.0)  # no 0 * inf, nor a NaN gradient through where
    return torch.where(on, q * (torch.log(q.clamp_min(1e-30)) - log_pi), 0.0).sum(-1)


def dirichlet_log_density(p: torch.Tensor, alpha: float | torch.Tensor) -> torch.Tensor:
    """log Dir(p; alpha) = log Gamma(sum alpha) - sum log Gamma(alpha_k) + sum (alpha_k - 1) log p_k; (.., K) -> (..).

    p is clamped to [P_MIN, 1] (as scipy.stats.dirichlet.logpdf, it expects points on the open simplex)."""
    K = p.shape[-1]
    alpha = torch.as_tensor(alpha, dtype=p.dtype, device=p.device).expand(K)
    log_norm = torch.lgamma(alpha.sum()) - torch.lgamma(alpha).sum()
    return log_norm + ((alpha - 1) * torch.log(p.clamp(P_MIN, 1.0))).sum(-1)


def pi_prior_penalty(log_pi: torch.Tensor, alpha_pi: float) -> torch.Tensor:
    """MAP penalty on the prior over channels: -log Dir(pi; alpha_pi), from log pi (K,) (finite entries only)."""
    log_pi = log_pi[torch.isfinite(log_pi)]
    K = len(log_pi)
    log_norm = math.lgamma(K * alpha_pi) - K * math.lgamma(alpha_pi)
    return -(log_norm + (alpha_pi - 1) * log_pi.sum())


def usage_entropy(q: torch.Tensor) -> torch.Tensor:
    """H(qbar) = -sum_k qbar_k log qbar_k of the batch-mean usage qbar = mean_b q(c|x_b); (B, K) -> scalar."""
    qbar = q.mean(0)
    return -torch.where(qbar > 0, qbar * torch.log(qbar.clamp_min(1e-30)), 0.0).sum()


def logit_mog_log_density(logits: torch.Tensor, means: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """log p(l) = log (1/M) sum_j N(l; m_j, s^2 I): an equal-weight mixture of isotropic Gaussians on the logit
    vector (a logistic-normal mixture prior on q = softmax(l)); logits (B, K), means (M, K) -> (B,)."""
    K, M = logits.shape[-1], means.shape[0]
    sq = (logits[:, None, :] - means[None]).square().sum(-1)  # (B, M)
    log_n = -0.5 * sq / torch.exp(2 * log_scale) - K * log_scale - 0.5 * K * math.log(2 * math.pi)
    return torch.logsumexp(log_n, dim=-1) - math.log(M)


class LogitMoG(nn.Module):
    """The logit_mog regulariser's parameters: K learned means, initialised at radius * one-hot(k), and a scale."""

    def __init__(self, K: int, radius: float, scale: float, learn_scale: bool = False):
        super().__init__()
        self.means = nn.Parameter(radius * torch.eye(K))  # (K, K)
        log_scale = torch.tensor(math.log(scale))
        if learn_scale:
            self.log_scale = nn.Parameter(log_scale)
        else:
            self.register_buffer("log_scale", log_scale)

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        """(B, K) logits -> (B,) log-density."""
        return logit_mog_log_density(logits, self.means, self.log_scale)


def gaussian_nll(x: torch.Tensor, mean: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """-log N(x; mean, sigma^2) summed over pixels, (B,): sum 0.5 log(2 pi) + log sigma + 0.5 ((x - mean) / sigma)^2."""
    nll = 0.5 * math.log(2 * math.pi) + log_sigma + 0.5 * ((x - mean) * torch.exp(-log_sigma)).square()
    return nll.flatten(1).sum(-1)


def bernoulli_nll(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """-log Bern(x01; sigmoid(logits)) summed over pixels, x01 = (x + 1) / 2 in [0, 1] -> (B,)."""
    x01 = (x + 1) / 2
    return F.binary_cross_entropy_with_logits(logits, x01, reduction="none").flatten(1).sum(-1)


def reconstruction_nll(x: torch.Tensor, dec: dict[str, torch.Tensor | None]) -> torch.Tensor:
    """-log p(x | z, c) per example (B,) from the decoder's output dict (Gaussian or Bernoulli)."""
    if dec["x_logits"] is not None:
        return bernoulli_nll(x, dec["x_logits"])
    return gaussian_nll(x, dec["mean"], dec["log_sigma"])


def channel_regulariser(out: dict, cfg: LossConfig, log_pi: torch.Tensor,
                        logit_mog: LogitMoG | None = None) -> torch.Tensor:
    """R per example (B,): KL(q(c|x) || pi), -log p_mog(logits), or -log Dir(q(c|x); alpha) over unlocked channels."""
    q, mask = out["q"], out["channel_mask"]
    if cfg.regulariser == "kl_pi":
        return kl_categorical(q, log_pi)
    if cfg.regulariser == "logit_mog":
        if logit_mog is None:
            raise ValueError("mixture_vae.loss.regulariser = 'logit_mog' needs its LogitMoG parameters (logit_mog=)")
        return -logit_mog(out["logits_raw"])
    return -dirichlet_log_density(q[:, mask], cfg.dirichlet_point_alpha)


def mixture_vae_loss(out: dict, x: torch.Tensor, cfg: LossConfig, log_pi: torch.Tensor, n_data: int = 1,
                     logit_mog: LogitMoG | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """The training loss (module docstring), mean over the batch, and its terms as floats.

    out: MixtureVAE.forward's dict; log_pi (K,): log pi over the unlocked channels (model.log_pi(mask)).
    With a learned pi the Dirichlet MAP penalty -log Dir(pi; alpha_pi) enters divided by n_data, the training
    set size, so that an epoch sums it once. Locked channels (out["channel_mask"] False) add no latent KL.
    """
    mask = out["channel_mask"]
    recon = reconstruction_nll(x, out)  # (B,)
    kl_z = (kl_normal_std(out["mu"], out["logvar"]) * mask).sum(-1)  # (B,)
    reg = channel_regulariser(out, cfg, log_pi, logit_mog)  # (B,)
    h_use = usage_entropy(out["q"])
    sign = -1.0 if cfg.usage_entropy_sign == "spread" else 1.0
    loss = (recon + cfg.beta * kl_z + cfg.kl_c_weight * reg).mean() + sign * cfg.usage_entropy_weight * h_use
    pi_pen = torch.zeros(())
    if cfg.regulariser == "kl_pi" and cfg.pi == "learned":
        pi_pen = pi_prior_penalty(log_pi, cfg.alpha_pi) / n_data
        loss = loss + pi_pen
    terms = {"loss": loss.item(), "recon": recon.mean().item(), "kl_z": kl_z.mean().item(),
             "reg_c": reg.mean().item(), "usage_entropy": h_use.item(), "pi_penalty": float(pi_pen.detach())}
    return loss, terms


@torch.no_grad()
def elbo(model: MixtureVAE, x: torch.Tensor, log_pi: torch.Tensor | None = None,
         generator: torch.Generator | None = None) -> torch.Tensor:
    """The test ELBO in nats per example (B,), channels enumerated exactly, one z sample per channel:

        ELBO(x) = sum_k q_k [log p(x | z_k, k) - KL(q(z_k|x) || N(0, I))] - KL(q(c|x) || pi),
        z_k = mu_k + sigma_k eps_k, eps_k ~ N(0, I) from `generator`.

    Channels locked in model.unlocked get q_k = 0; log_pi defaults to model.log_pi()."""
    log_pi = model.log_pi() if log_pi is None else log_pi
    logits, mu, logvar = model.encode(x)
    q = torch.softmax(logits.masked_fill(~model.unlocked, -math.inf), -1)  # (B, K)
    z_all = mu + torch.exp(0.5 * logvar) * draw(torch.randn, tuple(mu.shape), generator, x.device)  # (B, K, D)
    kl_z = kl_normal_std(mu, logvar)  # (B, K)
    per_k = torch.zeros_like(q)
    for k in torch.nonzero(model.unlocked).flatten().tolist():
        dec = model.decode(z_all[:, k], torch.full((len(x),), k, dtype=torch.long, device=x.device))
        per_k[:, k] = -reconstruction_nll(x, dec) - kl_z[:, k]
    return (q * per_k).sum(-1) - kl_categorical(q, log_pi)
