"""The ABR CVAE's objectives, all in standardised units (model.py), means over a batch:

    legacy: loss = R(signal) + beta * KL + peak_loss_weight * R(peaks)
    joint:  loss = legacy + static_loss_weight * (R(continuous statics) + C(categorical statics))

`likelihood` picks R and C. "mse" (the design): R = MSE_obs, C = BCE_obs, means per element. Against a KL summed
over the latent units that makes information nearly free to drop (beta 0.5 against a per-sample mean over 200
samples): the posterior collapses and the decoder under-fits (docs/abr.md). "gaussian": the negative
log-likelihood of a Gaussian decoder whose one variance per block is the batch's own MSE (the calibrated decoder
of Rybkin, Daniilidis & Levine 2021, "Simple and effective VAE training with calibrated decoders", with the
analytic sigma^2 = MSE): R = (d / 2) log MSE_obs for a block of d observed values per example (constants dropped),
and C = BCE summed over the categorical columns. The reconstruction then weighs against the KL as the ELBO says.

KL = mean over the batch of sum_j KL(q(z_j | x) || N(0, 1)); MSE_obs and BCE_obs average over the observed
(finite) targets of the batch only, so a missing wave or a missing static value adds nothing, not even a NaN
gradient. The peak term is present only when the model has a peak head. beta follows a linear warm-up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import torch
from torch.nn import functional as F

from ..settings import ConfigBase, is_int


LIKELIHOODS = ("mse", "gaussian")


def reconstruction_term(mse: torch.Tensor, per_example: float, likelihood: str) -> torch.Tensor:
    """R of a Gaussian block (module docstring): mse itself, or (per_example / 2) log mse, per_example = observed
    values per example (the batch's count / batch size)."""
    if likelihood == "mse":
        return mse
    return 0.5 * per_example * torch.log(mse.clamp_min(1e-8))


def observed_per_example(target: torch.Tensor) -> float:
    """Finite targets per row of target (B, d), averaged over the batch."""
    return float(torch.isfinite(target).sum()) / max(len(target), 1)


@dataclass
class LossConfig(ConfigBase):
    """Weights of the CVAE objective and its beta warm-up (the design's defaults)."""

    SECTION: ClassVar[str] = "abr.loss"

    max_beta: float = 0.5  # weight of the KL after the warm-up
    warmup_epochs: int = 20  # epochs of the linear warm-up of beta from 0 (see beta_at)
    static_loss_weight: float = 1.0  # joint mode: weight of the static reconstruction
    peak_loss_weight: float = 0.8  # with a peak head: weight of the peak MSE
    likelihood: str = "mse"  # "mse": the design's per-element means; "gaussian": calibrated-decoder NLL (docstring)

    def __post_init__(self):
        num = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)  # noqa: E731
        for key in ("max_beta", "static_loss_weight", "peak_loss_weight"):
            self.require(num(getattr(self, key)) and getattr(self, key) >= 0, key, "must be a number >= 0")
        self.require(is_int(self.warmup_epochs) and self.warmup_epochs >= 0, "warmup_epochs",
                     "must be an integer >= 0")
        self.require(self.likelihood in LIKELIHOODS, "likelihood", f"must be one of {list(LIKELIHOODS)}")


def beta_at(epoch: int, max_beta: float = 0.5, warmup_epochs: int = 20) -> float:
    """KL weight of 0-based `epoch`: max_beta * min(epoch, warmup_epochs) / warmup_epochs, i.e. 0 at epoch 0,
    rising linearly to max_beta at epoch warmup_epochs and constant after; max_beta throughout if warmup_epochs = 0."""
    if warmup_epochs == 0:
        return float(max_beta)
    return float(max_beta) * min(epoch, warmup_epochs) / warmup_epochs


