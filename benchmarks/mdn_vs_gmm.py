"""Held-out NLL of the MDN p(y | e) beside a per-class scikit-learn GaussianMixture(6, 'diag') baseline.

Both are fit on the train pairs only and evaluated on the test pairs (mean -log p(y | class), nats
per example, in the whitened PCA coordinates y). Run after `make run`:

    .venv/bin/python benchmarks/mdn_vs_gmm.py digits hapt
"""

from __future__ import annotations

import argparse

import numpy as np
from sklearn.mixture import GaussianMixture

from dualspace.artifacts import Pairs
from dualspace.stages.density import pair_nll


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("datasets", nargs="+")
    ap.add_argument("--results", default="results")
    ap.add_argument("--components", type=int, default=6)
    args = ap.parse_args()
    print("| dataset | d_y | n_train | n_test | MDN test NLL | per-class GMM(6, diag) test NLL | MDN - GMM |")
    print("|---|---|---|---|---|---|---|")
    for ds in args.datasets:
        r = f"{args.results}/{ds}"
        mdn_nll, test_label, _ = pair_nll(f"{r}/mdn/model.pt", f"{r}/pairs/test.h5")
        train, test = Pairs.read(f"{r}/pairs/train.h5"), Pairs.read(f"{r}/pairs/test.h5")
        y_tr, lab_tr, y_te, lab_te = train.y, train.label, test.y, test.label
        gmm_nll = np.empty(len(y_te))
        for c in np.unique(lab_tr):
            gmm = GaussianMixture(args.components, covariance_type="diag", random_state=0, reg_covar=1e-6)
            gmm.fit(y_tr[lab_tr == c])
            gmm_nll[lab_te == c] = -gmm.score_samples(y_te[lab_te == c])
        m, g = mdn_nll.mean(), gmm_nll.mean()
        print(f"| {ds} | {y_tr.shape[1]} | {len(y_tr)} | {len(y_te)} | {m:.2f} | {g:.2f} | {m - g:+.2f} |")


if __name__ == "__main__":
    main()
