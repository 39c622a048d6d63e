"""Log-volume of a conformal region R = {y : -log p(y) <= tau} under a Gaussian mixture p.

Vol(R) = E_q[1{y in R} / q(y)] for any proposal q that covers R. Sampling q = p itself (the old
`distances.log_volume`) saturates: R's volume sits in the thin shell at its boundary, where p puts
almost no mass once tau is past p's own typical scores, so no draw lands there and the estimate stops
growing with tau. Here q is a defensive mixture of copies of p with every covariance scaled by s^2,
q = sum_j (n_j / n) p_{s_j}, drawn stratified (n_j draws from p_{s_j}) and weighted with the full
mixture density (the balance heuristic, Veach & Guibas 1995; defensive mixtures, Hesterberg 1995).

Why the scale grid is what it is (`scale_grid`). Take p = N(0, I_d) (any Gaussian is this after
whitening; the log-volume only shifts by 1/2 logdet Sigma). R is the ball of radius r, r^2 =
2 (tau - d/2 log 2 pi); uniform on R is the zero-variance proposal, and its radius sits within ~r/d of
r. N(0, s^2 I_d) puts its radius at s sqrt(d) with spread s / sqrt(2), so the one scale that reaches
the boundary shell is s* = r / sqrt(d): for tau the alpha-quantile of p's scores, sqrt(chi2.ppf(alpha,
d) / d), 0.995 to 1.21 for alpha 0.5 to 0.99 in d = 64; for a fitted MDN at a calibrated tau, up to
2.5 (hapt, d = 32), because held-out scores run far above the model's own. Three facts fix the grid:
1. Spacing. At radius rho, p_s(rho) as a function of log s is a Gaussian bump of sd 1/sqrt(2d)
   (0.088 in d = 64) around log(rho / sqrt(d)). Scales 1/4 of that apart (2.2% in d = 64) sample the
   bump finely, so the grid acts like the continuous log-uniform scale mixture on [s_lo, s_hi]; a
   coarse grid (factor 2) leaves the shell between two bumps, which is how a fixed 0.5-8x grid fell
   54 nats short.
2. Range. For that continuous mixture, integrating the bump gives q(rho) = sqrt(pi/d) / L * p_{s(rho)}
   (L = ln(s_hi/s_lo)), and the per-draw relative variance of the weight is E_U[U/q] - 1 = L d / 2 (U
   uniform on R) when s* is inside the grid: se(log Vol) = sqrt(L d / (2 n)). A scale below s* is
   fatal (the shell lies in the proposal's Gaussian tail, the weights turn heavy-tailed and the
   estimate falls short); every scale above it costs variance in every dimension. A mixture pays a
   further factor sum_k share_k^2 / w_k (share_k: component k's part of Vol), since draws go to the
   components by weight, not by volume (~7 for hapt class 0). No fixed grid does both: [0.85, 1.6]
   gives se 0.07 at n = 4000 for a Gaussian in d = 64 but misses hapt's s* = 2.5 (3 nats short, se
   0.7); [0.85, 2.6] covers hapt but costs every Gaussian in d = 64 se 0.1.
3. Bracket. So the grid brackets the boundary scales of the taus asked for, padded by one bump sd on
   each side. For a mixture, p >= w_k N_k puts the ball {log w_k N_k >= -tau} inside R, and p <= K
   max_k w_k N_k puts R inside the union of the balls {log w_k N_k >= -tau - log K}: R's boundary near
   component k lies between those two radii. Components whose outer ball has under 1e-3 of the largest
   inner ball's volume are left out of the bracket (their pieces are still sampled, by the other
   scales, and weigh too little in Vol to be worth the width).
A single Gaussian in d = 64 at alpha 0.5-0.99 gets [0.91, 1.32] (L = 0.37, se ~0.055 at n = 4000);
hapt class 0 at its four taus gets [0.97, 2.68] (se 0.10-0.17 at n = 4000, 0.047-0.078 at 20000).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np
from scipy.linalg import solve_triangular
from scipy.special import logsumexp

if TYPE_CHECKING:
    from .nn.mdn import MDN

LOG_2PI = math.log(2.0 * math.pi)
MIN_VOLUME_SHARE = 1e-3  # components whose region piece is smaller than this are left out of the bracket
BLOCK = 4096  # draws per block when evaluating q
MAX_SCALES = 64  # cap on the grid's length (n must be >= 2 draws per scale)


@dataclass
class GaussianMixture:
    """p(y) = sum_k w_k N(y; mu_k, L_k L_k^T), float64; log weights are normalised on construction."""

    log_weights: np.ndarray  # (K,) log w_k
    means: np.ndarray  # (K, d) mu_k
    chol: np.ndarray  # (K, d, d) lower-triangular L_k, positive diagonal

    def __post_init__(self):
        self.log_weights = np.asarray(self.log_weights, np.float64)
        self.means = np.asarray(self.means, np.float64)
        self.chol = np.asarray(self.chol, np.float64)
        K, d = self.means.shape
        if self.log_weights.shape != (K,) or self.chol.shape != (K, d, d):
            raise ValueError(f"GaussianMixture needs log_weights (K,), means (K, d), chol (K, d, d); got "
                             f"{self.log_weights.shape}, {self.means.shape}, {self.chol.shape}")
        if np.triu(self.chol, 1).any() or not (np.diagonal(self.chol, axis1=1, axis2=2) > 0).all():
            raise ValueError("GaussianMixture: chol must be lower-triangular with a positive diagonal "
                             "(np.linalg.cholesky gives that)")
        self.log_weights = self.log_weights - logsumexp(self.log_weights)

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @classmethod
    def diagonal(cls, log_weights: np.ndarray, means: np.ndarray, sigmas: np.ndarray) -> "GaussianMixture":
        """Components N(mu_k, diag(sigma_k^2)); sigmas (K, d)."""
        sigmas = np.asarray(sigmas, np.float64)
        return cls(log_weights, means, sigmas[:, :, None] * np.eye(sigmas.shape[1]))

    @classmethod
    def from_mdn(cls, mdn: "MDN", e: np.ndarray) -> "GaussianMixture":
        """p(y | e) of a `dualspace.nn.mdn.MDN` at one condition e (cond_dim,), read in float64."""
        import torch
        from torch.distributions import Independent, Normal

        e = np.asarray(e)
        if e.shape != (mdn.cond_dim,):
            raise ValueError(f"from_mdn: e has shape {e.shape}; the MDN expects one condition ({mdn.cond_dim},)")
        dtype = next(mdn.parameters()).dtype
        with torch.no_grad():
            dist = mdn.distribution(torch.as_tensor(e, dtype=dtype)[None])
        logits = dist.mixture_distribution.logits[0].double().numpy()
        comp = dist.component_distribution
        if isinstance(comp, Independent) and isinstance(comp.base_dist, Normal):
            return cls.diagonal(logits, comp.base_dist.loc[0].double().numpy(),
                                comp.base_dist.scale[0].double().numpy())
        if hasattr(comp, "scale_tril"):  # MultivariateNormal / LowRankMultivariateNormal components
            return cls(logits, comp.loc[0].double().numpy(), comp.scale_tril[0].double().numpy())
        raise TypeError(f"from_mdn: cannot read components of type {type(comp).__name__}")

    def scaled(self, s: float) -> "GaussianMixture":
        """The same mixture with every covariance times s^2."""
        return GaussianMixture(self.log_weights, self.means, self.chol * s)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n draws, (n, d)."""
        k = rng.choice(len(self.log_weights), size=n, p=np.exp(self.log_weights))
        y = rng.standard_normal((n, self.dim))
        for j, (mu, L) in enumerate(zip(self.means, self.chol)):
            y[k == j] = mu + y[k == j] @ L.T
        return y

    def mahalanobis2(self, y: np.ndarray) -> np.ndarray:
        """|L_k^{-1} (y - mu_k)|^2, (n, K), by triangular solves."""
        y = np.atleast_2d(np.asarray(y, np.float64))
        return np.stack([(solve_triangular(L, (y - mu).T, lower=True) ** 2).sum(0)
                         for mu, L in zip(self.means, self.chol)], axis=1)

    def log_norm(self) -> np.ndarray:
        """log of each component's normaliser, d/2 log 2 pi + 1/2 logdet Sigma_k, (K,)."""
        return 0.5 * self.dim * LOG_2PI + np.log(np.diagonal(self.chol, axis1=1, axis2=2)).sum(1)

    def log_prob(self, y: np.ndarray) -> np.ndarray:
        """log p(y), (n,) float64."""
        return logsumexp(self.log_weights - 0.5 * self.mahalanobis2(y) - self.log_norm(), axis=1)


