"""Seeded draws shared by the models: noise from a torch.Generator that may live on another device."""

from __future__ import annotations

import torch


def draw(fn, shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """torch.rand / torch.randn from `generator` (on its own device), moved to `device`."""
    where = generator.device if generator is not None else device
    return fn(shape, generator=generator, device=where).to(device)