def kl_per_unit(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp logvar) || N(0, 1)) per latent unit, 0.5 (exp logvar + mu^2 - 1 - logvar); (B, Z) -> (B, Z)."""
    return 0.5 * (logvar.exp() + mu.square() - 1 - logvar)


def masked_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean of (pred - target)^2 over the finite targets (0 when there are none); NaN targets get no gradient."""
    obs = torch.isfinite(target)
    diff = torch.where(obs, pred - torch.where(obs, target, 0.0), 0.0)  # where before the square: no NaN gradient
    return diff.square().sum() / obs.sum().clamp_min(1)


def masked_bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy with logits over the finite (0/1) targets (0 when there are none)."""
    obs = torch.isfinite(target)
    bce = F.binary_cross_entropy_with_logits(logits, torch.where(obs, target, 0.0), reduction="none")
    return torch.where(obs, bce, 0.0).sum() / obs.sum().clamp_min(1)


def static_loss(pred: torch.Tensor, target: torch.Tensor, categorical: Sequence[int],
                likelihood: str = "mse") -> torch.Tensor:
    """R over the continuous columns (standardised) + C over the categorical ones (logits vs 0/1): with "mse",
    MSE_obs + BCE_obs; with "gaussian", (d/2) log MSE_obs + the BCE summed over the categorical columns."""
    cat = torch.zeros(pred.shape[-1], dtype=torch.bool, device=pred.device)
    cat[list(categorical)] = True
    total = pred.new_zeros(())
    if (~cat).any():
        cont = target[:, ~cat]
        total = total + reconstruction_term(masked_mse(pred[:, ~cat], cont), observed_per_example(cont), likelihood)
    if cat.any():
        bce = masked_bce(pred[:, cat], target[:, cat])
        total = total + (bce if likelihood == "mse" else bce * observed_per_example(target[:, cat]))
    return total


def cvae_loss(model_out: dict[str, Any], batch: dict[str, Any], beta: float,
              cfg: LossConfig) -> dict[str, torch.Tensor]:
    """Legacy objective (module docstring). model_out: CVAE.forward's dict; batch: CVAE.standardise's dict
    (signal (B, L), peaks (B, P) with NaN where a wave is absent). Returns loss, signal (MSE), static (0), peaks
    (MSE_obs), kl; the loss combines them by cfg.likelihood."""
    signal = (model_out["signal"] - batch["signal"]).square().mean()
    kl = kl_per_unit(model_out["mu"], model_out["logvar"]).sum(-1).mean()
    peaks = signal.new_zeros(())
    if model_out.get("peaks") is not None:
        if batch.get("peaks") is None:
            raise ValueError("the model has a peak head (abr.model.peak_head = true) but the batch has no peaks")
        peaks = masked_mse(model_out["peaks"], batch["peaks"])
    loss = reconstruction_term(signal, batch["signal"].shape[-1], cfg.likelihood) + beta * kl
    if model_out.get("peaks") is not None:
        loss = loss + cfg.peak_loss_weight * reconstruction_term(peaks, observed_per_example(batch["peaks"]),
                                                                 cfg.likelihood)
    return {"loss": loss, "signal": signal, "static": signal.new_zeros(()), "peaks": peaks, "kl": kl}


def joint_cvae_loss(model_out: dict[str, Any], batch: dict[str, Any], beta: float, cfg: LossConfig,
                    categorical: Sequence[int]) -> dict[str, torch.Tensor]:
    """Joint objective: the legacy terms + static_loss_weight * static_loss over the static head's output
    (standardised continuous columns; logits at the `categorical` columns, whose targets are 0/1)."""
    if model_out.get("static") is None:
        raise ValueError("joint_cvae_loss needs a joint model's output (abr.model.joint_generation = true)")
    terms = cvae_loss(model_out, batch, beta, cfg)
    terms["static"] = static_loss(model_out["static"], batch["static"], categorical, cfg.likelihood)
    terms["loss"] = terms["loss"] + cfg.static_loss_weight * terms["static"]
    return terms
