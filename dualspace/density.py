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
from .nn.mdn import MDN

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


def fit_mdn(e: np.ndarray, y: np.ndarray, cfg: MDNConfig, seed: int) -> tuple[MDN, dict]:
    """Train an MDN on train pairs (e, y) with early stopping on a slice of them; returns the model and a summary."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    et, yt = torch.as_tensor(e, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32)
    perm = torch.randperm(len(et), generator=g)
    n_val = max(1, int(round(cfg.val_fraction * len(et))))
    val, tr = perm[:n_val], perm[n_val:]
    model = MDN(e.shape[1], y.shape[1], cfg.n_components, cfg.hidden, cfg.sigma_floor)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    best, best_state, best_epoch, history = float("inf"), None, 0, []
    bar = tqdm(range(cfg.max_epochs), desc="train mdn", mininterval=2.0)
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
            raise FloatingPointError(f"MDN validation NLL is {val_nll} at epoch {epoch}; lower mdn.lr or raise "
                                     "mdn.sigma_floor")
        history.append(val_nll)
        bar.set_postfix(val_nll=f"{val_nll:.3f}", refresh=False)
        if val_nll < best - 1e-4:
            best, best_state, best_epoch = val_nll, copy.deepcopy(model.state_dict()), epoch
        elif epoch - best_epoch >= cfg.patience:
            break
    model.load_state_dict(best_state)
    log.info("MDN: best early-stopping NLL %.4f at epoch %d of %d", best, best_epoch, len(history))
    return model.eval(), {"best_val_nll": best, "best_epoch": best_epoch, "epochs": len(history)}


def save_mdn(model: MDN, cfg: MDNConfig, summary: dict, path: str | Path, dataset: str | None = None) -> None:
    """The MDN with what it was trained for (dataset, widths of e and y), loadable with weights_only=True."""
    obj = {"format": "dualspace.mdn/1", "config": asdict(cfg), "cond_dim": model.cond_dim,
           "y_dim": model.y_dim, "summary": summary, "state": model.state_dict()}
    if dataset is not None:
        obj["dataset"] = dataset
    save_torch(obj, path)


def load_mdn(path: str | Path, **expect) -> MDN:
    """Load an MDN checkpoint; `expect` (dataset, cond_dim, y_dim) is checked against what it was trained for."""
    obj = load_checkpoint(path, "MDN checkpoint")
    if not isinstance(obj, dict) or obj.get("format") != "dualspace.mdn/1":
        raise CheckpointError(f"{path} is not a dualspace MDN checkpoint; delete it and rerun `snakemake {path}`")
    check_trained_for(path, "MDN checkpoint", obj, expect)
    cfg = MDNConfig(**obj["config"])
    model = MDN(obj["cond_dim"], obj["y_dim"], cfg.n_components, cfg.hidden, cfg.sigma_floor)
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
