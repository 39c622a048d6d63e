"""One function per workflow rule: paths and plain config dicts in, files out.

The Snakemake scripts only unpack `snakemake.*` and call these, so every stage also runs from a
notebook or a test without Snakemake.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

from .data import read_split
from .diffusion import DiffusionConfig, TrainConfig, train_diffusion

log = logging.getLogger("dualspace")


def _split_settings(settings: Mapping[str, Any], section: str) -> tuple[DiffusionConfig, TrainConfig]:
    s = dict(settings)
    train = s.pop("train", {})
    try:
        return DiffusionConfig.from_dict(s), TrainConfig(**train)
    except TypeError as e:
        raise TypeError(f"config section '{section}': {e}") from None


def train_generator(train_h5: str | Path, out_path: str | Path, settings: Mapping[str, Any], seed: int,
                    dataset: str) -> None:
    """rule train_generator: fit the conditional diffusion model on a train split file."""
    split, attrs = read_split(train_h5)
    cfg, train = _split_settings(settings, f"{dataset}.generator")
    train.seed = seed
    cfg.net.in_channels = split.x.shape[1]
    cfg.net.dims = split.x.ndim - 2
    log.info("training %s generator on %s: x %s, %s", dataset, train_h5, split.x.shape, cfg.to_dict())
    meta = {"dataset": attrs["dataset"], "class_names": list(attrs["class_names"]), "kind": attrs["kind"]}
    train_diffusion(split.x, split.label, int(attrs["n_classes"]), cfg, train, out_path, data_meta=meta)
