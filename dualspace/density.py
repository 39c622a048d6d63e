"""Fitting and using the conditional density p_psi(y | e) and its nonconformity score s = -log p(y | e)."""

from __future__ import annotations

import copy
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .io import CheckpointError, check_trained_for, load_checkpoint, save_torch
from .nn.mdn import COVARIANCES, MDN

log = logging.getLogger("dualspace.density")


@dataclass
class MDNConfig:
    """Config section `<ds>.mdn`."""

    n_components: int = 6  # M
    hidden: int = 256
    sigma_floor: float = 1e-3
    lr: float = 1e-3
    batch_size: int = 256
    max_epochs: int = 300
    patience: int = 20  # epochs without improvement on the early-stopping slice
    val_fraction: float = 0.1  # slice of *train* pairs for early stopping (never calib or test)
    weight_decay: float = 0.0
    covariance: str | list[str] = "diagonal"  # one of COVARIANCES, or a list of them: fit each, keep the best
    rank: int = 4  # columns of the low-rank factor W (covariance "lowrank")

    def __post_init__(self):
        options = [self.covariance] if isinstance(self.covariance, str) else self.covariance
        if (not isinstance(options, (list, tuple)) or not options or len(set(options)) != len(options)
                or any(c not in COVARIANCES for c in options)):
            raise ValueError(f"mdn.covariance is {self.covariance!r}; set it to one of {list(COVARIANCES)} or a "
                             f"list of distinct ones (e.g. [diagonal, full]) to keep the best by early-stopping NLL")
        if isinstance(self.rank, bool) or not isinstance(self.rank, int) or self.rank < 1:
            raise ValueError(f"mdn.rank is {self.rank!r}; it must be an integer >= 1 (columns of the low-rank "
                             "covariance factor)")

    @property
    def covariances(self) -> list[str]:
        """The candidate covariances, in config order."""
        return [self.covariance] if isinstance(self.covariance, str) else list(self.covariance)


def fit_mdn(e: np.ndarray, y: np.ndarray, cfg: MDNConfig, seed: int) -> tuple[MDN, dict]:
    """Train an MDN on train pairs (e, y) with early stopping on a slice of them; returns the model and a summary.

    With several covariances (`mdn.covariance` a list) each is fit from the same seed on the same split
    and batch order, and the one with the lowest early-stopping NLL is kept. Its summary says which
    (`covariance`) and records every candidate's best NLL (`candidates`; inf for one that diverged).
    """
    fits, failed = {}, {}
    for covariance in cfg.covariances:
        try:
            fits[covariance] = _fit_one(e, y, cfg, covariance, seed)
        except (FloatingPointError, torch.linalg.LinAlgError) as err:
            if len(cfg.covariances) == 1:
                raise
            log.warning("MDN covariance %s diverged and is not a candidate: %s", covariance, err)
            failed[covariance] = err
    if not fits:
        detail = "; ".join(f"{c}: {err}" for c, err in failed.items())
        raise FloatingPointError(f"every mdn.covariance candidate diverged ({detail})")
    chosen = min(fits, key=lambda c: fits[c][1]["best_val_nll"])
    model, summary = fits[chosen]
    candidates = {c: fits[c][1]["best_val_nll"] if c in fits else float("inf") for c in cfg.covariances}
    if len(candidates) > 1:
        log.info("MDN: covariance %s kept; early-stopping NLL of each: %s", chosen, candidates)
    return model, {**summary, "covariance": chosen, "candidates": candidates}


