"""Figures of the self-consuming loops study: metrics against generation, spectra, samples per generation."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from ..plots import save, plt

PANELS = [("fid", "FID (LeNet features)"), ("recall", "recall (k-NN)"), ("precision", "precision (k-NN)"),
          ("coverage", "coverage (k-NN)"), ("class_accuracy", "class accuracy (LeNet)"),
          ("region_acceptance", "share inside the real-data region")]
SPECTRUM_PANELS = [("top", "top eigenvalue of J^T J"), ("effective_rank", "effective rank"), ("trace", "trace")]


def _line_key(table: pd.DataFrame) -> list[tuple[str, float]]:
    return sorted({(s, float(w)) for s, w in zip(table["scenario"], table["w"])})


def curves_figure(table: pd.DataFrame, path: str | Path, title: str) -> None:
    """Quality and spectrum summaries (middle timestep, probe mean) against generation, one line per chain."""
    t_cols = sorted({int(c.rsplit("_t", 1)[1]) for c in table.columns if c.startswith("top_t")})
    t_mid = t_cols[len(t_cols) // 2]
    panels = PANELS + [(f"{k}_t{t_mid}", f"{label}, t = {t_mid}") for k, label in SPECTRUM_PANELS]
    ncol = 3
    nrow = int(np.ceil(len(panels) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.0 * nrow), squeeze=False)
    for ax, (col, label) in zip(axes.flat, panels):
        for scenario, w in _line_key(table):
            rows = table[(table["scenario"] == scenario) & (table["w"] == w)].sort_values("generation")
            ax.plot(rows["generation"], rows[col], marker="o", label=f"{scenario}, w = {w:g}")
            if col == "fid":
                ax.fill_between(rows["generation"], rows["fid"] - 3 * rows["fid_sd"], rows["fid"] + 3 * rows["fid_sd"],
                                alpha=0.15)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("generation")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if col.startswith(("top_", "trace_")):
            ax.set_yscale("log")
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    save(fig, path)


def spectra_figure(spectra: Mapping[str, Sequence[Mapping[str, np.ndarray]]], path: str | Path, title: str) -> None:
    """Eigenvalues of J^T J against rank (probe mean, log scale) for the first, middle and last generation of
    each chain, at the middle timestep."""
    names = sorted(spectra)
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.2), squeeze=False)
    for ax, name in zip(axes[0], names):
        gens = spectra[name]
        last = len(gens) - 1
        ts = gens[0]["timesteps"]
        i = len(ts) // 2
        for g in sorted({0, last // 2, last}):
            lam = np.nanmean(gens[g]["eigenvalues"][i], axis=0)  # (D,) mean over probes
            ax.plot(np.arange(1, len(lam) + 1), np.maximum(lam, 1e-12), label=f"generation {g}")
        ax.set_yscale("log")
        ax.set_xscale("log")
        ax.set_xlabel("rank")
        ax.set_title(f"{name}, t = {int(ts[i])}", fontsize=9)
        ax.legend(fontsize=7)
    axes[0, 0].set_ylabel("eigenvalue")
    fig.suptitle(title)
    fig.tight_layout()
    save(fig, path)


def samples_figure(samples: Sequence[Mapping[str, np.ndarray]], path: str | Path, title: str,
                   per_class: int = 2) -> None:
    """Images of each generation (rows), `per_class` of every class (columns)."""
    n_classes = int(max(s["label"].max() for s in samples)) + 1
    ncol = n_classes * per_class
    fig, axes = plt.subplots(len(samples), ncol, figsize=(0.45 * ncol, 0.5 * len(samples) + 0.4), squeeze=False)
    for g, s in enumerate(samples):
        for c in range(n_classes):
            idx = np.flatnonzero(s["label"] == c)[:per_class]
            for j in range(per_class):
                ax = axes[g, c * per_class + j]
                ax.set_xticks([])
                ax.set_yticks([])
                if j < len(idx):
                    img = (np.clip(s["x"][idx[j]], -1, 1) + 1) / 2
                    ax.imshow(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0), cmap="gray", vmin=0, vmax=1)
        axes[g, 0].set_ylabel(f"gen {g}", fontsize=7, rotation=0, labelpad=14)
    fig.suptitle(title, fontsize=9)
    save(fig, path)


def realism_figure(df: pd.DataFrame, path: str | Path, title: str) -> None:
    """Pooled C2ST of each generation's samples vs real test data (95% band) against generation, one line per
    chain and one panel per classifier; the floor (real train vs real test) as a grey band."""
    pooled = df[df["class"].astype(str) == "all"]
    classifiers = list(dict.fromkeys(pooled["classifier"]))
    fig, axes = plt.subplots(1, len(classifiers), figsize=(4.6 * len(classifiers), 3.2), squeeze=False, sharey=True)
    for ax, clf in zip(axes[0], classifiers):
        d = pooled[pooled["classifier"] == clf]
        floor = d.iloc[0]
        ax.axhspan(floor["floor_low"], floor["floor_high"], color="grey", alpha=0.2, label="floor (real vs real)")
        for scenario, w in _line_key(d):
            rows = d[(d["scenario"] == scenario) & (d["w"] == w)].sort_values("generation")
            ax.plot(rows["generation"], rows["c2st"], marker="o", label=f"{scenario}, w = {w:g}")
            ax.fill_between(rows["generation"], rows["c2st_low"], rows["c2st_high"], alpha=0.15)
        ax.set_title(f"{clf} classifier", fontsize=9)
        ax.set_xlabel("generation")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(0.3, 1.02)
    axes[0, 0].set_ylabel("C2ST accuracy (pooled)")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save(fig, path)

