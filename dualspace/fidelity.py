"""Draft fidelity an expert sees at a glance, measured: real test data vs drafts, per class.

phi-space distances (FD, MMD) and classifiers (TSTR) are blind to what a reader of the raw signal notices
first: spikes at a window's ends, residual high-frequency noise, a wrong amplitude. These diagnostics work on
the raw arrays (numpy only, seconds):

- series (N, C, T): the edge / interior deviation (mean |x_t - median_t x| at t = 0 and T-1 over the same at
  margin <= t < T - margin), the power spectrum (Hann-windowed periodogram of the de-meaned window, averaged
  over windows and channels) as a log10 ratio per frequency band, the std (over everything, and inside a window),
  the per-timestep mean and std, the autocorrelation at a few lags;
- images (N, C, H, W): per-pixel mean and std maps and the radially averaged power spectrum by band.

Every comparison is "test" (real) against "other": the drafts, the drafts a region accepts, and, as references,
one random half of the real test split against the other half (sampling noise) and the real train split.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = ["FidelityConfig", "edge_interior", "deviation_profile", "power_spectrum", "radial_power_spectrum",
           "band_log_ratio", "autocorrelation", "std_ratio", "within_std_ratio", "compare", "fidelity_table", "profiles", "MIN_EXAMPLES"]


MIN_EXAMPLES = 4  # a class with fewer examples in a set gets no row (and no curve in the figure)


@dataclass
class FidelityConfig:
    """Config section `fidelity`; plain types only."""

    edge_margin: int = 5  # interior = margin <= t < T - margin
    bands: dict[str, list[float]] = field(default_factory=lambda: {
        "low": [0.0, 0.125], "mid": [0.125, 0.625], "high": [0.625, 1.0]})  # fractions of the Nyquist frequency
    lags: list[int] = field(default_factory=lambda: [1, 2, 4, 8])
    tolerance: dict[str, float] = field(default_factory=lambda: {"edge": 0.2, "high_psd": 0.15, "std": 0.1})

    def __post_init__(self):
        for name, (lo, hi) in self.bands.items():
            if not 0.0 <= lo < hi <= 1.0:
                raise ValueError(f"fidelity.bands.{name}: need 0 <= low < high <= 1 (fractions of Nyquist), "
                                 f"got [{lo}, {hi}]")
        if "high" not in self.bands:
            raise ValueError("fidelity.bands needs a band named 'high' (the high-frequency check)")
        if self.edge_margin < 1:
            raise ValueError(f"fidelity.edge_margin must be >= 1, got {self.edge_margin}")
        if any(lag < 1 for lag in self.lags):
            raise ValueError(f"fidelity.lags must be >= 1, got {self.lags}")
        missing = {"edge", "high_psd", "std"} - set(self.tolerance)
        if missing:
            raise ValueError(f"fidelity.tolerance misses {sorted(missing)}")

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "FidelityConfig":
        d = dict(d or {})
        unknown = set(d) - {f for f in cls.__dataclass_fields__}
        if unknown:
            raise ValueError(f"fidelity: unknown key(s) {sorted(unknown)}; known: {sorted(cls.__dataclass_fields__)}")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- series ---------------------------------------------------------------------------------------------------
def _deviation(x: np.ndarray) -> np.ndarray:
    """|x_t - median_t x| per window and channel, (N, C, T)."""
    return np.abs(x - np.median(x, axis=-1, keepdims=True))


def edge_interior(x: np.ndarray, margin: int = 5) -> float:
    """Mean deviation from the window's median at the first and last sample over the same in the interior."""
    dev = _deviation(np.asarray(x, np.float64))
    T = dev.shape[-1]
    if T <= 2 * margin:
        raise ValueError(f"series of length {T} have no interior with edge_margin {margin}")
    edge = dev[..., [0, T - 1]].mean()
    interior = dev[..., margin:T - margin].mean()
    return float(edge / interior) if interior > 0 else float("nan")


def deviation_profile(x: np.ndarray) -> np.ndarray:
    """Mean |x_t - median_t x| at each t, over windows and channels: (T,)."""
    return _deviation(np.asarray(x, np.float64)).mean(axis=(0, 1))


