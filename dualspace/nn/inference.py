"""Running a trained network over a whole array, batch by batch, without gradients: phi's features, the LeNet's
features and logits, a classifier's predictions, a mixture VAE's responsibilities."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

Outputs = torch.Tensor | tuple[torch.Tensor, ...]


def batched(fn: Callable[[torch.Tensor], Outputs], x: np.ndarray, batch_size: int,
            device: torch.device | str | None = None,
            dtype: torch.dtype | None = None) -> np.ndarray | tuple[np.ndarray, ...]:
    """fn over the rows of x (N, ...) in batches of `batch_size` under torch.no_grad; each batch goes in as
    torch.as_tensor(x[i:i + batch_size], dtype, device). fn returns a tensor or a tuple of tensors (B, ...); each
    comes back on the CPU as NumPy, concatenated over the batches: (N, ...), or a tuple of them.

    x must have a row: what fn returns for none is the caller's to say (its widths are not known here)."""
    if len(x) == 0:
        raise ValueError("batched: x has no rows; return the empty result before calling it")
    outs = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            out = fn(torch.as_tensor(x[i:i + batch_size], dtype=dtype, device=device))
            outs.append(tuple(o.cpu().numpy() for o in out) if isinstance(out, tuple) else out.cpu().numpy())
    if isinstance(outs[0], tuple):
        return tuple(np.concatenate(parts) for parts in zip(*outs))
    return np.concatenate(outs)
