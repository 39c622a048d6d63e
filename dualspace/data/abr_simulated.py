"""The `abr_simulated` dataset (simulated, not recorded): a seeded physiological simulator of averaged click ABRs,
waves I, III, V whose latency and amplitude follow published adult norms plus band-limited residual noise, and
its loader in the dataset contract (three exchangeable splits of independent draws, z-scored with train
statistics, static parameters and true peaks as extras).

The rule `expected_peaks` is the simulator without subject variability or noise; evaluation compares generated
signals with it. Every number of the rule sits in `NORMS` with its source. Levels in dB nHL and thresholds in dB HL
are taken on one scale (0 dB nHL = the normal-hearing click threshold).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from ..settings import ConfigBase
from .base import SIZE, Dataset, Split, channel_stats, random_partition, zscore

FS_HZ = 20_000.0  # sample k lies at k / FS_HZ seconds
N_SAMPLES = 200  # 10 ms epoch
T_MS = np.arange(N_SAMPLES) * 1000.0 / FS_HZ  # (200,) sample times in ms

STATIC_NAMES = ["intensity_db_nhl", "rate_per_s", "age_years", "sex", "threshold_db_hl", "noise_uv"]
PEAK_NAMES = ["latency_I_ms", "latency_III_ms", "latency_V_ms", "amplitude_I_uv", "amplitude_III_uv", "amplitude_V_uv"]
WAVES = ["I", "III", "V"]
HEARING_CLASSES = ["normal", "mild", "moderate", "severe"]

# Each entry: the value(s) the rule uses and where the figure comes from. Per-wave tuples are (I, III, V).
NORMS: dict[str, dict] = {
    "latency_80db_ms": {
        "value": (1.6, 3.7, 5.6),
        "source": "Hall 2007, New Handbook of Auditory Evoked Responses, adult click ABR norms at 80 dB nHL "
                  "(I ~1.5-1.7, III ~3.6-3.9, V ~5.5-5.8 ms); Hood 1998, Clinical Applications of the ABR, ch. 4"},
    "latency_slope_ms_per_db": {
        "value": 0.035,
        "source": "Hood 1998 ch. 4 / Picton 2011, Human Auditory Evoked Potentials, ch. 8: wave V latency grows "
                  "~0.3-0.4 ms per 10 dB decrease; applied to all waves since the I-V interval stays nearly "
                  "constant across level (Hood 1998)"},
    "rate_ms_per_hz": {
        "value": (0.1 / 60, 0.25 / 60, 0.4 / 60),
        "source": "Don, Allen & Starr 1977, Ann Otol Rhinol Laryngol 86:186-195: raising the click rate from "
                  "~10/s to ~70/s delays wave V by ~0.4 ms, earlier waves less (I ~0.1 ms); linear in rate"},
    "rate_ref_per_s": {"value": 10.0, "source": "Don, Allen & Starr 1977 (slowest rate of their series)"},
    "age_ms_per_year": {
        "value": 0.2 / 30,
        "source": "Jerger & Hall 1980, Arch Otolaryngol 106:387-391: wave V latency ~0.2 ms longer from age 25 "
                  "to 55; applied to all waves above age 25 (adult latencies stable below)"},
    "age_ref_years": {"value": 25.0, "source": "Jerger & Hall 1980 (youngest adult group)"},
    "sex_ms": {
        "value": (0.0, 0.05, 0.1),
        "source": "Jerger & Hall 1980; Hall 2007: wave V ~0.2 ms shorter in women than men; +/- half of it "
                  "about the sex-averaged norm, wave III half that, wave I unchanged"},
    "sex_amplitude_factor": {
        "value": 0.1,
        "source": "Jerger & Hall 1980: amplitudes larger in women; +/-10% about the sex-averaged norm"},
    "amplitude_80db_uv": {
        "value": (0.3, 0.3, 0.5),
        "source": "Hall 2007 / Hood 1998: adult click ABR amplitudes at high level ~0.3 uV (I, III), "
                  "~0.5 uV (V); shrinking with level toward threshold (linear in effective sensation level here)"},
    "recruitment_level_db": {
        "value": 100.0,
        "source": "Gorga, Worthington, Reiland, Beauchaine & Goldgar 1985, Ear Hear 6:105-112 (cochlear loss: "
                  "latency-intensity function steeper near threshold, near-normal at high levels); modelled as "
                  "linear recruitment that reaches the normal effective level at this level"},
    "conductive_max_db": {
        "value": 60.0,
        "source": "Hall 2007: the air-bone gap of a conductive loss hardly exceeds ~60 dB; conductive loss shifts "
                  "the latency-intensity function by its size (effective level = intensity - conductive loss)"},
    "wave_sigma_ms": {
        "value": (0.2, 0.25, 0.3),
        "source": "Gaussian-derivative width; its spectral peak 1/(2 pi sigma) = 800/640/530 Hz lies in the "
                  "ABR's dominant energy band of ~100-1000 Hz (Hall 2007; Picton 2011 ch. 8)"},
    "latency_sd_ms": {
        "value": 0.15,
        "source": "Hall 2007 norms: between-subject sd of wave latencies ~0.1 (I) to ~0.2 ms (V)"},
    "amplitude_cv": {
        "value": 0.3,
        "source": "Hall 2007 / Picton 2011: ABR amplitudes vary much more than latencies between subjects "
                  "(coefficient of variation ~30% or more)"},
    "noise_uv": {
        "value": (0.02, 0.1),
        "source": "Elberling & Don 1984, Scand Audiol 13:187-197: residual noise of clinical averages some "
                  "tens of nV (a ~20-40 nV criterion for threshold searches); up to 0.1 uV for poor recordings"},
    "recording_band_hz": {
        "value": (100.0, 3000.0),
        "source": "Hall 2007: ABR recording filter ~30-150 Hz high-pass, 3000 Hz low-pass"},
    "hearing_grades_db_hl": {
        "value": (25.0, 40.0, 70.0),
        "source": "Clark 1981, ASHA 23:493-500 grades; slight merged into normal (<=25), moderate and moderately "
                  "severe merged (41-70), severe and profound merged (>70)"},
}


def _norm(key: str) -> np.ndarray:
    return np.asarray(NORMS[key]["value"], dtype=np.float64)


def hearing_class(threshold_db_hl: np.ndarray) -> np.ndarray:
    """(N,) thresholds in dB HL -> (N,) int64 index into HEARING_CLASSES (normal <=25, mild <=40, moderate <=70)."""
    return np.searchsorted(_norm("hearing_grades_db_hl"), np.asarray(threshold_db_hl, np.float64), side="left").astype(np.int64)


def effective_level(static: np.ndarray, conductive_db: np.ndarray | None = None) -> np.ndarray:
    """(N,) level in normal-ear dB that sets latency and amplitude; <= 0 (no response) at or below threshold.

    Conductive loss C subtracts from the intensity; the cochlear part T_c = threshold - C recruits linearly so that
    L_eff = (L - C - T_c) * R / (R - T_c), which equals the normal level at R (Gorga et al. 1985)."""
    static = np.asarray(static, np.float64)
    level, threshold = static[:, 0], static[:, 4]
    c = np.zeros_like(level) if conductive_db is None else np.asarray(conductive_db, np.float64)
    cochlear = threshold - c
    r = _norm("recruitment_level_db")
    return (level - c - cochlear) * r / np.maximum(r - cochlear, 1.0)


def expected_peaks(static: np.ndarray, conductive_db: np.ndarray | None = None) -> np.ndarray:
    """(N,6) static -> (N,6) noiseless, variability-free peaks in PEAK_NAMES order; NaN at or below threshold."""
    static = np.asarray(static, np.float64)
    rate, age, male = static[:, 1:2], static[:, 2:3], static[:, 3:4]  # (N,1) each
    l_eff = effective_level(static, conductive_db)[:, None]  # (N,1)
    sex = 2.0 * male - 1.0  # -1 female, +1 male
    latency = (_norm("latency_80db_ms")[None]  # (N,3)
               + _norm("latency_slope_ms_per_db") * (80.0 - l_eff)
               + _norm("rate_ms_per_hz") * (rate - _norm("rate_ref_per_s"))
               + _norm("age_ms_per_year") * np.maximum(age - _norm("age_ref_years"), 0.0)
               + _norm("sex_ms") * sex)
    amplitude = _norm("amplitude_80db_uv") * (l_eff / 80.0) * (1.0 - _norm("sex_amplitude_factor") * sex)
    out = np.concatenate([latency, amplitude], axis=1)
    out[l_eff[:, 0] <= 0] = np.nan
    return out


def wave_v_slope(static: np.ndarray, conductive_db: np.ndarray | None = None, step_db: float = 1.0) -> np.ndarray:
    """(N,) slope of the rule's wave V latency-intensity function in ms per dB (negative), by a forward difference
    in intensity (exact for the piecewise-linear rule); NaN at or below threshold."""
    up = np.array(static, np.float64, copy=True)
    up[:, 0] += step_db
    return (expected_peaks(up, conductive_db)[:, 2] - expected_peaks(static, conductive_db)[:, 2]) / step_db


def waveform(peaks: np.ndarray, t_ms: np.ndarray = T_MS) -> np.ndarray:
    """(N,6) peaks -> (N,T) noiseless ABR in uV: per wave a Gaussian derivative whose peak lies at the latency and
    whose peak-to-following-trough equals the amplitude (peak at mu - sigma, trough at mu + sigma); NaN waves are 0."""
    peaks = np.asarray(peaks, np.float64)
    sigma = _norm("wave_sigma_ms")[None, :, None]  # (1,3,1)
    lat, amp = np.nan_to_num(peaks[:, :3, None]), np.nan_to_num(peaks[:, 3:, None])  # (N,3,1)
    u = (t_ms[None, None, :] - (lat + sigma)) / sigma  # (N,3,T)
    return (0.5 * amp * (-u) * np.exp(0.5 - 0.5 * u**2)).sum(axis=1)


def band_noise(n: int, rms_uv: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(n,200) residual noise of the average: white noise band-passed to the recording band (zero-phase 2nd-order
    Butterworth, the middle of a 3x longer draw so the filter's edges stay out), each row scaled to RMS `rms_uv` (the residual-noise figure of Elberling & Don 1984)."""
    from scipy import signal as sps  # here, not at the top: ~1.5 s of every import of dualspace.data

    sos = sps.butter(2, _norm("recording_band_hz"), btype="band", fs=FS_HZ, output="sos")
    e = sps.sosfiltfilt(sos, rng.standard_normal((n, 3 * N_SAMPLES)), axis=1)[:, N_SAMPLES:2 * N_SAMPLES]  # no edges
    return e / e.std(axis=1, keepdims=True) * np.asarray(rms_uv, np.float64)[:, None]


