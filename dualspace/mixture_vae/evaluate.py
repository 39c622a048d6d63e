"""Evaluation of a mixture of VAEs: does the channel an image is routed to (argmax_k q(c=k|x)) carry its class?

Unsupervised scores (Hungarian accuracy, NMI, ARI) against a k-means-on-pixels baseline, the tau-classifier
that binds channels to classes from a few labels, the label -> channel map a conditional generator needs,
dead channels, routing entropy, and the mean +- sd over seeds for the ablation table.

Arrays in, numbers out (numpy / scipy / scikit-learn). Shapes: q (N, K) responsibilities, rows summing to 1;
channel and label (N,) ints in [0, K) and [0, n_classes).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score


# ---------------------------------------------------------------------------------------------- checks


def _ints(a, n_values: int, name: str) -> np.ndarray:
    """a as a 1-D int64 array with every value in [0, n_values); ValueError saying what is wrong otherwise."""
    a = np.asarray(a)
    if a.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of ints, got shape {a.shape}")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        if not np.all(a == np.round(a)):
            raise ValueError(f"{name}: expected integer values, got dtype {a.dtype} with fractional entries")
    a = a.astype(np.int64)
    if a.size and (a.min() < 0 or a.max() >= n_values):
        raise ValueError(f"{name}: values must lie in [0, {n_values}), found [{a.min()}, {a.max()}]")
    return a


def _pair(channel, label, K: int, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Validated (channel, label), equally long and non-empty."""
    channel, label = _ints(channel, K, "channel"), _ints(label, n_classes, "label")
    if len(channel) != len(label):
        raise ValueError(f"channel has {len(channel)} entries but label has {len(label)}; pass one per example")
    if len(channel) == 0:
        raise ValueError("channel and label are empty; scores need at least one example")
    return channel, label


def _responsibilities(q, name: str = "q") -> np.ndarray:
    """q as an (N, K) float64 array of non-negative finite rows."""
    q = np.asarray(q, dtype=np.float64)
    if q.ndim != 2:
        raise ValueError(f"{name}: expected responsibilities of shape (N, K), got {q.shape}")
    if not np.all(np.isfinite(q)) or (q < 0).any():
        raise ValueError(f"{name}: responsibilities must be finite and non-negative")
    return q


# ---------------------------------------------------------------------------------------------- clustering


def channel_label_table(channel, label, K: int, n_classes: int) -> np.ndarray:
    """Contingency counts (K, n_classes): entry (k, j) = number of examples routed to channel k with label j."""
    channel, label = _pair(channel, label, K, n_classes)
    table = np.zeros((K, n_classes), dtype=np.int64)
    np.add.at(table, (channel, label), 1)
    return table


def hungarian_accuracy(channel, label, K: int, n_classes: int) -> tuple[float, dict[int, int]]:
    """Accuracy of the best one-to-one channel -> label matching, and that matching {channel: label}.

    The matching maximises the matched counts of the contingency table (linear_sum_assignment works on the
    rectangular K x n_classes table: min(K, n_classes) pairs). Examples in unmatched channels count as wrong.
    """
    table = channel_label_table(channel, label, K, n_classes)
    rows, cols = linear_sum_assignment(table, maximize=True)
    accuracy = float(table[rows, cols].sum() / table.sum())
    return accuracy, {int(r): int(c) for r, c in zip(rows, cols)}


def clustering_scores(channel, label, K: int, n_classes: int) -> dict[str, float]:
    """Hungarian accuracy, NMI, ARI of the channel assignment against the labels, and n_used (channels with
    at least one example)."""
    channel, label = _pair(channel, label, K, n_classes)
    accuracy, _ = hungarian_accuracy(channel, label, K, n_classes)
    return {"accuracy": accuracy,
            "nmi": float(normalized_mutual_info_score(label, channel)),
            "ari": float(adjusted_rand_score(label, channel)),
            "n_used": int(len(np.unique(channel)))}


