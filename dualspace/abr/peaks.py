"""Peak picking on ABR waveforms: waves I, III, V of single recordings, one wave tracked down a level series,
and peak-to-peak size. Latencies in ms, amplitudes peak-to-following-trough in the signal's unit."""

from __future__ import annotations

import numpy as np
from scipy import signal as sps

from ..data.abr_simulated import NORMS

V_WINDOW_MS = (4.6, 9.8)  # wave V from 80 dB nHL (~5.6 ms) down to ~20 dB above threshold and slow rates
# Waves I and III are searched relative to wave V, since the interpeak intervals (I-V ~4.0 ms, III-V ~1.9 ms; Hall
# 2007) hold at every level while absolute latencies move by ~3 ms between 80 dB and threshold (windows would overlap).
RELATIVE_MS = {"I": (-4.5, -3.5), "III": (-2.4, -1.4)}
K_NOISE = 3.5  # a wave counts as present when its peak-to-trough exceeds K_NOISE x the residual-noise RMS
LOWPASS_HZ = 1500.0  # zero-phase low-pass before picking: ABR waves lie below ~1000 Hz, residual noise up to 3000 Hz
TROUGH_MS = 1.0  # the following trough is searched up to this long after the peak
NOISE_CUTOFF_HZ = 2000.0  # the noise estimate uses the band above this, where ABR waves carry little energy


