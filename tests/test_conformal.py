"""Conformal thresholds against an independent rank computation and against simulation."""

from __future__ import annotations

import numpy as np
import pytest

from dualspace.conformal import accept, class_thresholds, conformal_rank


def _reference_k(n: int, alpha_text: str) -> int:
    # integer arithmetic: alpha = p / q exactly as written, k = ceil((n + 1) p / q)
    whole, frac = alpha_text.split(".")
    p, q = int(whole + frac), 10 ** len(frac)
    return -((-(n + 1) * p) // q)


@pytest.mark.parametrize("alpha", ["0.5", "0.8", "0.9", "0.95", "0.99", "0.1", "0.333"])
@pytest.mark.parametrize("n", [0, 1, 9, 10, 19, 99, 100, 1000])
def test_rank_rule_exact(alpha, n):
    assert conformal_rank(n, float(alpha)) == _reference_k(n, alpha)


def test_rank_avoids_float_round_up():
    # (9 + 1) * 0.9 is 9.000000000000002 in binary floating point; the rule means 9
    assert conformal_rank(9, 0.9) == 9
    assert conformal_rank(19, 0.95) == 19


def test_class_thresholds_are_kth_smallest():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, size=203)
    scores = rng.normal(size=203) + labels
    table = class_thresholds(scores, labels, 0.8, 4)
    for c in range(4):
        s = sorted(scores[labels == c].tolist())
        k = _reference_k(len(s), "0.8")
        assert table.n_calib[c] == len(s) and table.k[c] == k
        assert table.tau[c] == s[k - 1]
    # marginal mode pools every class
    m = class_thresholds(scores, labels, 0.8, 4, mode="marginal")
    assert m.tau[0] == sorted(scores.tolist())[_reference_k(203, "0.8") - 1]
    assert (accept(scores, labels, table) == (scores <= table.tau[labels])).all()


def test_k_beyond_n_gives_infinite_threshold():
    table = class_thresholds(np.array([1.0, 2.0, 3.0]), np.array([0, 0, 0]), 0.9, 1)
    assert table.k[0] == 4 and np.isinf(table.tau[0]) and table.coverage_upper[0] == 1.0


def test_missing_class_warns_and_is_everything():
    with pytest.warns(UserWarning, match="class 2 has no calibration scores"):
        table = class_thresholds(np.array([0.1, 0.2, 0.3]), np.array([0, 1, 1]), 0.5, 3)
    assert np.isinf(table.tau[2]) and table.n_calib[2] == 0


def test_nan_scores_are_refused():
    with pytest.raises(ValueError, match="NaN or infinite"):
        class_thresholds(np.array([0.1, np.nan]), np.array([0, 0]), 0.5, 1)


@pytest.mark.parametrize("alpha", [0.5, 0.9])
def test_coverage_matches_theory_in_simulation(alpha):
    # exchangeable continuous scores: E[coverage] = k / (n + 1), inside [alpha, alpha + 1/(n+1)]
    rng = np.random.default_rng(1)
    n, trials, n_test = 19, 4000, 50
    cal = rng.standard_normal((trials, n))
    test = rng.standard_normal((trials, n_test))
    covered = []
    for i in range(trials):
        tau = class_thresholds(cal[i], np.zeros(n, int), alpha, 1).tau[0]
        covered.append((test[i] <= tau).mean())
    k = _reference_k(n, str(alpha))
    expected = k / (n + 1)
    assert alpha <= expected <= alpha + 1 / (n + 1)
    # per-trial coverage is Beta(k, n + 1 - k) distributed; its sd bounds the mean's noise
    sd = np.sqrt(k * (n + 1 - k) / ((n + 1) ** 2 * (n + 2)) / trials)
    assert abs(np.mean(covered) - expected) < 4 * sd + 1e-3
