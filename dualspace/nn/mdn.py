"""Mixture density network p_psi(y | e): M diagonal Gaussians whose weights, means and scales depend on e."""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal
from torch.nn import functional as F


class MDN(nn.Module):
    """e (B, cond_dim) -> MixtureSameFamily over y (B, y_dim), with mixture logits and sigma >= sigma_floor."""

    def __init__(self, cond_dim: int, y_dim: int, n_components: int = 6, hidden: int = 256,
                 sigma_floor: float = 1e-3):
        super().__init__()
        self.cond_dim, self.y_dim, self.M, self.sigma_floor = cond_dim, y_dim, n_components, sigma_floor
        self.body = nn.Sequential(nn.Linear(cond_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU())
        self.logits = nn.Linear(hidden, n_components)  # mixture logits (never normalised by hand)
        self.mu = nn.Linear(hidden, n_components * y_dim)
        self.raw_sigma = nn.Linear(hidden, n_components * y_dim)

    def distribution(self, e: torch.Tensor) -> MixtureSameFamily:
        h = self.body(e)
        mu = self.mu(h).view(-1, self.M, self.y_dim)
        sigma = F.softplus(self.raw_sigma(h)).view(-1, self.M, self.y_dim) + self.sigma_floor
        return MixtureSameFamily(Categorical(logits=self.logits(h)), Independent(Normal(mu, sigma), 1))

    def log_prob(self, y: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """log p(y | e), (B,)."""
        return self.distribution(e).log_prob(y)
