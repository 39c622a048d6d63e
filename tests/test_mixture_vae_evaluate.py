"""Mixture-VAE evaluation: Hungarian accuracy against brute force over injective assignments, the other
scores against sklearn / scipy / hand cases, the tau-classifier and label -> channel map on hand-made
responsibilities, k-means on simulated blobs, and every figure written as a PNG with no temp file left."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from threadpoolctl import threadpool_limits

from dualspace.mixture_vae import plots
from dualspace.mixture_vae.evaluate import (channel_label_table, channel_to_label, clustering_scores,
                                            dead_channels, fit_tau, hungarian_accuracy, kmeans_baseline,
                                            labelled_subset, predict_tau, responsibility_entropy,
                                            summarise_seeds)


@pytest.fixture(autouse=True)
def one_thread():
    """k-means and BLAS on one thread (the machine is shared)."""
    with threadpool_limits(limits=1):
        yield


def brute_force_accuracy(channel, label, K, n_classes) -> float:
    """Best accuracy over every injective map between channels and labels, counted example by example."""
    best = 0
    if K <= n_classes:  # each channel to a distinct label
        maps = [dict(zip(range(K), p)) for p in itertools.permutations(range(n_classes), K)]
    else:  # each label from a distinct channel; other channels unmatched
        maps = [dict(zip(p, range(n_classes))) for p in itertools.permutations(range(K), n_classes)]
    for m in maps:
        best = max(best, sum(1 for c, y in zip(channel, label) if m.get(int(c)) == int(y)))
    return best / len(channel)


@pytest.mark.parametrize("K,n_classes", [(3, 5), (4, 4), (5, 3), (1, 3), (4, 1)])
def test_hungarian_equals_brute_force(K, n_classes):
    rng = np.random.default_rng(K * 10 + n_classes)
    for trial in range(5):
        N = int(rng.integers(5, 40))
        channel, label = rng.integers(0, K, N), rng.integers(0, n_classes, N)
        acc, mapping = hungarian_accuracy(channel, label, K, n_classes)
        assert acc == pytest.approx(brute_force_accuracy(channel, label, K, n_classes))
        assert len(mapping) == min(K, n_classes)
        assert len(set(mapping.values())) == len(mapping)  # one-to-one
        # the returned mapping achieves the returned accuracy
        assert np.mean([mapping.get(int(c)) == y for c, y in zip(channel, label)]) == pytest.approx(acc)


def test_permuted_perfect_clustering():
    rng = np.random.default_rng(0)
    perm = rng.permutation(6)  # label j goes to channel perm[j]
    label = rng.integers(0, 6, 200)
    acc, mapping = hungarian_accuracy(perm[label], label, 6, 6)
    assert acc == 1.0
    assert mapping == {int(perm[j]): j for j in range(6)}
    table = channel_label_table(perm[label], label, 6, 6)
    assert table.sum() == 200 and (np.count_nonzero(table, axis=1) == 1).all()


def test_clustering_scores_wiring():
    label = np.array([0, 0, 1, 1, 2, 2, 2])
    perfect = clustering_scores(np.array([2, 2, 0, 0, 1, 1, 1]), label, K=4, n_classes=3)
    assert perfect == {"accuracy": 1.0, "nmi": pytest.approx(1.0), "ari": pytest.approx(1.0), "n_used": 3}
    channel = np.array([0, 1, 1, 1, 2, 0, 2])
    s = clustering_scores(channel, label, 3, 3)
    assert s["nmi"] == pytest.approx(normalized_mutual_info_score(label, channel))
    assert s["ari"] == pytest.approx(adjusted_rand_score(label, channel))
    const = clustering_scores(np.zeros(7, dtype=int), label, 3, 3)
    assert const["accuracy"] == pytest.approx(3 / 7)  # the majority class share
    assert const["n_used"] == 1
    with pytest.raises(ValueError, match="label"):
        clustering_scores(channel, label + 1, 3, 3)


def test_tau_classifier_by_hand():
    q = np.array([[0.9, 0.1, 0.0],
                  [0.8, 0.2, 0.0],
                  [0.1, 0.9, 0.0],
                  [0.3, 0.7, 0.0]])
    y = np.array([1, 1, 0, 0])
    tau = fit_tau(q, y, n_classes=2)
    # channel 0 mass: label 0 gets 0.1 + 0.3, label 1 gets 0.9 + 0.8; channel 1: 0.9 + 0.7 vs 0.1 + 0.2;
    # channel 2 has no mass: uniform
    np.testing.assert_allclose(tau, [[0.4 / 2.1, 1.7 / 2.1], [1.6 / 1.9, 0.3 / 1.9], [0.5, 0.5]])
    q_new = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.5, 0.5, 0.0]])
    # last row: 0.5 * tau0 + 0.5 * tau1 = (0.516, 0.484) -> 0; row 3 is a uniform tie -> 0
    np.testing.assert_array_equal(predict_tau(q_new, tau), [1, 0, 0, 0])


def test_labelled_subset_stratified_and_seeded():
    label = np.repeat(np.arange(4), [50, 50, 3, 50])  # class 2 is short
    idx = labelled_subset(label, 22, seed=3)
    assert len(idx) == 22 and len(np.unique(idx)) == 22
    counts = np.bincount(label[idx], minlength=4)
    assert counts[2] == 3  # all it has
    assert sorted(counts[[0, 1, 3]]) in ([6, 6, 7],)  # the 19 others as evenly as possible
    np.testing.assert_array_equal(idx, labelled_subset(label, 22, seed=3))
    assert not np.array_equal(idx, labelled_subset(label, 22, seed=4))
    even = np.bincount(np.repeat(np.arange(5), 20)[labelled_subset(np.repeat(np.arange(5), 20), 10, 0)])
    np.testing.assert_array_equal(even, [2] * 5)
    with pytest.raises(ValueError):
        labelled_subset(label, 1000, 0)


def test_channel_to_label():
    rng = np.random.default_rng(1)
    label = np.repeat(np.arange(4), 25)
    # K = 6 > 4: label j mostly in channel (j + 2) % 6, some noise; channels 0/1 mostly unused
    channel = (label + 2) % 6
    noisy = rng.random(100) < 0.2
    channel[noisy] = rng.integers(0, 6, noisy.sum())
    q = np.full((100, 6), 0.02)
    q[np.arange(100), channel] = 0.9
    serving = channel_to_label(q, label, 6, 4)
    _, mapping = hungarian_accuracy(channel, label, 6, 4)
    assert serving.shape == (4,) and serving.dtype.kind == "i"
    for k, j in mapping.items():
        assert serving[j] == k
    np.testing.assert_array_equal(serving, (np.arange(4) + 2) % 6)

    # K = 2 < 4: two labels matched by Hungarian, the other two take the argmax of tau over channels
    channel = np.array([0] * 25 + [1] * 25 + [0] * 25 + [1] * 25)
    channel[75:80] = 0  # label 3 is split 5 / 20
    q = np.full((100, 2), 0.1)
    q[np.arange(100), channel] = 0.9
    serving = channel_to_label(q, label, 2, 4)
    assert ((serving >= 0) & (serving < 2)).all()
    _, mapping = hungarian_accuracy(channel, label, 2, 4)
    for k, j in mapping.items():
        assert serving[j] == k
    tau = fit_tau(q, label, 4)
    for j in set(range(4)) - set(mapping.values()):
        assert serving[j] == np.argmax(tau[:, j])
    assert serving[3] == 1


def test_dead_channels_by_hand():
    q = np.array([[0.7, 0.29, 0.01, 0.0],
                  [0.6, 0.39, 0.01, 0.0],
                  [0.1, 0.8, 0.05, 0.05]])
    # mean usage: 0.4667, 0.4933, 0.0233, 0.0167; threshold 0.1 / 4 = 0.025 -> channels 2, 3 dead
    np.testing.assert_array_equal(dead_channels(q, None, 0.1, 0.01), [False, False, True, True])
    np.testing.assert_array_equal(dead_channels(q, np.array([0.005, 3.0, 2.0, 1.0]), 0.1, 0.01),
                                  [True, False, True, True])
    np.testing.assert_array_equal(dead_channels(q, None, 0.05, 0.01), [False, False, False, False])


def test_responsibility_entropy_vs_scipy():
    rng = np.random.default_rng(2)
    q = rng.dirichlet(np.full(5, 0.3), size=50)
    q[0] = [1, 0, 0, 0, 0]
    assert responsibility_entropy(q) == pytest.approx(np.mean([stats.entropy(r) for r in q]))
    assert responsibility_entropy(np.full((3, 4), 0.25)) == pytest.approx(np.log(4))


def test_kmeans_baseline_on_simulated_blobs():
    """Simulated: four tight, far-apart blobs in a 6 x 6 'image' space; k-means must recover them."""
    rng = np.random.default_rng(5)
    centres = rng.normal(0, 10, (4, 1, 6, 6))
    y_tr, y_te = rng.integers(0, 4, 200), rng.integers(0, 4, 100)
    x_tr = centres[y_tr] + rng.normal(0, 0.1, (200, 1, 6, 6))
    x_te = centres[y_te] + rng.normal(0, 0.1, (100, 1, 6, 6))
    s = kmeans_baseline(x_tr, x_te, y_te, K=4, n_classes=4, seed=0)
    assert s["accuracy"] == pytest.approx(1.0) and s["nmi"] == pytest.approx(1.0) and s["n_used"] == 4


def test_summarise_seeds():
    rows = [{"accuracy": 0.9, "nmi": 0.5, "seed": 0}, {"accuracy": 0.8, "nmi": 0.7, "seed": 1},
            {"accuracy": 0.85, "nmi": 0.4, "seed": 2}]
    s = summarise_seeds(rows, ["accuracy", "nmi"])
    assert s["n"] == 3
    assert s["accuracy_mean"] == pytest.approx(np.mean([0.9, 0.8, 0.85]))
    assert s["accuracy_sd"] == pytest.approx(np.std([0.9, 0.8, 0.85], ddof=1))
    assert s["nmi_sd"] == pytest.approx(np.std([0.5, 0.7, 0.4], ddof=1))
    assert np.isnan(summarise_seeds(rows[:1], ["nmi"])["nmi_sd"])
    with pytest.raises(KeyError, match="ari"):
        summarise_seeds(rows, ["ari"])


# ---------------------------------------------------------------------------------------------- figures


def _decode(z, k):
    """A toy decoder: 8 x 8 images whose brightness pattern moves with z and differs per channel."""
    xx = np.linspace(-1, 1, 8)
    img = np.tanh(z[:, 0, None, None] * xx[None, None, :] + z[:, 1, None, None] * xx[None, :, None] + 0.3 * k)
    return img[:, None]  # (M, 1, 8, 8)


def _history(K: int) -> list[dict]:
    """Per-epoch dicts shaped like the trainer's (scalars, per-channel lists, a list of warnings)."""
    rng = np.random.default_rng(1)
    return [{"epoch": e + 1, "tau": 1.0 - 0.1 * e, "loss": 300.0 / (e + 1), "recon": 280.0 / (e + 1), "kl_z": 8.0,
             "reg_c": 0.05, "usage_entropy": 1.2, "pi_penalty": 0.0, "usage": list(rng.dirichlet(np.ones(K))),
             "kl_per_channel": list(rng.uniform(0, 3, K)), "resp_entropy": 1.5 - 0.1 * e, "n_dead": e // 2,
             "n_unlocked": min(e + 1, K), "norm_enabled": e > 2, "seconds": 3.0, "val_elbo": -250.0 - e,
             "collapse": ["channel collapse"] if e == 0 else []} for e in range(6)]