@dataclass
class VolumeEstimate:
    """log Vol(R) with the standard error of that log."""

    log_volume: float
    se: float  # delta method: sd(V_hat) / V_hat; 0 for tau = +inf, inf when no draw fell inside
    n: int  # proposal draws
    inside: int  # of which fell in R


def _log_scale_mixture(mixture: GaussianMixture, m: np.ndarray, scales: np.ndarray,
                       log_frac: np.ndarray) -> np.ndarray:
    # log sum_j frac_j p_{s_j}(y), (n,), from m = mahalanobis2(y) (n, K), since |(s L)^{-1} x|^2 = m / s^2
    s = scales[None, None, :]  # (1, 1, S)
    c = (mixture.log_weights - mixture.log_norm())[None, :, None]  # (1, K, 1)
    offset = c - mixture.dim * np.log(s) + log_frac  # (1, K, S)
    return np.concatenate([logsumexp(offset - 0.5 * m[i:i + BLOCK, :, None] / s**2, axis=(1, 2))
                           for i in range(0, len(m), BLOCK)])  # blocks of (BLOCK, K, S)


def scale_grid(mixture: GaussianMixture, taus: np.ndarray) -> np.ndarray:
    """Geometric grid of covariance scales bracketing R's boundary for every finite tau (module doc, 1-3)."""
    d, K = mixture.dim, len(mixture.log_weights)
    c = mixture.log_weights - mixture.log_norm()  # log w_k N_k(y) = c_k - |L_k^{-1}(y - mu_k)|^2 / 2, (K,)
    half_logdet = mixture.log_norm() - 0.5 * d * LOG_2PI  # (K,)
    lo, hi = math.inf, 0.0
    for tau in np.asarray(taus, np.float64)[np.isfinite(taus)]:
        r2_in, r2_out = 2 * (tau + c), 2 * (tau + math.log(K) + c)  # squared Mahalanobis radii, (K,)
        if (r2_out <= 0).all():
            continue  # R is empty: -log p >= min_k (-c_k) - log K > tau
        with np.errstate(divide="ignore"):
            log_vol_in = half_logdet + 0.5 * d * np.log(np.maximum(r2_in, 0))  # up to a shared constant
            log_vol_out = half_logdet + 0.5 * d * np.log(np.maximum(r2_out, 0))
        keep = (r2_out > 0) & (log_vol_out >= log_vol_in.max() + math.log(MIN_VOLUME_SHARE))  # (K,)
        # inner radius, floored at half the outer one (a component that alone never reaches tau)
        lo = min(lo, math.sqrt(np.maximum(r2_in, r2_out / 4)[keep].min() / d))
        hi = max(hi, math.sqrt(r2_out[keep].max() / d))
    if hi == 0.0:
        return np.ones(1)  # no finite tau with a non-empty region: any proposal gives the same answer
    pad = 1 / math.sqrt(2 * d)  # sd of the bump in log s
    log_lo, log_hi = math.log(lo) - pad, math.log(hi) + pad
    count = min(MAX_SCALES, 1 + math.ceil((log_hi - log_lo) / (pad / 4)))
    return np.exp(np.linspace(log_lo, log_hi, count))


