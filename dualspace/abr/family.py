"""The ABR CVAE as a conditional generator of the dual-space pipeline (`<ds>.generator.family: cvae`), and the
settings dataclass the study and the family share.

As a generator the CVAE runs in legacy mode with the class as its static vector: static = one-hot(c), so the
decoder draws a signal given the hearing-status class (or any label of a single-channel series dataset), and
e = g(c) = one-hot(c). It works in the split's model units (z-scored series), like every generator.

The decoder gives a mean; a draft is a draw of the observation model p(x | z, c) = N(mu(z, c), Sigma), Sigma the
covariance (L x L) of the train split's residuals x - mu(E[z|x], c), fitted after training (a full covariance,
so the drafts carry noise with the recordings' spectrum rather than white noise). The decoder mean alone is
smoother than any recording: the region stage would accept none of it (docs/abr.md).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data import Split, one_hot
from ..generator import GeneratorFamily, TemperatureSampler, check_labels
from ..io import save_torch
from ..nn.random import draw
from ..settings import SectionedSettings
from .losses import LossConfig
from .model import CVAE, CVAEConfig
from .train import TrainConfig, reconstruct, train_cvae

log = logging.getLogger("dualspace.abr")
VAL_FRACTION = 0.1  # share of the family's train split held out for early stopping (it gets no other split)


@dataclass
class CVAESettings(SectionedSettings):
    """`model`, `loss` and `train` of one CVAE (a study mode or `<ds>.generator.cvae`)."""

    SECTIONS: ClassVar[dict[str, type]] = {"model": CVAEConfig, "loss": LossConfig, "train": TrainConfig}
    DEFAULT_SECTION: ClassVar[str] = "abr"

    model: CVAEConfig = field(default_factory=CVAEConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass
class CVAESampler(TemperatureSampler):
    """How drafts are drawn (`<ds>.sampler.cvae`): z ~ N(0, temperature^2 I), decoded given one-hot(c), plus
    residual noise ~ N(0, Sigma) unless observation_noise is false (then the decoder mean)."""

    observation_noise: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "observation_noise": self.observation_noise}


class CVAEGenerator:
    """x ~ p(x | z, one-hot(c)), z ~ N(0, t^2 I); e = g(c) = one-hot(c). Drafts are the decoder's mean."""

    def __init__(self, model: CVAE, n_classes: int, data_meta: dict[str, Any], residual_chol: np.ndarray):
        if model.cfg.joint_generation or model.cfg.static_dim != n_classes:
            raise ValueError(f"a cvae generator is a legacy-mode CVAE with static_dim = n_classes = {n_classes}; "
                             f"this one is {model.cfg.mode} with static_dim {model.cfg.static_dim}")
        self.model = model.eval()
        self.n_classes = n_classes
        self.cond_dim = n_classes
        self.data_meta = dict(data_meta)
        self.residual_chol = torch.as_tensor(np.asarray(residual_chol, np.float32))  # (L, L) Cholesky of Sigma

    def embed(self, labels: np.ndarray) -> np.ndarray:
        """e = g(c) = one-hot(c): (N,) -> (N, n_classes) float32."""
        return one_hot(check_labels(labels, self.n_classes), self.n_classes)

    @torch.no_grad()
    def sample(self, labels: np.ndarray, seed: int, sampler: CVAESampler | None = None, progress: bool = True,
               **_ignored: Any) -> np.ndarray:
        """One draft per label (N,) -> (N, 1, L) in the split's model units."""
        sampler = sampler or CVAESampler()
        static = self.embed(labels)
        gen = torch.Generator().manual_seed(int(seed))
        out = []
        blocks = range(0, len(static), sampler.batch_size)
        for start in tqdm(blocks, desc="sample cvae", disable=not progress or len(blocks) < 2):
            s = static[start:start + sampler.batch_size]
            z = sampler.temperature * draw(torch.randn, (len(s), self.model.cfg.latent_dim), gen, self.model.device)
            mean = self.model.to_physical(self.model.decode(z, s))["signal"].cpu()
            if sampler.observation_noise:
                mean = mean + torch.randn(mean.shape, generator=gen) @ self.residual_chol.T
            out.append(mean.numpy())
        L = self.model.cfg.signal_len
        return np.concatenate(out)[:, None, :].astype(np.float32) if out else np.zeros((0, 1, L), np.float32)

    def to(self, device: Any) -> "CVAEGenerator":
        self.model.to(device)
        return self

    def checkpoint(self) -> dict[str, Any]:
        return {**self.model.checkpoint(n_classes=self.n_classes, data=self.data_meta,
                                        residual_chol=self.residual_chol.clone()),
                "family": "cvae", "model_family": self.model.checkpoint()["family"]}

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any]) -> "CVAEGenerator":
        model = CVAE.from_checkpoint({**ckpt, "family": ckpt.get("model_family")})
        return cls(model, int(ckpt["n_classes"]), ckpt["data"], ckpt["residual_chol"])


