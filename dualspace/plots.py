"""Figures (matplotlib/seaborn, Agg backend): every function writes one PNG atomically."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .io import atomic_path  # noqa: E402


def _save(fig, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def representatives_figure(x: np.ndarray, reps: dict[int, np.ndarray], class_names: list[str], title: str,
                           path: str | Path) -> None:
    """Images: one row of representatives per class. Series (C,T): per class, the first channel of each
    group of three (x axis of body_acc, body_gyro, total_acc for UCI HAR order) for every representative."""
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
        names = ["body_acc x", "body_gyro x", "total_acc x"] if x.shape[1] == 9 else [f"ch {g}" for g in groups]
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
    _save(fig, path)