def _peak_in(x: np.ndarray, lo_ms: np.ndarray, hi_ms: np.ndarray, fs_hz: float,
             trough_ms: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Largest sample of each row of (N,T) x within [lo_ms, hi_ms]: latency (parabolic sub-sample), peak-to-trough
    amplitude, and whether it is a true local maximum (not at the window's edge). All (N,)."""
    n, t = x.shape
    t_ms = np.arange(t) * 1000.0 / fs_hz
    inside = (t_ms >= np.asarray(lo_ms)[:, None]) & (t_ms <= np.asarray(hi_ms)[:, None])  # (N,T)
    i = np.where(inside, x, -np.inf).argmax(axis=1)  # (N,)
    rows = np.arange(n)
    first, last = inside.argmax(axis=1), t - 1 - inside[:, ::-1].argmax(axis=1)
    interior = inside.any(axis=1) & (i > first) & (i < last)
    left, mid, right = x[rows, np.maximum(i - 1, 0)], x[rows, i], x[rows, np.minimum(i + 1, t - 1)]
    curv = left - 2.0 * mid + right
    delta = np.where(interior & (curv < 0), 0.5 * (left - right) / np.where(curv < 0, curv, -1.0), 0.0)  # in (-.5, .5)
    peak = mid - 0.25 * (left - right) * delta
    after = (np.arange(t) > i[:, None]) & (np.arange(t) <= i[:, None] + trough_ms * fs_hz / 1000.0)  # (N,T)
    trough = np.where(after, x, np.inf).min(axis=1)
    amplitude = np.where(np.isfinite(trough), peak - trough, np.nan)
    return (i + delta) * 1000.0 / fs_hz, amplitude, interior


def _high_pass(cutoff_hz: float, fs_hz: float) -> np.ndarray:
    return sps.butter(4, cutoff_hz, btype="high", fs=fs_hz, output="sos")


def noise_band_fraction(cutoff_hz: float = NOISE_CUTOFF_HZ, fs_hz: float = 20_000.0) -> float:
    """Share of residual-noise variance the zero-phase high-pass at `cutoff_hz` keeps, for white noise through the
    recording band's zero-phase 2nd-order Butterworth band-pass (NORMS["recording_band_hz"], Hall 2007)."""
    band = sps.butter(2, NORMS["recording_band_hz"]["value"], btype="band", fs=fs_hz, output="sos")
    f, h_band = sps.sosfreqz(band, worN=4096, fs=fs_hz)
    _, h_high = sps.sosfreqz(_high_pass(cutoff_hz, fs_hz), worN=4096, fs=fs_hz)
    power = np.abs(h_band) ** 4  # filtfilt squares each magnitude response
    return float((power * np.abs(h_high) ** 4).sum() / power.sum())


def estimate_noise(signal: np.ndarray, fs_hz: float = 20_000.0, cutoff_hz: float = NOISE_CUTOFF_HZ) -> np.ndarray:
    """(N,T) -> (N,) residual-noise RMS guessed from the band above `cutoff_hz`, scaled up by that band's share
    of noise assuming white noise in the recording band (an assumption; pass the known figure when there is one)."""
    high = sps.sosfiltfilt(_high_pass(cutoff_hz, fs_hz), np.asarray(signal, np.float64), axis=1)
    return high.std(axis=1) / np.sqrt(noise_band_fraction(cutoff_hz, fs_hz))


def pick_peaks(signal: np.ndarray, fs_hz: float = 20_000.0, v_window_ms: tuple[float, float] = V_WINDOW_MS,
               relative_ms: dict[str, tuple[float, float]] | None = None, noise_uv: np.ndarray | None = None,
               k_noise: float = K_NOISE, trough_ms: float = TROUGH_MS, lowpass_hz: float | None = LOWPASS_HZ) -> np.ndarray:
    """(N,T) uV -> (N,6) [latency I, III, V ms, amplitude I, III, V uV] (PEAK_NAMES order); NaN where a wave is
    judged absent: no local maximum in its window, or peak-to-trough <= k_noise x the raw signal's residual-noise
    RMS (estimated when not given). Picks run on the signal low-passed at `lowpass_hz` (4th-order Butterworth,
    zero-phase, so latencies keep no filter delay). Wave V is the largest sample in `v_window_ms`; I and III the
    largest in `relative_ms` windows about V."""
    x = np.asarray(signal, np.float64)
    n = len(x)
    rel = {**RELATIVE_MS, **(relative_ms or {})}
    noise = estimate_noise(x, fs_hz) if noise_uv is None else np.asarray(noise_uv, np.float64)
    if lowpass_hz is not None:
        x = sps.sosfiltfilt(sps.butter(4, lowpass_hz, fs=fs_hz, output="sos"), x, axis=1)
    lat_v, amp_v, ok_v = _peak_in(x, np.full(n, v_window_ms[0]), np.full(n, v_window_ms[1]), fs_hz, trough_ms)
    out = np.full((n, 6), np.nan)
    for j, (lat, amp, ok) in enumerate([
        _peak_in(x, lat_v + rel["I"][0], lat_v + rel["I"][1], fs_hz, trough_ms),
        _peak_in(x, lat_v + rel["III"][0], lat_v + rel["III"][1], fs_hz, trough_ms),
        (lat_v, amp_v, ok_v),
    ]):
        present = ok & (amp > k_noise * noise)
        out[present, j], out[present, 3 + j] = lat[present], amp[present]
    return out


def track_wave(signals: np.ndarray, levels: np.ndarray, fs_hz: float, window_ms: tuple[float, float],
               max_step_ms: float = 0.3, trough_ms: float = TROUGH_MS) -> tuple[np.ndarray, np.ndarray]:
    """Follow one wave down a level series: (L,T) signals, (L,) levels -> (L,) latency ms and (L,) peak-to-trough
    amplitude. The wave is the largest peak in `window_ms` at the highest level; each lower level searches within
    +/- max_step_ms of the last latency found (inside the window). NaN where no local maximum is found there."""
    x, levels = np.asarray(signals, np.float64), np.asarray(levels, np.float64)
    latency, amplitude = np.full(len(x), np.nan), np.full(len(x), np.nan)
    lo, hi = window_ms
    for row in np.argsort(-levels, kind="stable"):
        lat, amp, ok = _peak_in(x[row:row + 1], np.array([lo]), np.array([hi]), fs_hz, trough_ms)
        if ok[0]:
            latency[row], amplitude[row] = lat[0], amp[0]
            lo, hi = max(window_ms[0], lat[0] - max_step_ms), min(window_ms[1], lat[0] + max_step_ms)
    return latency, amplitude


def peak_to_peak(signals: np.ndarray, fs_hz: float, window_ms: tuple[float, float] = (0.8, 3.0)) -> np.ndarray:
    """(L,T) -> (L,) max minus min of each signal within [window_ms) (the size of the early waves)."""
    t_ms = np.arange(np.shape(signals)[1]) * 1000.0 / fs_hz
    seg = np.asarray(signals, np.float64)[:, (t_ms >= window_ms[0]) & (t_ms < window_ms[1])]
    return seg.max(axis=1) - seg.min(axis=1)
