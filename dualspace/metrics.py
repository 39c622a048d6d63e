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

from . import distances, volume
from .conformal import ThresholdTable, accept, class_thresholds


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


def _band(cov: float, lo: float, hi: float, sigma: float, kind: str) -> dict[str, object]:
    # the band [lo, hi] widened by 3 sigma; band_z: how many sigmas coverage lies outside it (0 inside)
    if math.isnan(cov):
        return {"in_band": False, "band_sigma": sigma, "band_sigma_kind": kind, "band_z": math.nan}
    gap = max(lo - cov, cov - hi, 0.0)
    z = gap / sigma if sigma > 0 else (0.0 if gap == 0 else math.inf)
    return {"in_band": bool(z <= 3), "band_sigma": sigma, "band_sigma_kind": kind, "band_z": z}


def _region_coverage(real: np.ndarray, accepted: np.ndarray, k: int, real_label: np.ndarray | None = None,
                     accepted_label: np.ndarray | None = None) -> float:
    """Share of the region's real test points whose k-NN ball (among those real points: Naeem et al.'s
    coverage) holds an accepted draft; with labels, per class (a draft covers only its own class) and pooled."""
    if real_label is None:
        return distances.coverage(real, accepted, k) if len(real) > k else math.nan
    parts = [(_region_coverage(real[real_label == c], accepted[accepted_label == c], k), int((real_label == c).sum()))
             for c in np.unique(real_label)]
    parts = [(v, n) for v, n in parts if not math.isnan(v)]
    return float(sum(v * n for v, n in parts) / sum(n for _, n in parts)) if parts else math.nan


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


def class_volume_draws(mdn, class_e: np.ndarray, tau_ranges: dict[int, Sequence[float]], n: int = 4000,
                       seed: int = 0) -> dict[int, volume.VolumeDraws]:
    """Each class's region-volume draws (seed + c), made once for every alpha (`VolumeDraws.estimates`).

    `tau_ranges[c]` (the class's smallest and largest calibration score; empty where it has none) fixes the
    proposal's scale grid independently of which alphas are asked: every rank-rule threshold is a calibration
    score, so estimates made one alpha at a time share their draws and still rise with alpha.
    """
    out = {}
    for c, e in enumerate(class_e):
        mixture = volume.GaussianMixture.from_mdn(mdn, e)
        out[c] = volume.volume_draws(mixture, volume.scale_grid(mixture, np.asarray(tau_ranges[c], np.float64)), n,
                                     seed + c)
    return out


def base_metrics(test_y: np.ndarray, test_label: np.ndarray, drafts, prdc_k: int = 5) -> dict[str, dict]:
    """The alpha-independent columns (all drafts against real test), by class ("0", ...) and "all"."""
    d_y, d_label = drafts.y, drafts.label
    out = {str(c): _pair_metrics(test_y[test_label == c], d_y[d_label == c], prdc_k, "all")
           for c in range(len(drafts.class_e))}
    return {**out, "all": _pair_metrics(test_y, d_y, prdc_k, "all")}


def _mean_log_volume(estimates: list) -> tuple[float, float]:
    """log of the mean volume over classes and its se (delta method: class errors weighted by volume share)."""
    finite = [v for v in estimates if np.isfinite(v.log_volume)]
    if not finite:
        return math.nan, math.nan
    lv = np.array([v.log_volume for v in finite])
    share = np.exp(lv - np.logaddexp.reduce(lv))
    return (float(np.logaddexp.reduce(lv) - math.log(len(lv))),
            float(np.sqrt(np.sum((share * np.array([v.se for v in finite])) ** 2))))