def _fit_one(e: np.ndarray, y: np.ndarray, cfg: MDNConfig, covariance: str, seed: int) -> tuple[MDN, dict]:
    # one MDN with the given covariance; the seed fixes init, split and batch order (shared by all candidates)
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    et, yt = torch.as_tensor(e, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32)
    perm = torch.randperm(len(et), generator=g)
    n_val = max(1, int(round(cfg.val_fraction * len(et))))
    val, tr = perm[:n_val], perm[n_val:]
    model = MDN(e.shape[1], y.shape[1], cfg.n_components, cfg.hidden, cfg.sigma_floor, covariance, cfg.rank)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    best, best_state, best_epoch, history = float("inf"), None, 0, []
    bar = tqdm(range(cfg.max_epochs), desc=f"train mdn ({covariance})", mininterval=2.0)
    for epoch in bar:
        model.train()
        order = tr[torch.randperm(len(tr), generator=g)]
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            loss = -model.log_prob(yt[idx], et[idx]).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            val_nll = float(-model.log_prob(yt[val], et[val]).mean())
        if not np.isfinite(val_nll):
            raise FloatingPointError(f"MDN ({covariance} covariance) validation NLL is {val_nll} at epoch {epoch}; "
                                     "lower mdn.lr or raise mdn.sigma_floor")
        history.append(val_nll)
        bar.set_postfix(val_nll=f"{val_nll:.3f}", refresh=False)
        if val_nll < best - 1e-4:
            best, best_state, best_epoch = val_nll, copy.deepcopy(model.state_dict()), epoch
        elif epoch - best_epoch >= cfg.patience:
            break
    model.load_state_dict(best_state)
    log.info("MDN (%s): best early-stopping NLL %.4f at epoch %d of %d", covariance, best, best_epoch,
             len(history))
    return model.eval(), {"best_val_nll": best, "best_epoch": best_epoch, "epochs": len(history)}


def save_mdn(model: MDN, cfg: MDNConfig, summary: dict, path: str | Path, dataset: str | None = None) -> None:
    """The MDN with what it was trained for (dataset, widths of e and y), loadable with weights_only=True.

    `covariance` records the network's own covariance (the one kept when mdn.covariance was a list).
    """
    obj = {"format": "dualspace.mdn/1", "config": asdict(cfg), "cond_dim": model.cond_dim,
           "y_dim": model.y_dim, "covariance": model.covariance, "summary": summary, "state": model.state_dict()}
    if dataset is not None:
        obj["dataset"] = dataset
    save_torch(obj, path)


def load_mdn(path: str | Path, **expect) -> MDN:
    """Load an MDN checkpoint; `expect` (dataset, cond_dim, y_dim) is checked against what it was trained for.

    A checkpoint without `covariance` predates the option and is diagonal.
    """
    obj = load_checkpoint(path, "MDN checkpoint")
    if not isinstance(obj, dict) or obj.get("format") != "dualspace.mdn/1":
        raise CheckpointError(f"{path} is not a dualspace MDN checkpoint; delete it and rerun `snakemake {path}`")
    check_trained_for(path, "MDN checkpoint", obj, expect)
    cfg = MDNConfig(**obj["config"])
    covariance = obj.get("covariance", "diagonal")
    if covariance not in COVARIANCES:
        raise CheckpointError(f"{path} records covariance {covariance!r}, not one of {list(COVARIANCES)}; delete it "
                              f"and rerun `snakemake {path}`")
    model = MDN(obj["cond_dim"], obj["y_dim"], cfg.n_components, cfg.hidden, cfg.sigma_floor, covariance, cfg.rank)
    model.load_state_dict(obj["state"])
    model.dataset = obj.get("dataset")
    return model.eval()


@torch.no_grad()
def scores(model: MDN, y: np.ndarray, e: np.ndarray, batch: int = 4096) -> np.ndarray:
    """Nonconformity s = -log p(y | e), (N,) float64; checks widths against the model."""
    if y.ndim != 2 or y.shape[1] != model.y_dim:
        raise ValueError(f"y has shape {y.shape}, but the MDN was fit on y of width {model.y_dim}")
    if e.ndim != 2 or e.shape[1] != model.cond_dim:
        raise ValueError(f"e has shape {e.shape}, but the MDN expects e of width {model.cond_dim}")
    out = [-model.log_prob(torch.as_tensor(y[i:i + batch]), torch.as_tensor(e[i:i + batch])).double().numpy()
           for i in range(0, len(y), batch)]
    return np.concatenate(out) if out else np.zeros(0)
