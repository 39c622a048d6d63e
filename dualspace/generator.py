"""The generator interface the region stages see, and loading a trained generator from its checkpoint.

A generator is anything with `n_classes`, `cond_dim`, `embed(labels) -> e` and
`sample(labels, seed, ...) -> x`; drafts, pair dumps, regions and metrics use nothing else,
so other families (a CVAE, a mixture of VAEs) can feed the same stages unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np
import torch

from .diffusion import DiffusionGenerator


@runtime_checkable
class ConditionalGenerator(Protocol):
    """x ~ p(x | e), e = g(c)."""

    n_classes: int
    cond_dim: int

    def embed(self, labels: np.ndarray) -> np.ndarray:
        """(N,) int labels -> (N, cond_dim) condition embeddings e = g(c)."""

    def sample(self, labels: np.ndarray, seed: int, **options: Any) -> np.ndarray:
        """One draft per label: (N,) -> (N, *shape) in data space."""


# checkpoint["family"] -> constructor from the checkpoint dict
FAMILIES: dict[str, Callable[[dict[str, Any]], ConditionalGenerator]] = {
    "diffusion": DiffusionGenerator.from_checkpoint,
}


def load_generator(path: str | Path, device: str | torch.device = "cpu", **expect: Any) -> ConditionalGenerator:
    """Load a generator checkpoint (weights_only) and check it against `expect` (dataset, shape, n_classes)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"generator checkpoint {path} not found; build it with `snakemake {path}`")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    family = ckpt.get("family") if isinstance(ckpt, dict) else None
    if family not in FAMILIES:
        raise ValueError(f"{path}: not a dualspace generator checkpoint (family {family!r}; known {sorted(FAMILIES)})")
    found = {"dataset": ckpt["data"].get("dataset"), "shape": list(ckpt["data"].get("shape", [])),
             "n_classes": ckpt["n_classes"]}
    for key, want in expect.items():
        want = list(want) if isinstance(want, (tuple, list)) else want
        if found.get(key) != want:
            raise ValueError(f"{path} was trained for {key}={found.get(key)!r} but {want!r} is expected; "
                             "delete it and rerun `snakemake` to retrain")
    model = FAMILIES[family](ckpt)
    return model.to(device) if isinstance(model, torch.nn.Module) else model
