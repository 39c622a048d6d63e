"""The metrics table of a run (results/{ds}/metrics.csv): one row per (alpha, class) plus a row per alpha
for all classes; the distance and size maths it uses live in `distances`.

Feature-space metrics use y, the whitened PCA coordinates of phi (the space the MDN and the
regions live in), so covariances stay well-conditioned with a few dozen points per class.
"""

from __future__ import annotations

import math
import warnings
from typing import Sequence

import numpy as np
import torch

from . import distances
from .conformal import ThresholdTable, accept


def band_sigma(alpha: float, n_test: int, n_calib: int) -> float:
    """Noise of a test-split coverage: binomial test draw plus the Beta spread of the calibration draw."""
    if n_test == 0:
        return math.nan
    return math.sqrt(alpha * (1 - alpha) * (1 / n_test + 1 / (n_calib + 2)))


def cluster_band_sigma(calib_scores: np.ndarray, calib_label: np.ndarray, calib_groups: np.ndarray,
                       test_scores: np.ndarray, test_label: np.ndarray, test_groups: np.ndarray, alpha: float,
                       n_classes: int, mode: str = "class", n_boot: int = 500, seed: int = 0) -> dict:
    """Noise of test coverage for grouped data (windows of subjects): a cluster bootstrap over groups.

    Each replicate draws the groups (subjects) with replacement and takes *all* of each drawn group's calib
    and test examples, recalibrates the thresholds on the drawn calib scores by the rank rule and measures
    coverage on the drawn test scores; the sd over replicates is the sigma. Resampling whole groups keeps
    the correlation of a subject's (overlapping) windows, which the binomial + Beta `band_sigma` assumes
    away, and it redraws the calibration together with the test set. Returns {class: sigma} and
    {"all": sigma} (nan where a class has fewer than two replicates with test examples).
    """
    from .conformal import class_thresholds

    groups = np.unique(np.concatenate([calib_groups, test_groups]))
    calib_at = {g: np.flatnonzero(calib_groups == g) for g in groups}
    test_at = {g: np.flatnonzero(test_groups == g) for g in groups}
    rng = np.random.default_rng(seed)
    per_class, pooled = [[] for _ in range(n_classes)], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a replicate may miss a class: its threshold is +inf, coverage 1
        for _ in range(n_boot):
            draw = rng.choice(groups, len(groups), replace=True)
            ci = np.concatenate([calib_at[g] for g in draw])
            ti = np.concatenate([test_at[g] for g in draw])
            if len(ci) == 0 or len(ti) == 0:
                continue
            table = class_thresholds(calib_scores[ci], calib_label[ci], alpha, n_classes, mode=mode)
            covered = test_scores[ti] <= table.tau_for(test_label[ti])
            pooled.append(covered.mean())
            for c in range(n_classes):
                m = test_label[ti] == c
                if m.any():
                    per_class[c].append(covered[m].mean())
    sd = [float(np.std(v, ddof=1)) if len(v) >= 2 else math.nan for v in per_class]
    return {**dict(enumerate(sd)), "all": float(np.std(pooled, ddof=1)) if len(pooled) >= 2 else math.nan}


def _pair_metrics(real: np.ndarray, fake: np.ndarray, k: int, prefix: str) -> dict[str, float]:
    # MMD and FD between real and fake; nan where a set is too small to define them
    out = {f"mmd_phi_{prefix}": math.nan, f"fd_phi_{prefix}": math.nan}
    if len(real) >= 2 and len(fake) >= 2:
        out[f"mmd_phi_{prefix}"] = distances.mmd2_unbiased(real, fake)
        out[f"fd_phi_{prefix}"] = distances.frechet_distance(real, fake)
    return out


def _prdc(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float]:
    keys = ("precision", "recall", "density", "coverage")
    if len(real) <= k or len(fake) <= k:
        return {f"prdc_{key}": math.nan for key in keys}
    return {f"prdc_{key}": v for key, v in distances.prdc(real, fake, k=k).items()}


