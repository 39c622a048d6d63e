"""metrics_table against a hand computation on a tiny case: two classes in 2-D, a one-component Gaussian
"MDN" whose regions are disks of known area, hand-picked thresholds."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from dualspace.conformal import ThresholdTable, accept
from dualspace.metrics import class_volume_draws, metrics_table

MEANS = np.array([[0.0, 0.0], [5.0, 5.0]])
SIGMA = 0.7


class GaussianMDN(torch.nn.Module):
    """p(y | e) = N(e, SIGMA^2 I) as a one-component MDN: e is the class mean, so -log p is known in closed form."""

    cond_dim = 2

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))  # the MDN's dtype is read off its parameters

    def distribution(self, e: torch.Tensor):
        D = torch.distributions
        normal = D.Independent(D.Normal(e[:, None], SIGMA * torch.ones_like(e[:, None])), 1)
        return D.MixtureSameFamily(D.Categorical(logits=torch.zeros(len(e), 1)), normal)


def neg_log_p(y: np.ndarray, mean: np.ndarray) -> np.ndarray:
    return np.log(2 * math.pi * SIGMA**2) + ((y - mean) ** 2).sum(1) / (2 * SIGMA**2)


def disk_log_area(tau: float) -> float:
    """{y : -log p(y) <= tau} is a disk of radius^2 = 2 SIGMA^2 (tau - log(2 pi SIGMA^2))."""
    return math.log(math.pi * 2 * SIGMA**2 * (tau - math.log(2 * math.pi * SIGMA**2)))


def volumes(tables, drafts, n):
    """Each class's volume draws with the proposal bracketing the tables' thresholds of that class."""
    ranges = {c: [min(t.tau[c] for t in tables), max(t.tau[c] for t in tables)] for c in (0, 1)}
    return class_volume_draws(GaussianMDN(), drafts.class_e, ranges, n, seed=0)


@pytest.fixture
def case():
    rng = np.random.default_rng(3)
    test_label = np.array([0] * 7 + [1] * 5)
    test_y = MEANS[test_label] + SIGMA * rng.normal(size=(12, 2))
    d_label = np.repeat([0, 1], 6)
    d_y = MEANS[d_label] + SIGMA * rng.normal(size=(12, 2))
    drafts = SimpleNamespace(y=d_y, label=d_label, score=neg_log_p(d_y, MEANS[d_label]), class_e=MEANS.copy())
    tau = np.array([2.0, 1.5])  # hand-picked thresholds (n_calib 9 and 4; k is not used by the table)
    table = ThresholdTable(0.8, np.array([0, 1]), np.array([9, 4]), np.array([8, 4]), tau)
    return test_y, test_label, neg_log_p(test_y, MEANS[test_label]), drafts, table


def test_rows_match_a_hand_computation(case):
    test_y, test_label, test_s, drafts, table = case
    ok = accept(drafts.score, drafts.label, table)
    rows = metrics_table("toy", [table], {0.8: ok}, test_s, test_y, test_label, drafts,
                         volumes([table], drafts, 20000), prdc_k=2)
    assert [r["class"] for r in rows] == ["0", "1", "all"]
    n_test, n_calib = [7, 5], [9, 4]
    covered_all = []
    for c in (0, 1):
        r = rows[c]
        covered = [s <= table.tau[c] for s, lab in zip(test_s, test_label) if lab == c]
        covered_all += covered
        accepted = [s <= table.tau[c] for s, lab in zip(drafts.score, drafts.label) if lab == c]
        assert r["coverage"] == pytest.approx(sum(covered) / n_test[c])
        assert r["n_test"] == n_test[c] and r["n_calib"] == n_calib[c] and r["tau"] == table.tau[c]
        assert r["coverage_upper"] == pytest.approx(0.8 + 1 / (n_calib[c] + 1))
        assert r["n_accepted"] == sum(accepted) and r["acceptance_rate"] == pytest.approx(sum(accepted) / 6)
        sigma = math.sqrt(0.8 * 0.2 * (1 / n_test[c] + 1 / (n_calib[c] + 2)))
        assert r["in_band"] == (0.8 - 3 * sigma <= r["coverage"] <= r["coverage_upper"] + 3 * sigma)
        assert r["band_sigma"] == pytest.approx(sigma) and r["band_sigma_kind"] == "binomial"
        outside = max(0.8 - r["coverage"], r["coverage"] - r["coverage_upper"], 0)
        assert r["band_z"] == pytest.approx(outside / sigma)
        assert r["acceptance_gap"] == pytest.approx(sum(accepted) / 6 - sum(covered) / n_test[c])
        # region coverage by drafts, brute force: covered real points of c whose 2-NN ball (among them) holds an
        # accepted draft of c
        real = test_y[(test_label == c) & (test_s <= table.tau[c])]
        acc = drafts.y[(drafts.label == c) & ok]
        if len(real) > 2:
            radius = [sorted(np.linalg.norm(real - p, axis=1))[2] for p in real]
            hit = [any(np.linalg.norm(acc - p, axis=1) < rad) for p, rad in zip(real, radius)]
            assert r["region_coverage_by_drafts"] == pytest.approx(np.mean(hit))
        else:
            assert math.isnan(r["region_coverage_by_drafts"])
        # importance-sampled volume of the disk, within 4 of its standard errors of the exact area
        assert 0 < r["log_volume_se"] < 0.05
        assert r["log_volume"] == pytest.approx(disk_log_area(table.tau[c]), abs=4 * r["log_volume_se"])
        if sum(accepted) < 2:
            assert math.isnan(r["fd_phi_accepted"]) and math.isnan(r["mmd_phi_accepted"])
    pooled = rows[2]
    assert pooled["coverage"] == pytest.approx(sum(covered_all) / 12)
    assert pooled["n_test"] == 12 and pooled["n_calib"] == 13 and math.isnan(pooled["tau"])
    # the pooled upper bound weights each class's bound by its test count
    assert pooled["coverage_upper"] == pytest.approx((7 * (0.8 + 1 / 10) + 5 * (0.8 + 1 / 5)) / 12)
    assert pooled["n_accepted"] == int(ok.sum())
    # mean region volume over classes, in log space
    expect = math.log((math.exp(rows[0]["log_volume"]) + math.exp(rows[1]["log_volume"])) / 2)
    assert pooled["log_volume"] == pytest.approx(expect)
    assert pooled["acceptance_gap"] == pytest.approx(ok.mean() - pooled["coverage"])


def test_log_volume_rises_with_alpha_past_the_models_own_scores(case):
    """Thresholds far beyond where p's own samples reach (the old estimator's saturation): the disks' areas."""
    test_y, test_label, test_s, drafts, _ = case
    taus = [np.array([t, t]) for t in (2.0, 8.0, 20.0, 40.0)]  # Pr_p[s <= 20] = 1 - 1e-8 already
    tables = [ThresholdTable(a, np.array([0, 1]), np.array([9, 4]), np.array([8, 4]), t)
              for a, t in zip((0.5, 0.8, 0.9, 0.95), taus)]
    accepted = {t.alpha: accept(drafts.score, drafts.label, t) for t in tables}
    rows = metrics_table("toy", tables, accepted, test_s, test_y, test_label, drafts, volumes(tables, drafts, 4000),
                         prdc_k=2)
    lv = [r["log_volume"] for r in rows if r["class"] == "0"]
    assert all(b > a + 0.3 for a, b in zip(lv, lv[1:]))
    for r, t in zip([r for r in rows if r["class"] == "0"], taus):
        assert r["log_volume"] == pytest.approx(disk_log_area(t[0]), abs=max(4 * r["log_volume_se"], 0.02))


