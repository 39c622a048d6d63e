"""The condition encoder g(c): one-hot class -> embedding e in R^{d_c}, plus the learned null embedding."""

from __future__ import annotations

import torch
from torch import nn


class ConditionEncoder(nn.Module):
    """e = g(c): a two-layer MLP on the one-hot label; `null` is the embedding of "no condition" (CFG)."""

    def __init__(self, n_classes: int, cond_dim: int = 64, hidden: int = 128):
        super().__init__()
        self.n_classes = n_classes
        self.cond_dim = cond_dim
        self.mlp = nn.Sequential(nn.Linear(n_classes, hidden), nn.SiLU(), nn.Linear(hidden, cond_dim))
        self.null = nn.Parameter(torch.zeros(cond_dim))  # learned unconditional embedding

    def forward(self, onehot: torch.Tensor) -> torch.Tensor:
        """(B, n_classes) one-hot -> (B, cond_dim)."""
        if onehot.dim() != 2 or onehot.shape[1] != self.n_classes:
            raise ValueError(f"expected one-hot labels of shape (B, {self.n_classes}), got {tuple(onehot.shape)}")
        return self.mlp(onehot)

    def null_like(self, e: torch.Tensor) -> torch.Tensor:
        """The null embedding repeated to the batch size of e."""
        return self.null.to(e.dtype).expand_as(e)
