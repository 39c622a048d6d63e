"""The MADness study's quality metrics against independent computations: LeNet on sklearn digits, FID in closed
form (scipy sqrtm), PRDC from the prdc package, a hand count of class accuracy, the bootstrap sd, a checkpoint
round trip and the t-SNE figure."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.linalg import sqrtm

from dualspace.distances import frechet_distance
from dualspace.madness.lenet import LeNet, LeNetConfig, features, load_lenet, predict, save_lenet, train_lenet
from dualspace.madness.quality import fid_bootstrap, generation_quality, tsne_figure


@pytest.fixture(scope="module")
def digits():
    """sklearn digits in [-1, 1] as (N, 1, 8, 8), split 70/30 with a fixed seed: (x_tr, y_tr, x_te, y_te)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.data / 8.0 - 1.0).astype(np.float32).reshape(-1, 1, 8, 8)
    idx = np.random.default_rng(0).permutation(len(x))
    n_tr = int(0.7 * len(x))
    tr, te = idx[:n_tr], idx[n_tr:]
    return x[tr], d.target[tr], x[te], d.target[te]


@pytest.fixture(scope="module")
def lenet(digits):
    """A LeNet trained for a few epochs on the digits train part."""
    torch.set_num_threads(1)
    x_tr, y_tr, _, _ = digits
    cfg = LeNetConfig(image_size=8, epochs=15, batch_size=64, lr=2e-3, seed=0)
    return train_lenet(x_tr, y_tr, cfg), cfg


@pytest.mark.parametrize("size", [8, 28])
def test_lenet_shapes(size):
    cfg = LeNetConfig(image_size=size)
    model = LeNet(cfg)
    x = np.random.default_rng(0).uniform(-1, 1, (5, 1, size, size)).astype(np.float32)
    f = features(model, x, batch_size=2)  # several batches
    assert f.shape == (5, 84) and f.dtype == np.float64
    assert model(torch.as_tensor(x)).shape == (5, 10)
    assert predict(model, x).shape == (5,)
    with pytest.raises(ValueError, match="image_size"):
        features(model, np.zeros((2, 1, size + 4, size + 4), np.float32))


def test_lenet_learns_digits(digits, lenet):
    _, _, x_te, y_te = digits
    model, _ = lenet
    assert (predict(model, x_te) == y_te).mean() > 0.9


def test_fid_zero_for_itself_and_closed_form_for_gaussians():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 5))
    assert abs(frechet_distance(x, x)) < 1e-6 * np.trace(np.cov(x, rowvar=False))
    # exact Gaussians: whiten the samples so their mean and covariance are exactly mu_i, S_i
    d = 4
    mu1, mu2 = np.zeros(d), np.array([1.0, -0.5, 0.2, 0.0])
    a, b = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    s1, s2 = a @ a.T + 0.5 * np.eye(d), b @ b.T + 0.5 * np.eye(d)

    def exact(mu, s, n=500):
        z = rng.normal(size=(n, d))
        z = (z - z.mean(0)) @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T  # cov exactly I
        return z @ np.linalg.cholesky(s).T + mu

    ref = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * sqrtm(s1 @ s2).real)
    assert frechet_distance(exact(mu1, s1), exact(mu2, s2)) == pytest.approx(ref, rel=1e-8)
    assert fid_bootstrap(exact(mu1, s1), exact(mu2, s2), n_boot=3)[0] == pytest.approx(ref, rel=1e-8)


def test_generation_quality_matches_prdc_package_and_hand_count(digits, lenet):
    from prdc import compute_prdc

    x_tr, y_tr, x_te, y_te = digits
    model, _ = lenet
    rng = np.random.default_rng(2)
    # stand-in "generated" set: noisy train images, a third of them conditioned on a wrong label
    fake_x = np.clip(x_tr[:300] + rng.normal(0, 0.3, x_tr[:300].shape), -1, 1).astype(np.float32)
    fake_y = y_tr[:300].copy()
    fake_y[::3] = (fake_y[::3] + 1) % 10
    q = generation_quality(model, x_te, y_te, fake_x, fake_y, k=5, n_boot=20, seed=0)
    ref = compute_prdc(features(model, x_te), features(model, fake_x), nearest_k=5)
    for key in ("precision", "recall", "density", "coverage"):
        assert q[key] == pytest.approx(ref[key], abs=1e-12), key
    pred = predict(model, fake_x)
    hits = sum(int(p == y) for p, y in zip(pred, fake_y))
    assert q["class_accuracy"] == hits / 300
    assert q["class_accuracy"] < 0.75  # a third mislabelled
    assert q["real_class_accuracy"] == pytest.approx((predict(model, x_te) == y_te).mean())
    assert q["fid"] == pytest.approx(frechet_distance(features(model, x_te), features(model, fake_x)), rel=1e-10)
    assert q["n_fake"] == 300 and q["n_real"] == len(x_te)
    assert all(type(v) in (float, int) for v in q.values())


def test_fid_bootstrap_sd_shrinks_with_more_samples():
    rng = np.random.default_rng(3)
    real = rng.normal(size=(1000, 3))
    small = rng.normal(0.2, 1.0, size=(200, 3))
    large = rng.normal(0.2, 1.0, size=(800, 3))
    _, sd_small = fid_bootstrap(real, small, n_boot=200, seed=0)
    _, sd_large = fid_bootstrap(real, large, n_boot=200, seed=0)
    assert sd_small > 0 and sd_large > 0
    assert sd_large < 0.75 * sd_small  # ~1/2 expected for 4x the samples
    assert fid_bootstrap(real, small, n_boot=50, seed=5) == fid_bootstrap(real, small, n_boot=50, seed=5)


def test_save_load_round_trip(tmp_path, digits, lenet):
    _, _, x_te, _ = digits
    model, cfg = lenet
    path = tmp_path / "lenet.pt"
    save_lenet(model, cfg, path, test_accuracy=np.float64(0.95), note="digits")
    raw = torch.load(path, weights_only=True)
    assert raw["config"] == cfg.to_dict()
    loaded, extra = load_lenet(path)
    assert extra == {"test_accuracy": 0.95, "note": "digits"}
    np.testing.assert_array_equal(features(loaded, x_te), features(model, x_te))
    with pytest.raises(TypeError, match="bad"):
        save_lenet(model, cfg, tmp_path / "x.pt", bad=object())


def test_tsne_figure_writes_png(tmp_path, digits, lenet):
    import matplotlib.image

    x_tr, y_tr, x_te, y_te = digits
    model, _ = lenet
    out = tmp_path / "figs" / "tsne.png"
    tsne_figure(features(model, x_te), features(model, x_tr[:200]), out, "generation 0", max_points=150,
                fake_label=y_tr[:200], real_label=y_te)
    img = matplotlib.image.imread(out)
    assert img.ndim == 3 and img.shape[0] > 100
    assert [p.name for p in out.parent.iterdir()] == ["tsne.png"]