def metrics_table(dataset: str, tables: Sequence[ThresholdTable], accepted_by_alpha: dict[float, np.ndarray],
                  test_scores: np.ndarray, test_y: np.ndarray, test_label: np.ndarray, drafts,
                  volumes: dict[int, volume.VolumeDraws], prdc_k: int = 5,
                  cluster_sigmas: dict[float, dict] | None = None, base: dict[str, dict] | None = None) -> list[dict]:
    """Rows of metrics.csv for every alpha in `tables` (see module docstring and README).

    `drafts` has y, label and class_e (artifacts.DraftScores); `accepted_by_alpha[alpha]` is the drafts'
    acceptance mask under that alpha's table. `volumes[c]` are class c's region-volume draws
    (`class_volume_draws`). `cluster_sigmas[alpha]` ({class: sigma, "all": sigma}, from `cluster_band_sigma`)
    replaces the binomial + Beta sigma of the band for data with groups. `base` is `base_metrics` computed once
    (else here).
    """
    rows = []
    n_classes = len(drafts.class_e)

    def row_of(table, c):  # class c's row of the table (the one row in marginal mode)
        return int(np.flatnonzero(table.classes == c)[0]) if table.classes[0] != -1 else 0

    vols = {c: volumes[c].estimates([float(t.tau[row_of(t, c)]) for t in tables]) for c in range(n_classes)}
    d_y, d_label = drafts.y, drafts.label
    base = base if base is not None else base_metrics(test_y, test_label, drafts, prdc_k)
    for ti, table in enumerate(tables):
        a = table.alpha
        covered, accepted = accept(test_scores, test_label, table), accepted_by_alpha[a]
        log_vols = []
        for c in range(n_classes):
            i = row_of(table, c)
            t_mask, d_mask = test_label == c, d_label == c
            acc_y = d_y[d_mask & accepted]
            log_vols.append(vols[c][ti])
            n_t, n_c = int(t_mask.sum()), int(table.n_calib[i])
            cov = float(covered[t_mask].mean()) if n_t else math.nan
            lo, hi = a, float(table.coverage_upper[i])
            sigma = cluster_sigmas[a][c] if cluster_sigmas else band_sigma(a, n_t, n_c)
            rate = float(accepted[d_mask].mean())
            rows.append({
                "dataset": dataset, "alpha": a, "class": str(c), "n_calib": n_c, "n_test": n_t,
                "tau": float(table.tau[i]), "coverage": cov, "coverage_lower": lo, "coverage_upper": hi,
                **_band(cov, lo, hi, sigma, "cluster" if cluster_sigmas else "binomial"),
                "acceptance_rate": rate, "acceptance_gap": rate - cov, "n_accepted": int(len(acc_y)),
                "region_coverage_by_drafts": _region_coverage(test_y[t_mask & covered], acc_y, prdc_k),
                "logdet_cov": distances.logdet_cov(acc_y), "log_volume": vols[c][ti].log_volume,
                "log_volume_se": vols[c][ti].se,
                **base[str(c)], **_pair_metrics(test_y[t_mask], acc_y, prdc_k, "accepted"),
                **_prdc(test_y[t_mask], acc_y, prdc_k),
            })
        n_t, n_c = len(test_label), int(table.n_calib.sum())
        weights = np.bincount(test_label, minlength=n_classes)[table.classes] if table.classes[0] != -1 else [1]
        hi = float(np.average(table.coverage_upper, weights=weights))
        sigma = cluster_sigmas[a]["all"] if cluster_sigmas else band_sigma(a, n_t, n_c)
        log_vol, log_vol_se = _mean_log_volume(log_vols)
        cov = float(covered.mean())
        rows.append({
            "dataset": dataset, "alpha": a, "class": "all", "n_calib": n_c, "n_test": n_t, "tau": math.nan,
            "coverage": cov, "coverage_lower": a, "coverage_upper": hi,
            **_band(cov, a, hi, sigma, "cluster" if cluster_sigmas else "binomial"),
            "acceptance_rate": float(accepted.mean()), "acceptance_gap": float(accepted.mean()) - cov,
            "n_accepted": int(accepted.sum()),
            "region_coverage_by_drafts": _region_coverage(test_y[covered], d_y[accepted], prdc_k,
                                                          test_label[covered], d_label[accepted]),
            "logdet_cov": distances.logdet_cov(d_y[accepted]),
            "log_volume": log_vol, "log_volume_se": log_vol_se,  # mean region volume over classes, in log space
            **base["all"], **_pair_metrics(test_y, d_y[accepted], prdc_k, "accepted"),
            **_prdc(test_y, d_y[accepted], prdc_k),
        })
    return rows


def fid_all(fid_feats: dict[str, np.ndarray], extractor: str) -> dict[str, object]:
    """FID of all drafts (the cached draft subsample) against real test: alpha-independent. (FID is the Frechet
    distance of the Inception features; `distances` needs no torch.)"""
    return {"fid_all": distances.frechet_distance(fid_feats["test"], fid_feats["drafts"]), "fid_extractor": extractor}


def fid_accepted(fid_feats: dict[str, np.ndarray], accepted: np.ndarray) -> dict[str, object]:
    """FID of the accepted drafts within the cached draft subsample against real test."""
    keep = accepted[fid_feats["draft_index"]]
    return {"fid_accepted": distances.frechet_distance(fid_feats["test"], fid_feats["drafts"][keep]) if keep.sum() >= 2
            else math.nan, "fid_n_drafts": int(keep.sum())}


def _accuracy(net, x: np.ndarray, y: np.ndarray) -> float:
    # imported here: the per-alpha metrics need no torch (an alpha edit should not wait ~3 s to import it)
    from .nn.inference import batched

    return float((batched(lambda xb: net(xb).argmax(1), x, 512) == y).mean())


def real_trained_accuracies(phi, drafts_x: np.ndarray, drafts_label: np.ndarray, test_x: np.ndarray,
                            test_label: np.ndarray) -> dict[str, float]:
    """trtr: phi's classifier (trained on real train) on real test; trts: the same on all drafts."""
    return {"trtr_acc": _accuracy(phi.net, test_x, test_label), "trts_acc": _accuracy(phi.net, drafts_x, drafts_label)}


def tstr_accuracy(phi, drafts_x: np.ndarray, drafts_label: np.ndarray, accepted: np.ndarray, test_x: np.ndarray,
                  test_label: np.ndarray, seed: int) -> float:
    """Train-synthetic-test-real: a fresh classifier of phi's architecture and settings trained on the accepted
    drafts, tested on real test (nan under 10 accepted drafts)."""
    from .features import PhiConfig, build_net, train_classifier

    if accepted.sum() < 10:
        return math.nan
    cfg = PhiConfig(**phi.info["config"])
    net = build_net(phi.info["kind"], tuple(drafts_x.shape[1:]), phi.info["n_classes"], cfg, seed)
    train_classifier(net, drafts_x[accepted], drafts_label[accepted], cfg, seed)
    return _accuracy(net.eval(), test_x, test_label)
