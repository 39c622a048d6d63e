"""rules fid_features and metrics (workflow/rules/metrics.smk)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ..artifacts import DraftSamples, DraftScores, Pairs
from ..conformal import ThresholdTable, accept
from ..data import read_split
from ..density import load_mdn, scores
from ..features import Phi
from ..fid import inception_features
from ..io import atomic_path, read_h5, read_h5_attrs, write_h5
from ..metrics import fid_columns, metrics_table, tstr_columns

log = logging.getLogger("dualspace")


def fid_features(samples_h5: str | Path, test_h5: str | Path, out_h5: str | Path, max_drafts: int,
                 weights: str | None, seed: int, max_real: int | None = None, dataset: str | None = None) -> None:
    """rule fid_features: Inception pool features of the real test split and of a fixed draft subsample
    (both subsampled at random, with the seed, when larger than max_drafts / max_real)."""
    x = DraftSamples.read(samples_h5, dataset=dataset).x
    idx = np.sort(np.random.default_rng(seed).choice(len(x), min(max_drafts, len(x)), replace=False))
    test_x = read_split(test_h5, dataset=dataset, split="test")[0].x
    if max_real is not None and len(test_x) > max_real:
        test_x = test_x[np.sort(np.random.default_rng(seed + 1).choice(len(test_x), max_real, replace=False))]
    f_test, desc = inception_features(test_x, weights)
    f_drafts, _ = inception_features(x[idx], weights)
    write_h5(out_h5, {"test": f_test, "drafts": f_drafts, "draft_index": idx.astype(np.int64)},
             {"extractor": desc, "drafts": str(samples_h5), "test": str(test_h5)})


def compute_metrics(dataset: str, alphas: list[float], tau_csvs: list[str | Path], mdn_pt: str | Path,
                    test_pairs_h5: str | Path, samples_h5: str | Path, scores_h5: str | Path, out_csv: str | Path,
                    seed: int = 0, fid_h5: str | Path | None = None, phi_pt: str | Path | None = None,
                    test_h5: str | Path | None = None) -> None:
    """rule metrics: results/{ds}/metrics.csv, one row per (alpha, class) and per alpha for all classes.

    Images add FID columns (from `fid_h5`, on `all` rows); series add TSTR/TRTR/TRTS (`phi_pt`, `test_h5`).
    """
    mdn = load_mdn(mdn_pt, dataset=dataset)
    test = Pairs.read(test_pairs_h5, dataset=dataset, y_dim=mdn.y_dim, cond_dim=mdn.cond_dim)
    drafts = DraftScores.read(scores_h5, dataset=dataset)
    tables = [ThresholdTable.from_csv(path, alpha) for alpha, path in zip(alphas, tau_csvs)]
    accepted = {t.alpha: accept(drafts.score, drafts.label, t) for t in tables}
    rows = metrics_table(dataset, tables, accepted, scores(mdn, test.y, test.e), test.y, test.label, drafts, mdn,
                         seed=seed)
    pooled = [r for r in rows if r["class"] == "all"]
    if fid_h5 is not None:
        feats, extractor = read_h5(fid_h5), read_h5_attrs(fid_h5)["extractor"]
        for r in pooled:
            r.update(fid_columns(feats, accepted[r["alpha"]], extractor))
    if phi_pt is not None and test_h5 is not None:
        real, _ = read_split(test_h5, dataset=dataset, split="test")
        x = DraftSamples.read(samples_h5, dataset=dataset).x
        cols = tstr_columns(Phi.load(phi_pt, dataset=dataset), x, drafts.label, accepted, real.x, real.label, seed)
        for r in pooled:
            r.update(cols[r["alpha"]])
    with atomic_path(out_csv) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False, float_format="%.6g")
    bad = [(r["alpha"], r["class"]) for r in rows if not r["in_band"]]
    if bad:
        log.warning("coverage outside its band (3 sigma) for (alpha, class) %s", bad)
