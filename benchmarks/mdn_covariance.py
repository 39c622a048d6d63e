"""MDN covariance families on a finished run's pairs: NLL, conformal coverage and region log-volume.

Per dataset, MDNs are fit on the train pairs with the config's `<ds>.mdn` settings except the
covariance: diagonal (the config's M), lowrank (rank 4 and 8), full (the config's M), and the
reference of the kind Dheur et al. 2025 benchmark, full covariance with K chosen by early-stopping
NLL from {1, 2, 4}. For each: the early-stopping ("val") NLL on its slice of train, the mean test
NLL, and per alpha the class thresholds on calib scores, the pooled test coverage and the log of the
mean over classes of the region's volume, Vol{y : -log p(y | e_c) <= tau_c} (`dualspace.volume`,
n = 4000 draws, seed c). Regions are only comparable at equal coverage. Run after `make run`, on one
thread:

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/mdn_covariance.py digits hapt
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from scipy.special import logsumexp

from dualspace.artifacts import Pairs
from dualspace.conformal import class_thresholds
from dualspace.density import MDNConfig, fit_mdn, scores
from dualspace.volume import GaussianMixture, log_volumes

REFERENCE_K = (1, 2, 4)  # the reference's mixture sizes, chosen among by early-stopping NLL
VOLUME_DRAWS = 4000


def variants(base: dict, max_epochs_full: int | None) -> list[tuple[str, list[dict]]]:
    """(name, candidate settings): a variant with several candidates keeps the lowest early-stopping NLL."""
    full = {"covariance": "full"} | ({"max_epochs": max_epochs_full} if max_epochs_full else {})
    return [("diagonal", [base | {"covariance": "diagonal"}]),
            ("lowrank r4", [base | {"covariance": "lowrank", "rank": 4}]),
            ("lowrank r8", [base | {"covariance": "lowrank", "rank": 8}]),
            ("full", [base | full]),
            ("reference: full, K by val NLL", [base | full | {"n_components": k} for k in REFERENCE_K])]


def evaluate(mdn, train: Pairs, calib: Pairs, test: Pairs, alphas: list[float], n_classes: int) -> dict:
    """Mean test NLL and, per alpha, pooled test coverage and log mean-over-classes region volume."""
    cal_s, test_s = scores(mdn, calib.y, calib.e), scores(mdn, test.y, test.e)
    tables = [class_thresholds(cal_s, calib.label, a, n_classes) for a in alphas]
    coverage = [float(np.mean(test_s <= t.tau_for(test.label))) for t in tables]
    log_vol = np.empty((n_classes, len(alphas)))  # (C, A)
    for c in range(n_classes):
        e_c = train.e[np.flatnonzero(train.label == c)[0]]  # e = g(c): the same for every pair of class c
        taus = [t.tau_for(np.array([c]))[0] for t in tables]
        est = log_volumes(GaussianMixture.from_mdn(mdn, e_c), np.array(taus), n=VOLUME_DRAWS, seed=c)
        log_vol[c] = [v.log_volume for v in est]
    return {"test_nll": float(test_s.mean()), "coverage": coverage,
            "log_volume": (logsumexp(log_vol, axis=0) - math.log(n_classes)).tolist()}


def run_dataset(ds: str, root: Path, config: dict, max_epochs_full: int | None) -> str | None:
    """Fit and evaluate every variant on one dataset; its markdown table, or None when its pairs are missing."""
    paths = {split: root / ds / "pairs" / f"{split}.h5" for split in ("train", "calib", "test")}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        print(f"\n{ds}: skipped, missing {', '.join(missing)} (build with `snakemake {' '.join(missing)}`)\n")
        return None
    train, calib, test = (Pairs.read(paths[s], dataset=ds) for s in ("train", "calib", "test"))
    n_classes, alphas = int(train.attrs["n_classes"]), list(config["alphas"])
    rows = []
    for name, candidates in variants(dict(config[ds]["mdn"]), max_epochs_full):
        start, fits = time.perf_counter(), []
        for settings in candidates:
            fits.append((settings, *fit_mdn(train.e, train.y, MDNConfig(**settings), config["seed"])))
        seconds = time.perf_counter() - start
        settings, mdn, summary = min(fits, key=lambda f: f[2]["best_val_nll"])
        if len(candidates) > 1:
            tried = ", ".join(f"K={s['n_components']}: {f['best_val_nll']:.2f}" for s, _, f in fits)
            name = f"{name} (K={settings['n_components']}; {tried})"
        rows.append({"variant": name, "M": settings["n_components"], "val_nll": summary["best_val_nll"],
                     "epochs": summary["epochs"], "fit_s": seconds,
                     **evaluate(mdn, train, calib, test, alphas, n_classes)})
        print(f"  {ds} {name}: {rows[-1]}", flush=True)
    return table(ds, rows, alphas, (len(train.label), len(calib.label), len(test.label)), train.y.shape[1])


def table(ds: str, rows: list[dict], alphas: list[float], n: tuple[int, int, int], y_dim: int) -> str:
    """Markdown: one row per variant, coverage and log-volume per alpha, and log-volume minus the reference's."""
    ref = rows[-1]
    head = ["variant", "M", "val NLL", "test NLL", "epochs", "fit s"]
    head += [f"{kind} {a}" for a in alphas for kind in ("cov", "logV")]
    head += [f"logV - ref {a}" for a in alphas]
    out = [f"### {ds} (y_dim {y_dim}; train / calib / test pairs {n[0]} / {n[1]} / {n[2]})", "",
           "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["variant"], str(r["M"]), f"{r['val_nll']:.2f}", f"{r['test_nll']:.2f}", str(r["epochs"]),
                 f"{r['fit_s']:.0f}"]
        cells += [x for c, v in zip(r["coverage"], r["log_volume"]) for x in (f"{c:.3f}", f"{v:.1f}")]
        cells += [f"{v - w:+.1f}" for v, w in zip(r["log_volume"], ref["log_volume"])]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("datasets", nargs="+")
    ap.add_argument("--results", default="results")
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--max-epochs-full", type=int, default=None, help="cap max_epochs of the full-covariance fits")
    args = ap.parse_args()
    torch.set_num_threads(1)
    config = yaml.safe_load(open(args.config))
    tables = [run_dataset(ds, Path(args.results), config, args.max_epochs_full) for ds in args.datasets]
    print("\n\n".join(t for t in tables if t))


if __name__ == "__main__":
    main()
