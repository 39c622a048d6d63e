"""The feature space y = phi(x): a frozen classifier's penultimate layer, then PCA fit on train only.

`fit_phi` trains (or loads) the network and the PCA and returns a `Phi`; `Phi.save`/`Phi.load`
keep everything in one weights_only checkpoint (network state, PCA mean/components as tensors).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from .io import CheckpointError, check_trained_for, load_checkpoint, save_torch
from .nn.feature_nets import ResNet18Features, SeriesCNN
from .nn.inference import batched

log = logging.getLogger("dualspace.features")


@dataclass
class PhiConfig:
    """How phi is obtained; config section `<ds>.phi`."""

    weights: str = "train"  # "train" (offline default) or a path to a torchvision ResNet-18 ImageNet state dict
    pca_dim: int = 64  # d_phi after PCA (64 images, 32 series)
    epochs: int = 15
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-4
    val_fraction: float = 0.1  # slice of train held out to report the classifier's accuracy
    image_size: int = 32  # images are resized to this before the ResNet
    cnn_width: int = 64  # SeriesCNN width
    feature_dim: int = 128  # SeriesCNN penultimate width
    batch_eval: int = 512


# data kind -> feature network builder(shape, n_classes, cfg): the one place a kind meets its network
FEATURE_NETS: dict[str, Callable[[tuple[int, ...], int, "PhiConfig"], nn.Module]] = {
    "image": lambda shape, n_classes, cfg: ResNet18Features(n_classes, cfg.image_size),
    "series": lambda shape, n_classes, cfg: SeriesCNN(shape[0], n_classes, cfg.cnn_width, cfg.feature_dim),
}


def build_net(kind: str, shape: tuple[int, ...], n_classes: int, cfg: PhiConfig, seed: int = 0) -> nn.Module:
    """The feature network of `kind` (FEATURE_NETS) for examples of `shape`, initial weights drawn from `seed`.

    The global RNG is left as it was: a trained network (phi, a TSTR classifier), and so y and every
    tau, is a function of the seed, not of whatever ran before in the process.
    """
    if kind not in FEATURE_NETS:
        raise ValueError(f"no feature network for data kind '{kind}' (known: {sorted(FEATURE_NETS)}); "
                         "add one to dualspace.features.FEATURE_NETS")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return FEATURE_NETS[kind](tuple(shape), n_classes, cfg)


def train_classifier(net: nn.Module, x: np.ndarray, y: np.ndarray, cfg: PhiConfig, seed: int,
                     device: torch.device | str = "cpu") -> float:
    """Train `net` (on `device`) as a classifier on (x, y) minus a validation slice; returns validation accuracy."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    perm = torch.randperm(len(x), generator=g)
    n_val = max(1, int(round(cfg.val_fraction * len(x))))
    val, tr = perm[:n_val].to(device), perm[n_val:]
    xt, yt = torch.as_tensor(x).to(device), torch.as_tensor(y).to(device)  # the split lives on the device
    net.to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * max(1, len(tr) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps)
    net.train()
    bar = tqdm(total=steps, desc="train phi", mininterval=2.0)
    for _ in range(cfg.epochs):
        order = tr[torch.randperm(len(tr), generator=g)].to(device)
        for i in range(max(1, len(tr) // cfg.batch_size)):
            idx = order[i * cfg.batch_size:(i + 1) * cfg.batch_size]
            loss = F.cross_entropy(net(xt[idx]), yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    bar.close()
    net.eval()
    with torch.no_grad():
        pred = torch.cat([net(xt[val[i:i + cfg.batch_eval]]).argmax(1) for i in range(0, len(val), cfg.batch_eval)])
    acc = float((pred == yt[val]).float().mean())
    log.info("phi classifier: validation accuracy %.4f on %d held-out train examples", acc, len(val))
    return acc


class Phi:
    """Frozen feature network + PCA: `features(x)` -> raw phi, `project(phi)` -> y, `__call__` -> both."""

    def __init__(self, net: nn.Module, pca_mean: np.ndarray, pca_components: np.ndarray, pca_scale: np.ndarray,
                 info: dict[str, Any]):
        self.net = net.eval()
        self.pca_mean = pca_mean.astype(np.float32)  # (D_phi,)
        self.pca_components = pca_components.astype(np.float32)  # (d, D_phi)
        self.pca_scale = pca_scale.astype(np.float32)  # (d,) sqrt explained variance: y is whitened
        self.info = info

    def to(self, device: torch.device | str) -> "Phi":
        """Run the network on `device` (features come back as NumPy arrays either way)."""
        self.net.to(device)
        return self

    def features(self, x: np.ndarray, batch: int = 512) -> np.ndarray:
        """(N, *shape) data-space inputs -> (N, D_phi) raw features."""
        if len(x) == 0:
            return np.zeros((0, self.pca_mean.shape[0]), np.float32)
        return batched(lambda xb: self.net.features(xb).float(), x, batch, next(self.net.parameters()).device)

    def project(self, phi: np.ndarray) -> np.ndarray:
        """(N, D_phi) -> (N, d) whitened PCA coordinates y."""
        return ((phi - self.pca_mean) @ self.pca_components.T / self.pca_scale).astype(np.float32)

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        phi = self.features(x)
        return phi, self.project(phi)

    def save(self, path: str | Path) -> None:
        obj = {"format": "dualspace.phi/1", "info": self.info,
               "state": {k: v.cpu() for k, v in self.net.state_dict().items()},
               "pca_mean": torch.from_numpy(self.pca_mean), "pca_components": torch.from_numpy(self.pca_components),
               "pca_scale": torch.from_numpy(self.pca_scale)}
        save_torch(obj, path)

    @classmethod
    def load(cls, path: str | Path, **expect: Any) -> "Phi":
        """Load a phi checkpoint; `expect` (dataset, kind, shape) is checked against what it was trained for."""
        obj = load_checkpoint(path, "phi checkpoint")
        if not isinstance(obj, dict) or obj.get("format") != "dualspace.phi/1":
            raise CheckpointError(f"{path} is not a dualspace phi checkpoint; delete it and rerun `snakemake {path}`")
        info = obj["info"]
        check_trained_for(path, "phi checkpoint", info, expect)
        net = build_net(info["kind"], tuple(info["shape"]), info["n_classes"], PhiConfig(**info["config"]))
        net.load_state_dict(obj["state"])
        return cls(net, obj["pca_mean"].numpy(), obj["pca_components"].numpy(), obj["pca_scale"].numpy(), info)


def fit_phi(x: np.ndarray, y: np.ndarray, kind: str, n_classes: int, cfg: PhiConfig, seed: int,
            device: torch.device | str = "cpu") -> Phi:
    """Train (or load) the feature network on the train split (on `device`), freeze it, fit PCA on train features."""
    from sklearn.decomposition import PCA

    shape = tuple(x.shape[1:])
    net = build_net(kind, shape, n_classes, cfg, seed)
    if cfg.weights == "train":
        source, val_acc = "trained on the train split", train_classifier(net, x, y, cfg, seed, device)
    else:
        if kind != "image":
            raise ValueError("phi.weights may name an ImageNet state dict only for image datasets; use 'train'")
        path = Path(cfg.weights)
        if not path.is_file():
            raise FileNotFoundError(f"config key phi.weights names {path}, which does not exist; give a local "
                                    "torchvision ResNet-18 ImageNet state dict or 'train'")
        net.load_imagenet(torch.load(path, map_location="cpu", weights_only=True))
        source, val_acc = f"ImageNet weights {path}", None
    net.to(device).eval().requires_grad_(False)
    phi = Phi(net, np.zeros(1), np.zeros((1, 1)), np.ones(1), {})
    feats = phi.features(x)
    d = min(cfg.pca_dim, feats.shape[1], len(feats))
    pca = PCA(n_components=d, random_state=seed).fit(feats)
    info = {"kind": kind, "shape": list(shape), "n_classes": n_classes, "config": asdict(cfg), "source": source,
            "val_acc": val_acc, "pca_dim": d, "explained_variance": float(pca.explained_variance_ratio_.sum())}
    log.info("phi: %s; PCA %d -> %d keeps %.3f of the variance", source, feats.shape[1], d, info["explained_variance"])
    return Phi(net, pca.mean_, pca.components_, np.sqrt(pca.explained_variance_), info)
