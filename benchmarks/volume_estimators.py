"""Region log-volume estimators side by side: the old one, the new `dualspace.volume`, and Dheur et al.'s.

R = {y : -log p(y) <= tau}. On Gaussian balls (d = 2, 16, 64; tau the alpha-quantile of p's own scores)
every estimate is set against the closed form; on the fitted MDNs (class 0 at the conformal thresholds)
against the new estimator at 10x the draws. Each row's estimators are timed separately, one tau each.

- old: E_p[1{s <= tau} e^s] on n scores of draws from p (what metrics.csv used before `dualspace.volume`).
- new: `volume.log_volumes`, defensive scale-mixture importance sampling, n draws, with its se.
- Dheur: Dheur et al. 2025, github.com/Vekteur/multi-output-conformal-regression, reimplemented below.

    .venv/bin/python benchmarks/volume_estimators.py
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.special import gammaln, logsumexp
from scipy.stats import chi2
from torch.distributions import MultivariateNormal

from dualspace.artifacts import Pairs
from dualspace.density import load_mdn
from dualspace.volume import GaussianMixture, log_volumes

ALPHAS = (0.5, 0.8, 0.85, 0.9, 0.95, 0.99)
DHEUR_SAMPLES = 100  # their default: MetricsComputer(n_samples_for_region_size=100)


def dheur_log_region_size(dist: torch.distributions.Distribution, tau: float, n_samples: int) -> float:
    """Dheur et al.'s log region size of the DR-CP region {-log p <= tau}, batch of one.

    moc/metrics/metrics_computer.py, `compute_cum_log_region_size` (its last row is
    `compute_log_region_size`), and the clamp in `MetricsComputer.compute_metrics_on_batch`; the region
    test is `ConformalizerBase.is_in_region` (moc/conformal/base_conformalizer.py) with DR_CP's score
    `nll` = -dist.log_prob(y) (moc/conformal/conformalizers.py, moc/metrics/distribution_metrics.py).
    """
    samples = dist.sample((n_samples,))  # (n, 1, d)
    log_probs = dist.log_prob(samples).detach()  # (n, 1)
    max_logpdf = torch.max(log_probs, dim=0).values
    log_terms = torch.where(-log_probs <= tau, -log_probs + max_logpdf, -torch.inf)
    log_cumsum = torch.logcumsumexp(log_terms, dim=0)
    log_means = log_cumsum - torch.log(torch.arange(1, n_samples + 1, dtype=log_cumsum.dtype))[:, None]
    log_region_size = (log_means - max_logpdf)[-1]
    return float(torch.maximum(log_region_size, torch.tensor(-1e30, dtype=log_region_size.dtype)))


def old_log_volume(mixture: GaussianMixture, tau: float, n: int, seed: int) -> float:
    """The estimator metrics.csv used before `dualspace.volume`: Vol = E_p[1{s <= tau} e^s] on n draws of p."""
    s = -mixture.log_prob(mixture.sample(n, np.random.default_rng(seed)))
    inside = s[s <= tau]
    return float(logsumexp(inside) - math.log(len(s))) if len(inside) else -math.inf


def _timed(f):
    t = time.perf_counter()
    out = f()
    return out, time.perf_counter() - t


def _row(mixture: GaussianMixture, dist, tau: float, n: int, seed: int) -> dict:
    # the three estimators on one tau, each timed on its own
    old, t_old = _timed(lambda: old_log_volume(mixture, tau, n, seed))
    torch.manual_seed(seed)
    dheur, t_dheur = _timed(lambda: dheur_log_region_size(dist, tau, DHEUR_SAMPLES))
    new, t_new = _timed(lambda: log_volumes(mixture, [tau], n, seed)[0])
    return {"old": old, "dheur": dheur, "new": new, "t": (t_old, t_dheur, t_new)}


def _fmt(r: dict) -> str:
    t_old, t_dheur, t_new = r["t"]
    return (f"{r['old']:.2f} | {r['dheur']:.2f} | {r['new'].log_volume:.2f} ± {r['new'].se:.3f} | "
            f"{t_old:.3f} | {t_dheur:.3f} | {t_new:.3f}")


def gaussian_balls(n: int, seed: int) -> None:
    print(f"\n### Gaussian balls (diagonal, scales over a factor e^2); old and new with n = {n}, "
          f"Dheur with n = {DHEUR_SAMPLES}\n")
    print("| d | alpha | closed form | old | Dheur | new ± se | old s | Dheur s | new s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for d in (2, 16, 64):
        rng = np.random.default_rng(d)
        mu, sigma = rng.normal(size=d), np.exp(rng.uniform(-1, 1, d))
        mixture = GaussianMixture.diagonal(np.zeros(1), mu[None], sigma[None])
        dist = MultivariateNormal(torch.as_tensor(mu)[None], scale_tril=torch.diag(torch.as_tensor(sigma))[None])
        logdet = 2 * np.log(sigma).sum()
        for a in ALPHAS:
            r2 = chi2.ppf(a, d)
            tau = d / 2 * math.log(2 * math.pi) + logdet / 2 + r2 / 2
            truth = d / 2 * math.log(math.pi) - gammaln(d / 2 + 1) + d / 2 * math.log(r2) + logdet / 2
            print(f"| {d} | {a} | {truth:.2f} | {_fmt(_row(mixture, dist, tau, n, seed))} |")


def _class_embedding(pairs_dir: Path, c: int) -> tuple[np.ndarray, str]:
    # e of class c from test.h5 (calib.h5 where a run kept no test pairs); every row of the class shares it
    path = pairs_dir / "test.h5" if (pairs_dir / "test.h5").exists() else pairs_dir / "calib.h5"
    pairs = Pairs.read(path)
    e = pairs.e[pairs.label == c]
    if not np.allclose(e, e[0]):
        raise ValueError(f"{path}: rows of class {c} carry different embeddings e; expected one per class")
    return e[0].astype(np.float64), path.name


def mdn_regions(results: Path, n: int, seed: int, c: int = 0) -> None:
    for ds in ("digits", "hapt"):
        model = results / ds / "mdn" / "model.pt"
        tables = sorted((results / ds / "conformal").glob("tau_alpha*.csv"))
        if not model.exists() or not tables:
            continue
        mdn = load_mdn(model)
        e, source = _class_embedding(results / ds / "pairs", c)
        mixture = GaussianMixture.from_mdn(mdn, e)
        with torch.no_grad():
            dist = mdn.distribution(torch.as_tensor(e, dtype=torch.float32)[None])
        print(f"\n### {ds} MDN, class {c} (d = {mixture.dim}, e from pairs/{source}); "
              f"reference: new with n = {10 * n}\n")
        print("| alpha | tau | reference ± se | old | Dheur | new ± se | old s | Dheur s | new s |")
        print("|---|---|---|---|---|---|---|---|---|")
        for path in tables:
            table = pd.read_csv(path)
            tau = float(table.tau[table["class"] == c].iloc[0])
            ref = log_volumes(mixture, [tau], 10 * n, seed + 1)[0]
            alpha = path.stem.removeprefix("tau_alpha")
            with torch.no_grad():
                row = _row(mixture, dist, tau, n, seed)
            print(f"| {alpha} | {tau:.2f} | {ref.log_volume:.2f} ± {ref.se:.3f} | {_fmt(row)} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=4000, help="draws for the old and the new estimator")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--results", type=Path, default=Path("results"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    gaussian_balls(args.n, args.seed)
    mdn_regions(args.results, args.n, args.seed)


if __name__ == "__main__":
    main()
