"""Sample quality of one generation against the real test split, in the features of the LeNet.

- `fid_bootstrap`: FID (Heusel et al. 2017) and its bootstrap sd over resamples of the generated set, the
  yardstick for "this generation's FID has left generation 0's range".
- `generation_quality`: FID, class accuracy and precision / recall / density / coverage (Naeem et al. 2020)
  of one generation's samples.
- `tsne_figure`: a t-SNE map of real and generated features (van der Maaten & Hinton 2008).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..distances import frechet_from_stats, prdc
from .lenet import LeNet, forward


def fid_bootstrap(real_f: np.ndarray, fake_f: np.ndarray, n_boot: int = 200, seed: int = 0) -> tuple[float, float]:
    """FID of features real_f (M, D) and fake_f (N, D), and its sd over `n_boot` resamples of fake_f (real fixed)."""
    real_f, fake_f = np.asarray(real_f, np.float64), np.asarray(fake_f, np.float64)
    if len(real_f) < 2 or len(fake_f) < 2 or n_boot < 2:
        raise ValueError(f"fid_bootstrap needs >= 2 real and fake features and n_boot >= 2, got {len(real_f)}, "
                         f"{len(fake_f)} and n_boot={n_boot}")
    mu_r, s_r = real_f.mean(0), np.cov(real_f, rowvar=False)  # fit once: only the fake side is resampled
    fid = frechet_from_stats(mu_r, s_r, fake_f.mean(0), np.cov(fake_f, rowvar=False))
    rng = np.random.default_rng(seed)
    boot = np.empty(n_boot)
    for b in range(n_boot):
        f = fake_f[rng.integers(0, len(fake_f), len(fake_f))]  # (N, D), with replacement
        boot[b] = frechet_from_stats(mu_r, s_r, f.mean(0), np.cov(f, rowvar=False))
    return fid, float(boot.std(ddof=1))


def generation_quality(model: LeNet, real_x: np.ndarray, real_label: np.ndarray, fake_x: np.ndarray,
                       fake_label: np.ndarray, k: int = 5, n_boot: int = 200, seed: int = 0) -> dict[str, float]:
    """FID (+ bootstrap sd), class accuracy and PRDC of generated images fake_x (N, C, H, W) conditioned on
    fake_label (N,), against real test images real_x (M, C, H, W) with labels real_label (M,).

    class_accuracy is the share of generated samples the LeNet assigns their conditioning label;
    real_class_accuracy, the LeNet's accuracy on the real images, is its ceiling.
    """
    for name, x, y in (("real", real_x, real_label), ("fake", fake_x, fake_label)):
        if len(x) != len(y):
            raise ValueError(f"generation_quality: {len(x)} {name} images but {len(y)} {name} labels")
    return quality_from_outputs(*forward(model, real_x), real_label, *forward(model, fake_x), fake_label, k,
                                n_boot, seed)


def quality_from_outputs(real_f: np.ndarray, real_logits: np.ndarray, real_label: np.ndarray, fake_f: np.ndarray,
                         fake_logits: np.ndarray, fake_label: np.ndarray, k: int = 5, n_boot: int = 200,
                         seed: int = 0) -> dict[str, float]:
    """`generation_quality` from the LeNet's features (N, 84) and logits (N, n_classes) of both sets, for a caller
    that also needs the features (the t-SNE of the same generation)."""
    for name, f in (("real", real_f), ("fake", fake_f)):
        if len(f) <= k:
            raise ValueError(f"generation_quality: {len(f)} {name} images, but PRDC with k={k} needs more than k")
    fid, fid_sd = fid_bootstrap(real_f, fake_f, n_boot, seed)
    return {"fid": fid, "fid_sd": fid_sd,
            "class_accuracy": float((fake_logits.argmax(1) == np.asarray(fake_label)).mean()),
            "real_class_accuracy": float((real_logits.argmax(1) == np.asarray(real_label)).mean()),
            **prdc(real_f, fake_f, k), "n_fake": int(len(fake_f)), "n_real": int(len(real_f))}


def _subsample(f: np.ndarray, label: np.ndarray | None, m: int, rng: np.random.Generator):
    # at most m rows of f (and of label), in their original order
    idx = np.sort(rng.choice(len(f), m, replace=False)) if len(f) > m else np.arange(len(f))
    return f[idx], (None if label is None else np.asarray(label)[idx])


def tsne_figure(real_f: np.ndarray, fake_f: np.ndarray, out_png: str | Path, title: str, max_points: int = 500,
                seed: int = 0, fake_label: np.ndarray | None = None, real_label: np.ndarray | None = None) -> None:
    """A PNG of the 2-D t-SNE of up to `max_points` real and generated features each, one colour per set;
    with labels, each class's digit is written at the median of its points."""
    from sklearn.manifold import TSNE

    from ..plots import save, plt

    rng = np.random.default_rng(seed)
    real_f, real_label = _subsample(np.asarray(real_f, np.float64), real_label, max_points, rng)
    fake_f, fake_label = _subsample(np.asarray(fake_f, np.float64), fake_label, max_points, rng)
    z = np.concatenate([real_f, fake_f])  # (n, D)
    if len(z) < 5:
        raise ValueError(f"tsne_figure needs at least 5 points in all, got {len(real_f)} real and {len(fake_f)} "
                         f"generated")
    y = TSNE(2, perplexity=min(30.0, len(z) / 4), init="pca", learning_rate="auto",
             random_state=seed).fit_transform(z)  # (n, 2)
    fig, ax = plt.subplots(figsize=(5, 5))
    sets = (("real", y[:len(real_f)], real_label, "tab:blue"), ("generated", y[len(real_f):], fake_label, "tab:orange"))
    for name, pts, label, colour in sets:
        ax.scatter(pts[:, 0], pts[:, 1], s=6, alpha=0.5, c=colour, label=f"{name} ({len(pts)})", linewidths=0)
        for c in ([] if label is None else np.unique(label)):
            mx, my = np.median(pts[label == c], axis=0)
            ax.text(mx, my, str(c), color=colour, fontsize=11, fontweight="bold", ha="center", va="center")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(loc="best", fontsize=8, markerscale=2)
    ax.set_title(title, fontsize=9)
    save(fig, out_png)
