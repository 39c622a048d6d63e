"""Does a set of ABR signals obey the physiology? Peaks picked in the signals against the simulator's rule at the
signals' own static parameters, static marginals and correlations against real ones, and a C2ST.

Every check takes plain arrays: signals (N, 200) in uV, static (N, 6) in the columns of `simulate.STATIC_NAMES`.
The same checks run on the real test split, which gives each number its floor (what the picker scores on data
that obeys the rule exactly, up to between-subject variability and noise).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

from ..data.abr_simulated import STATIC_NAMES, expected_peaks
from ..two_sample import c2st
from .peaks import pick_peaks

WAVES = ("I", "III", "V")
INTENSITY, THRESHOLD, NOISE = (STATIC_NAMES.index(k) for k in ("intensity_db_nhl", "threshold_db_hl", "noise_uv"))
MIN_ROWS = 10  # fewer rows than this: a slope or mean is reported as NaN


def _slope(x: np.ndarray, y: np.ndarray, robust: bool = False) -> float:
    """Slope of y on x: least squares, or Theil-Sen (the median of pairwise slopes: a mis-picked wave moves it
    little) when `robust`; NaN with fewer than MIN_ROWS rows or no spread in x."""
    if len(x) < MIN_ROWS or np.ptp(x) == 0:
        return math.nan
    return float(stats.theilslopes(y, x)[0]) if robust else float(np.polyfit(x, y, 1)[0])


def physiology(signal: np.ndarray, static: np.ndarray, fs_hz: float = 20000.0) -> dict[str, float]:
    """Peaks picked in `signal` against `expected_peaks(static)`.

    - wave V latency-intensity slope (ms/dB) over the rows above threshold where the picker finds wave V: the
      rule's (least squares of its latencies on intensity) and the picked one = the rule's + the Theil-Sen slope of
      (picked - rule) on intensity, so rows at other thresholds, rates or ages compare like with like and a rare
      mis-pick (wave III or noise taken for V near threshold) does not tilt it; `li_slope_rel_error` = |picked /
      rule - 1|. On the real test split it is the picker's floor (docs/abr.md);
    - I-V interpeak (ms), mean over rows with both waves found, beside the rule's over the same rows;
    - `wave_below_threshold`: share of rows at or below threshold where the picker finds wave V (the rule: none);
    - `latency_mae_V`: mean |picked - rule| wave V latency where both exist (variability + picker error);
    - `latency_V_mean`: mean picked wave V latency over every row where the picker finds it.
    """
    picked = pick_peaks(signal, fs_hz=fs_hz, noise_uv=static[:, NOISE])  # (N, 6) NaN where absent
    rule = expected_peaks(static)  # (N, 6)
    above = static[:, INTENSITY] > static[:, THRESHOLD]
    found_v = np.isfinite(picked[:, 2])
    rows = above & found_v & np.isfinite(rule[:, 2])
    slope_rule = _slope(static[rows, INTENSITY], rule[rows, 2])
    slope_picked = slope_rule + _slope(static[rows, INTENSITY], picked[rows, 2] - rule[rows, 2], robust=True)
    both = above & found_v & np.isfinite(picked[:, 0]) & np.isfinite(rule[:, 0]) & np.isfinite(rule[:, 2])
    ipl = picked[both, 2] - picked[both, 0]
    ipl_rule = rule[both, 2] - rule[both, 0]
    below = ~above
    return {
        "n": int(len(signal)),
        "n_above_threshold": int(above.sum()),
        "wave_v_found_above": float(found_v[above].mean()) if above.any() else math.nan,
        "li_slope_picked": slope_picked,
        "li_slope_rule": slope_rule,
        "li_slope_rel_error": abs(slope_picked / slope_rule - 1) if slope_rule else math.nan,
        "ipl_I_V_picked": float(ipl.mean()) if len(ipl) >= MIN_ROWS else math.nan,
        "ipl_I_V_rule": float(ipl_rule.mean()) if len(ipl) >= MIN_ROWS else math.nan,
        "ipl_I_V_error": float(abs(ipl.mean() - ipl_rule.mean())) if len(ipl) >= MIN_ROWS else math.nan,
        "wave_below_threshold": float(found_v[below].mean()) if below.any() else math.nan,
        "latency_mae_V": float(np.abs(picked[rows, 2] - rule[rows, 2]).mean()) if rows.sum() >= MIN_ROWS else math.nan,
        "latency_V_mean": float(picked[found_v, 2].mean()) if found_v.any() else math.nan,
    }


def picker_validation(signal: np.ndarray, static: np.ndarray, peaks: np.ndarray, fs_hz: float = 20000.0
                      ) -> dict[str, float]:
    """The picker on signals with known peaks (the simulator's ground truth, NaN = absent): latency MAE (ms) per
    wave where both agree a wave is there, detection rate (present waves found) and false alarms (absent found)."""
    picked = pick_peaks(signal, fs_hz=fs_hz, noise_uv=static[:, NOISE])
    out: dict[str, float] = {}
    for j, wave in enumerate(WAVES):
        truth, got = np.isfinite(peaks[:, j]), np.isfinite(picked[:, j])
        both = truth & got
        out[f"picker_latency_mae_{wave}"] = float(np.abs(picked[both, j] - peaks[both, j]).mean()) if both.any() else math.nan
        out[f"picker_detection_{wave}"] = float(got[truth].mean()) if truth.any() else math.nan
        out[f"picker_false_alarm_{wave}"] = float(got[~truth].mean()) if (~truth).any() else math.nan
    return out


def static_marginals(real: np.ndarray, fake: np.ndarray, names: list[str] = STATIC_NAMES) -> dict[str, float]:
    """Per column: mean and sd of real and fake, the two-sample KS statistic; and the largest absolute difference
    between the two correlation matrices (Pearson)."""
    out: dict[str, float] = {}
    for j, name in enumerate(names):
        r, f = real[:, j], fake[:, j]
        out.update({f"static_{name}_mean_real": float(r.mean()), f"static_{name}_mean_gen": float(f.mean()),
                    f"static_{name}_sd_real": float(r.std()), f"static_{name}_sd_gen": float(f.std()),
                    f"static_{name}_ks": float(stats.ks_2samp(r, f).statistic)})
    out["static_corr_max_abs_diff"] = float(np.nanmax(np.abs(np.corrcoef(real.T) - np.corrcoef(fake.T))))
    return out


def c2st_signal_static(real_signal: np.ndarray, real_static: np.ndarray, fake_signal: np.ndarray,
                       fake_static: np.ndarray, seed: int, folds: int) -> dict[str, Any]:
    """C2ST real vs generated on [signal, static] rows (0.5 = indistinguishable), with its 95% interval."""
    r = c2st(np.hstack([real_signal, real_static]), np.hstack([fake_signal, fake_static]), seed=seed, folds=folds)
    return {"c2st": r.accuracy, "c2st_low": r.low, "c2st_high": r.high, "c2st_n": r.n}


def reconstruction(signal: np.ndarray, static: np.ndarray, peaks: np.ndarray, rec: dict[str, np.ndarray],
                   categorical: list[int]) -> dict[str, float]:
    """Posterior-mean reconstruction against the truth: signal MSE (uV^2) and mean per-example Pearson r; static
    MAE per continuous column and accuracy per categorical one (joint mode); peak-head latency MAE (ms) per wave
    where the wave is present."""
    s, t = rec["signal"], signal
    sc, tc = s - s.mean(1, keepdims=True), t - t.mean(1, keepdims=True)
    r = (sc * tc).sum(1) / np.maximum(np.sqrt((sc ** 2).sum(1) * (tc ** 2).sum(1)), 1e-12)
    out = {"recon_signal_mse": float(((s - t) ** 2).mean()), "recon_signal_corr": float(r.mean())}
    if rec.get("static") is not None:
        for j, name in enumerate(STATIC_NAMES):
            if j in categorical:
                out[f"recon_static_{name}_accuracy"] = float((np.round(rec["static"][:, j]) == static[:, j]).mean())
            else:
                out[f"recon_static_{name}_mae"] = float(np.abs(rec["static"][:, j] - static[:, j]).mean())
    if rec.get("peaks") is not None:
        for j, wave in enumerate(WAVES):
            ok = np.isfinite(peaks[:, j])
            out[f"recon_peak_latency_mae_{wave}"] = float(np.abs(rec["peaks"][ok, j] - peaks[ok, j]).mean())
    return out
