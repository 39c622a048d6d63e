"""A deliberately simple baseline generator: one low-rank-plus-diagonal Gaussian per class in data space.

p(x | c) = N(mu_c, W_c W_c^T + diag(psi_c)), x flattened to D dims, W_c (D, q). W_c is the probabilistic-PCA
maximum-likelihood solution (Tipping & Bishop 1999, J. R. Stat. Soc. B 61(3), eq. 7-8) on the class's sample
covariance S_c = X_c^T X_c / (n_c - 1) (X_c centred; the same normaliser as np.cov). PPCA's isotropic residual
sigma^2 I is then replaced by the diagonal psi_c = diag(S_c) - diag(W_c W_c^T), so that every marginal variance
of the model equals the data's.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from . import __version__
from .data import Split
from .generator import GeneratorFamily, TemperatureSampler, check_labels
from .io import save_torch

FAMILY = "class_gaussian"
FORMAT_VERSION = 1
log = logging.getLogger("dualspace.class_gaussian")


@dataclass
class ClassGaussianConfig:
    """Model hyper-parameters (config section `<ds>.generator` when family = class_gaussian)."""

    rank: int = 16  # q, the low-rank part of each class covariance
    min_variance: float = 1e-4  # floor of the diagonal residual psi
    clip: float | None = None  # clip drafts to [-clip, clip] (1.0 for images in [-1, 1], None for z-scored series)

    def __post_init__(self):
        if self.rank < 1:
            raise ValueError(f"generator.rank must be >= 1, got {self.rank}")
        if self.min_variance <= 0:
            raise ValueError(f"generator.min_variance must be > 0, got {self.min_variance}")
        if self.clip is not None and self.clip <= 0:
            raise ValueError(f"generator.clip must be > 0 or null, got {self.clip}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ClassGaussianSampler(TemperatureSampler):
    """How drafts are drawn (config section `<ds>.sampler` when family = class_gaussian): temperature scales the
    spread around the class mean (1 = the fitted model)."""


def ppca_factor(x_c: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """W (D, q) of PPCA (Tipping & Bishop eq. 7-8, R = I) and diag(S) (D,) for one class's rows x_c (n, D)."""
    n, D = x_c.shape
    q = min(rank, n - 1, D)
    xc = x_c - x_c.mean(0)
    # The SVD of the centred data gives the eigenpairs of S = xc^T xc / (n - 1) at O(n D min(n, D)) cost: the
    # Gram route when n < D (D = 1152, n ~ 300), never forming the D x D matrix; lam_j = sigma_j^2 / (n - 1).
    _, sv, Vt = np.linalg.svd(xc, full_matrices=False)
    lam = sv ** 2 / (n - 1)
    var = (xc ** 2).sum(0) / (n - 1)  # diag(S)
    # eq. 8: s2 = mean of the D - q discarded eigenvalues (those past min(n, D) are 0, hence trace - top q)
    s2 = max(var.sum() - lam[:q].sum(), 0.0) / (D - q) if q < D else 0.0
    W = Vt[:q].T * np.sqrt(np.clip(lam[:q] - s2, 0.0, None))  # eq. 7: U_q (Lambda_q - s2 I)^{1/2}
    return W, var


