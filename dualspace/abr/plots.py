"""Figures of the ABR study: waveforms per intensity with their picked peaks, latency-intensity curves (rule, real,
legacy, joint), static parameter pair plots, training curves (beta, KL, active units), EPL sweeps."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from ..data.abr_simulated import FS_HZ, STATIC_NAMES, T_MS, expected_peaks
from ..plots import save
import matplotlib.pyplot as plt  # noqa: E402  (after dualspace.plots, which selects the Agg backend)
from .evaluate import INTENSITY, NOISE, THRESHOLD  # noqa: E402
from .peaks import pick_peaks  # noqa: E402

LEVELS = (80, 60, 40, 20)  # dB nHL rows of the waveform figure
NORMAL = 25.0  # dB HL: the waveform and latency figures use normal-hearing rows (threshold <= NORMAL)
COLORS = {"real": "0.2", "legacy": "tab:blue", "joint": "tab:orange", "rule": "tab:green"}


def _nearest(static: np.ndarray, level: float) -> int | None:
    """Row of a normal-hearing static vector whose intensity is nearest `level` (None if there is none)."""
    ok = np.flatnonzero(static[:, THRESHOLD] <= NORMAL)
    return None if len(ok) == 0 else int(ok[np.argmin(np.abs(static[ok, INTENSITY] - level))])


def waveforms(test: Mapping[str, np.ndarray], drafts: Mapping[str, Mapping[str, np.ndarray]], path: str | Path) -> None:
    """One row per intensity (normal hearing): a real test signal and each mode's draft nearest that intensity,
    offset vertically, with the peaks the picker finds marked."""
    sets = {"real": test, **drafts}
    fig, axes = plt.subplots(len(LEVELS), 1, figsize=(6, 1.6 * len(LEVELS)), sharex=True, squeeze=False)
    rows = {(name, level): _nearest(s["static"], level) for name, s in sets.items() for level in LEVELS}
    offset = 0.8 * max([np.ptp(sets[name]["signal"][i]) for (name, _), i in rows.items() if i is not None] + [0.1])
    for ax, level in zip(axes[:, 0], LEVELS):
        for j, (name, s) in enumerate(sets.items()):
            i = rows[name, level]
            if i is None:
                continue
            y = s["signal"][i] - offset * j
            ax.plot(T_MS, y, color=COLORS.get(name, None), lw=1,
                    label=f"{name} ({s['static'][i, INTENSITY]:.0f} dB)")
            pk = pick_peaks(s["signal"][i:i + 1], fs_hz=FS_HZ, noise_uv=s["static"][i:i + 1, NOISE])[0]
            for w in range(3):
                if np.isfinite(pk[w]):
                    k = int(round(pk[w] * FS_HZ / 1000))
                    ax.plot(pk[w], y[min(k, len(y) - 1)], "v", color=COLORS.get(name), ms=4)
        ax.set_ylabel(f"~{level} dB nHL\nuV (offset)", fontsize=7)
        ax.legend(fontsize=6, loc="upper right", ncol=len(sets))
        ax.tick_params(labelsize=6)
    axes[-1, 0].set_xlabel("time (ms)", fontsize=8)
    fig.suptitle("abr_simulated: real vs generated waveforms, normal hearing (v: picked peaks I, III, V)", fontsize=9)
    save(fig, path)


def _binned_latency(static: np.ndarray, latency: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Mean wave V latency per intensity bin over normal-hearing rows where it exists (NaN for empty bins)."""
    ok = (static[:, THRESHOLD] <= NORMAL) & np.isfinite(latency)
    out = np.full(len(edges) - 1, np.nan)
    for b in range(len(edges) - 1):
        sel = ok & (static[:, INTENSITY] >= edges[b]) & (static[:, INTENSITY] < edges[b + 1])
        if sel.sum() >= 3:
            out[b] = latency[sel].mean()
    return out


