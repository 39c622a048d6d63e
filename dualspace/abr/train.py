"""Training of the ABR CVAE: AdamW, linear beta warm-up, early stopping on the validation loss, best weights kept.

Model selection compares validation losses at max_beta (the objective the warm-up ends in), so epochs inside and
after the warm-up are comparable; the patience counter starts only when the warm-up ends, because while beta
rises the model is asked to trade reconstruction for KL every epoch, and a validation loss that stalls then is the
schedule at work, not overfitting. Active units (Burda et al. 2016): latent units whose posterior mean varies over
the validation set, Var_x(E[z_j | x]) > active_threshold.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from ..nn.training import train_epoch
from ..settings import ConfigBase, is_int
from .losses import LossConfig, beta_at, cvae_loss, joint_cvae_loss, kl_per_unit
from .model import CVAE, CVAEConfig

log = logging.getLogger("dualspace.abr")
TERMS = ("loss", "signal", "static", "peaks", "kl")


@dataclass
class TrainConfig(ConfigBase):
    """Optimisation and early stopping of `train_cvae`."""

    SECTION: ClassVar[str] = "abr.train"

    epochs: int = 100  # at most
    batch_size: int = 64
    lr: float = 1e-3  # AdamW
    weight_decay: float = 1e-4  # AdamW (decoupled); no EMA of the weights
    patience: int = 10  # stop after this many epochs without a validation improvement, counted after the warm-up
    grad_clip: float = 5.0  # max global grad norm
    progress: bool = True  # tqdm bar per epoch
    active_threshold: float = 0.01  # a latent unit is active when Var_x(mu_j(x)) on the validation set exceeds it

    def __post_init__(self):
        pos = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0  # noqa
        for key in ("epochs", "batch_size", "patience"):
            self.require(is_int(getattr(self, key)) and getattr(self, key) >= 1, key, "must be an integer >= 1")
        for key in ("lr", "grad_clip", "active_threshold"):
            self.require(pos(getattr(self, key)), key, "must be a number > 0")
        self.require(pos(self.weight_decay) or self.weight_decay == 0, "weight_decay", "must be a number >= 0")
        self.require(isinstance(self.progress, bool), "progress", "must be true or false")


def split_arrays(data: dict[str, Any], cfg: CVAEConfig, name: str) -> dict[str, np.ndarray | None]:
    """signal (N, L), static (N, S), peaks (N, P) or None, as float32; missing keys named."""
    for key in ("signal", "static"):
        if key not in data:
            raise ValueError(f"the {name} split has no {key!r} array (keys: {sorted(data)})")
    if cfg.peak_head and data.get("peaks") is None:
        raise ValueError(f"abr.model.peak_head is true but the {name} split has no 'peaks' array")
    return {k: None if data.get(k) is None else np.asarray(data[k], dtype=np.float32)
            for k in ("signal", "static", "peaks")}


def loss_terms(model: CVAE, out: dict[str, Any], batch: dict[str, Any], beta: float,
               cfg: LossConfig) -> dict[str, torch.Tensor]:
    """The mode's objective: joint_cvae_loss for a joint model, cvae_loss for a legacy one."""
    if model.cfg.joint_generation:
        return joint_cvae_loss(out, batch, beta, cfg, model.cfg.categorical)
    return cvae_loss(out, batch, beta, cfg)


def active_units(mu: np.ndarray, threshold: float) -> int:
    """Units j with Var_x(mu_j) > threshold (population variance over the N rows of mu (N, Z))."""
    return int((np.asarray(mu, dtype=np.float64).var(0) > threshold).sum())


@torch.no_grad()
def evaluate_cvae(model: CVAE, data: dict[str, Any], loss_cfg: LossConfig, beta: float, seed: int,
                  batch_size: int = 1024) -> dict[str, Any]:
    """Loss terms at `beta` over the whole of `data` (one reparameterised z per row, noise from `seed`), the mean
    KL per latent unit (Z,) and the posterior means mu (N, Z). Masked means are over the whole set, so the result
    does not depend on batch_size except through the order of the noise."""
    model.eval()
    d = split_arrays(data, model.cfg, "evaluated")
    gen = torch.Generator().manual_seed(seed)
    outs = [model(d["signal"][s:s + batch_size], d["static"][s:s + batch_size], generator=gen)
            for s in range(0, len(d["signal"]), batch_size)]
    out = {k: None if outs[0][k] is None else torch.cat([o[k] for o in outs]) for k in outs[0]}
    terms = loss_terms(model, out, model.standardise(d["signal"], d["static"], d["peaks"]), beta, loss_cfg)
    return {"terms": {k: float(v) for k, v in terms.items()},
            "kl_per_unit": kl_per_unit(out["mu"], out["logvar"]).mean(0).tolist(), "mu": out["mu"].numpy()}


