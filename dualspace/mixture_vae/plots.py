"""Figures for the mixture of VAEs: per-channel latents coloured by true label, channel ownership, routing
hardness, per-channel KL, reconstructions and decoded latent grids. Every function writes one PNG atomically.

Images are (C, H, W) in [-1, 1]. `decode(z (M, D), channel: int) -> images (M, C, H, W)` is any callable
(numpy in, numpy out), so these functions never need the model.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from ..plots import save, style
from .evaluate import responsibility_entropies
import matplotlib.pyplot as plt  # noqa: E402  (after dualspace.plots, which selects the Agg backend)
from matplotlib.lines import Line2D  # noqa: E402

Decode = Callable[[np.ndarray, int], np.ndarray]
MAX_POINTS = 20000  # scatter at most this many points per figure (a seeded subsample): legible and fast


# ---------------------------------------------------------------------------------------------- helpers


def _palette(n: int) -> np.ndarray:
    """n fixed categorical RGBA colours (tab10, tab20, then evenly spaced turbo)."""
    if n <= 10:
        return plt.get_cmap("tab10")(np.arange(n))
    if n <= 20:
        return plt.get_cmap("tab20")(np.arange(n))
    return plt.get_cmap("turbo")(np.linspace(0, 1, n))


def _near_square(n: int) -> tuple[int, int]:
    """(rows, cols) of the smallest near-square grid holding n panels."""
    cols = math.ceil(math.sqrt(n))
    return math.ceil(n / cols), cols


def _names(class_names: Sequence[str] | None, n_classes: int) -> list[str]:
    return list(class_names) if class_names is not None else [str(j) for j in range(n_classes)]


def _image(img: np.ndarray) -> np.ndarray:
    """(C, H, W) or (H, W) in [-1, 1] -> what imshow takes: (H, W) grey in [-1, 1] or (H, W, 3) in [0, 1]."""
    img = np.asarray(img, dtype=np.float64)
    if img.ndim == 2:
        return np.clip(img, -1, 1)
    if img.ndim == 3 and img.shape[0] == 1:
        return np.clip(img[0], -1, 1)
    if img.ndim == 3 and img.shape[0] == 3:
        return (np.clip(img.transpose(1, 2, 0), -1, 1) + 1) / 2
    raise ValueError(f"expected an image (C, H, W) with C in (1, 3), or (H, W); got shape {img.shape}")


def _show(ax, img: np.ndarray) -> None:
    """Draw one image: grey from -1 (black) to 1 (white), no ticks, no grid."""
    ax.imshow(_image(img), cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)


def _mosaic(images: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """(rows * cols, C, H, W) -> one (C, rows * (H + 1) - 1, cols * (W + 1) - 1) image, 1-pixel grey gaps."""
    images = np.asarray(images, dtype=np.float64)
    if images.ndim == 3:
        images = images[:, None]
    C, H, W = images.shape[1:]
    out = np.zeros((C, rows * (H + 1) - 1, cols * (W + 1) - 1))  # mid-grey gaps: visible on black and white
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        out[:, r * (H + 1):r * (H + 1) + H, c * (W + 1):c * (W + 1) + W] = img
    return out


def _subsample(n: int, limit: int, seed: int = 0) -> np.ndarray:
    """All of range(n) in a seeded random order, at most `limit` of them (drawing order matters in scatter
    plots: a shuffled order keeps the last class from painting over the others)."""
    return np.random.default_rng(seed).permutation(n)[:limit]


def _latent_limits(z: np.ndarray) -> tuple[float, float]:
    """Shared symmetric-enough axis limits covering the central 99% of z (N, 2), padded by 5%."""
    if len(z) == 0:
        return -3.0, 3.0
    lo, hi = np.quantile(z, [0.005, 0.995])
    pad = 0.05 * max(hi - lo, 1e-6)
    return float(lo - pad), float(hi + pad)


def _channel_scatter(ax, mu_sel, channel, label, k, colours, names, mapping, lim, size) -> None:
    """Scatter of channel k's examples in its latent (first two dims), coloured by true label, titled with
    the count and, if mapped, the matched label and its purity."""
    idx = np.flatnonzero(channel == k)
    idx = idx[_subsample(len(idx), MAX_POINTS, seed=k)]
    ax.scatter(mu_sel[idx, 0], mu_sel[idx, 1], c=colours[label[idx]], s=size, alpha=0.7, linewidths=0,
               rasterized=True)
    title = f"channel {k}  (n={int((channel == k).sum())})"
    if mapping is not None and k in mapping and (channel == k).any():
        j = mapping[k]
        purity = float(np.mean(label[channel == k] == j))
        title += f"\n-> {names[j]}, purity {purity:.0%}"
    elif not (channel == k).any():
        title += "\nempty"
    elif mapping is not None:
        title += "\nunmatched"
    ax.set_title(title, fontsize=8)
    ax.set(xlim=lim, ylim=lim)
    ax.set_aspect("equal")
    ax.tick_params(labelsize=6)


def _label_legend(fig, colours, names, **kwargs) -> None:
    handles = [Line2D([], [], ls="", marker="o", ms=5, color=colours[j], label=n) for j, n in enumerate(names)]
    fig.legend(handles=handles, title="true label", fontsize=7, title_fontsize=8, frameon=False, **kwargs)


def _latents_args(mu_sel, channel, label, K, class_names):
    """Validated (mu_sel (N, D) float, channel, label, n_classes, names)."""
    mu_sel = np.asarray(mu_sel, dtype=np.float64)
    channel, label = np.asarray(channel, dtype=np.int64), np.asarray(label, dtype=np.int64)
    if mu_sel.ndim != 2 or mu_sel.shape[1] < 2:
        raise ValueError(f"mu_sel must be (N, D) with D >= 2 (the selected channel's latent mean), got "
                         f"{mu_sel.shape}")
    if not len(mu_sel) == len(channel) == len(label):
        raise ValueError(f"mu_sel, channel, label have {len(mu_sel)}, {len(channel)}, {len(label)} rows; "
                         f"pass one per example")
    if len(channel) and (channel.min() < 0 or channel.max() >= K):
        raise ValueError(f"channel values must lie in [0, {K}), found [{channel.min()}, {channel.max()}]")
    n_classes = len(class_names) if class_names is not None else int(label.max(initial=-1)) + 1
    if len(label) and (label.min() < 0 or label.max() >= n_classes):
        raise ValueError(f"label values must lie in [0, {n_classes}) (len(class_names)), found "
                         f"[{label.min()}, {label.max()}]")
    return mu_sel, channel, label, n_classes, _names(class_names, n_classes)


def _dims_note(D: int) -> str:
    return f" (first 2 of D = {D} latent dims)" if D > 2 else ""


# ---------------------------------------------------------------------------------------------- latents


def channel_latents_grid(mu_sel, channel, label, K: int, path: str | Path,
                         class_names: Sequence[str] | None = None, mapping: Mapping[int, int] | None = None,
                         title: str | None = None) -> None:
    """K panels (near-square grid), one per channel: the latent means (N, D) of the examples routed to it,
    mu_sel[i] = mu[i, channel[i]], coloured by true label; one shared legend. With mapping {channel: label}
    (from `hungarian_accuracy`) each title names the matched label and its purity in the channel."""
    style()
    mu_sel, channel, label, n_classes, names = _latents_args(mu_sel, channel, label, K, class_names)
    colours = _palette(n_classes)
    lim = _latent_limits(mu_sel[:, :2])
    rows, cols = _near_square(K)
    fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols + 1.2, 2.5 * rows), squeeze=False)
    size = float(np.clip(3000 / max(len(channel) / K, 1), 2, 12))
    for k, ax in enumerate(axes.flat):
        if k >= K:
            ax.axis("off")
            continue
        _channel_scatter(ax, mu_sel, channel, label, k, colours, names, mapping, lim, size)
    _label_legend(fig, colours, names, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.suptitle((title or "latent mean of the selected channel, coloured by true label")
                 + _dims_note(mu_sel.shape[1]), fontsize=10)
    fig.tight_layout()
    save(fig, path)


def channel_plot(k: int, mu_sel, channel, label, K: int, out_dir: str | Path,
                 class_names: Sequence[str] | None = None, mapping: Mapping[int, int] | None = None) -> Path:
    """One channel large: writes and returns out_dir / f"channel_{k:02d}.png"."""
    style()
    mu_sel, channel, label, n_classes, names = _latents_args(mu_sel, channel, label, K, class_names)
    if not 0 <= k < K:
        raise ValueError(f"channel_plot: k = {k} is not a channel in [0, {K})")
    colours = _palette(n_classes)
    fig, ax = plt.subplots(figsize=(5.5, 5))
    _channel_scatter(ax, mu_sel, channel, label, k, colours, names, mapping,
                     _latent_limits(mu_sel[channel == k, :2]), size=8)
    ax.set(xlabel="z1", ylabel="z2")
    ax.set_title(ax.get_title() + _dims_note(mu_sel.shape[1]), fontsize=9)
    _label_legend(fig, colours, names, loc="center left", bbox_to_anchor=(0.92, 0.5))
    path = Path(out_dir) / f"channel_{k:02d}.png"
    save(fig, path)
    return path


def latent_by_component(mu, q, path: str | Path) -> None:
    """Every example's latent mean in every channel (N * K points, first two dims), coloured by channel:
    left all of them (how the channels overlap in z), right each point's opacity = q(c=k|x) (where each
    channel's latent is actually used)."""
    style()
    mu, q = np.asarray(mu, dtype=np.float64), np.asarray(q, dtype=np.float64)
    if mu.ndim != 3 or mu.shape[2] < 2 or q.shape != mu.shape[:2]:
        raise ValueError(f"latent_by_component: expected mu (N, K, D >= 2) and q (N, K), got {mu.shape}, {q.shape}")
    N, K, D = mu.shape
    idx = _subsample(N, max(MAX_POINTS // K, 1))
    z = mu[idx, :, :2].reshape(-1, 2)  # (n * K, 2), channel fastest
    k_of = np.tile(np.arange(K), len(idx))
    order = _subsample(len(z), len(z), seed=1)
    colours = _palette(K)[k_of[order]]
    weighted = colours.copy()
    weighted[:, 3] = np.clip(q[idx].reshape(-1)[order], 0, 1)
    lim = _latent_limits(z)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.8))
    for ax, c, t in [(axes[0], colours, "all channels, every example"),
                     (axes[1], weighted, "opacity = q(c=k | x)")]:
        ax.scatter(z[order, 0], z[order, 1], c=c, s=4, linewidths=0, rasterized=True)
        ax.set(xlim=lim, ylim=lim, xlabel="z1", ylabel="z2", title=t)
        ax.set_aspect("equal")
    handles = [Line2D([], [], ls="", marker="o", ms=5, color=_palette(K)[k], label=f"ch {k}") for k in range(K)]
    fig.legend(handles=handles, title="channel", fontsize=7, frameon=False, loc="center left",
               bbox_to_anchor=(1.0, 0.5), ncol=1 if K <= 20 else 2)
    fig.suptitle("latent means through each channel" + _dims_note(D), fontsize=10)
    fig.tight_layout()
    save(fig, path)


