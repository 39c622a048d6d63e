"""Mixture density network p_psi(y | e): M Gaussians whose weights, means and covariances depend on e."""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import (Categorical, Independent, LowRankMultivariateNormal, MixtureSameFamily,
                                 MultivariateNormal, Normal)
from torch.nn import functional as F

COVARIANCES = ("diagonal", "lowrank", "full")  # the covariance families `MDN(covariance=...)` knows


class MDN(nn.Module):
    """e (B, cond_dim) -> MixtureSameFamily over y (B, y_dim), with mixture logits and sigma >= sigma_floor.

    Each component's covariance Sigma_k(e), by `covariance`:
      diagonal: diag(sigma^2), sigma = softplus(raw_sigma) + sigma_floor. The original parametrisation,
                with the original state-dict keys, so checkpoints from before `covariance` load.
      lowrank:  W W^T + diag(sigma^2), W (y_dim, rank) from the head `factor`.
      full:     L L^T, L lower-triangular with diagonal sigma and strictly-lower entries from the head
                `offdiag`, y_dim (y_dim - 1) / 2 per component in row-major order (the order of
                torch.tril_indices(d, d, -1) and np.tril_indices(d, -1)).
    """

    def __init__(self, cond_dim: int, y_dim: int, n_components: int = 6, hidden: int = 256,
                 sigma_floor: float = 1e-3,
                 covariance: str = "diagonal",  # one of COVARIANCES
                 rank: int = 4):  # columns of W when covariance == "lowrank"
        super().__init__()
        if covariance not in COVARIANCES:
            raise ValueError(f"MDN: covariance is {covariance!r}; it must be one of {list(COVARIANCES)}")
        self.cond_dim, self.y_dim, self.M, self.sigma_floor = cond_dim, y_dim, n_components, sigma_floor
        self.covariance, self.rank = covariance, rank
        self.body = nn.Sequential(nn.Linear(cond_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU())
        self.logits = nn.Linear(hidden, n_components)  # mixture logits (never normalised by hand)
        self.mu = nn.Linear(hidden, n_components * y_dim)
        self.raw_sigma = nn.Linear(hidden, n_components * y_dim)
        if covariance == "lowrank":
            # Sigma = W W^T + diag(sigma^2) with sigma >= sigma_floor: every eigenvalue is >= sigma_floor^2
            # whatever W is (W W^T is positive semi-definite), so Sigma stays SPD, and the capacitance
            # matrix I + W^T D^-1 W that torch factorises has every eigenvalue >= 1.
            self.factor = nn.Linear(hidden, n_components * y_dim * rank)
            # Small, so training starts near diagonal, but not zero: W = 0 is a stationary point of
            # log p (d log p / dW = (Sigma^-1 r r^T Sigma^-1 - Sigma^-1) W), which training would never leave.
            with torch.no_grad():
                self.factor.weight.mul_(0.1)
                self.factor.bias.mul_(0.1)
        elif covariance == "full":
            # L's diagonal is sigma >= sigma_floor > 0, so L is invertible and L L^T SPD; logdet Sigma =
            # 2 sum log sigma >= 2 y_dim log sigma_floor bounds the density as the diagonal floor does.
            self.offdiag = nn.Linear(hidden, n_components * (y_dim * (y_dim - 1) // 2))
            with torch.no_grad():  # start near diagonal (unlike W above, L's off-diagonal gets a gradient at 0)
                self.offdiag.weight.mul_(0.01)
                self.offdiag.bias.zero_()
            rows, cols = torch.tril_indices(y_dim, y_dim, -1)
            self.register_buffer("rows", rows, persistent=False)  # not in the state dict: derived from y_dim
            self.register_buffer("cols", cols, persistent=False)

    def distribution(self, e: torch.Tensor) -> MixtureSameFamily:
        h = self.body(e)
        mu = self.mu(h).view(-1, self.M, self.y_dim)  # (B, M, d)
        sigma = F.softplus(self.raw_sigma(h)).view(-1, self.M, self.y_dim) + self.sigma_floor  # (B, M, d)
        if self.covariance == "diagonal":
            comp = Independent(Normal(mu, sigma), 1)
        elif self.covariance == "lowrank":
            W = self.factor(h).view(-1, self.M, self.y_dim, self.rank)  # (B, M, d, rank)
            comp = LowRankMultivariateNormal(mu, cov_factor=W, cov_diag=sigma**2)
        else:
            L = torch.diag_embed(sigma)  # (B, M, d, d)
            L[..., self.rows, self.cols] = self.offdiag(h).view(*mu.shape[:-1], len(self.rows))
            comp = MultivariateNormal(mu, scale_tril=L)
        return MixtureSameFamily(Categorical(logits=self.logits(h)), comp)

    def log_prob(self, y: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """log p(y | e), (B,)."""
        return self.distribution(e).log_prob(y)