@dataclass
class SimulatorConfig(ConfigBase):
    """The population the simulator draws subjects and recordings from (config section `abr_simulated.data`)."""

    SECTION = "abr_simulated.data"

    intensity_db_nhl: tuple[float, float] = (0.0, 100.0)  # uniform click level range
    rate_per_s: tuple[float, float] = (10.0, 90.0)  # uniform click rate range
    age_years: tuple[float, float] = (18.0, 80.0)  # uniform adult age range
    p_male: float = 0.5  # probability of sex = 1
    noise_uv: tuple[float, float] = NORMS["noise_uv"]["value"]  # uniform residual-noise range (Elberling & Don 1984)
    threshold_max_db_hl: float = 90.0  # upper end of the severe class's threshold range
    conductive_fraction: float = 0.0  # share of each subject's loss that is conductive (capped at 60 dB)
    latency_sd_ms: float = NORMS["latency_sd_ms"]["value"]  # between-subject sd of a latency shift shared by waves
    amplitude_cv: float = NORMS["amplitude_cv"]["value"]  # between-subject log-normal sd of amplitudes

    def __post_init__(self):
        for key in ("intensity_db_nhl", "rate_per_s", "age_years", "noise_uv"):
            v = tuple(float(x) for x in getattr(self, key))
            setattr(self, key, v)
            self.require(len(v) == 2 and v[0] <= v[1], key, "must be a range [low, high] with low <= high")
        self.require(self.rate_per_s[0] > 0, "rate_per_s", "must be positive")
        self.require(self.noise_uv[0] >= 0, "noise_uv", "must be non-negative")
        self.require(0.0 <= self.p_male <= 1.0, "p_male", "must lie in [0, 1]")
        self.require(70.0 < self.threshold_max_db_hl < NORMS["recruitment_level_db"]["value"], "threshold_max_db_hl",
                     "must lie in (70, 100) dB HL, the severe class's range")
        self.require(0.0 <= self.conductive_fraction <= 1.0, "conductive_fraction", "must lie in [0, 1]")
        self.require(self.latency_sd_ms >= 0, "latency_sd_ms", "must be non-negative")
        self.require(self.amplitude_cv >= 0, "amplitude_cv", "must be non-negative")

    def to_dict(self) -> dict:
        """JSON-friendly: ranges as lists."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in super().to_dict().items()}


def draw_static(n: int, cfg: SimulatorConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(n,6) static parameters and (n,) conductive loss in dB: the hearing class uniform, then the threshold
    uniform within the class's range, so every class is represented."""
    edges = np.concatenate([[0.0], _norm("hearing_grades_db_hl"), [cfg.threshold_max_db_hl]])  # (5,)
    k = rng.integers(0, len(HEARING_CLASSES), n)
    threshold = edges[k + 1] - rng.uniform(0.0, 1.0, n) * (edges[k + 1] - edges[k])  # in (lo, hi]
    static = np.stack([
        rng.uniform(*cfg.intensity_db_nhl, n),
        rng.uniform(*cfg.rate_per_s, n),
        rng.uniform(*cfg.age_years, n),
        (rng.uniform(0.0, 1.0, n) < cfg.p_male).astype(np.float64),
        threshold,
        rng.uniform(*cfg.noise_uv, n),
    ], axis=1)
    conductive = np.minimum(cfg.conductive_fraction * threshold, _norm("conductive_max_db"))
    return static, conductive


