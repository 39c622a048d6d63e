"""rules fid_features and metrics (workflow/rules/metrics.smk)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ..artifacts import ArtifactError, DraftSamples, DraftScores, Pairs, Region
from ..conformal import ThresholdTable, accept
from ..data import read_split
from ..density import load_mdn, scores
from ..features import Phi
from ..fid import inception_features
from ..fidelity import MIN_EXAMPLES, FidelityConfig, fidelity_table
from ..fidelity import profiles as fidelity_profiles
from ..io import atomic_path, read_h5, read_h5_attrs, write_h5
from ..metrics import THREE_SIGMA_TWO_SIDED, cluster_band_sigma, fid_columns, metrics_table, tstr_columns
from ..plots import fidelity_figure
from .density import pair_scores

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
                    test_h5: str | Path | None = None, calib_pairs_h5: str | Path | None = None,
                    calib_h5: str | Path | None = None, mode: str = "class", cluster_boot: int = 500) -> None:
    """rule metrics: results/{ds}/metrics.csv, one row per (alpha, class) and per alpha for all classes.

    Images add FID columns (from `fid_h5`, on `all` rows); series add TSTR/TRTR/TRTS (`phi_pt`, `test_h5`).
    Where the calib and test split files (`calib_h5`, `test_h5`) carry groups (subjects), the coverage band's
    sigma is the subject-level cluster bootstrap over calib (`calib_pairs_h5`) and test scores.
    """
    mdn = load_mdn(mdn_pt, dataset=dataset)
    test = Pairs.read(test_pairs_h5, dataset=dataset, y_dim=mdn.y_dim, cond_dim=mdn.cond_dim)
    drafts = DraftScores.read(scores_h5, dataset=dataset)
    tables = [ThresholdTable.from_csv(path, alpha) for alpha, path in zip(alphas, tau_csvs)]
    accepted = {t.alpha: accept(drafts.score, drafts.label, t) for t in tables}
    test_s = scores(mdn, test.y, test.e)
    cluster = None
    if test_h5 is not None and calib_h5 is not None and calib_pairs_h5 is not None:
        test_groups = read_split(test_h5, dataset=dataset, split="test")[0].groups
        calib_groups = read_split(calib_h5, dataset=dataset, split="calib")[0].groups
        if test_groups is not None and calib_groups is not None:
            cal_s, cal_label, attrs = pair_scores(mdn_pt, calib_pairs_h5, dataset)
            cluster = {t.alpha: cluster_band_sigma(cal_s, cal_label, calib_groups, test_s, test.label, test_groups,
                                                   t.alpha, int(attrs["n_classes"]), mode, cluster_boot, seed)
                       for t in tables}
            log.info("coverage band: cluster bootstrap over %d subjects (%d replicates)",
                     len(np.unique(np.concatenate([calib_groups, test_groups]))), cluster_boot)
    rows = metrics_table(dataset, tables, accepted, test_s, test.y, test.label, drafts, mdn, seed=seed,
                         cluster_sigmas=cluster)
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
    cells = [r for r in rows if r["class"] != "all" and r["n_test"]]
    bad = [(r["alpha"], r["class"], round(r["band_z"], 1)) for r in rows if not r["in_band"]]
    log.info("coverage: %d of %d (alpha, class) cells outside the 3-sigma band (%s sigma); a 3-sigma band expects "
             "%.2f by chance", sum(not r["in_band"] for r in cells), len(cells), rows[0]["band_sigma_kind"],
             len(cells) * THREE_SIGMA_TWO_SIDED)
    if bad:
        log.warning("coverage outside its band (3 sigma) for (alpha, class, sigmas out) %s", bad)


def draft_fidelity(test_h5: str | Path, train_h5: str | Path, samples_h5: str | Path, region_h5: str | Path,
                   alpha: float, settings: dict, seed: int, out_csv: str | Path, out_png: str | Path,
                   dataset: str | None = None) -> pd.DataFrame:
    """rule fidelity: the raw-signal diagnostics of `dualspace.fidelity`, real test data against all drafts and
    against the drafts the alpha region accepts, per class; the table and the figure. Two real references
    bound what a generator can reach: real half against real half (sampling noise) and the real train split
    (what a perfect copy of the training data would score; held-out subjects differ). A row whose `ok` is
    false misses one of the configured tolerances."""
    cfg = FidelityConfig.from_dict(settings)
    test, _ = read_split(test_h5, dataset=dataset, split="test")
    train, _ = read_split(train_h5, dataset=dataset, split="train")
    drafts = DraftSamples.read(samples_h5, dataset=dataset)
    region = Region.read(region_h5, dataset=dataset)
    if tuple(drafts.x.shape[1:]) != tuple(test.x.shape[1:]):
        raise ArtifactError(f"draft samples {samples_h5} have shape {drafts.x.shape[1:]}, the test split {test_h5} "
                            f"{test.x.shape[1:]}: rebuild the drafts (`snakemake {samples_h5}`)")
    kind = "series" if test.x.ndim == 3 else "image"
    ok = region.accepted_index
    others = {"train": (train.x, train.label), "drafts": (drafts.x, drafts.label),
              "accepted": (drafts.x[ok], drafts.label[ok])}
    class_names = list(drafts.attrs["class_names"])
    rows = fidelity_table(test.x, test.label, others, kind, class_names, cfg, seed)
    df = pd.DataFrame(rows)
    df.insert(0, "dataset", drafts.attrs["dataset"])
    df.insert(3, "alpha", alpha)
    with atomic_path(out_csv) as tmp:
        df.to_csv(tmp, index=False)
    draft_rows = df["compared"].isin(["drafts", "accepted"]) & (df["class"] != "all")
    bad = df[draft_rows & ~df["ok"]]
    log.info("fidelity of %s: %d rows; %d of %d per-class draft rows miss a tolerance of %s", dataset or "drafts",
             len(df), len(bad), int(draft_rows.sum()), cfg.tolerance)
    for _, r in bad.iterrows():
        log.warning("fidelity: %s %s (%s) misses a tolerance: %s", r["dataset"], r["class"], r["compared"],
                    ", ".join(f"{k} {r[k]:.3g}" for k in ("edge_ratio", "psd_log10_high", "std_ratio") if k in r))

    def per_class(x, label):
        return [fidelity_profiles(x[label == c], kind) if (label == c).sum() >= MIN_EXAMPLES else None
                for c in range(len(class_names))]

    sets = {"real test": per_class(test.x, test.label), "real train": per_class(train.x, train.label),
            "drafts": per_class(drafts.x, drafts.label),
            f"accepted (alpha {alpha})": per_class(*others["accepted"])}
    fidelity_figure(sets, kind, class_names, f"{drafts.attrs['dataset']}: draft fidelity (raw signal)", out_png)
    return df