def residual_cholesky(model: CVAE, signal: np.ndarray, static: np.ndarray, ridge: float = 1e-6) -> np.ndarray:
    """Cholesky factor (L, L) of the covariance of signal - mu(E[z|x], static) over the rows given, plus
    ridge * mean variance on the diagonal (a full-rank Sigma even from few rows)."""
    with torch.no_grad():
        resid = signal - reconstruct(model, signal, static)["signal"]
    cov = np.cov(resid.astype(np.float64), rowvar=False)
    cov += ridge * max(float(np.trace(cov)) / len(cov), 1e-12) * np.eye(len(cov))
    return np.linalg.cholesky(cov).astype(np.float32)


def generator_config(cfg: CVAEConfig, signal_len: int, n_classes: int) -> CVAEConfig:
    """The family's model: legacy mode, static = one-hot class, no peak head; a setting against that is an error."""
    if cfg.joint_generation or cfg.peak_head:
        raise ValueError("<ds>.generator.cvae.model: the cvae generator family is a legacy-mode CVAE given the class "
                         "(joint_generation and peak_head must stay false)")
    return dataclasses.replace(cfg, signal_len=signal_len, static_dim=n_classes, categorical=[])


def train(split: Split, cfg: CVAESettings, out_path: str | Path, *, n_classes: int, meta: dict[str, Any],
          seed: int, device: str = "auto", expect_gpu: bool = False) -> None:
    """The family's `train`: fit on the train split's single-channel series given one-hot labels, stopping early on
    a seeded VAL_FRACTION of it; checkpoint to out_path (CPU training: the model is small)."""
    if split.x.ndim != 3 or split.x.shape[1] != 1:
        raise ValueError(f"the cvae family generates single-channel series (N, 1, T); this dataset's x is "
                         f"{split.x.shape}: pick another <ds>.generator.family")
    model_cfg = generator_config(cfg.model, split.x.shape[-1], n_classes)
    rng = np.random.default_rng(seed)
    val = np.zeros(len(split.label), bool)
    val[rng.choice(len(val), max(1, int(round(VAL_FRACTION * len(val)))), replace=False)] = True
    arrays = {"signal": split.x[:, 0, :], "static": one_hot(split.label, n_classes)}
    model, _ = train_cvae({k: v[~val] for k, v in arrays.items()}, {k: v[val] for k, v in arrays.items()},
                          model_cfg, cfg.loss, cfg.train, seed)
    chol = residual_cholesky(model, arrays["signal"][~val], arrays["static"][~val])
    save_torch(CVAEGenerator(model, n_classes, {**meta, "shape": list(split.x.shape[1:])}, chol).checkpoint(), out_path)


GENERATOR_FAMILY = GeneratorFamily(name="cvae", config=CVAESettings, sampler=CVAESampler, train=train,
                                   from_checkpoint=CVAEGenerator.from_checkpoint)
