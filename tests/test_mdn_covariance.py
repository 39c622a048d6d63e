"""MDN covariances (diagonal, lowrank, full) against scipy, closed-form entropies and the volume code."""

from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from dualspace.density import MDNConfig, fit_mdn, load_mdn, save_mdn, scores
from dualspace.io import save_torch
from dualspace.nn.mdn import COVARIANCES, MDN
from dualspace.settings import build_config
from dualspace.volume import GaussianMixture

torch.set_num_threads(1)

OLD_KEYS = {"body.0.weight", "body.0.bias", "body.2.weight", "body.2.bias", "logits.weight", "logits.bias",
            "mu.weight", "mu.bias", "raw_sigma.weight", "raw_sigma.bias"}  # a diagonal MDN's, before `covariance`


def _random_mdn(covariance: str, cond_dim=3, y_dim=5, M=3, rank=2, seed=0, dtype=torch.float64) -> MDN:
    # every weight redrawn at a scale where off-diagonal terms and mixture weights matter
    torch.manual_seed(seed)
    net = MDN(cond_dim, y_dim, M, hidden=16, sigma_floor=1e-2, covariance=covariance, rank=rank).to(dtype)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, 0.3)
    return net.eval()


def _by_hand_log_prob(net: MDN, y: np.ndarray, e: np.ndarray) -> np.ndarray:
    # log sum_k w_k N(y; mu_k, Sigma_k) with Sigma_k assembled in numpy from the heads' raw outputs
    with torch.no_grad():
        h = net.body(torch.as_tensor(e))
        heads = {name: getattr(net, name)(h).numpy() for name in ("logits", "mu", "raw_sigma", "factor", "offdiag")
                 if hasattr(net, name)}
    B, M, d = len(e), net.M, net.y_dim
    log_w = heads["logits"] - logsumexp(heads["logits"], axis=1, keepdims=True)  # (B, M)
    mu = heads["mu"].reshape(B, M, d)
    sigma = np.logaddexp(0.0, heads["raw_sigma"]).reshape(B, M, d) + net.sigma_floor  # softplus + floor
    out = np.empty(B)
    for b in range(B):
        comp = []
        for k in range(M):
            if net.covariance == "diagonal":
                cov = np.diag(sigma[b, k] ** 2)
            elif net.covariance == "lowrank":
                W = heads["factor"].reshape(B, M, d, net.rank)[b, k]
                cov = W @ W.T + np.diag(sigma[b, k] ** 2)
            else:
                L = np.diag(sigma[b, k])
                L[np.tril_indices(d, -1)] = heads["offdiag"].reshape(B, M, -1)[b, k]
                cov = L @ L.T
            comp.append(log_w[b, k] + multivariate_normal(mu[b, k], cov).logpdf(y[b]))
        out[b] = logsumexp(comp)
    return out


@pytest.mark.parametrize("covariance", COVARIANCES)
def test_log_prob_matches_scipy_mixture(covariance):
    net = _random_mdn(covariance)
    rng = np.random.default_rng(1)
    e, y = rng.normal(size=(7, 3)), rng.normal(size=(7, 5)) * 2
    got = net.log_prob(torch.as_tensor(y), torch.as_tensor(e)).detach().numpy()
    np.testing.assert_allclose(got, _by_hand_log_prob(net, y, e), rtol=1e-9, atol=1e-9)


D_Y, RHO = 6, 0.9


def _equicorrelated(signs: np.ndarray) -> np.ndarray:
    R = np.full((D_Y, D_Y), RHO)
    np.fill_diagonal(R, 1.0)
    return R * np.outer(signs, signs)