@dataclass
class VolumeDraws:
    """The draws of `log_volumes` kept for later thresholds: -log p and -log q of each draw, and its stratum.

    Every quantity here is free of tau, so the draws can be made once (rule metrics_base) and any tau's
    estimate taken later from them alone (`estimates`, no density model needed).
    """

    score: np.ndarray  # (n,) -log p(y_i)
    log_w: np.ndarray  # (n,) -log q(y_i)
    n_j: np.ndarray  # (S,) draws per scale, in order (draw i belongs to stratum j by position)

    def estimates(self, taus: Sequence[float]) -> list[VolumeEstimate]:
        """log Vol{y : -log p(y) <= tau} for every tau (see `log_volumes`)."""
        taus = np.asarray(taus, np.float64)
        if np.isnan(taus).any():
            raise ValueError("log_volumes: a tau is NaN")
        n, stratum = len(self.score), np.repeat(np.arange(len(self.n_j)), self.n_j)
        out = []
        for tau in taus:
            inside = self.score <= tau
            if math.isinf(tau) and tau > 0:
                out.append(VolumeEstimate(math.inf, 0.0, n, n))
                continue
            if not inside.any():
                out.append(VolumeEstimate(-math.inf, math.inf, n, 0))
                continue
            top = self.log_w[inside].max()
            w = np.where(inside, np.exp(self.log_w - top), 0.0)  # (n,) weights relative to the largest
            mean = w.mean()
            var = sum((k / n) ** 2 * w[stratum == j].var(ddof=1) / k for j, k in enumerate(self.n_j))
            out.append(VolumeEstimate(float(top + math.log(mean)), float(math.sqrt(var) / mean), n,
                                      int(inside.sum())))
        return out