def train_cvae(train: dict[str, np.ndarray], val: dict[str, np.ndarray], model_cfg: CVAEConfig,
               loss_cfg: LossConfig, train_cfg: TrainConfig, seed: int) -> tuple[CVAE, list[dict[str, Any]]]:
    """Train a CVAE on the train arrays (signal (N, L), static (N, S), peaks (N, P) optional) with early stopping
    on `val`; returns the model with the best validation weights (CPU, eval mode) and one dict per epoch:

    epoch (0-based, beta = beta_at(epoch)), beta, train_<term> (batch means at beta), val_<term> (the whole val set
    at max_beta, noise seed + 1: what selects the model), kl_per_unit (Z, val), active_units (val), best, seconds.
    The scaling is fitted on the train arrays. Init, shuffling and z noise come from `seed` (equal seeds, equal
    weights on a CPU)."""
    tr, va = split_arrays(train, model_cfg, "train"), split_arrays(val, model_cfg, "val")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # weight init
        model = CVAE(model_cfg)
    model.fit_scaling(tr["signal"], tr["static"], tr["peaks"])
    std = model.standardise(tr["signal"], tr["static"], tr["peaks"])  # loss targets
    signal, static = torch.as_tensor(tr["signal"]), torch.as_tensor(tr["static"])
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=train_cfg.lr, weight_decay=train_cfg.weight_decay)

    def step(idx: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        # one batch at this epoch's beta
        out = model(signal[idx], static[idx], generator=gen)
        batch = {k: None if v is None else v[idx] for k, v in std.items()}
        terms = loss_terms(model, out, batch, beta, loss_cfg)
        if not torch.isfinite(terms["loss"]):
            raise FloatingPointError(f"non-finite ABR CVAE loss at epoch {epoch}: "
                                     f"{ {k: float(v) for k, v in terms.items()} }; lower abr.train.lr")
        return terms["loss"], {k: float(terms[k].detach()) for k in TERMS}

    best_loss, best_state, waited, history = math.inf, None, 0, []
    n = len(signal)
    for epoch in range(train_cfg.epochs):
        beta = beta_at(epoch, loss_cfg.max_beta, loss_cfg.warmup_epochs)
        t0 = time.perf_counter()
        model.train()
        sums = train_epoch(step, n, train_cfg.batch_size, opt, train_cfg.grad_clip, gen,
                           f"ABR CVAE epoch {epoch + 1}/{train_cfg.epochs}", train_cfg.progress)

        ev = evaluate_cvae(model, va, loss_cfg, loss_cfg.max_beta, seed + 1)
        val_loss = ev["terms"]["loss"]
        improved = val_loss < best_loss
        if improved:
            best_loss, best_state, waited = val_loss, copy.deepcopy(model.state_dict()), 0
        elif epoch >= loss_cfg.warmup_epochs:  # beta is at max_beta: a stall now is not the schedule's doing
            waited += 1
        row = {"epoch": epoch, "beta": beta, **{f"train_{k}": v / n for k, v in sums.items()},
               **{f"val_{k}": v for k, v in ev["terms"].items()}, "kl_per_unit": ev["kl_per_unit"],
               "active_units": active_units(ev["mu"], train_cfg.active_threshold), "best": improved,
               "seconds": time.perf_counter() - t0}
        history.append(row)
        log.info("epoch %d beta %.3f train loss %.4f val loss %.4f (signal %.4f static %.4f peaks %.4f kl %.3f) "
                 "active %d/%d%s", epoch, beta, row["train_loss"], val_loss, row["val_signal"], row["val_static"],
                 row["val_peaks"], row["val_kl"], row["active_units"], model_cfg.latent_dim,
                 " *" if improved else "")
        if waited >= train_cfg.patience:
            log.info("early stop after epoch %d: no val improvement for %d epochs past the warm-up; best %.4f",
                     epoch, waited, best_loss)
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return model.cpu().eval(), history


@torch.no_grad()
def reconstruct(model: CVAE, signal: Any, static: Any) -> dict[str, np.ndarray]:
    """Posterior-mean reconstructions in physical units: decode z = mu (legacy: conditioned on `static`).
    Returns mu, logvar (N, Z), signal (N, L), peaks (N, P) with a peak head, and in joint mode static (N, S):
    continuous columns de-standardised, categorical ones as the probability sigmoid(logit)."""
    model.eval()
    mu, logvar = model.encode(signal, static)
    dec = model.decode(mu, None if model.cfg.joint_generation else static)
    out = model.to_physical(dec, sample_categorical=False)
    return {"mu": mu.cpu().numpy(), "logvar": logvar.cpu().numpy(), **{k: v.cpu().numpy() for k, v in out.items()}}