def test_default_loss_keys():
    assert plots.default_loss_keys(_history(3)) == ["loss", "recon", "kl_z", "reg_c", "usage_entropy",
                                                    "pi_penalty", "val_elbo"]


def _figure_calls(tmp_path):
    rng = np.random.default_rng(0)
    N, K, D, n_classes = 120, 5, 2, 4
    q = rng.dirichlet(np.ones(K), size=N)
    channel, label = q.argmax(1), rng.integers(0, n_classes, N)
    mu = rng.normal(size=(N, K, D))
    mu_sel = mu[np.arange(N), channel]
    names = [f"class {j}" for j in range(n_classes)]
    _, mapping = hungarian_accuracy(channel, label, K, n_classes)
    x = rng.uniform(-1, 1, (4, 1, 8, 8))
    history = _history(K)
    yield "grid.png", lambda p: plots.channel_latents_grid(mu_sel, channel, label, K, p, names, mapping)
    yield "grid3d.png", lambda p: plots.channel_latents_grid(rng.normal(size=(N, 3)), channel, label, K, p)
    yield "channel_02.png", lambda p: plots.channel_plot(2, mu_sel, channel, label, K, p.parent, names, mapping)
    yield "by_component.png", lambda p: plots.latent_by_component(mu, q, p)
    yield "ownership.png", lambda p: plots.channel_ownership(channel_label_table(channel, label, K, n_classes), p,
                                                             names)
    yield "kl.png", lambda p: plots.component_kl(history, p)
    yield "hardness.png", lambda p: plots.routing_hardness(q, p)
    yield "recon.png", lambda p: plots.recon_selected(x, x * 0.5, x * 0.2, p)
    yield "recon_all.png", lambda p: plots.reconstruction_by_component(x, rng.uniform(-1, 1, (4, K, 1, 8, 8)),
                                                                       q[:4], p)
    yield "decoded.png", lambda p: plots.decoded_grid(_decode, 1, D, p, n=4)
    yield "decoded_all.png", lambda p: plots.decoded_grids_overview(_decode, K, p, D, n=3, mapping=mapping,
                                                                    class_names=names)
    yield "curves.png", lambda p: plots.training_curves(history, p)


def test_every_figure_is_a_png_and_leaves_no_temp_file(tmp_path):
    for name, draw in _figure_calls(tmp_path):
        out = tmp_path / name
        draw(out)
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert out.stat().st_size > 1000, name
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(name for name, _ in _figure_calls(tmp_path))


def test_decoded_grid_layout():
    """z1 grows to the right, z2 upwards, further dims stay 0."""
    z, rows, cols = plots._latent_grid(3, 4, 2.0)
    assert (rows, cols) == (3, 3)
    np.testing.assert_allclose(z[:3, :2], [[-2, 2], [0, 2], [2, 2]])
    np.testing.assert_allclose(z[-1, :2], [2, -2])
    assert (z[:, 2:] == 0).all()