class ClassGaussianGenerator:
    """x ~ N(mu_c, W_c W_c^T + diag(psi_c)) for class c; e = g(c) is the one-hot of c."""

    def __init__(self, cfg: ClassGaussianConfig, mean: np.ndarray, W: np.ndarray, psi: np.ndarray,
                 data_meta: dict[str, Any]):
        self.cfg = cfg
        self.mean = np.asarray(mean, np.float64)  # (C, D)
        self.W = np.asarray(W, np.float64)  # (C, D, q)
        self.psi = np.asarray(psi, np.float64)  # (C, D)
        self.n_classes = len(self.mean)
        self.cond_dim = self.n_classes
        self.data_meta = dict(data_meta)  # shape; dataset, kind, class_names, channel_names when given

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data_meta["shape"])

    def check_labels(self, labels: np.ndarray) -> np.ndarray:
        return check_labels(labels, self.n_classes)

    def embed(self, labels: np.ndarray) -> np.ndarray:
        """e = g(c): (N,) labels -> (N, n_classes) one-hot float32."""
        return np.eye(self.n_classes, dtype=np.float32)[self.check_labels(labels)]

    def sample(self, labels: np.ndarray, seed: int, sampler: ClassGaussianSampler | None = None,
               progress: bool = True, **_ignored: Any) -> np.ndarray:
        """Draw one x per entry of `labels` (N,) -> (N, *shape) float32: x = mu_c + t (W_c z + sqrt(psi_c) eps)."""
        sampler = sampler or ClassGaussianSampler()
        labels = self.check_labels(labels)
        rng = np.random.default_rng(int(seed))
        D, q = self.W.shape[1:]
        out = np.empty((len(labels), D), np.float32)
        blocks = range(0, len(labels), sampler.batch_size)
        for start in tqdm(blocks, desc="sample class_gaussian", disable=not progress or len(blocks) < 2):
            lab = labels[start:start + sampler.batch_size]
            z = rng.standard_normal((len(lab), q))  # (B, q)
            eps = rng.standard_normal((len(lab), D))  # (B, D)
            x = self.mean[lab] + sampler.temperature * np.sqrt(self.psi[lab]) * eps
            for c in np.unique(lab):  # per class, so W is never gathered to (B, D, q)
                rows = lab == c
                x[rows] += sampler.temperature * z[rows] @ self.W[c].T
            if self.cfg.clip is not None:
                x = np.clip(x, -self.cfg.clip, self.cfg.clip)
            out[start:start + len(lab)] = x
        return out.reshape(len(labels), *self.shape)

    def log_prob(self, x: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Exact log N(x; mu_c, W W^T + Psi) (N,), via Woodbury and the matrix determinant lemma.

        With M = I_q + W^T Psi^-1 W (q x q): C^-1 = Psi^-1 - Psi^-1 W M^-1 W^T Psi^-1 and
        log det C = log det M + sum log psi, so no D x D matrix is formed or inverted.
        """
        labels = self.check_labels(labels)
        r = np.asarray(x, np.float64).reshape(len(labels), -1) - self.mean[labels]  # (N, D)
        out = np.empty(len(labels))
        D, q = self.W.shape[1:]
        for c in np.unique(labels):
            rows = labels == c
            W, psi, rc = self.W[c], self.psi[c], r[rows]
            L = np.linalg.cholesky(np.eye(q) + (W.T / psi) @ W)  # M = L L^T
            b = np.linalg.solve(L, ((rc / psi) @ W).T)  # (q, n): L^-1 W^T Psi^-1 r
            maha = (rc ** 2 / psi).sum(1) - (b ** 2).sum(0)
            logdet = 2 * np.log(np.diag(L)).sum() + np.log(psi).sum()
            out[rows] = -0.5 * (D * np.log(2 * np.pi) + logdet + maha)
        return out

    def checkpoint(self, **extra: Any) -> dict[str, Any]:
        """Everything needed to rebuild this generator; loads with torch.load(weights_only=True)."""
        state = {"mean": torch.from_numpy(self.mean), "W": torch.from_numpy(self.W), "psi": torch.from_numpy(self.psi)}
        return {"family": FAMILY, "format_version": FORMAT_VERSION, "dualspace_version": __version__,
                "config": self.cfg.to_dict(), "n_classes": self.n_classes, "data": self.data_meta,
                "state": state, **extra}

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any]) -> "ClassGaussianGenerator":
        if ckpt.get("family") != FAMILY:
            raise ValueError(f"not a {FAMILY} checkpoint (family {ckpt.get('family')!r})")
        state = {k: v.numpy() for k, v in ckpt["state"].items()}
        return cls(ClassGaussianConfig(**ckpt["config"]), state["mean"], state["W"], state["psi"], ckpt["data"])


def fit_class_gaussian(x: np.ndarray, labels: np.ndarray, n_classes: int, cfg: ClassGaussianConfig,
                       data_meta: dict[str, Any] | None = None) -> ClassGaussianGenerator:
    """Closed-form fit of one PPCA factor plus diagonal residual per class on x (N, *shape) and labels (N,)."""
    x = np.asarray(x)
    flat = x.reshape(len(x), -1).astype(np.float64)  # (N, D)
    labels = np.asarray(labels).reshape(-1)
    if len(labels) != len(flat):
        raise ValueError(f"x has {len(flat)} examples but labels has {len(labels)}")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes}), found {labels.min()}..{labels.max()}")
    data_meta = {**(data_meta or {}), "shape": list(x.shape[1:])}
    names = data_meta.get("class_names") or list(range(n_classes))
    D = flat.shape[1]
    means, Ws, psis = [], [], []
    for c in range(n_classes):
        x_c = flat[labels == c]
        if len(x_c) < 2:
            raise ValueError(f"class {c} ({names[c]!r}) has {len(x_c)} training example(s); the class Gaussian "
                             "needs at least 2 per class")
        W, var = ppca_factor(x_c, cfg.rank)
        psi = np.maximum(var - (W ** 2).sum(1), cfg.min_variance)
        low_rank = (W ** 2).sum()
        log.info("class %d (%s): n=%d, q=%d, rank-q share of variance %.3f", c, names[c], len(x_c), W.shape[1],
                 low_rank / (low_rank + psi.sum()))
        means.append(x_c.mean(0))
        Ws.append(W)
        psis.append(psi)
    q_max = max(W.shape[1] for W in Ws)  # classes with n_c - 1 < rank get zero columns (they add nothing)
    W = np.stack([np.pad(W, ((0, 0), (0, q_max - W.shape[1]))) for W in Ws]).reshape(n_classes, D, q_max)
    return ClassGaussianGenerator(cfg, np.stack(means), W, np.stack(psis), data_meta)


def train(split: Split, cfg: ClassGaussianConfig, out_path: str | Path, *, n_classes: int, meta: dict[str, Any],
          seed: int, device: str = "auto", expect_gpu: bool = False) -> None:
    """The family's `train`: closed-form fit on the train split (no seed or device needed), checkpoint to out_path."""
    save_torch(fit_class_gaussian(split.x, split.label, n_classes, cfg, meta).checkpoint(), out_path)


GENERATOR_FAMILY = GeneratorFamily(name=FAMILY, config=ClassGaussianConfig, sampler=ClassGaussianSampler,
                                   train=train, from_checkpoint=ClassGaussianGenerator.from_checkpoint)