def simulate(n: int, seed: int, cfg: SimulatorConfig | None = None) -> dict[str, np.ndarray]:
    """n recordings: signal (n,200) float32 uV, static (n,6) float32, peaks (n,6) float32 with NaN, label (n,)
    int64 hearing class, conductive_db (n,) float32. Same seed, same arrays."""
    cfg = cfg or SimulatorConfig()
    rng = np.random.default_rng(seed)
    static, conductive = draw_static(n, cfg, rng)
    static = static.astype(np.float32).astype(np.float64)  # the rule sees exactly the stored parameters
    peaks = expected_peaks(static, conductive)  # (n,6)
    peaks[:, :3] += rng.normal(0.0, cfg.latency_sd_ms, (n, 1))  # subject's latency shift, shared by the waves
    peaks[:, 3:] *= np.exp(rng.normal(0.0, cfg.amplitude_cv, (n, 3)))  # subject's amplitudes
    signal = waveform(peaks) + band_noise(n, static[:, 5], rng)
    return {"signal": signal.astype(np.float32), "static": static.astype(np.float32),
            "peaks": peaks.astype(np.float32), "label": hearing_class(static[:, 4].astype(np.float32)),
            "conductive_db": conductive.astype(np.float32)}


CHANNELS = ["abr_uv"]
_RANGE = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}
_NONNEG = {"type": "number", "minimum": 0}
ABR_SIMULATED_OPTIONS: dict[str, Any] = {
    "n_train": SIZE, "n_calib": SIZE, "n_test": SIZE,
    "intensity_db_nhl": _RANGE, "rate_per_s": _RANGE, "age_years": _RANGE, "noise_uv": _RANGE,
    "p_male": {"type": "number", "minimum": 0, "maximum": 1},
    "threshold_max_db_hl": {"type": "number", "exclusiveMinimum": 70, "exclusiveMaximum": 100},
    "conductive_fraction": {"type": "number", "minimum": 0, "maximum": 1},
    "latency_sd_ms": _NONNEG, "amplitude_cv": _NONNEG,
}
assert set(ABR_SIMULATED_OPTIONS) - {"n_train", "n_calib", "n_test"} == {f.name for f in fields(SimulatorConfig)}