def power_spectrum(x: np.ndarray) -> np.ndarray:
    """Hann-windowed periodogram of each de-meaned window, averaged over windows and channels: (T//2 + 1,)."""
    x = np.asarray(x, np.float64)
    T = x.shape[-1]
    w = np.hanning(T + 1)[:-1] if T > 1 else np.ones(1)  # periodic Hann (scipy.signal.get_window('hann'))
    spec = np.abs(np.fft.rfft((x - x.mean(axis=-1, keepdims=True)) * w, axis=-1)) ** 2 / (w ** 2).sum()
    return spec.reshape(-1, spec.shape[-1]).mean(axis=0)


def autocorrelation(x: np.ndarray, lags: list[int]) -> np.ndarray:
    """sum_t (x_t - m)(x_{t+l} - m) / sum_t (x_t - m)^2 per window and channel, averaged: (len(lags),).
    Constant windows (zero variance) are left out."""
    x = np.asarray(x, np.float64).reshape(-1, np.shape(x)[-1])
    x = x - x.mean(axis=-1, keepdims=True)
    var = (x ** 2).sum(axis=-1)
    keep = var > 0
    x, var = x[keep], var[keep]
    return np.array([((x[:, :-lag] * x[:, lag:]).sum(axis=-1) / var).mean() if lag < x.shape[-1] else np.nan
                     for lag in lags])