CORRELATED = [_equicorrelated(np.ones(D_Y)), _equicorrelated(np.array([1.0, -1.0] * (D_Y // 2)))]
INDEPENDENT = [np.diag(np.linspace(0.5, 2.0, D_Y)), np.diag(np.linspace(2.0, 0.5, D_Y))]
MEANS = [np.zeros(D_Y), np.linspace(-1.0, 1.0, D_Y)]


def _two_conditions(covs: list[np.ndarray], n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    # e = one-hot condition c, y | c ~ N(MEANS[c], covs[c])
    rng = np.random.default_rng(seed)
    c = rng.integers(0, 2, n)
    y = np.stack([rng.multivariate_normal(MEANS[k], covs[k]) for k in c])
    return np.eye(2, dtype=np.float32)[c], y.astype(np.float32)


def _entropy(covs: list[np.ndarray]) -> float:
    # E_c H(y | c) = d/2 (1 + log 2 pi) + 1/2 logdet Sigma_c, averaged over the two equally likely conditions
    return float(np.mean([0.5 * D_Y * (1 + math.log(2 * math.pi)) + 0.5 * np.linalg.slogdet(C)[1] for C in covs]))


FIT = dict(n_components=1, hidden=32, lr=5e-3, batch_size=512, max_epochs=200, patience=10, val_fraction=0.25,
           rank=2, covariance=list(COVARIANCES))


def _fit_all(covs):
    e, y = _two_conditions(covs, 3000, seed=0)
    model, summary = fit_mdn(e, y, MDNConfig(**FIT), seed=0)
    e_new, y_new = _two_conditions(covs, 20000, seed=1)
    return model, summary, float(scores(model, y_new, e_new).mean())


def test_correlated_data_needs_a_full_or_lowrank_covariance():
    H = _entropy(CORRELATED)  # 3.61 nats; a diagonal Gaussian can do no better than 8.51
    model, summary, heldout = _fit_all(CORRELATED)
    val = summary["candidates"]
    assert set(val) == set(COVARIANCES)
    for covariance in ("lowrank", "full"):
        assert abs(val[covariance] - H) < 0.1, (covariance, val[covariance], H)
        assert val[covariance] < val["diagonal"] - 2.0
    assert summary["covariance"] in ("lowrank", "full") and model.covariance == summary["covariance"]
    assert summary["best_val_nll"] == min(val.values())
    assert abs(heldout - H) < 0.05  # the kept model on 20000 fresh pairs (se ~0.01)


def test_independent_coordinates_keep_diagonal():
    H = _entropy(INDEPENDENT)
    _, summary, heldout = _fit_all(INDEPENDENT)
    val = summary["candidates"]
    assert summary["covariance"] == "diagonal" or val[summary["covariance"]] >= val["diagonal"] - 1e-3, val
    assert abs(val["diagonal"] - H) < 0.1 and abs(heldout - H) < 0.05


def test_one_candidate_fits_as_in_the_list():
    # the same seed gives every candidate the same init, split and batches as a fit of it alone
    e, y = _two_conditions(CORRELATED, 600, seed=2)
    cfg = {**FIT, "max_epochs": 5}
    _, alone = fit_mdn(e, y, MDNConfig(**{**cfg, "covariance": "full"}), seed=3)
    _, listed = fit_mdn(e, y, MDNConfig(**{**cfg, "covariance": ["diagonal", "full"]}), seed=3)
    assert alone["candidates"] == {"full": alone["best_val_nll"]}
    assert listed["candidates"]["full"] == alone["best_val_nll"]


@pytest.mark.parametrize("covariance", COVARIANCES)
def test_save_load_round_trip(tmp_path, covariance):
    cfg = MDNConfig(n_components=3, hidden=16, sigma_floor=1e-2, covariance=covariance, rank=2)
    net = _random_mdn(covariance, dtype=torch.float32)
    path = tmp_path / "mdn.pt"
    save_mdn(net, cfg, {"best_val_nll": 1.0, "covariance": covariance, "candidates": {covariance: 1.0}}, path)
    obj = torch.load(path, weights_only=True)
    assert obj["format"] == "dualspace.mdn/1" and obj["covariance"] == covariance
    back = load_mdn(path)
    assert back.covariance == covariance
    rng = np.random.default_rng(4)
    e, y = rng.normal(size=(50, 3)).astype(np.float32), rng.normal(size=(50, 5)).astype(np.float32)
    np.testing.assert_array_equal(scores(back, y, e), scores(net, y, e))


def test_checkpoint_records_the_kept_covariance_not_the_list(tmp_path):
    cfg = MDNConfig(n_components=3, hidden=16, sigma_floor=1e-2, covariance=["diagonal", "full"], rank=2)
    save_mdn(_random_mdn("full", dtype=torch.float32), cfg, {}, tmp_path / "mdn.pt")
    assert load_mdn(tmp_path / "mdn.pt").covariance == "full"


def test_old_checkpoint_without_covariance_loads_as_diagonal(tmp_path):
    net = _random_mdn("diagonal", dtype=torch.float32)
    assert set(net.state_dict()) == OLD_KEYS
    config = asdict(MDNConfig(n_components=3, hidden=16, sigma_floor=1e-2))
    del config["covariance"], config["rank"]
    save_torch({"format": "dualspace.mdn/1", "config": config, "cond_dim": 3, "y_dim": 5,
                "summary": {"best_val_nll": 1.0}, "state": net.state_dict()}, tmp_path / "old.pt")
    back = load_mdn(tmp_path / "old.pt")
    assert back.covariance == "diagonal"
    rng = np.random.default_rng(5)
    e, y = rng.normal(size=(20, 3)).astype(np.float32), rng.normal(size=(20, 5)).astype(np.float32)
    np.testing.assert_array_equal(scores(back, y, e), scores(net, y, e))


@pytest.mark.parametrize("covariance", ["lowrank", "full"])
def test_volume_mixture_reads_the_mdn(covariance):
    net = _random_mdn(covariance, seed=6)
    rng = np.random.default_rng(7)
    e, y = rng.normal(size=3), rng.normal(size=(40, 5)) * 2
    mixture = GaussianMixture.from_mdn(net, e)
    want = net.log_prob(torch.as_tensor(y), torch.as_tensor(np.tile(e, (40, 1)))).detach().numpy()
    np.testing.assert_allclose(mixture.log_prob(y), want, rtol=0, atol=1e-5)


@pytest.mark.parametrize("bad", ["spherical", ["diagonal", "tied"], [], ["full", "full"], 3])
def test_unknown_covariance_is_refused(bad):
    with pytest.raises(ValueError, match=r"mdn\.covariance .*'diagonal', 'lowrank', 'full'"):
        MDNConfig(covariance=bad)
    with pytest.raises(ValueError, match=r"config section 'digits\.mdn': mdn\.covariance"):
        build_config(MDNConfig, {"covariance": bad}, "digits.mdn")


def test_bad_rank_and_bad_network_covariance_are_refused():
    with pytest.raises(ValueError, match=r"mdn\.rank"):
        MDNConfig(rank=0)
    with pytest.raises(ValueError, match="covariance"):
        MDN(2, 3, covariance="tied")
