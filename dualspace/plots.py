"""Figures (matplotlib, Agg backend): every function writes one PNG atomically."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .io import atomic_path  # noqa: E402


def save(fig, path: str | Path) -> None:
    """Write `fig` to `path` as a PNG (atomically) and close it; every figure of every study goes through here."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def representatives_figure(x: np.ndarray, reps: dict[int, np.ndarray], class_names: list[str], title: str,
                           path: str | Path, channel_names: list[str] | None = None) -> None:
    """Images: one row of representatives per class. Series (C,T): per class, the first channel of each
    group of three (the x axis of body_acc, body_gyro, total_acc in UCI HAR order) for every representative,
    titled with the dataset's channel names."""
    n_classes = len(reps)
    m = max([len(v) for v in reps.values()] + [1])
    if x.ndim == 4:
        fig, axes = plt.subplots(n_classes, m, figsize=(0.8 * m, 0.85 * n_classes), squeeze=False)
        for c in range(n_classes):
            for j in range(m):
                ax = axes[c, j]
                ax.set_xticks([])
                ax.set_yticks([])
                if j < len(reps[c]):
                    img = (np.clip(x[reps[c][j]], -1, 1) + 1) / 2  # (C,H,W) in [0,1]
                    ax.imshow(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0), cmap="gray", vmin=0, vmax=1)
                else:
                    ax.axis("off")
            axes[c, 0].set_ylabel(class_names[c], rotation=0, ha="right", va="center", fontsize=8)
    else:
        groups = list(range(0, x.shape[1], 3)) or [0]
        fig, axes = plt.subplots(n_classes, len(groups), figsize=(3.2 * len(groups), 1.2 * n_classes),
                                 squeeze=False, sharex=True)
        names = [channel_names[g] if channel_names else f"channel {g}" for g in groups]
        for c in range(n_classes):
            for j, g in enumerate(groups):
                ax = axes[c, j]
                for i in reps[c]:
                    ax.plot(x[i, g], lw=0.6, alpha=0.7)
                ax.tick_params(labelsize=6)
                if c == 0:
                    ax.set_title(names[j], fontsize=8)
            axes[c, 0].set_ylabel(class_names[c], rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle(title, fontsize=9)
    save(fig, path)


# seaborn's "whitegrid" style in its "paper" context, as plain rcParams: importing seaborn (and scipy.stats with
# it) costs ~1.5 s of every figures job, the job an alpha edit waits on last
_STYLE = {
    "axes.facecolor": "white", "axes.edgecolor": ".8", "axes.grid": True, "axes.axisbelow": True,
    "axes.labelcolor": ".15", "figure.facecolor": "white", "grid.color": ".8", "grid.linestyle": "-",
    "text.color": ".15", "xtick.color": ".15", "ytick.color": ".15", "xtick.direction": "out",
    "ytick.direction": "out", "xtick.bottom": False, "ytick.left": False, "lines.solid_capstyle": "round",
    "patch.edgecolor": "w", "patch.force_edgecolor": True, "font.size": 9.6, "axes.labelsize": 9.6,
    "axes.titlesize": 9.6, "xtick.labelsize": 8.8, "ytick.labelsize": 8.8, "legend.fontsize": 8.8,
    "legend.title_fontsize": 9.6, "axes.linewidth": 1.0, "grid.linewidth": 0.8, "lines.linewidth": 1.2,
    "lines.markersize": 4.8, "patch.linewidth": 0.8,
    "axes.prop_cycle": matplotlib.cycler(color=["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860",
                                                "#DA8BC3", "#8C8C8C", "#CCB974", "#64B5CD"]),
}


def style() -> None:
    """Set the shared figure style (`_STYLE`); call it before creating a figure."""
    plt.rcParams.update(_STYLE)


def _class_colours(classes) -> dict:
    tab10 = plt.get_cmap("tab10")
    return {c: tab10(i % 10) for i, c in enumerate(classes)}


def calibration_curve(df, path: str | Path) -> None:
    """Pooled test coverage against alpha, with the guaranteed band [alpha, alpha + 1/(n + 1)]."""
    style()
    pooled = df[df["class"] == "all"].sort_values("alpha")
    fig, ax = plt.subplots(figsize=(4, 4))
    a = pooled["alpha"].to_numpy()
    ax.fill_between(a, pooled["coverage_lower"], pooled["coverage_upper"], color="tab:green", alpha=0.3,
                    label="guaranteed band")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    ax.plot(a, pooled["coverage"], "o-", color="tab:blue", label="test coverage (all classes)")
    lo, hi = max(0.0, a.min() - 0.1), min(1.0, a.max() + 0.05)
    ax.set(xlim=(lo, hi), ylim=(lo, hi), xlabel="alpha", ylabel="empirical coverage",
           title=f"{df['dataset'].iloc[0]}: calibration")
    ax.legend(loc="upper left", fontsize=7)
    save(fig, path)


def class_coverage(df, path: str | Path) -> None:
    """Per-class test coverage for each alpha (one column per alpha, points jittered sideways); the line marks
    alpha."""
    style()
    per = df[df["class"] != "all"]
    alphas = sorted(per["alpha"].unique())
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    jitter = np.random.default_rng(0)  # same data, same picture
    for c, colour in _class_colours(per["class"].unique()).items():
        rows = per[per["class"] == c]
        x = np.searchsorted(alphas, rows["alpha"]) + jitter.uniform(-0.15, 0.15, len(rows))
        ax.scatter(x, rows["coverage"], s=16, color=colour, label=c, edgecolor="white", linewidth=0.4)
    for i, a in enumerate(alphas):
        ax.hlines(a, i - 0.4, i + 0.4, color="black", lw=1.2)
    ax.set_xticks(range(len(alphas)), [f"{a:g}" for a in alphas])
    ax.set(title=f"{df['dataset'].iloc[0]}: per-class coverage (line: alpha)", xlabel="alpha", ylabel="test coverage")
    ax.legend(title="class", fontsize=6, ncol=2, loc="lower right")
    save(fig, path)


def acceptance_rate(df, path: str | Path) -> None:
    """Share of drafts inside the region, per class and pooled, against alpha."""
    style()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    per = df[df["class"] != "all"]
    for c, colour in _class_colours(per["class"].unique()).items():
        rows = per[per["class"] == c].sort_values("alpha")
        ax.plot(rows["alpha"], rows["acceptance_rate"], "o-", color=colour, lw=0.8, label=c)
    pooled = df[df["class"] == "all"].sort_values("alpha")
    ax.plot(pooled["alpha"], pooled["acceptance_rate"], "k-o", lw=2, label="all")
    ax.set(title=f"{df['dataset'].iloc[0]}: draft acceptance", xlabel="alpha", ylabel="acceptance rate",
           ylim=(0, 1.02))
    ax.legend(title="class", fontsize=6, ncol=2)
    save(fig, path)


def distances(df, path: str | Path) -> None:
    """MMD^2 and Frechet distance to the real test split: all drafts against the accepted ones, per alpha."""
    style()
    pooled = df[df["class"] == "all"].sort_values("alpha")
    fig, axes = plt.subplots(1, 2, figsize=(7, 3))
    for ax, (key, label) in zip(axes, [("mmd_phi", "MMD$^2$ (RBF)"), ("fd_phi", "Frechet distance")]):
        ax.axhline(pooled[f"{key}_all"].iloc[0], color="tab:red", ls="--", label="all drafts")
        ax.plot(pooled["alpha"], pooled[f"{key}_accepted"], "o-", color="tab:blue", label="accepted drafts")
        ax.set(xlabel="alpha", title=label)
        ax.legend(fontsize=7)
    fig.suptitle(f"{df['dataset'].iloc[0]}: distance to real test data in phi-space (y)", fontsize=9)
    save(fig, path)


def projection(y: np.ndarray, accepted: np.ndarray, real_y: np.ndarray, alpha: float, title: str,
               path: str | Path) -> None:
    """Accepted vs rejected drafts and real test points on the first two (whitened) PCA axes of phi."""
    style()
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.scatter(y[~accepted, 0], y[~accepted, 1], s=4, c="tab:red", alpha=0.5, label="rejected drafts")
    ax.scatter(y[accepted, 0], y[accepted, 1], s=4, c="tab:blue", alpha=0.4, label="accepted drafts")
    ax.scatter(real_y[:, 0], real_y[:, 1], s=5, c="black", marker="x", alpha=0.5, label="real test")
    ax.set(xlabel="PC 1 of phi", ylabel="PC 2 of phi", title=f"{title}, alpha = {alpha}")
    ax.legend(fontsize=7, markerscale=2)
    save(fig, path)


def fidelity_figure(sets: dict[str, list[dict[str, np.ndarray]]], kind: str, class_names: list[str],
                    title: str, path: str | Path) -> None:
    """Real test data against drafts, one row per class. `sets` maps a set name ('real test', 'drafts',
    'accepted') to one `fidelity.profiles` dict per class (None where the class has too few examples).
    Series: power spectrum (log), deviation from the window median per timestep (the edge profile), std per
    timestep. Images: the radially averaged spectrum (log), then the per-pixel mean and std maps of each set."""
    names = list(sets)
    n = len(class_names)
    colors = {name: f"C{i}" for i, name in enumerate(names)}
    if kind == "series":
        cols = [("spectrum", "power (log), frequency / Nyquist"), ("deviation", "|x_t - median| per t"),
                ("std", "std per t")]
        fig, axes = plt.subplots(n, 3, figsize=(10, 1.7 * n), squeeze=False)
        for c in range(n):
            for j, (key, label) in enumerate(cols):
                ax = axes[c, j]
                for name in names:
                    prof = sets[name][c]
                    if prof is None:
                        continue
                    y = prof[key]
                    xs = np.arange(len(y)) / (len(y) - 1) if key == "spectrum" else np.arange(len(y))
                    ax.plot(xs, y, lw=0.9, color=colors[name], label=name)
                if key == "spectrum":
                    ax.set_yscale("log")
                ax.tick_params(labelsize=6)
                if c == 0:
                    ax.set_title(label, fontsize=8)
            axes[c, 0].set_ylabel(class_names[c], rotation=0, ha="right", va="center", fontsize=8)
        axes[0, 0].legend(fontsize=6)
    else:
        fig, axes = plt.subplots(n, 1 + 2 * len(names), figsize=(1.3 * (1 + 2 * len(names)) + 1.5, 1.3 * n),
                                 squeeze=False)
        for c in range(n):
            ax = axes[c, 0]
            for name in names:
                prof = sets[name][c]
                if prof is not None:  # from radius 1: the de-meaned images have no DC power
                    ax.plot(np.arange(1, len(prof["spectrum"])), prof["spectrum"][1:], lw=0.9, color=colors[name],
                            label=name)
            ax.set_yscale("log")
            ax.tick_params(labelsize=5)
            for j, name in enumerate(names):
                prof = sets[name][c]
                for k, key in enumerate(("mean_map", "std_map")):
                    a = axes[c, 1 + 2 * j + k]
                    a.set_xticks([])
                    a.set_yticks([])
                    if prof is not None:
                        a.imshow(prof[key], cmap="gray" if key == "mean_map" else "magma")
                    if c == 0:
                        a.set_title(f"{name}\n{key.replace('_map', '')}", fontsize=6)
            axes[c, 0].set_ylabel(class_names[c], rotation=0, ha="right", va="center", fontsize=8)
        axes[0, 0].set_title("radial spectrum (log)\nradius, cycles / image", fontsize=6)
        axes[0, 0].legend(fontsize=5)
    fig.suptitle(title, fontsize=9)
    save(fig, path)


def realism_figure(df, title: str, path: str | Path) -> None:
    """One panel per classifier: per class and pooled, the C2ST of drafts vs real test data and the floor (real
    train vs real test), each with its 95% interval; 0.5 = a classifier cannot tell the two apart."""
    style()
    classifiers = list(dict.fromkeys(df["classifier"]))
    fig, axes = plt.subplots(1, len(classifiers), figsize=(4.6 * len(classifiers), 3.2), squeeze=False, sharey=True)
    for ax, clf in zip(axes[0], classifiers):
        d = df[df["classifier"] == clf].reset_index(drop=True)
        xs = np.arange(len(d))
        for name, dx, color in (("c2st", -0.12, "C3"), ("floor", 0.12, "C0")):
            err = np.stack([d[name] - d[f"{name}_low"], d[f"{name}_high"] - d[name]])
            ax.errorbar(xs + dx, d[name], yerr=err, fmt="o", ms=4, capsize=2, color=color,
                        label="drafts vs real test" if name == "c2st" else "floor: real train vs real test")
        ax.axhline(0.5, color="grey", lw=0.8, ls=":")
        ax.set_xticks(xs, [str(n) for n in d["class_name"]], rotation=45, ha="right", fontsize=7)
        ax.set_ylim(0.3, 1.02)
        ax.set_title(f"{clf} classifier", fontsize=9)
    axes[0, 0].set_ylabel("held-out accuracy")
    axes[0, 0].legend(fontsize=7, loc="lower left")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save(fig, path)
