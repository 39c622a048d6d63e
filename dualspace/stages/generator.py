"""rule train_generator (workflow/rules/generator.smk), for any generator family."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

from ..data import read_split, split_meta
from ..generator import DEFAULT_FAMILY, family

log = logging.getLogger("dualspace")


def train_generator(train_h5: str | Path, out_path: str | Path, settings: Mapping[str, Any], seed: int,
                    dataset: str, device: str = "auto", expect_gpu: bool = False) -> None:
    """rule train_generator: fit the family named by `settings["family"]` (default diffusion) on the train split."""
    split, attrs = read_split(train_h5, dataset=dataset, split="train")
    settings = dict(settings)
    fam = family(settings.pop("family", DEFAULT_FAMILY))
    cfg = fam.make_config(settings, f"{dataset}.generator")
    log.info("training %s %s generator on %s: x %s, %s", dataset, fam.name, train_h5, split.x.shape,
             cfg.to_dict() if hasattr(cfg, "to_dict") else cfg)
    fam.train(split, cfg, out_path, n_classes=int(attrs["n_classes"]), meta=split_meta(attrs), seed=seed,
              device=device, expect_gpu=expect_gpu)
