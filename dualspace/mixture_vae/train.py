"""Training of the mixture VAE: AdamW, Gumbel temperature anneal, cin warm start, channel curriculum, collapse checks.

The defaults of the three configs were picked on scikit-learn digits (1,078 train images, 1 CPU thread, ~1.3 s an
epoch): the channels only take the classes when (i) a strong usage-entropy term (weight 50) keeps every channel in
use, against the rich-get-richer of a shared decoder whose zero-initialised conditioning starts channel-blind,
(ii) a per-example sharpening regulariser (the logit mixture prior) replaces KL(q(c|x) || pi), which pays for
information in c, (iii) beta = 3 makes information dearer in z than in c, and (iv) sigma stays in [0.1, 0.25].
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import numpy as np
import torch

from ..nn.training import train_epoch
from ..settings import ConfigBase, is_int
from .losses import LogitMoG, LossConfig, elbo, kl_normal_std, mixture_vae_loss
from .model import MixtureVAE, MixtureVAEConfig

log = logging.getLogger("dualspace.mixture_vae")


@dataclass
class MixtureTrainConfig(ConfigBase):
    """Optimisation, temperature schedule, warm start and curriculum of `train_mixture_vae`."""

    SECTION: ClassVar[str] = "mixture_vae.train"

    epochs: int = 40
    batch_size: int = 32
    lr: float = 1e-3  # AdamW
    weight_decay: float = 0.0
    tau_start: float = 2.0  # Gumbel-softmax temperature at epoch 0 ...
    tau_end: float = 0.5  # ... annealed exponentially per epoch: tau_e = tau_start (tau_end/tau_start)^(e/anneal)
    anneal_epochs: int = 25  # epochs to reach tau_end (it stays there after)
    film_warmup_epochs: int = 0  # cin (stable) only: epochs with the norm off (FiLM alone) before it is switched on
    start_channels: int | None = None  # curriculum: channels unlocked at the start (None = all K, no curriculum)
    unlock_every: int = 1  # curriculum: at least this many epochs between two unlocks
    unlock_usage: float = 0.8  # curriculum: unlock when H(usage over unlocked) >= unlock_usage * log(n_unlocked)
    unlock_step: int = 1  # curriculum: channels unlocked at a time
    dead_threshold: float = 0.1  # a channel is dead when its mean q(c|x) on the train data < dead_threshold / K
    grad_clip: float = 5.0  # max global grad norm
    progress: bool = True  # tqdm bar per epoch

    def __post_init__(self):
        pos = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0  # noqa: E731
        for key in ("epochs", "batch_size", "anneal_epochs", "unlock_every", "unlock_step"):
            self.require(is_int(getattr(self, key)) and getattr(self, key) >= 1, key, "must be an integer >= 1")
        for key in ("lr", "tau_start", "tau_end", "grad_clip"):
            self.require(pos(getattr(self, key)), key, "must be a number > 0")
        self.require(pos(self.weight_decay) or self.weight_decay == 0, "weight_decay", "must be a number >= 0")
        self.require(is_int(self.film_warmup_epochs) and self.film_warmup_epochs >= 0, "film_warmup_epochs",
                     "must be an integer >= 0")
        self.require(self.start_channels is None or (is_int(self.start_channels) and self.start_channels >= 1),
                     "start_channels", "must be null (no curriculum) or an integer >= 1")
        self.require(isinstance(self.unlock_usage, (int, float)) and 0 <= self.unlock_usage <= 1, "unlock_usage",
                     "must lie in [0, 1]")
        self.require(pos(self.dead_threshold) and self.dead_threshold < 1, "dead_threshold", "must lie in (0, 1)")

    def tau(self, epoch: int) -> float:
        """Gumbel temperature of 0-based `epoch`: exponential anneal from tau_start to tau_end over anneal_epochs."""
        return self.tau_start * (self.tau_end / self.tau_start) ** (min(epoch, self.anneal_epochs) / self.anneal_epochs)


def entropy(p: np.ndarray) -> float:
    """-sum p log p of a probability vector (0 log 0 = 0)."""
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def should_unlock(usage: np.ndarray, unlocked: np.ndarray, epochs_since: int, cfg: MixtureTrainConfig) -> bool:
    """The curriculum rule, checked after each epoch: unlock `unlock_step` more channels when some are locked,
    at least `unlock_every` epochs passed since the last unlock, and the usage over the unlocked channels is
    balanced: H(usage_u / sum usage_u) >= unlock_usage * log(n_unlocked)."""
    n = int(unlocked.sum())
    if n == len(unlocked) or epochs_since < cfg.unlock_every:
        return False
    u = usage[unlocked] / usage[unlocked].sum()
    return entropy(u) >= cfg.unlock_usage * math.log(n) - 1e-12


@torch.no_grad()
def assess(model: MixtureVAE, x: torch.Tensor, batch_size: int) -> dict[str, Any]:
    """Eval-mode statistics on `x`: usage (K mean q), mean H(q(c|x)), mean latent KL per channel."""
    q_sum, kl_sum, h_sum = 0.0, 0.0, 0.0
    for start in range(0, len(x), batch_size):
        logits, mu, logvar = model.encode(x[start:start + batch_size])
        q = torch.softmax(logits.masked_fill(~model.unlocked, -math.inf), -1)  # (B, K)
        q_sum = q_sum + q.sum(0)
        kl_sum = kl_sum + kl_normal_std(mu, logvar).sum(0)
        h_sum += float(-torch.where(q > 0, q * torch.log(q.clamp_min(1e-30)), 0.0).sum())
    return {"usage": (q_sum / len(x)).tolist(), "kl_per_channel": (kl_sum / len(x)).tolist(),
            "resp_entropy": h_sum / len(x)}


def collapse_signs(row: dict[str, Any], unlocked: np.ndarray) -> list[str]:
    """What looks collapsed in an epoch's statistics: posterior (all KLs < 0.01 nats), channels (more than half
    of the unlocked ones dead), responsibilities (mean H(q(c|x)) > 0.9 log n_unlocked, nearly uniform)."""
    n = int(unlocked.sum())
    signs = []
    if max(np.asarray(row["kl_per_channel"])[unlocked]) < 0.01:
        signs.append("posterior collapse: every channel's KL(q(z|x) || N(0, I)) < 0.01 nats")
    if n > 1 and row["n_dead"] > n / 2:
        signs.append(f"channel collapse: {row['n_dead']} of {n} unlocked channels dead")
    if n > 1 and row["resp_entropy"] > 0.9 * math.log(n):
        signs.append(f"uniform responsibilities: mean H(q(c|x)) = {row['resp_entropy']:.3f} of log {n}")
    return signs


def train_mixture_vae(x_train: np.ndarray, model_cfg: MixtureVAEConfig, loss_cfg: LossConfig,
                      train_cfg: MixtureTrainConfig, seed: int, x_val: np.ndarray | None = None,
                      log_epoch: Callable[[dict[str, Any]], None] | None = None) -> tuple[MixtureVAE, list[dict]]:
    """Train a MixtureVAE on x_train (N, C, H, W) in [-1, 1]; returns the model (CPU, eval mode; its pi_logits,
    unlocked mask and norm switch are its learned prior and final state) and one history dict per epoch.

    Everything random (init, shuffling, Gumbel and z noise) comes from `seed`: equal seeds give equal weights.
    `log_epoch` is called with each epoch's history dict."""
    K = model_cfg.K
    x = torch.as_tensor(np.asarray(x_train), dtype=torch.float32)
    xv = None if x_val is None else torch.as_tensor(np.asarray(x_val), dtype=torch.float32)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # weight init
        model = MixtureVAE(model_cfg, tuple(x.shape[1:]))
    gen = torch.Generator().manual_seed(seed)
    mog = None
    if loss_cfg.regulariser == "logit_mog":
        mog = LogitMoG(K, loss_cfg.logit_mog_radius, loss_cfg.logit_mog_scale, loss_cfg.logit_mog_learn_scale)
    learn_pi = loss_cfg.regulariser == "kl_pi" and loss_cfg.pi == "learned"  # pi is learned only through KL(q||pi)
    model.pi_logits.requires_grad_(learn_pi)
    params = [p for p in model.parameters() if p.requires_grad] + ([] if mog is None else list(mog.parameters()))
    opt = torch.optim.AdamW(params, lr=train_cfg.lr, weight_decay=train_cfg.weight_decay)

    n0 = K if train_cfg.start_channels is None else min(train_cfg.start_channels, K)
    model.unlocked[:] = torch.arange(K) < n0
    warm = model_cfg.conditioning == "cin" and model_cfg.cin_stable and train_cfg.film_warmup_epochs > 0

    def step(idx: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        # one batch at this epoch's Gumbel temperature tau
        xb = x[idx]
        out = model(xb, tau, hard=True, generator=gen)
        loss, terms = mixture_vae_loss(out, xb, loss_cfg, model.log_pi(), len(x), mog)
        if not math.isfinite(terms["loss"]):
            raise FloatingPointError(f"non-finite mixture VAE loss at epoch {epoch + 1}: {terms}; lower "
                                     "mixture_vae.train.lr or raise mixture_vae.model.sigma_min")
        return loss, terms

    last_unlock, history = 0, []
    for epoch in range(train_cfg.epochs):
        tau = train_cfg.tau(epoch)
        model.norm_enabled = not (warm and epoch < train_cfg.film_warmup_epochs)
        t0 = time.perf_counter()
        model.train()
        sums = train_epoch(step, len(x), train_cfg.batch_size, opt, train_cfg.grad_clip, gen,
                           f"mixture VAE epoch {epoch + 1}/{train_cfg.epochs}", train_cfg.progress)
        seconds = time.perf_counter() - t0

        model.eval()
        stats = assess(model, x, 256)
        unlocked = model.unlocked.numpy().copy()
        usage = np.asarray(stats["usage"])
        dead = unlocked & (usage < train_cfg.dead_threshold / K)
        row = {"epoch": epoch + 1, "tau": tau, **{k: v / len(x) for k, v in sums.items()}, **stats,
               "n_dead": int(dead.sum()), "n_unlocked": int(unlocked.sum()), "norm_enabled": model.norm_enabled,
               "seconds": seconds}
        if xv is not None:
            vgen = torch.Generator().manual_seed(seed + 1)
            row["val_elbo"] = float(torch.cat([elbo(model, xv[s:s + 256], generator=vgen)
                                               for s in range(0, len(xv), 256)]).mean())
        row["collapse"] = collapse_signs(row, unlocked)
        if should_unlock(usage, unlocked, epoch + 1 - last_unlock, train_cfg):
            n = int(unlocked.sum())
            model.unlocked[:] = torch.arange(K) < min(K, n + train_cfg.unlock_step)
            last_unlock = epoch + 1
        history.append(row)
        log.info("epoch %d tau %.3f loss %.2f recon %.2f kl_z %.2f reg_c %.3f H(q) %.3f dead %d/%d%s",
                 row["epoch"], tau, row["loss"], row["recon"], row["kl_z"], row["reg_c"], row["resp_entropy"],
                 row["n_dead"], row["n_unlocked"], f" val_elbo {row['val_elbo']:.2f}" if xv is not None else "")
        if log_epoch is not None:
            log_epoch(row)
    for sign in history[-1]["collapse"] if history else []:
        log.warning("mixture VAE after %d epochs: %s", train_cfg.epochs, sign)
    return model.cpu().eval(), history
