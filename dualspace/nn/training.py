"""The mini-batch epoch the VAE trainers share (ABR CVAE, mixture VAE): a seeded shuffle, one clipped AdamW step a
batch, the loss terms summed over the examples. What differs between them (the batch's forward pass and loss,
schedules, early stopping, curricula) stays in their own `train.py`."""

from __future__ import annotations

from typing import Callable

import torch
from tqdm.auto import tqdm


def train_epoch(step: Callable[[torch.Tensor], tuple[torch.Tensor, dict[str, float]]], n: int, batch_size: int,
                opt: torch.optim.Optimizer, grad_clip: float, generator: torch.Generator, desc: str,
                progress: bool = True) -> dict[str, float]:
    """One pass over a permutation of range(n) drawn from `generator`, in batches of `batch_size` row indices.

    `step(idx)` (idx (B,) int64) runs the batch and returns its loss (backpropagated; the global norm of the
    gradient of every parameter `opt` steps is clipped at `grad_clip`) and the batch means of the terms to log.
    Returns each term's sum over the n examples (batch mean * B): divide by n for the epoch mean. The permutation
    is drawn from `generator` first; `step` may draw its noise from the same generator after it."""
    params = [p for group in opt.param_groups for p in group["params"]]
    sums: dict[str, float] = {}
    perm = torch.randperm(n, generator=generator)
    for start in tqdm(range(0, n, batch_size), desc=desc, leave=False, disable=not progress):
        idx = perm[start:start + batch_size]
        loss, terms = step(idx)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
        opt.step()
        for k, v in terms.items():
            sums[k] = sums.get(k, 0.0) + v * len(idx)
    return sums