def load_abr_simulated(seed: int, n_train: int = 3000, n_calib: int = 1000, n_test: int = 1000,
                       **simulator: Any) -> Dataset:
    """One `simulate` draw of n_train + n_calib + n_test recordings, split at random (so calib and test are
    exchangeable): x (N,1,200) z-scored with train stats, label = hearing class, extras static (N,6) raw units,
    peaks (N,6) (0 for an absent wave: split files hold finite values only) and peak_present (N,3) bool."""
    cfg = SimulatorConfig.from_dict(simulator)
    sim = simulate(n_train + n_calib + n_test, seed, cfg)
    parts = random_partition(len(sim["label"]), [n_train, n_calib], np.random.default_rng([seed, 1]))
    x = sim["signal"][:, None, :]  # (N,1,200) uV
    mean, std = channel_stats(x[parts[0]])
    present = np.isfinite(sim["peaks"][:, :3])  # (N,3) waves I, III, V
    peaks = np.nan_to_num(sim["peaks"], nan=0.0)
    splits = {name: Split(zscore(x[i], mean, std), sim["label"][i],
                          extras={"static": sim["static"][i], "peaks": peaks[i], "peak_present": present[i]})
              for name, i in zip(("train", "calib", "test"), parts)}
    return Dataset(
        name="abr_simulated",
        kind="series",
        n_classes=len(HEARING_CLASSES),
        class_names=list(HEARING_CLASSES),
        splits=splits,
        normalization={"type": "zscore", "mean": mean, "std": std, "channels": CHANNELS,
                       "note": "z-scored with the train split's mean/std of the signal in uV; extras stay raw"},
        provenance={"seed": seed, "simulator": cfg.to_dict(), "simulated": True},
        channel_names=CHANNELS,
    )