# ---------------------------------------------------------------------------------------------- routing


def channel_ownership(table, path: str | Path, class_names: Sequence[str] | None = None) -> None:
    """Heatmap channel x label of the contingency table (K, n_classes), each row normalised to its
    channel's share per label; cells annotated with the raw counts."""
    table = np.asarray(table)
    if table.ndim != 2:
        raise ValueError(f"channel_ownership: expected a (K, n_classes) table, got shape {table.shape}")
    K, n_classes = table.shape
    n = table.sum(axis=1)
    share = table / np.maximum(n, 1)[:, None]
    fig, ax = plt.subplots(figsize=(0.55 * n_classes + 2.2, 0.38 * K + 1.2))
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    fontsize = 7 if max(K, n_classes) <= 12 else 5
    for k in range(K):
        for j in range(n_classes):
            if table[k, j]:
                ax.text(j, k, str(int(table[k, j])), ha="center", va="center", fontsize=fontsize,
                        color="white" if share[k, j] > 0.55 else "black")
    ax.set_xticks(range(n_classes), _names(class_names, n_classes), rotation=45 if class_names else 0,
                  ha="right" if class_names else "center", fontsize=7)
    ax.set_yticks(range(K), [f"ch {k} (n={int(n[k])})" for k in range(K)], fontsize=7)
    ax.set(xlabel="true label", title="channel ownership (row share, counts annotated)")
    ax.grid(False)
    fig.colorbar(im, ax=ax, fraction=0.04, label="share of the channel's examples")
    save(fig, path)