def latency_intensity(test: Mapping[str, np.ndarray], drafts: Mapping[str, Mapping[str, np.ndarray]],
                      path: str | Path) -> None:
    """Wave V latency against intensity, normal hearing, 10 dB bins: the simulator's rule at the test static
    vectors, and the picker on real, legacy and joint signals."""
    edges = np.arange(0, 110, 10.0)
    mid = (edges[:-1] + edges[1:]) / 2
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(mid, _binned_latency(test["static"], expected_peaks(test["static"])[:, 2], edges), "-",
            color=COLORS["rule"], lw=2, label="rule (simulator norms)")
    for name, s in {"real": test, **drafts}.items():
        picked = pick_peaks(s["signal"], fs_hz=FS_HZ, noise_uv=s["static"][:, NOISE])[:, 2]
        ax.plot(mid, _binned_latency(s["static"], picked, edges), "o-", color=COLORS.get(name), ms=3, lw=1,
                label=f"{name} (picked)")
    ax.set_xlabel("intensity (dB nHL)")
    ax.set_ylabel("wave V latency (ms)")
    ax.set_title("latency-intensity, normal hearing", fontsize=9)
    ax.legend(fontsize=7)
    save(fig, path)


def static_pairs(real: np.ndarray, fake: np.ndarray, path: str | Path, max_points: int = 600) -> None:
    """Pair plot of the six static parameters: real test (grey) against joint-mode draws (orange)."""
    rng = np.random.default_rng(0)
    r = real[rng.choice(len(real), min(max_points, len(real)), replace=False)]
    f = fake[rng.choice(len(fake), min(max_points, len(fake)), replace=False)]
    d = len(STATIC_NAMES)
    fig, axes = plt.subplots(d, d, figsize=(1.6 * d, 1.6 * d))
    for i in range(d):
        for j in range(d):
            ax = axes[i, j]
            if i == j:
                bins = np.histogram_bin_edges(np.concatenate([r[:, i], f[:, i]]), 20)
                ax.hist(r[:, i], bins, color=COLORS["real"], alpha=0.5, density=True)
                ax.hist(f[:, i], bins, color=COLORS["joint"], alpha=0.5, density=True)
            else:
                ax.scatter(r[:, j], r[:, i], s=1, color=COLORS["real"], alpha=0.4)
                ax.scatter(f[:, j], f[:, i], s=1, color=COLORS["joint"], alpha=0.4)
            ax.tick_params(labelsize=5)
            if i == d - 1:
                ax.set_xlabel(STATIC_NAMES[j], fontsize=6)
            if j == 0:
                ax.set_ylabel(STATIC_NAMES[i], fontsize=6)
    fig.suptitle("static parameters: real test (grey) vs joint-mode draws (orange)", fontsize=9)
    save(fig, path)


def training_curves(history: Mapping[str, list[dict]], path: str | Path) -> None:
    """Per mode and epoch: beta, validation KL (sum over units), active latent units, validation loss."""
    panels = [("beta", lambda h: h["beta"]), ("val KL (nats)", lambda h: h["val_kl"]),
              ("active units", lambda h: h["active_units"]), ("val loss at max beta", lambda h: h["val_loss"])]
    fig, axes = plt.subplots(1, len(panels), figsize=(3 * len(panels), 2.6))
    for ax, (title, get) in zip(axes, panels):
        for mode, hist in history.items():
            ax.plot([h["epoch"] for h in hist], [get(h) for h in hist], color=COLORS.get(mode), label=mode)
        ax.set_title(title, fontsize=8)
        ax.set_xlabel("epoch", fontsize=7)
        ax.tick_params(labelsize=6)
    axes[0].legend(fontsize=7)
    save(fig, path)


def epl_sweep(sweep, latency_ms: np.ndarray, fs_hz: float, path: str | Path) -> None:
    """A real EPL level sweep, one trace per level (offset), with the tracked wave's latency marked."""
    t = np.arange(sweep.signals.shape[1]) * 1000.0 / fs_hz
    span = float(np.nanmax(np.ptp(sweep.signals, axis=1))) or 1.0
    fig, ax = plt.subplots(figsize=(5, 0.35 * len(sweep.levels) + 1.5))
    for i, (level, sig) in enumerate(zip(sweep.levels, sweep.signals)):
        y = sig + 0.6 * span * i
        ax.plot(t, y, lw=0.7, color="0.2")
        if np.isfinite(latency_ms[i]):
            k = min(int(round(latency_ms[i] * fs_hz / 1000)), len(y) - 1)
            ax.plot(latency_ms[i], y[k], "v", color="tab:red", ms=4)
        ax.text(t[-1], y[-1], f" {level:g} dB", fontsize=6, va="center")
    ax.set_xlabel("time (ms)")
    ax.set_yticks([])
    ax.set_title(f"{Path(sweep.path).name}: tracked wave per level", fontsize=9)
    save(fig, path)