def volume_draws(mixture: GaussianMixture, scales: np.ndarray, n: int, seed: int) -> VolumeDraws:
    """n draws of the scale mixture sum_j (n_j / n) p_{s_j}, stratified, with -log p and -log q of each."""
    scales = np.asarray(scales, np.float64)
    if scales.ndim != 1 or not (scales > 0).all():
        raise ValueError(f"scales must be a 1-d array of positive factors; got {scales}")
    if n < 2 * len(scales):
        raise ValueError(f"n = {n} draws cannot stratify over {len(scales)} scales; need n >= {2 * len(scales)}")
    rng = np.random.default_rng(seed)
    n_j = np.full(len(scales), n // len(scales)) + (np.arange(len(scales)) < n % len(scales))  # (S,)
    y = np.concatenate([mixture.scaled(s).sample(k, rng) for s, k in zip(scales, n_j)])  # (n, d)
    m = mixture.mahalanobis2(y)  # (n, K)
    score = -_log_scale_mixture(mixture, m, np.ones(1), np.zeros(1))  # -log p(y), (n,)
    log_w = -_log_scale_mixture(mixture, m, scales, np.log(n_j / n))  # -log q(y), (n,)
    return VolumeDraws(score, log_w, n_j)


def log_volumes(mixture: GaussianMixture, taus: np.ndarray, n: int, seed: int,
                scales: np.ndarray | None = None) -> list[VolumeEstimate]:
    """log Vol{y : -log p(y) <= tau} for every tau, from one common set of n draws of the scale mixture.

    `scales` defaults to `scale_grid(mixture, taus)`.

    Weights w_i = 1{y_i in R} / q(y_i); V_hat = mean(w). The draws are stratified (n_j from p_{s_j}),
    so var(V_hat) = sum_j (n_j / n)^2 var_j(w) / n_j and se = sqrt(var(V_hat)) / V_hat (delta method),
    all relative to max log w so nothing overflows. Shared draws make the estimates non-decreasing in
    tau.
    """
    taus = np.asarray(taus, np.float64)
    if np.isnan(taus).any():
        raise ValueError("log_volumes: a tau is NaN")
    scales = scale_grid(mixture, taus) if scales is None else scales
    return volume_draws(mixture, scales, n, seed).estimates(taus)