def _channel_ratio(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over channels of a / b, leaving out channels where b is 0 (constant in the test data)."""
    keep = b > 0
    return float((a[keep] / b[keep]).mean()) if keep.any() else float("nan")


def std_ratio(other: np.ndarray, test: np.ndarray) -> float:
    """Per channel, the std over all windows and timesteps (pixels) of `other` over that of `test`; mean over
    channels. Channels constant in `test` are left out."""
    axes = (0, *range(2, np.ndim(test)))
    return _channel_ratio(np.asarray(other, np.float64).std(axis=axes), np.asarray(test, np.float64).std(axis=axes))


def within_std_ratio(other: np.ndarray, test: np.ndarray) -> float:
    """Series: per channel, the median over windows of each window's std over time, `other` over `test`; mean over
    channels. Unlike `std_ratio` it ignores how windows differ from each other (posture, tempo): it sees the noise
    and the fluctuation inside a window."""
    return _channel_ratio(np.median(np.asarray(other, np.float64).std(axis=-1), axis=0),
                          np.median(np.asarray(test, np.float64).std(axis=-1), axis=0))


# -- images ---------------------------------------------------------------------------------------------------
def radial_power_spectrum(x: np.ndarray) -> np.ndarray:
    """Power |FFT2|^2 of each de-meaned image, averaged over images and channels and over rings of equal radial
    frequency (radius in cycles per image, rounded): (floor(max radius) + 1,). Radius r / (min(H, W) / 2) is the
    fraction of the Nyquist frequency."""
    x = np.asarray(x, np.float64)
    H, W = x.shape[-2:]
    x = x - x.mean(axis=(-2, -1), keepdims=True)
    p = (np.abs(np.fft.fft2(x)) ** 2 / (H * W)).reshape(-1, H, W).mean(axis=0)
    fy, fx = np.meshgrid(np.fft.fftfreq(H) * H, np.fft.fftfreq(W) * W, indexing="ij")
    r = np.rint(np.hypot(fy, fx)).astype(int)
    return np.bincount(r.ravel(), weights=p.ravel()) / np.bincount(r.ravel())


def _nyquist_fraction(n_bins: int, kind: str, shape: tuple[int, ...]) -> np.ndarray:
    if kind == "series":
        return np.arange(n_bins) / (shape[-1] / 2)
    return np.arange(n_bins) / (min(shape[-2:]) / 2)


def band_log_ratio(p_other: np.ndarray, p_test: np.ndarray, freq: np.ndarray, band: list[float]) -> float:
    """log10 of the power of `other` in the band [lo, hi) over that of `test`. The DC bin (f = 0) never counts;
    a band ending at 1 (Nyquist) keeps everything above (the Nyquist bin; an image's diagonal frequencies)."""
    lo, hi = band
    sel = (freq > 0) & (freq >= lo) & ((freq < hi) | (hi >= 1.0))
    a, b = p_other[sel].sum(), p_test[sel].sum()
    if b <= 0 or a <= 0:
        return float("nan")
    return float(np.log10(a / b))


# -- comparisons ----------------------------------------------------------------------------------------------
def spectrum(x: np.ndarray, kind: str) -> np.ndarray:
    return power_spectrum(x) if kind == "series" else radial_power_spectrum(x)


def compare(other: np.ndarray, test: np.ndarray, kind: str, cfg: FidelityConfig) -> dict[str, float]:
    """Every diagnostic of `other` against `test` (both (N, C, ...) of one class) as one row's numbers."""
    p_o, p_t = spectrum(other, kind), spectrum(test, kind)
    freq = _nyquist_fraction(len(p_t), kind, test.shape)
    row: dict[str, float] = {}
    if kind == "series":
        e_t, e_o = edge_interior(test, cfg.edge_margin), edge_interior(other, cfg.edge_margin)
        row.update(edge_interior_test=e_t, edge_interior_other=e_o, edge_ratio=e_o / e_t)
    for name in sorted(cfg.bands):
        row[f"psd_log10_{name}"] = band_log_ratio(p_o, p_t, freq, cfg.bands[name])
    row["std_ratio"] = std_ratio(other, test)
    if kind == "series":
        row["within_std_ratio"] = within_std_ratio(other, test)
    # per-timestep / per-pixel mean and std, standardised by the test data's std of each channel
    axes = (0, *range(2, test.ndim))
    scale = np.asarray(test, np.float64).std(axis=axes).reshape(-1, *([1] * (test.ndim - 2)))
    scale = np.where(scale > 0, scale, 1.0)
    d_mean = (np.asarray(other, np.float64).mean(axis=0) - np.asarray(test, np.float64).mean(axis=0)) / scale
    row["mean_rmse"] = float(np.sqrt((d_mean ** 2).mean()))
    s_o, s_t = np.asarray(other, np.float64).std(axis=0), np.asarray(test, np.float64).std(axis=0)
    row["std_map_rmse"] = float(np.sqrt((((s_o - s_t) / scale) ** 2).mean()))
    if kind == "series":
        for lag, a_o, a_t in zip(cfg.lags, autocorrelation(other, cfg.lags), autocorrelation(test, cfg.lags)):
            row[f"acf{lag}_diff"] = float(a_o - a_t)
    tol = cfg.tolerance
    checks = [abs(row["psd_log10_high"]) <= tol["high_psd"], abs(row["std_ratio"] - 1) <= tol["std"]]
    if kind == "series":
        checks.append(abs(row["edge_ratio"] - 1) <= tol["edge"])
    row["ok"] = bool(all(checks))
    return row


def halves(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random split of range(n) into two halves (the neutral real-vs-real reference)."""
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[: n // 2]), np.sort(perm[n // 2:])


def fidelity_table(test_x: np.ndarray, test_label: np.ndarray, others: dict[str, tuple[np.ndarray, np.ndarray]],
                   kind: str, class_names: list[str], cfg: FidelityConfig, seed: int) -> list[dict[str, Any]]:
    """Rows per class (and 'all'): real half vs real half, then each named (x, label) set in `others` vs the
    real test data of that class. A class with fewer than MIN_EXAMPLES examples on either side gets no row."""
    rows = []
    classes = [(name, test_label == c, c) for c, name in enumerate(class_names)]
    classes.append(("all", np.ones(len(test_label), bool), None))
    for cname, sel, c in classes:
        real = test_x[sel]
        if len(real) < MIN_EXAMPLES:
            continue
        a, b = halves(len(real), seed)
        sets = {"real_half": (real[a], real[b])}
        for name, (x, label) in others.items():
            mine = x if c is None else x[label == c]
            if len(mine) >= MIN_EXAMPLES:
                sets[name] = (mine, real)
        for name, (other, test) in sets.items():
            row = compare(other, test, kind, cfg)
            if c is None and "within_std_ratio" in row:
                row["within_std_ratio"] = float("nan")  # a median over a mixture of classes falls between them
            rows.append({"class": cname, "compared": name, "n_test": len(test), "n_other": len(other), **row})
    return rows


def profiles(x: np.ndarray, kind: str) -> dict[str, np.ndarray]:
    """What the fidelity figure draws for one set: the spectrum and, for series, the deviation and std per t;
    for images, the per-pixel mean and std maps (channel-mean)."""
    out = {"spectrum": spectrum(x, kind)}
    if kind == "series":
        out["deviation"] = deviation_profile(x)
        out["std"] = np.asarray(x, np.float64).std(axis=0).mean(axis=0)
    else:
        out["mean_map"] = np.asarray(x, np.float64).mean(axis=0).mean(axis=0)
        out["std_map"] = np.asarray(x, np.float64).std(axis=0).mean(axis=0)
    return out