def kmeans_baseline(x_train, x_test, label_test, K: int, n_classes: int, seed: int) -> dict[str, float]:
    """k-means on raw pixels (flattened), fit on train (n_init=10, seeded), scored on test like the channels:
    the baseline the mixture must clearly beat in the same run."""
    from sklearn.cluster import KMeans

    x_train = np.asarray(x_train, dtype=np.float64).reshape(len(x_train), -1)
    x_test = np.asarray(x_test, dtype=np.float64).reshape(len(x_test), -1)
    if x_train.shape[1] != x_test.shape[1]:
        raise ValueError(f"kmeans_baseline: train has {x_train.shape[1]} values per example, test has "
                         f"{x_test.shape[1]}; pass the same kind of images")
    if len(x_train) < K:
        raise ValueError(f"kmeans_baseline: {len(x_train)} training examples cannot make K = {K} clusters")
    km = KMeans(n_clusters=K, n_init=10, random_state=seed).fit(x_train)
    return clustering_scores(km.predict(x_test), label_test, K, n_classes)


# ---------------------------------------------------------------------------------------------- tau-classifier


def fit_tau(q_labelled, label, n_classes: int) -> np.ndarray:
    """tau (K, n_classes): tau_kj proportional to sum_i q_ik [y_i = j], each row normalised to sum to 1,
    i.e. an estimate of p(label = j | channel = k) from a few labelled examples.

    A channel that holds no responsibility mass over the labelled examples says nothing about the labels;
    its row is uniform (1 / n_classes), so it neither helps nor hurts any class in `predict_tau`.
    """
    q = _responsibilities(q_labelled, "q_labelled")
    label = _ints(label, n_classes, "label")
    if len(label) != len(q):
        raise ValueError(f"fit_tau: q_labelled has {len(q)} rows but label has {len(label)} entries")
    co = q.T @ np.eye(n_classes)[label]  # (K, n_classes)
    mass = co.sum(axis=1, keepdims=True)
    return np.where(mass > 0, co / np.where(mass > 0, mass, 1.0), 1.0 / n_classes)


def predict_tau(q, tau) -> np.ndarray:
    """Predicted labels (N,): argmax_j sum_k q_ik tau_kj (ties go to the lowest label)."""
    q, tau = _responsibilities(q), np.asarray(tau, dtype=np.float64)
    if tau.ndim != 2 or tau.shape[0] != q.shape[1]:
        raise ValueError(f"predict_tau: tau must be (K, n_classes) with K = {q.shape[1]} (q's columns), "
                         f"got {tau.shape}")
    return np.argmax(q @ tau, axis=1)


def labelled_subset(label, n: int, seed: int) -> np.ndarray:
    """n sorted example indices, spread as evenly as possible over the classes present in `label`.

    Every class gets floor(n / C) examples (C classes present); a class with fewer examples gives all it has
    and the shortfall goes evenly to the others; the last n mod C go to randomly chosen classes. Within a
    class the examples are drawn at random without replacement. Same (label, n, seed): same indices.
    """
    label = np.asarray(label)
    if label.ndim != 1:
        raise ValueError(f"labelled_subset: label must be 1-D, got shape {label.shape}")
    if not 0 <= n <= len(label):
        raise ValueError(f"labelled_subset: n = {n} labelled examples asked for, but there are {len(label)}")
    rng = np.random.default_rng(seed)
    classes, available = np.unique(label, return_counts=True)
    take = np.zeros(len(classes), dtype=np.int64)
    remaining = n
    while remaining > 0:  # water-filling: each pass either fills every open class by >= 1 or ends
        open_ = np.flatnonzero(take < available)
        share = remaining // len(open_)
        if share == 0:
            take[rng.choice(open_, size=remaining, replace=False)] += 1
            break
        add = np.minimum(share, available[open_] - take[open_])
        take[open_] += add
        remaining -= int(add.sum())
    picked = [rng.choice(np.flatnonzero(label == c), size=t, replace=False) for c, t in zip(classes, take) if t]
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, dtype=np.int64)


