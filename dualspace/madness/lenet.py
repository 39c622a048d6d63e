"""The small LeNet-5 classifier whose 84 penultimate activations are the features of "FID (LeNet)".

A self-consuming loop is scored on real test images with a classifier trained on the real train split
(Alemohammad et al. 2023 use a LeNet on MNIST): FID, precision / recall / density / coverage in its
84-dimensional feature space, and the share of generated samples it assigns their conditioning label.
The network is LeNet-5 (LeCun et al. 1998) with "same" convolutions, so 8 x 8 digits and 28 x 28 MNIST
share one definition; only the flatten size differs (16 * (image_size // 4)^2).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from ..io import CheckpointError, load_checkpoint, save_torch
from ..nn.inference import batched
from ..settings import ConfigBase, is_int

log = logging.getLogger("dualspace")

FORMAT = "dualspace-lenet"
N_FEATURES = 84  # width of the penultimate layer: the feature space of FID (LeNet)


@dataclass
class LeNetConfig(ConfigBase):
    """Shape of the LeNet and how it is trained."""

    SECTION: ClassVar[str] = "madness.lenet"

    in_channels: int = 1  # C of the (N, C, H, W) images
    image_size: int = 8  # H = W: 8 for sklearn digits, 28 for MNIST
    n_classes: int = 10
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3  # Adam
    seed: int = 0  # weights and batch order

    def __post_init__(self):
        for key in ("in_channels", "n_classes", "epochs", "batch_size"):
            self.require(is_int(getattr(self, key)) and getattr(self, key) >= 1, key, "must be an integer >= 1")
        self.require(is_int(self.image_size) and self.image_size >= 4, "image_size",
                     "must be an integer >= 4 (two 2x2 max-pools)")
        self.require(isinstance(self.lr, (int, float)) and not isinstance(self.lr, bool) and self.lr > 0, "lr",
                     "must be a number > 0")
        self.require(is_int(self.seed), "seed", "must be an integer")


class LeNet(nn.Module):
    """conv 6@5x5 -> pool -> conv 16@5x5 -> pool -> fc 120 -> fc 84 (features) -> fc n_classes."""

    def __init__(self, cfg: LeNetConfig):
        super().__init__()
        self.cfg = cfg
        self.conv1 = nn.Conv2d(cfg.in_channels, 6, 5, padding=2)  # keeps H x W
        self.conv2 = nn.Conv2d(6, 16, 5, padding=2)
        side = cfg.image_size // 2 // 2  # two 2x2 max-pools (floor): 8 -> 2, 28 -> 7
        self.fc1 = nn.Linear(16 * side * side, 120)
        self.fc2 = nn.Linear(120, N_FEATURES)
        self.fc3 = nn.Linear(N_FEATURES, cfg.n_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The 84 features of images x (B, C, H, W): (B, 84)."""
        h = F.max_pool2d(F.relu(self.conv1(x)), 2)  # (B, 6, H/2, W/2)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)  # (B, 16, H/4, W/4)
        h = F.relu(self.fc1(h.flatten(1)))  # (B, 120)
        return F.relu(self.fc2(h))  # (B, 84)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (B, n_classes)."""
        return self.fc3(self.embed(x))


def _check_images(x: np.ndarray, cfg: LeNetConfig) -> None:
    # the LeNet's flatten size fixes C, H, W: say which config key to change instead of a matmul shape error
    want = (cfg.in_channels, cfg.image_size, cfg.image_size)
    if x.ndim != 4 or tuple(x.shape[1:]) != want:
        raise ValueError(f"LeNet expects images (N, {want[0]}, {want[1]}, {want[2]}), got shape {tuple(x.shape)}; "
                         f"set {cfg.SECTION}.in_channels / image_size to the data's shape")


def train_lenet(x: np.ndarray, labels: np.ndarray, cfg: LeNetConfig, device: str | torch.device = "cpu") -> LeNet:
    """A LeNet trained with Adam on cross-entropy over images x (N, C, H, W) in [-1, 1] and labels (N,)."""
    _check_images(x, cfg)
    labels = np.asarray(labels, np.int64)
    if len(labels) != len(x) or labels.min() < 0 or labels.max() >= cfg.n_classes:
        raise ValueError(f"train_lenet needs {len(x)} labels in [0, {cfg.n_classes}), got {len(labels)} in "
                         f"[{labels.min()}, {labels.max()}]; check {cfg.SECTION}.n_classes")
    torch.manual_seed(cfg.seed)
    model = LeNet(cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)  # batch order, independent of the global RNG
    xt = torch.as_tensor(x, dtype=torch.float32, device=device)
    yt = torch.as_tensor(labels, device=device)
    model.train()
    for epoch in tqdm(range(cfg.epochs), desc="LeNet", leave=False):
        order = torch.randperm(len(xt), generator=gen).to(device)
        total = 0.0
        for start in range(0, len(order), cfg.batch_size):
            idx = order[start:start + cfg.batch_size]
            loss = F.cross_entropy(model(xt[idx]), yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        log.info("LeNet epoch %d/%d: loss %.4f", epoch + 1, cfg.epochs, total / len(xt))
    return model.eval()


def forward(model: LeNet, x: np.ndarray, batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Features (N, 84) float64 and logits (N, n_classes) of images x, in eval mode, batch by batch."""
    _check_images(x, model.cfg)
    if len(x) == 0:
        return np.zeros((0, N_FEATURES)), np.zeros((0, model.cfg.n_classes))

    def features_and_logits(xb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = model.embed(xb)
        return f.double(), model.fc3(f).double()

    was_training = model.training
    model.eval()
    feats, logits = batched(features_and_logits, x, batch_size, next(model.parameters()).device, torch.float32)
    model.train(was_training)
    return feats, logits


def features(model: LeNet, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """The LeNet features of images x (N, C, H, W): (N, 84) float64."""
    return forward(model, x, batch_size)[0]


def predict(model: LeNet, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """The LeNet's class of each image in x (N, C, H, W): (N,) int64."""
    return forward(model, x, batch_size)[1].argmax(1).astype(np.int64)


def _plain(value: Any, key: str) -> Any:
    # a value torch.load(weights_only=True) can read back: numbers, strings, lists, dicts, tensors
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v, key) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v, f"{key}.{k}") for k, v in value.items()}
    raise TypeError(f"save_lenet: extra '{key}' is a {type(value).__name__}, which a weights_only load refuses; "
                    f"pass numbers, strings, lists, dicts or tensors (e.g. array.tolist())")


def save_lenet(model: LeNet, cfg: LeNetConfig, path: str | Path, **extra: Any) -> None:
    """Write the LeNet (config, weights on CPU, `extra` such as test_accuracy) to `path`, atomically."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    save_torch({"format": FORMAT, "config": cfg.to_dict(), "state": state,
                "extra": {k: _plain(v, k) for k, v in extra.items()}}, path)


def load_lenet(path: str | Path) -> tuple[LeNet, dict[str, Any]]:
    """The LeNet saved by `save_lenet` at `path` (on CPU, eval mode) and its extras."""
    ckpt = load_checkpoint(path, "LeNet checkpoint")
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"LeNet checkpoint {path} was not written by save_lenet (no format '{FORMAT}'); "
                              f"delete it and rerun `snakemake {path}` to retrain it")
    model = LeNet(LeNetConfig.from_dict(ckpt["config"]))
    model.load_state_dict(ckpt["state"])
    return model.eval(), dict(ckpt["extra"])
