"""Scores of outcomes under a trained dual-space run: phi features, PCA coordinates y and s = -log p(y | g(c)),
with the generator's embedding e = g(c), phi and the MDN loaded from their files and checked against each other.
Used by the draft scoring stage and by studies that judge their samples with a real-data region."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .density import load_mdn, scores
from .features import Phi
from .generator import load_generator


def score_outcomes(x: np.ndarray, label: np.ndarray, n_classes: int, generator_pt: str | Path, phi_pt: str | Path,
                   mdn_pt: str | Path, dataset: str, device: Any = "cpu"
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Outcomes x (N, *shape) with labels c (N,) -> phi features (N, F), y (N, d), scores s (N,) under the run's
    generator embedding, phi and MDN; and e = g(c) of every class (n_classes, d_c)."""
    shape = x.shape[1:]
    gen = load_generator(generator_pt, dataset=dataset, shape=shape, n_classes=n_classes)
    phi = Phi.load(phi_pt, dataset=dataset, shape=shape, n_classes=n_classes).to(device)
    mdn = load_mdn(mdn_pt, dataset=dataset, cond_dim=gen.cond_dim)
    feats, y = phi(x)
    return feats, y, scores(mdn, y, gen.embed(label)), gen.embed(np.arange(n_classes))
