"""Test-split coverage of the conformal regions of a finished run, per class and alpha, against the band.

The last column re-splits the pooled calib + test scores of the same run at random (`--resplits`
times, same sizes) and recalibrates: its mean shows whether the thresholds are right on average,
independently of the luck of the one split the run used.

A real test example of class c is covered when its score s = -log p(phi(x) | g(c)) is <= tau_c.
The band is [alpha, alpha + 1/(n_c + 1)]; "3 sigma" widens it by the binomial noise of the test
draw plus the Beta spread of the calibration draw. Run after `make run`:

    .venv/bin/python benchmarks/coverage.py digits hapt
"""

from __future__ import annotations

import argparse

import numpy as np
import yaml

from dualspace.conformal import ThresholdTable, class_thresholds
from dualspace.metrics import band_sigma
from dualspace.stages.density import pair_nll


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("datasets", nargs="+")
    ap.add_argument("--results", default="results")
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--resplits", type=int, default=200)
    args = ap.parse_args()
    alphas = yaml.safe_load(open(args.config))["alphas"]
    print("| dataset | alpha | classes in band (3 sigma) | min coverage | max coverage | pooled coverage | pooled band "
          "| pooled coverage over re-splits (mean +- sd) |")
    print("|---|---|---|---|---|---|---|---|")
    for ds in args.datasets:
        r = f"{args.results}/{ds}"
        s, label, attrs = pair_nll(f"{r}/mdn/model.pt", f"{r}/pairs/test.h5")
        cal_s, cal_label, _ = pair_nll(f"{r}/mdn/model.pt", f"{r}/pairs/calib.h5")
        pool_s, pool_label = np.concatenate([cal_s, s]), np.concatenate([cal_label, label])
        n_classes, n_calib_total = int(attrs["n_classes"]), len(cal_s)
        for alpha in alphas:
            table = ThresholdTable.from_csv(f"{r}/conformal/tau_alpha{alpha}.csv", alpha)
            covered = s <= table.tau_for(label)
            covs, ok = [], 0
            for c, n_cal, hi in zip(table.classes, table.n_calib, table.coverage_upper):
                cov = covered[label == c].mean()
                sigma = band_sigma(alpha, int((label == c).sum()), int(n_cal))
                ok += alpha - 3 * sigma <= cov <= hi + 3 * sigma
                covs.append(cov)
            pooled_hi = float(np.average(table.coverage_upper, weights=np.bincount(label)))
            rng, resplit = np.random.default_rng(0), []
            for _ in range(args.resplits):
                p = rng.permutation(len(pool_s))
                t = class_thresholds(pool_s[p[:n_calib_total]], pool_label[p[:n_calib_total]], alpha, n_classes)
                resplit.append(np.mean(pool_s[p[n_calib_total:]] <= t.tau_for(pool_label[p[n_calib_total:]])))
            print(f"| {ds} | {alpha} | {ok}/{len(covs)} | {min(covs):.3f} | {max(covs):.3f} | {covered.mean():.3f} "
                  f"| [{alpha}, {pooled_hi:.3f}] | {np.mean(resplit):.3f} +- {np.std(resplit):.3f} |")


if __name__ == "__main__":
    main()