def channel_to_label(q_train, label_train, K: int, n_classes: int) -> np.ndarray:
    """For every label, the channel that serves it (n_classes,) ints: what a conditional generator samples.

    A label takes its Hungarian partner (matching on the argmax channels of the training responsibilities,
    as `hungarian_accuracy`) when that pair shares at least one training example. A label left without one
    (K < n_classes, or the matching paired it with a channel holding none of its examples) takes the channel
    with the highest tau mass for it, argmax_k tau_kj of `fit_tau` on all training examples, i.e. the
    channel where that label is most prevalent; such a channel may then serve two labels.
    """
    q = _responsibilities(q_train, "q_train")
    if q.shape[1] != K:
        raise ValueError(f"channel_to_label: q_train has {q.shape[1]} columns but K = {K}")
    channel = np.argmax(q, axis=1)
    table = channel_label_table(channel, label_train, K, n_classes)
    _, mapping = hungarian_accuracy(channel, label_train, K, n_classes)
    tau = fit_tau(q, label_train, n_classes)
    serving = np.argmax(tau, axis=0)  # (n_classes,) fallback
    for k, j in mapping.items():
        if table[k, j] > 0:
            serving[j] = k
    return serving.astype(np.int64)


# ---------------------------------------------------------------------------------------------- channel health


def dead_channels(q, kl_per_channel=None, usage_threshold: float = 0.1, kl_threshold: float = 0.01) -> np.ndarray:
    """(K,) bool: dead where the mean responsibility (1/N) sum_i q_ik is below usage_threshold / K (the
    channel is rarely chosen), or where kl_per_channel (K,), the channel's mean KL(q(z|x,k) || p(z)) in
    nats, is below kl_threshold (the channel's latent is ignored: posterior collapse). Without
    kl_per_channel only usage decides."""
    q = _responsibilities(q)
    K = q.shape[1]
    dead = q.mean(axis=0) < usage_threshold / K
    if kl_per_channel is not None:
        kl = np.asarray(kl_per_channel, dtype=np.float64)
        if kl.shape != (K,):
            raise ValueError(f"dead_channels: kl_per_channel must have shape ({K},), got {kl.shape}")
        dead |= kl < kl_threshold
    return dead


def responsibility_entropies(q) -> np.ndarray:
    """H(q(c|x)) = -sum_k q_k log q_k per example (N,), in nats (0 log 0 = 0): 0 for hard routing, log K for
    uniform."""
    q = _responsibilities(q)
    return np.where(q > 0, -q * np.log(np.where(q > 0, q, 1.0)), 0.0).sum(axis=1)


def responsibility_entropy(q) -> float:
    """Mean over examples of H(q(c|x)) in nats."""
    return float(responsibility_entropies(q).mean())


# ---------------------------------------------------------------------------------------------- seeds


def summarise_seeds(rows: Sequence[Mapping[str, float]], keys: Sequence[str]) -> dict[str, float]:
    """{key}_mean and {key}_sd (ddof=1; NaN for a single seed) of each key over rows (one per seed), and n."""
    if not rows:
        raise ValueError("summarise_seeds: no rows; pass one dict of scores per seed")
    out: dict[str, float] = {"n": len(rows)}
    for key in keys:
        missing = [i for i, r in enumerate(rows) if key not in r]
        if missing:
            raise KeyError(f"summarise_seeds: key {key!r} missing in row(s) {missing}; present: {sorted(rows[0])}")
        v = np.array([float(r[key]) for r in rows])
        out[f"{key}_mean"] = float(v.mean())
        out[f"{key}_sd"] = float(v.std(ddof=1)) if len(v) > 1 else float("nan")
    return out
