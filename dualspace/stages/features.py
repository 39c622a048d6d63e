"""rules fit_phi and dump_pairs (workflow/rules/features.smk)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

from ..artifacts import Pairs
from ..data import read_split
from ..features import Phi, PhiConfig, fit_phi as _fit_phi
from ..generator import load_generator
from ..runtime import pick_device
from ..settings import build_config

log = logging.getLogger("dualspace")


def fit_phi(train_h5: str | Path, out_path: str | Path, settings: Mapping[str, Any], seed: int, dataset: str,
            device: str = "auto", expect_gpu: bool = False) -> None:
    """rule fit_phi: train phi as a classifier on the train split, freeze it, fit PCA on train features."""
    split, attrs = read_split(train_h5, dataset=dataset, split="train")
    cfg = build_config(PhiConfig, settings, f"{dataset}.phi")
    phi = _fit_phi(split.x, split.label, attrs["kind"], int(attrs["n_classes"]), cfg, seed,
                   pick_device(device, expect_gpu))
    phi.info["dataset"] = dataset
    phi.save(out_path)


def dump_pairs(generator_pt: str | Path, phi_pt: str | Path, split_h5: str | Path, out_h5: str | Path,
               dataset: str, device: str = "auto", expect_gpu: bool = False) -> None:
    """rule dump_pairs: (e = g(c), y = PCA(phi(x)), label) for every example of one split."""
    split, attrs = read_split(split_h5, dataset=dataset)
    shape, n_classes = split.x.shape[1:], int(attrs["n_classes"])
    gen = load_generator(generator_pt, dataset=dataset, shape=shape, n_classes=n_classes)
    phi = Phi.load(phi_pt, dataset=dataset, shape=shape, n_classes=n_classes).to(pick_device(device, expect_gpu))
    _, y = phi(split.x)
    e = gen.embed(split.label)
    Pairs(e, y, split.label, {"dataset": dataset, "split": attrs["split"], "n_classes": n_classes,
                              "generator": str(generator_pt), "phi": str(phi_pt), "source": str(split_h5)}).write(out_h5)
    log.info("%s: %d pairs, e %s, y %s", out_h5, len(y), e.shape, y.shape)
