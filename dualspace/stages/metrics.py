"""rules fid_features, metrics_base, metrics_alpha, tstr_alpha and fidelity (workflow/rules/metrics.smk). The
per-alpha stages import no torch: an alpha edit waits on them."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ..artifacts import ArtifactError, DraftSamples, DraftScores, Pairs, PairScores, Region
from ..conformal import ThresholdTable, accept
from ..data import read_split
from ..io import read_h5, read_h5_attrs, read_json, write_csv, write_h5, write_json
from ..metrics import (base_metrics, class_volume_draws, cluster_band_sigma, fid_accepted, fid_all, metrics_table,
                       real_trained_accuracies, tstr_accuracy)
from ..volume import VolumeDraws

log = logging.getLogger("dualspace")


def fid_features(samples_h5: str | Path, test_h5: str | Path, out_h5: str | Path, max_drafts: int,
                 weights: str | None, seed: int, max_real: int | None = None, dataset: str | None = None) -> None:
    """rule fid_features: Inception pool features of the real test split and of a fixed draft subsample
    (both subsampled at random, with the seed, when larger than max_drafts / max_real)."""
    from ..inception import inception_features

    x = DraftSamples.read(samples_h5, dataset=dataset).x
    idx = np.sort(np.random.default_rng(seed).choice(len(x), min(max_drafts, len(x)), replace=False))
    test_x = read_split(test_h5, dataset=dataset, split="test")[0].x
    if max_real is not None and len(test_x) > max_real:
        test_x = test_x[np.sort(np.random.default_rng(seed + 1).choice(len(test_x), max_real, replace=False))]
    f_test, desc = inception_features(test_x, weights)
    f_drafts, _ = inception_features(x[idx], weights)
    write_h5(out_h5, {"test": f_test, "drafts": f_drafts, "draft_index": idx.astype(np.int64)},
             {"extractor": desc, "drafts": str(samples_h5), "test": str(test_h5)})


def _threshold_ranges(cal: PairScores, mode: str) -> dict[int, list[float]]:
    # [smallest, largest] of the calibration scores a class's threshold is drawn from (its own, or all classes'
    # in marginal mode): every rank-rule threshold lies there; empty for a class without calibration points
    n_classes = int(cal.attrs["n_classes"])
    pools = {c: cal.score if mode == "marginal" else cal.score[cal.label == c] for c in range(n_classes)}
    return {c: [p.min(), p.max()] if len(p) else [] for c, p in pools.items()}


def metrics_base(dataset: str, test_pairs_h5: str | Path, samples_h5: str | Path, scores_h5: str | Path,
                 mdn_pt: str | Path, calib_scores_h5: str | Path, out_json: str | Path, out_volumes_h5: str | Path,
                 mode: str = "class", seed: int = 0, volume_samples: int = 4000, fid_h5: str | Path | None = None,
                 phi_pt: str | Path | None = None, test_h5: str | Path | None = None) -> None:
    """rule metrics_base: what every alpha's rows share, once per dataset.

    `out_json`: the alpha-independent columns (by class and "all"): distances of all drafts to real test;
    images add fid_all, series trtr_acc / trts_acc. `out_volumes_h5`: each class's region-volume draws
    (`metrics.class_volume_draws`, seed + c), the proposal fixed by the class's calibration score range, so
    every alpha's volume is read off the same draws and rises with alpha.
    """
    from ..density import load_mdn  # torch: this job runs once per dataset, not per alpha

    drafts = DraftScores.read(scores_h5, dataset=dataset)
    test = Pairs.read(test_pairs_h5, dataset=dataset)
    base = base_metrics(test.y, test.label, drafts)
    if fid_h5 is not None:
        base["all"].update(fid_all(read_h5(fid_h5), read_h5_attrs(fid_h5)["extractor"]))
    if phi_pt is not None and test_h5 is not None:
        from ..features import Phi

        real, _ = read_split(test_h5, dataset=dataset, split="test")
        x = DraftSamples.read(samples_h5, dataset=dataset).x
        base["all"].update(real_trained_accuracies(Phi.load(phi_pt, dataset=dataset), x, drafts.label, real.x,
                                                   real.label))
    tau_ranges = _threshold_ranges(PairScores.read(calib_scores_h5, dataset=dataset, split="calib"), mode)
    draws = class_volume_draws(load_mdn(mdn_pt, dataset=dataset), drafts.class_e, tau_ranges, volume_samples, seed)
    write_h5(out_volumes_h5, {f"class{c}_{k}": getattr(d, k) for c, d in draws.items()
                              for k in ("score", "log_w", "n_j")},
             {"dataset": dataset, "n_classes": len(draws), "mode": mode, "seed": seed})
    write_json(base, out_json)


def read_volume_draws(path: str | Path, dataset: str, n_classes: int) -> dict[int, VolumeDraws]:
    """The region-volume draws metrics_base wrote, by class."""
    arrays, attrs = read_h5(path), read_h5_attrs(path)
    if attrs.get("dataset") != dataset or attrs.get("n_classes") != n_classes:
        raise ArtifactError(f"volume draws {path} are of dataset '{attrs.get('dataset')}' with "
                            f"{attrs.get('n_classes')} classes, not '{dataset}' with {n_classes}. Delete it and "
                            f"rerun `snakemake {path}`")
    return {c: VolumeDraws(*(arrays[f"class{c}_{k}"] for k in ("score", "log_w", "n_j"))) for c in range(n_classes)}


def metrics_alpha(dataset: str, alpha: float, tau_csv: str | Path, base_json: str | Path, volumes_h5: str | Path,
                  test_pairs_h5: str | Path, test_scores_h5: str | Path, calib_scores_h5: str | Path,
                  scores_h5: str | Path, test_h5: str | Path, calib_h5: str | Path, out_csv: str | Path,
                  seed: int = 0, fid_h5: str | Path | None = None, mode: str = "class",
                  cluster_boot: int = 500) -> None:
    """rule metrics_alpha: the rows of one alpha (one per class and `all`), so an alpha edit recomputes that alpha.

    Everything here is read from files made once per dataset (scores of calib and test, volume draws, the
    alpha-free columns): no model is loaded. Images add fid_accepted (from `fid_h5`, on the `all` row). Where
    the calib and test split files carry groups (subjects), the coverage band's sigma is the subject-level
    cluster bootstrap.
    """
    test = Pairs.read(test_pairs_h5, dataset=dataset)
    test_sc = PairScores.read(test_scores_h5, dataset=dataset, split="test")
    cal = PairScores.read(calib_scores_h5, dataset=dataset, split="calib")
    if not np.array_equal(test_sc.label, test.label):
        raise ArtifactError(f"pair scores {test_scores_h5} do not score the pairs of {test_pairs_h5} (labels differ); "
                            f"delete it and rerun `snakemake {test_scores_h5}`")
    drafts = DraftScores.read(scores_h5, dataset=dataset)
    table = ThresholdTable.from_csv(tau_csv, alpha)
    accepted = accept(drafts.score, drafts.label, table)
    n_classes = int(cal.attrs["n_classes"])
    real_groups = read_split(test_h5, dataset=dataset, split="test")[0].groups
    calib_groups = read_split(calib_h5, dataset=dataset, split="calib")[0].groups
    cluster = None
    if real_groups is not None and calib_groups is not None:
        cluster = {alpha: cluster_band_sigma(cal.score, cal.label, calib_groups, test_sc.score, test.label,
                                             real_groups, alpha, n_classes, mode, cluster_boot, seed)}
    base = read_json(base_json, "base metrics")
    rows = metrics_table(dataset, [table], {alpha: accepted}, test_sc.score, test.y, test.label, drafts,
                         read_volume_draws(volumes_h5, dataset, n_classes), cluster_sigmas=cluster, base=base)
    if fid_h5 is not None:
        rows[-1].update(fid_accepted(read_h5(fid_h5), accepted))
    write_csv(pd.DataFrame(rows), out_csv, float_format="%.6g")


def tstr_alpha(dataset: str, alpha: float, tau_csv: str | Path, phi_pt: str | Path, samples_h5: str | Path,
               scores_h5: str | Path, test_h5: str | Path, out_csv: str | Path, seed: int = 0) -> None:
    """rule tstr_alpha: train-synthetic-test-real of one alpha (series): a fresh classifier of phi's architecture
    trained on the accepted drafts, tested on real test (empty under 10 accepted drafts). Its own job, beside
    metrics_alpha: it trains a network, and metrics.csv and the figures do not wait for it."""
    from ..features import Phi

    drafts = DraftScores.read(scores_h5, dataset=dataset)
    accepted = accept(drafts.score, drafts.label, ThresholdTable.from_csv(tau_csv, alpha))
    real = read_split(test_h5, dataset=dataset, split="test")[0]
    x = DraftSamples.read(samples_h5, dataset=dataset).x
    acc = tstr_accuracy(Phi.load(phi_pt, dataset=dataset), x, drafts.label, accepted, real.x, real.label, seed)
    row = {"dataset": dataset, "alpha": alpha, "n_accepted": int(accepted.sum()), "tstr_acc": acc}
    write_csv(pd.DataFrame([row]), out_csv, float_format="%.6g")


def draft_fidelity(test_h5: str | Path, train_h5: str | Path, samples_h5: str | Path, region_h5: str | Path,
                   alpha: float, settings: dict, seed: int, out_csv: str | Path, out_png: str | Path,
                   dataset: str | None = None) -> pd.DataFrame:
    """rule fidelity: the raw-signal diagnostics of `dualspace.fidelity`, real test data against all drafts and
    against the drafts the alpha region accepts, per class; the table and the figure. Two real references
    bound what a generator can reach: real half against real half (sampling noise) and the real train split
    (what a perfect copy of the training data would score; held-out subjects differ). A row whose `ok` is
    false misses one of the configured tolerances."""
    from ..fidelity import MIN_EXAMPLES, FidelityConfig, fidelity_table
    from ..fidelity import profiles as fidelity_profiles
    from ..plots import fidelity_figure

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
    write_csv(df, out_csv)
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
