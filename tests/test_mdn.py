"""The MDN p_psi(y | e): its log-density against the mixture formula, a fit against a known conditional density."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import norm

from dualspace.density import MDNConfig, fit_mdn, load_mdn, save_mdn, scores
from dualspace.nn.mdn import MDN


def test_mdn_log_prob_matches_direct_mixture_formula():
    torch.manual_seed(0)
    mdn = MDN(cond_dim=5, y_dim=3, n_components=4, hidden=16, sigma_floor=0.05).eval()
    e, y = torch.randn(7, 5), torch.randn(7, 3)
    with torch.no_grad():
        h = mdn.body(e)
        logits = mdn.logits(h).numpy()
        mu = mdn.mu(h).view(7, 4, 3).numpy()
        sigma = (torch.nn.functional.softplus(mdn.raw_sigma(h)).view(7, 4, 3) + 0.05).numpy()
        got = mdn.log_prob(y, e).numpy()
    log_w = logits - logsumexp(logits, axis=1, keepdims=True)
    comp = norm.logpdf(y.numpy()[:, None, :], mu, sigma).sum(-1)  # (7, 4)
    np.testing.assert_allclose(got, logsumexp(log_w + comp, axis=1), rtol=1e-5, atol=1e-5)
    assert sigma.min() >= 0.05


def test_mdn_fit_recovers_known_conditional_density(tmp_path):
    # two conditions with known Gaussian y | c: the fitted held-out NLL approaches the true one
    rng = np.random.default_rng(0)
    n = 3000
    c = rng.integers(0, 2, n)
    e = np.eye(2, dtype=np.float32)[c]
    mean = np.array([[0.0, 0.0], [3.0, -1.0]])[c]
    sd = np.array([[1.0, 0.5], [0.3, 2.0]])[c]
    y = (mean + sd * rng.standard_normal((n, 2))).astype(np.float32)
    model, summary = fit_mdn(e[:2500], y[:2500], MDNConfig(max_epochs=150, patience=15, hidden=32), seed=0)
    true_nll = -norm.logpdf(y[2500:], mean[2500:], sd[2500:]).sum(1).mean()
    fit_nll = scores(model, y[2500:], e[2500:]).mean()
    assert abs(fit_nll - true_nll) < 0.1
    save_mdn(model, MDNConfig(hidden=32), summary, tmp_path / "mdn.pt")
    np.testing.assert_allclose(scores(load_mdn(tmp_path / "mdn.pt"), y[:5], e[:5]), scores(model, y[:5], e[:5]))
    with pytest.raises(ValueError, match=r"y has shape \(2, 3\), but the MDN was fit on y of width 2"):
        scores(model, np.zeros((2, 3), np.float32), e[:2])