def routing_hardness(q, path: str | Path) -> None:
    """Histograms of max_k q(c=k|x) (a Gumbel one-hot would sit at 1, uniform at 1/K) and of the
    responsibility entropy H(q(c|x)) in nats (0 hard, log K uniform)."""
    style()
    q = np.asarray(q, dtype=np.float64)
    if q.ndim != 2:
        raise ValueError(f"routing_hardness: expected q (N, K), got {q.shape}")
    K = q.shape[1]
    top = q.max(axis=1)
    h = responsibility_entropies(q)
    fig, axes = plt.subplots(1, 2, figsize=(8, 3))
    axes[0].hist(top, bins=np.linspace(1 / K, 1, 31), color="tab:blue")
    axes[0].set(xlabel="max_k q(c=k | x)", ylabel="examples", title=f"routing confidence (mean {top.mean():.3f})")
    axes[1].hist(h, bins=np.linspace(0, max(math.log(K), 1e-6), 31), color="tab:orange")
    axes[1].axvline(math.log(K), color="grey", ls="--", lw=1, label="log K (uniform)")
    axes[1].set(xlabel="H(q(c | x)) [nats]", title=f"responsibility entropy (mean {h.mean():.3f})")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    save(fig, path)


def component_kl(history: Sequence[Mapping], path: str | Path) -> None:
    """Per-channel KL(q(z|x,k) || p(z)) over epochs (dead channels lie near 0), and the last epoch's bars.
    history: per-epoch dicts with "epoch" and "kl_per_channel" (K floats)."""
    style()
    if not history:
        raise ValueError("component_kl: empty history; pass one dict per epoch")
    try:
        epochs = np.array([h["epoch"] for h in history])
        kl = np.array([np.asarray(h["kl_per_channel"], dtype=np.float64) for h in history])  # (E, K)
    except KeyError as e:
        raise KeyError(f"component_kl: every history entry needs 'epoch' and 'kl_per_channel'; missing {e}")
    except ValueError as e:
        raise ValueError(f"component_kl: kl_per_channel must have the same length K every epoch ({e})")
    K = kl.shape[1]
    colours = _palette(K)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), gridspec_kw={"width_ratios": [3, 2]})
    for k in range(K):
        axes[0].plot(epochs, kl[:, k], color=colours[k], lw=1.2, label=f"ch {k}")
    axes[0].set(xlabel="epoch", ylabel="KL [nats]", title="KL per channel")
    axes[0].legend(fontsize=6, ncol=max(1, K // 10), loc="upper left", bbox_to_anchor=(1.0, 1.0))
    axes[1].bar(range(K), kl[-1], color=colours)
    axes[1].set(xlabel="channel", ylabel="KL [nats]", title=f"epoch {epochs[-1]}")
    axes[1].set_xticks(range(K))
    axes[1].tick_params(axis="x", labelsize=6)
    fig.tight_layout()
    save(fig, path)


# ---------------------------------------------------------------------------------------------- images


def _images(a, name: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim not in (3, 4):
        raise ValueError(f"{name}: expected images (M, C, H, W) or (M, H, W), got shape {a.shape}")
    return a


def recon_selected(x, recon_selected, recon_weighted, path: str | Path) -> None:
    """Three rows over M examples: real, decoded through the selected channel, and the responsibility-
    weighted reconstruction sum_k q_k x_hat_k."""
    rows = [("real", _images(x, "x")), ("selected channel", _images(recon_selected, "recon_selected")),
            ("q-weighted", _images(recon_weighted, "recon_weighted"))]
    M = len(rows[0][1])
    if any(len(r) != M for _, r in rows):
        raise ValueError(f"recon_selected: x, recon_selected, recon_weighted have {[len(r) for _, r in rows]} "
                         f"images; pass the same examples")
    fig, axes = plt.subplots(3, M, figsize=(0.9 * M + 1.2, 3.0), squeeze=False)
    for r, (name, imgs) in enumerate(rows):
        for i in range(M):
            _show(axes[r, i], imgs[i])
        axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
    save(fig, path)


def reconstruction_by_component(x, recon_all, q, path: str | Path) -> None:
    """One row per example: the real image, then its reconstruction through every channel k, titled with
    q(c=k|x) (the selected channel's title in bold)."""
    x, recon_all, q = _images(x, "x"), np.asarray(recon_all, dtype=np.float64), np.asarray(q, dtype=np.float64)
    if recon_all.ndim not in (4, 5) or q.shape != recon_all.shape[:2] or len(x) != len(q):
        raise ValueError(f"reconstruction_by_component: expected x (M, ...), recon_all (M, K, C, H, W), q (M, K) "
                         f"for the same M and K; got {x.shape}, {recon_all.shape}, {q.shape}")
    M, K = q.shape
    fig, axes = plt.subplots(M, K + 1, figsize=(0.85 * (K + 1), 1.0 * M + 0.3), squeeze=False)
    for i in range(M):
        _show(axes[i, 0], x[i])
        best = int(np.argmax(q[i]))
        for k in range(K):
            _show(axes[i, k + 1], recon_all[i, k])
            axes[i, k + 1].set_title(f"{q[i, k]:.2f}", fontsize=6, fontweight="bold" if k == best else "normal",
                                     pad=2)
    axes[0, 0].set_title("real", fontsize=7, pad=2)
    fig.suptitle("reconstruction through each channel k (title: q(c=k | x))", fontsize=9)
    save(fig, path)


def _latent_grid(n: int, D: int, span: float) -> tuple[np.ndarray, int, int]:
    """z (M, D) over an n x n grid of [-span, span]^2 in the first two dims (others 0), row-major with z2
    decreasing downwards (so the mosaic's y axis points up); D = 1 gives one row of n. Returns (z, rows, cols)."""
    if D < 1:
        raise ValueError(f"latent dimension D must be >= 1, got {D}")
    t = np.linspace(-span, span, n)
    if D == 1:
        return t[:, None], 1, n
    z = np.zeros((n * n, D))
    z2, z1 = np.meshgrid(t[::-1], t, indexing="ij")
    z[:, 0], z[:, 1] = z1.ravel(), z2.ravel()
    return z, n, n


def _decode_grid(decode: Decode, k: int, D: int, n: int, span: float) -> np.ndarray:
    """The decoded mosaic of channel k over its latent grid, one image (C, H', W')."""
    z, rows, cols = _latent_grid(n, D, span)
    images = np.asarray(decode(z, k), dtype=np.float64)
    if images.ndim not in (3, 4) or len(images) != len(z):
        raise ValueError(f"decode(z, {k}) with z {z.shape} must return {len(z)} images (M, C, H, W), got "
                         f"shape {images.shape}")
    return _mosaic(np.clip(images, -1, 1), rows, cols)


def decoded_grid(decode: Decode, k: int, D: int, path: str | Path, n: int = 9, span: float = 2.5) -> None:
    """Channel k decoded over a regular n x n grid of [-span, span]^2 in its first two latent dims (z1 to the
    right, z2 upwards, any further dims 0)."""
    fig, ax = plt.subplots(figsize=(6, 6))
    _show(ax, _decode_grid(decode, k, D, n, span))
    ax.set_xlabel(f"z1 in [-{span}, {span}]", fontsize=8)
    ax.set_ylabel(f"z2 in [-{span}, {span}]" if D > 1 else "", fontsize=8)
    ax.set_title(f"channel {k}: decoded latent grid" + ("" if D <= 2 else f" (dims 3..{D} at 0)"), fontsize=9)
    save(fig, path)


def decoded_grids_overview(decode: Decode, K: int, path: str | Path, D: int = 2, n: int = 5, span: float = 2.5,
                           mapping: Mapping[int, int] | None = None,
                           class_names: Sequence[str] | None = None) -> None:
    """One small decoded n x n latent grid per channel (near-square layout), titled with the channel's
    matched label when a mapping {channel: label} is given."""
    rows, cols = _near_square(K)
    fig, axes = plt.subplots(rows, cols, figsize=(2.0 * cols, 2.15 * rows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= K:
            ax.axis("off")
            continue
        _show(ax, _decode_grid(decode, k, D, n, span))
        title = f"channel {k}"
        if mapping is not None and k in mapping:
            title += f" -> {class_names[mapping[k]] if class_names is not None else mapping[k]}"
        ax.set_title(title, fontsize=8)
    fig.suptitle(f"decoded latent grids, z1 (right), z2 (up) in [-{span}, {span}]", fontsize=9)
    fig.tight_layout()
    save(fig, path)


# ---------------------------------------------------------------------------------------------- training


# a scalar history key containing one of these is a loss term (train.py / losses.py: loss, recon, kl_z, reg_c,
# usage_entropy, pi_penalty, val_elbo)
LOSS_MARKERS = ("loss", "recon", "kl", "elbo", "nll", "reg", "penalty", "usage_entropy")
ENTROPY_KEYS = ("resp_entropy", "responsibility_entropy", "entropy")  # mean H(q(c|x)), first one present
COUNT_KEYS = ("n_dead", "n_unlocked")


def _series(history: Sequence[Mapping], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(epochs, values) of the epochs whose dict has a scalar `key`."""
    pts = [(h.get("epoch", i), h[key]) for i, h in enumerate(history) if np.ndim(h.get(key, [])) == 0]
    return (np.array([p[0] for p in pts], dtype=np.float64), np.array([p[1] for p in pts], dtype=np.float64))


def default_loss_keys(history: Sequence[Mapping]) -> list[str]:
    """The history keys `training_curves` draws as loss terms: scalar every epoch, naming a LOSS_MARKERS entry,
    not the entropy, count, epoch or tau keys."""
    keys = dict.fromkeys(k for h in history for k in h)
    return [k for k in keys if k not in ENTROPY_KEYS + COUNT_KEYS + ("epoch", "tau")
            and any(m in k.lower() for m in LOSS_MARKERS)
            and all(np.ndim(h[k]) == 0 for h in history if k in h)]


def training_curves(history: Sequence[Mapping], path: str | Path, loss_keys: Sequence[str] | None = None) -> None:
    """Four panels over epochs: the loss terms, tau (the Gumbel-softmax temperature), the responsibility
    entropy, and the counts n_dead / n_unlocked. Loss terms default to every scalar key containing one of
    LOSS_MARKERS (symlog axis when their sizes differ by more than 100x); a quantity not recorded leaves its
    panel saying so."""
    style()
    if not history:
        raise ValueError("training_curves: empty history; pass one dict per epoch")
    keys = list(dict.fromkeys(k for h in history for k in h))
    loss_keys = default_loss_keys(history) if loss_keys is None else loss_keys
    entropy_key = next((k for k in ENTROPY_KEYS if k in keys), None)
    panels = [("loss terms", list(loss_keys)), ("tau", ["tau"] if "tau" in keys else []),
              ("responsibility entropy [nats]", [entropy_key] if entropy_key else []),
              ("channels", [k for k in COUNT_KEYS if k in keys])]
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.2))
    for ax, (title, names) in zip(axes, panels):
        ax.set(title=title, xlabel="epoch")
        drawn = False
        for name in names:
            e, v = _series(history, name)
            if len(e):
                ax.plot(e, v, marker="o" if len(e) < 30 else None, ms=3, lw=1.2, label=name,
                        drawstyle="steps-post" if name in COUNT_KEYS else "default")
                drawn = True
        if not drawn:
            ax.text(0.5, 0.5, "not recorded", ha="center", va="center", transform=ax.transAxes, color="grey")
        elif len(names) > 1:
            ax.legend(fontsize=6)
        if title == "loss terms" and drawn:
            vals = np.concatenate([_series(history, n)[1] for n in names])
            vals = np.abs(vals[np.isfinite(vals) & (vals != 0)])
            if len(vals) and vals.max() / vals.min() > 100:  # terms of very different size: all stay readable
                ax.set_yscale("symlog", linthresh=max(vals.min(), 1e-3 * vals.max()))
    fig.tight_layout()
    save(fig, path)


def ablation(df, kmeans_accuracy: float, path: str | Path) -> None:
    """Test clustering accuracy per variant: one point per seed, the mean with +- 1 sd, k-means as a line."""
    style()
    variants = list(dict.fromkeys(df["variant"]))
    fig, ax = plt.subplots(figsize=(1.2 * len(variants) + 2.5, 3.4))
    for i, v in enumerate(variants):
        acc = df.loc[df["variant"] == v, "accuracy"].to_numpy(float)
        ax.scatter(np.full(len(acc), i) + np.linspace(-0.12, 0.12, len(acc)), acc, s=18, color="C0", zorder=3)
        sd = acc.std(ddof=1) if len(acc) > 1 else 0.0
        ax.errorbar(i + 0.3, acc.mean(), yerr=sd, fmt="s", color="k", ms=5, capsize=3, zorder=3)
    ax.axhline(kmeans_accuracy, color="C3", ls="--", lw=1, label=f"k-means on pixels ({kmeans_accuracy:.3f})")
    ax.set_xticks(range(len(variants)), variants, rotation=20)
    ax.set(ylabel="test clustering accuracy (Hungarian)", ylim=(0, 1.02),
           title="variants: seeds (dots), mean +- sd (squares)")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    save(fig, path)
