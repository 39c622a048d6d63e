"""rules train_mdn, score_pairs and calibrate (workflow/rules/density.smk)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..artifacts import Pairs, PairScores
from ..conformal import class_thresholds

log = logging.getLogger("dualspace")


def train_mdn(train_pairs_h5: str | Path, out_path: str | Path, settings: Mapping[str, Any], seed: int,
              dataset: str) -> None:
    """rule train_mdn: fit p_psi(y | e) on train pairs (early stopping on a slice of train)."""
    from ..density import MDNConfig, fit_mdn, save_mdn  # torch: imported by the rules that run the MDN only
    from ..settings import build_config

    pairs = Pairs.read(train_pairs_h5, dataset=dataset)
    cfg = build_config(MDNConfig, settings, f"{dataset}.mdn")
    model, summary = fit_mdn(pairs.e, pairs.y, cfg, seed)
    save_mdn(model, cfg, summary, out_path, dataset=dataset)


def pair_nll(mdn_pt: str | Path, pairs_h5: str | Path, dataset: str | None = None):
    """Scores s = -log p(y | e) of a pair dump under the MDN: (scores, labels, attrs).

    The MDN is checked first against the dataset, so an MDN of another dataset is the file blamed, not the pairs.
    """
    from ..density import load_mdn, scores

    mdn = load_mdn(mdn_pt, dataset=dataset)
    pairs = Pairs.read(pairs_h5, dataset=dataset, y_dim=mdn.y_dim, cond_dim=mdn.cond_dim)
    return scores(mdn, pairs.y, pairs.e), pairs.label, pairs.attrs


def score_pairs(mdn_pt: str | Path, pairs_h5: str | Path, out_h5: str | Path, dataset: str) -> None:
    """rule score_pairs: one split's scores under the MDN, once for every alpha (calibrate and metrics_alpha read
    them: an alpha edit never loads the MDN)."""
    s, label, attrs = pair_nll(mdn_pt, pairs_h5, dataset)
    PairScores(s, label, {"dataset": dataset, "split": attrs["split"], "n_classes": int(attrs["n_classes"])}
               ).write(out_h5)


def calibrate(calib_scores_h5: str | Path, alpha: float, mode: str, out_csv: str | Path,
              dataset: str | None = None) -> None:
    """rule calibrate: per-class (or marginal) conformal thresholds for one alpha -> CSV."""
    cal = PairScores.read(calib_scores_h5, dataset=dataset, split="calib")
    table = class_thresholds(cal.score, cal.label, alpha, int(cal.attrs["n_classes"]), mode=mode)
    table.to_csv(out_csv)
    log.info("alpha %s (%s): tau %s", alpha, mode, np.round(table.tau, 3).tolist())
