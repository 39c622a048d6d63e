"""One function per workflow rule: paths and plain config dicts in, files out.

The Snakemake scripts only unpack `snakemake.*` and call these, so every stage also runs from a
notebook or a test without Snakemake.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .data import read_split
from .diffusion import DiffusionConfig, TrainConfig, train_diffusion

log = logging.getLogger("dualspace")


@contextlib.contextmanager
def _config_section(section: str):
    """Name the config section in the error when a settings dict has a key the dataclass lacks."""
    try:
        yield
    except TypeError as e:
        raise TypeError(f"config section '{section}': {e}") from None


def _config(cls, settings: Mapping[str, Any] | None, section: str):
    with _config_section(section):
        return cls(**dict(settings or {}))


def train_generator(train_h5: str | Path, out_path: str | Path, settings: Mapping[str, Any], seed: int,
                    dataset: str, device: str = "auto", expect_gpu: bool = False) -> None:
    """rule train_generator: fit the conditional diffusion model on a train split file."""
    split, attrs = read_split(train_h5)
    s = dict(settings)
    train = _config(TrainConfig, s.pop("train", {}), f"{dataset}.generator.train")
    with _config_section(f"{dataset}.generator"):
        cfg = DiffusionConfig.from_dict(s)
    train.seed, train.device, train.expect_gpu = seed, device, expect_gpu
    cfg.net.in_channels = split.x.shape[1]
    cfg.net.dims = split.x.ndim - 2
    log.info("training %s generator on %s: x %s, %s", dataset, train_h5, split.x.shape, cfg.to_dict())
    meta = {"dataset": attrs["dataset"], "class_names": list(attrs["class_names"]), "kind": attrs["kind"]}
    train_diffusion(split.x, split.label, int(attrs["n_classes"]), cfg, train, out_path, data_meta=meta)


def fit_phi(train_h5: str | Path, out_path: str | Path, settings: Mapping[str, Any], seed: int, dataset: str,
            device: str = "auto", expect_gpu: bool = False) -> None:
    """rule fit_phi: train phi as a classifier on the train split, freeze it, fit PCA on train features."""
    from .features import PhiConfig, fit_phi as _fit
    from .runtime import pick_device

    split, attrs = read_split(train_h5)
    cfg = _config(PhiConfig, settings, f"{dataset}.phi")
    phi = _fit(split.x, split.label, attrs["kind"], int(attrs["n_classes"]), cfg, seed,
               pick_device(device, expect_gpu))
    phi.info["dataset"] = dataset
    phi.save(out_path)


def dump_pairs(generator_pt: str | Path, phi_pt: str | Path, split_h5: str | Path, out_h5: str | Path,
               device: str = "auto", expect_gpu: bool = False) -> None:
    """rule dump_pairs: (e = g(c), y = PCA(phi(x)), label) for every example of one split."""
    from .features import Phi
    from .generator import load_generator
    from .io import write_h5
    from .runtime import pick_device

    split, attrs = read_split(split_h5)
    gen = load_generator(generator_pt, dataset=attrs["dataset"], shape=split.x.shape[1:],
                         n_classes=int(attrs["n_classes"]))
    phi = Phi.load(phi_pt).to(pick_device(device, expect_gpu))
    _, y = phi(split.x)
    e = gen.embed(split.label)
    write_h5(out_h5, {"e": e, "y": y, "label": split.label},
             {"dataset": attrs["dataset"], "split": attrs["split"], "n_classes": int(attrs["n_classes"]),
              "generator": str(generator_pt), "phi": str(phi_pt), "source": str(split_h5)})
    log.info("%s: %d pairs, e %s, y %s", out_h5, len(y), e.shape, y.shape)


def read_pairs(path: str | Path, y_dim: int | None = None, cond_dim: int | None = None):
    """(e, y, label, attrs) of a pair dump, with its widths checked."""
    from .io import read_h5, read_h5_attrs

    arrays = read_h5(path, ["e", "y", "label"])
    for name, want in (("y", y_dim), ("e", cond_dim)):
        if want is not None and arrays[name].shape[1] != want:
            raise ValueError(f"{path}: dataset '{name}' has width {arrays[name].shape[1]}, expected {want}; "
                             "the pairs were dumped with another phi/generator, rerun dump_pairs")
    return arrays["e"], arrays["y"], arrays["label"], read_h5_attrs(path)


def train_mdn(train_pairs_h5: str | Path, out_path: str | Path, settings: Mapping[str, Any], seed: int,
              dataset: str) -> None:
    """rule train_mdn: fit p_psi(y | e) on train pairs (early stopping on a slice of train)."""
    from .density import MDNConfig, fit_mdn, save_mdn

    e, y, _, _ = read_pairs(train_pairs_h5)
    cfg = _config(MDNConfig, settings, f"{dataset}.mdn")
    model, summary = fit_mdn(e, y, cfg, seed)
    save_mdn(model, cfg, summary, out_path)


def pair_scores(mdn_pt: str | Path, pairs_h5: str | Path):
    """Scores s = -log p(y | e) of a pair dump under the MDN: (scores, labels, attrs)."""
    from .density import load_mdn, scores

    mdn = load_mdn(mdn_pt)
    e, y, label, attrs = read_pairs(pairs_h5, y_dim=mdn.y_dim, cond_dim=mdn.cond_dim)
    return scores(mdn, y, e), label, attrs


def calibrate(mdn_pt: str | Path, calib_pairs_h5: str | Path, alpha: float, mode: str, out_csv: str | Path) -> None:
    """rule calibrate: per-class (or marginal) conformal thresholds for one alpha -> CSV."""
    import pandas as pd

    from .conformal import class_thresholds
    from .io import atomic_path

    s, label, attrs = pair_scores(mdn_pt, calib_pairs_h5)
    table = class_thresholds(s, label, alpha, int(attrs["n_classes"]), mode=mode)
    with atomic_path(out_csv) as tmp:
        pd.DataFrame(table.rows()).to_csv(tmp, index=False, float_format="%.10g")
    log.info("alpha %s: tau %s", alpha, np.round(table.tau, 3).tolist())


def read_thresholds(path: str | Path, alpha: float):
    """A tau CSV back as a ThresholdTable."""
    import pandas as pd

    from .conformal import ThresholdTable

    df = pd.read_csv(path)
    return ThresholdTable(alpha, df["class"].to_numpy(), df["n_calib"].to_numpy(), df["k"].to_numpy(),
                          df["tau"].to_numpy(dtype=np.float64))


def sample_drafts(generator_pt: str | Path, phi_pt: str | Path, mdn_pt: str | Path, out_h5: str | Path, K: int,
                  sampler: Mapping[str, Any], seed: int, dataset: str, bf16: bool = False, device: str = "auto",
                  expect_gpu: bool = False) -> None:
    """rule sample_drafts: K drafts per class, their features, PCA coordinates and scores (once per dataset)."""
    from .density import load_mdn, scores
    from .diffusion import SamplerConfig
    from .features import Phi
    from .generator import load_generator
    from .io import write_h5
    from .runtime import pick_device

    dev = pick_device(device, expect_gpu)
    gen = load_generator(generator_pt, device=dev, dataset=dataset)
    phi, mdn = Phi.load(phi_pt).to(dev), load_mdn(mdn_pt)
    cfg = _config(SamplerConfig, sampler, f"{dataset}.sampler")
    labels = np.repeat(np.arange(gen.n_classes), K)
    x = gen.sample(labels, seed=seed, sampler=cfg, bf16=bf16)
    feats, y = phi(x)
    s = scores(mdn, y, gen.embed(labels))
    write_h5(out_h5, {"x": x, "phi": feats, "y": y, "score": s, "label": labels},
             {"dataset": dataset, "K": K, "seed": seed, "sampler": cfg.to_dict(), "generator": str(generator_pt)})
    log.info("%d drafts (%d per class), score range [%.2f, %.2f]", len(x), K, s.min(), s.max())


def select_region(drafts_h5: str | Path, tau_csv: str | Path, alpha: float, m: int, out_h5: str | Path,
                  out_csv: str | Path, out_png: str | Path, class_names: list[str] | None = None) -> None:
    """rule select_region: accepted drafts (s <= tau_c), acceptance per class, m representatives per class."""
    import pandas as pd

    from .conformal import accept
    from .io import atomic_path, read_h5, read_h5_attrs, write_h5
    from .plots import representatives_figure
    from .regions import representatives

    d = read_h5(drafts_h5)
    attrs = read_h5_attrs(drafts_h5)
    table = read_thresholds(tau_csv, alpha)
    n_classes = len(table.classes) if table.classes[0] != -1 else int(d["label"].max()) + 1
    ok = accept(d["score"], d["label"], table)
    reps = representatives(d["phi"], d["score"], d["label"], ok, m, n_classes)
    rep_idx = np.concatenate([reps[c] for c in range(n_classes)]).astype(np.int64)
    write_h5(out_h5, {"accepted_index": np.flatnonzero(ok).astype(np.int64), "x": d["x"][ok], "phi": d["phi"][ok],
                      "y": d["y"][ok], "score": d["score"][ok], "label": d["label"][ok],
                      "representative_index": rep_idx, "representative_x": d["x"][rep_idx],
                      "representative_label": d["label"][rep_idx]},
             {"alpha": alpha, "dataset": attrs.get("dataset", ""), "drafts": str(drafts_h5), "tau": str(tau_csv)})
    rows = [{"class": c, "n_drafts": int((d["label"] == c).sum()), "n_accepted": int((ok & (d["label"] == c)).sum()),
             "acceptance_rate": float(ok[d["label"] == c].mean()) if (d["label"] == c).any() else float("nan"),
             "n_representatives": len(reps[c])} for c in range(n_classes)]
    with atomic_path(out_csv) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)
    representatives_figure(d["x"], reps, class_names or [str(c) for c in range(n_classes)],
                           f"{attrs.get('dataset', '')}: representatives, alpha = {alpha}", out_png)


def fid_features(drafts_h5: str | Path, test_h5: str | Path, out_h5: str | Path, max_drafts: int,
                 weights: str | None, seed: int, max_real: int | None = None) -> None:
    """rule fid_features: Inception pool features of the real test split and of a fixed draft subsample
    (both subsampled at random, with the seed, when larger than max_drafts / max_real)."""
    from .fid import inception_features
    from .io import read_h5, write_h5

    x = read_h5(drafts_h5, ["x"])["x"]
    idx = np.sort(np.random.default_rng(seed).choice(len(x), min(max_drafts, len(x)), replace=False))
    test_x = read_split(test_h5)[0].x
    if max_real is not None and len(test_x) > max_real:
        test_x = test_x[np.sort(np.random.default_rng(seed + 1).choice(len(test_x), max_real, replace=False))]
    f_test, desc = inception_features(test_x, weights)
    f_drafts, _ = inception_features(x[idx], weights)
    write_h5(out_h5, {"test": f_test, "drafts": f_drafts, "draft_index": idx.astype(np.int64)},
             {"extractor": desc, "drafts": str(drafts_h5), "test": str(test_h5)})


def compute_metrics(dataset: str, alphas: list[float], tau_csvs: list[str | Path], mdn_pt: str | Path,
                    test_pairs_h5: str | Path, drafts_h5: str | Path, generator_pt: str | Path, out_csv: str | Path,
                    seed: int = 0, fid_h5: str | Path | None = None, phi_pt: str | Path | None = None,
                    test_h5: str | Path | None = None) -> None:
    """rule metrics: results/{ds}/metrics.csv, one row per (alpha, class) and per alpha for all classes.

    Images add FID columns (from `fid_h5`, on `all` rows); series add TSTR/TRTR/TRTS (`phi_pt`, `test_h5`).
    """
    import pandas as pd

    from .conformal import accept
    from .density import load_mdn, scores
    from .evaluation import metrics_table
    from .generator import load_generator
    from .io import atomic_path, read_h5

    mdn = load_mdn(mdn_pt)
    test_e, test_y, test_label, _ = read_pairs(test_pairs_h5, y_dim=mdn.y_dim, cond_dim=mdn.cond_dim)
    test_scores = scores(mdn, test_y, test_e)
    drafts = read_h5(drafts_h5, ["y", "label", "score"])
    gen = load_generator(generator_pt, dataset=dataset)
    tables = [read_thresholds(path, alpha) for alpha, path in zip(alphas, tau_csvs)]
    rows = metrics_table(dataset, tables, test_scores, test_y, test_label, drafts, mdn,
                         gen.embed(np.arange(gen.n_classes)), seed=seed)
    accepted = {t.alpha: accept(drafts["score"], drafts["label"], t) for t in tables}
    pooled = [r for r in rows if r["class"] == "all"]
    if fid_h5 is not None:
        from .evaluation import fid_columns
        from .io import read_h5_attrs

        feats, extractor = read_h5(fid_h5), read_h5_attrs(fid_h5)["extractor"]
        for r in pooled:
            r.update(fid_columns(feats, accepted[r["alpha"]], extractor))
    if phi_pt is not None and test_h5 is not None:
        from .evaluation import tstr_columns
        from .features import Phi

        test, _ = read_split(test_h5)
        x = read_h5(drafts_h5, ["x"])["x"]
        cols = tstr_columns(Phi.load(phi_pt), x, drafts["label"], accepted, test.x, test.label, seed)
        for r in pooled:
            r.update(cols[r["alpha"]])
    with atomic_path(out_csv) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False, float_format="%.6g")
    bad = [(r["alpha"], r["class"]) for r in rows if not r["in_band"]]
    if bad:
        log.warning("coverage outside its band (3 sigma) for (alpha, class) %s", bad)


def make_figures(metrics_csv: str | Path, drafts_h5: str | Path, test_pairs_h5: str | Path, region_h5: str | Path,
                 tau_csv: str | Path, alpha: float, class_names: list[str], outputs: Mapping[str, str | Path]) -> None:
    """rule figures: every figure of one dataset from files that already exist (seconds, no model runs)."""
    import pandas as pd

    from . import plots
    from .conformal import accept
    from .io import read_h5

    df = pd.read_csv(metrics_csv, dtype={"class": str})
    plots.calibration_curve(df, outputs["calibration"])
    plots.class_coverage(df, outputs["class_coverage"])
    plots.acceptance_rate(df, outputs["acceptance"])
    plots.distances(df, outputs["distances"])
    d = read_h5(drafts_h5, ["y", "score", "label", "x"])
    _, test_y, _, _ = read_pairs(test_pairs_h5)
    ok = accept(d["score"], d["label"], read_thresholds(tau_csv, alpha))
    ds = str(df["dataset"].iloc[0])
    plots.projection(d["y"], ok, test_y, alpha, ds, outputs["projection"])
    region = read_h5(region_h5, ["representative_index", "representative_label"])
    reps = {c: region["representative_index"][region["representative_label"] == c] for c in range(len(class_names))}
    plots.representatives_figure(d["x"], reps, class_names, f"{ds}: representatives, alpha = {alpha}",
                                 outputs["representatives"])