@torch.no_grad()
def _mdn_sample_scores(mdn, e: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Scores -log p(y | e) of n samples y ~ p(. | e) (for the importance-sampled region volume).

    torch.distributions sample from the global RNG; fork_rng seeds it here and restores it after, so the
    draw is a function of `seed` and the caller's RNG is untouched.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        dist = mdn.distribution(torch.as_tensor(e[None], dtype=torch.float32).expand(n, -1))
        y = dist.sample()
    return (-dist.log_prob(y)).double().numpy()


def metrics_table(dataset: str, tables: Sequence[ThresholdTable], accepted_by_alpha: dict[float, np.ndarray],
                  test_scores: np.ndarray, test_y: np.ndarray, test_label: np.ndarray, drafts, mdn,
                  prdc_k: int = 5, volume_samples: int = 4000, seed: int = 0) -> list[dict]:
    """Rows of metrics.csv for every alpha in `tables` (see module docstring and README).

    `drafts` has y, label and class_e (artifacts.DraftScores); `accepted_by_alpha[alpha]` is the drafts'
    acceptance mask under that alpha's table.
    """
    rows = []
    n_classes = len(drafts.class_e)
    vol_scores = {c: _mdn_sample_scores(mdn, drafts.class_e[c], volume_samples, seed + c) for c in range(n_classes)}
    d_y, d_label = drafts.y, drafts.label
    base = {c: _pair_metrics(test_y[test_label == c], d_y[d_label == c], prdc_k, "all") for c in range(n_classes)}
    base_all = _pair_metrics(test_y, d_y, prdc_k, "all")
    for table in tables:
        a = table.alpha
        covered, accepted = accept(test_scores, test_label, table), accepted_by_alpha[a]
        log_vols = []
        for c in range(n_classes):
            i = int(np.flatnonzero(table.classes == c)[0]) if table.classes[0] != -1 else 0
            t_mask, d_mask = test_label == c, d_label == c
            acc_y = d_y[d_mask & accepted]
            lv = distances.log_volume(vol_scores[c], float(table.tau[i]))
            log_vols.append(lv)
            n_t, n_c = int(t_mask.sum()), int(table.n_calib[i])
            cov = float(covered[t_mask].mean()) if n_t else math.nan
            lo, hi, sigma = a, float(table.coverage_upper[i]), band_sigma(a, n_t, n_c)
            rows.append({
                "dataset": dataset, "alpha": a, "class": str(c), "n_calib": n_c, "n_test": n_t,
                "tau": float(table.tau[i]), "coverage": cov, "coverage_lower": lo, "coverage_upper": hi,
                "in_band": bool(lo - 3 * sigma <= cov <= hi + 3 * sigma) if n_t else False,
                "acceptance_rate": float(accepted[d_mask].mean()), "n_accepted": int(len(acc_y)),
                "logdet_cov": distances.logdet_cov(acc_y), "log_volume": lv,
                **base[c], **_pair_metrics(test_y[t_mask], acc_y, prdc_k, "accepted"),
                **_prdc(test_y[t_mask], acc_y, prdc_k),
            })
        n_t, n_c = len(test_label), int(table.n_calib.sum())
        weights = np.bincount(test_label, minlength=n_classes)[table.classes] if table.classes[0] != -1 else [1]
        hi = float(np.average(table.coverage_upper, weights=weights))
        sigma = band_sigma(a, n_t, n_c)
        finite = [v for v in log_vols if np.isfinite(v)]
        rows.append({
            "dataset": dataset, "alpha": a, "class": "all", "n_calib": n_c, "n_test": n_t, "tau": math.nan,
            "coverage": float(covered.mean()), "coverage_lower": a, "coverage_upper": hi,
            "in_band": bool(a - 3 * sigma <= covered.mean() <= hi + 3 * sigma),
            "acceptance_rate": float(accepted.mean()), "n_accepted": int(accepted.sum()),
            "logdet_cov": distances.logdet_cov(d_y[accepted]),
            # mean region volume over classes, in log space
            "log_volume": float(np.logaddexp.reduce(finite) - math.log(len(finite))) if finite else math.nan,
            **base_all, **_pair_metrics(test_y, d_y[accepted], prdc_k, "accepted"),
            **_prdc(test_y, d_y[accepted], prdc_k),
        })
    return rows


def fid_columns(fid_feats: dict[str, np.ndarray], accepted: np.ndarray, extractor: str) -> dict[str, object]:
    """FID of all drafts and of the accepted ones (within the cached draft subsample) against real test."""
    from .fid import fid_from_features

    keep = accepted[fid_feats["draft_index"]]
    real, fake = fid_feats["test"], fid_feats["drafts"]
    return {"fid_all": fid_from_features(real, fake),
            "fid_accepted": fid_from_features(real, fake[keep]) if keep.sum() >= 2 else math.nan,
            "fid_n_drafts": int(keep.sum()), "fid_extractor": extractor}


def tstr_columns(phi, drafts_x: np.ndarray, drafts_label: np.ndarray, accepted_by_alpha: dict[float, np.ndarray],
                 test_x: np.ndarray, test_label: np.ndarray, seed: int) -> dict[float, dict[str, float]]:
    """Train-synthetic-test-real with the small 1-D CNN of phi.

    trtr: phi's classifier (trained on real train) on real test; trts: the same on all drafts;
    tstr: a fresh classifier of the same architecture and settings trained on the accepted drafts of
    each alpha, tested on real test.
    """
    from .features import PhiConfig, build_net, train_classifier

    def accuracy(net, x, y):
        with torch.no_grad():
            pred = torch.cat([net(torch.as_tensor(x[i:i + 512])).argmax(1) for i in range(0, len(x), 512)])
        return float((pred.numpy() == y).mean())

    cfg = PhiConfig(**phi.info["config"])
    trtr, trts = accuracy(phi.net, test_x, test_label), accuracy(phi.net, drafts_x, drafts_label)
    out = {}
    for alpha, ok in accepted_by_alpha.items():
        tstr = math.nan
        if ok.sum() >= 10:
            net = build_net(phi.info["kind"], tuple(drafts_x.shape[1:]), phi.info["n_classes"], cfg, seed)
            train_classifier(net, drafts_x[ok], drafts_label[ok], cfg, seed)
            tstr = accuracy(net.eval(), test_x, test_label)
        out[alpha] = {"tstr_acc": tstr, "trtr_acc": trtr, "trts_acc": trts}
    return out