def test_volume_draw_leaves_the_global_rng_alone(case):
    test_y, test_label, test_s, drafts, table = case
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    np.random.seed(5)
    np_before = np.random.rand(3)
    np.random.seed(5)
    metrics_table("toy", [table], {0.8: accept(drafts.score, drafts.label, table)}, test_s, test_y, test_label,
                  drafts, volumes([table], drafts, 100), prdc_k=2)
    assert np.array_equal(np.random.rand(3), np_before)
    assert torch.equal(torch.rand(3), before)


def _grouped(rng, n_groups, size, n_classes=2):
    """n_groups groups of `size` examples that share one score and one label (perfectly correlated windows)."""
    s = rng.normal(size=n_groups)
    label = rng.integers(0, n_classes, n_groups)
    return np.repeat(s, size), np.repeat(label, size), np.repeat(np.arange(n_groups), size)


@pytest.mark.parametrize("size", [1, 8])
def test_cluster_band_counts_groups_not_windows(size):
    """Calib and test in disjoint groups, each group `size` copies of one iid score: the coverage noise is that of
    the binomial + Beta band over *groups* (band_sigma's formula with group counts), whatever the copies."""
    from dualspace.metrics import band_sigma, cluster_band_sigma

    rng = np.random.default_rng(0)
    cal_s, cal_l, cal_g = _grouped(rng, 600, size)
    test_s, test_l, test_g = _grouped(rng, 600, size)
    test_g = test_g + 600  # disjoint from calib's groups
    alpha = 0.8
    sig = cluster_band_sigma(cal_s, cal_l, cal_g, test_s, test_l, test_g, alpha, 2, mode="marginal", n_boot=800)
    want = band_sigma(alpha, 600, 600)  # counts of groups: copies add no information
    assert sig["all"] == pytest.approx(want, rel=0.15)
    if size > 1:  # the windows' binomial band would claim sqrt(size) times less noise
        assert sig["all"] > 2 * band_sigma(alpha, 600 * size, 600 * size)
    for c in (0, 1):
        n_t = int((test_l[::size] == c).sum())
        assert sig[c] == pytest.approx(math.sqrt(alpha * (1 - alpha) * (1 / n_t + 1 / 602)), rel=0.2)
