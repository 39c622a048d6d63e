"""Reader for Eaton-Peabody-Laboratories "LEVEL SWEEP" ABR text files (the format of the `abr` analysis package),
and their conversion to the simulator's model input (200 samples over 10 ms, six static parameters)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
from scipy import signal as sps

from ..data.abr_simulated import STATIC_NAMES


@dataclass
class EPLSweep:
    """One level sweep as stored: one averaged waveform per stimulus level."""

    path: str
    levels: np.ndarray  # (L,) dB (SPL for EPL tone pips)
    sample_period_us: float
    frequency_khz: float  # stimulus frequency ("SW FREQ")
    averages: int
    rep_rate_per_s: float
    signals: np.ndarray  # (L, n_samples) float32, as in the file (uV)
    header: dict[str, str] = field(default_factory=dict)  # every "KEY: value" field of the header


def _field(path: Path, head: str, pattern: str, what: str) -> str:
    m = re.search(pattern, head)
    if m is None:
        raise ValueError(f"{path}: header has no {what} field (expected a match of {pattern!r})")
    return m.group(1)


def read_epl(path: str | Path) -> EPLSweep:
    """Parse an EPL LEVEL SWEEP file; a ValueError names the file and what is wrong with it."""
    path = Path(path)
    text = path.read_bytes().decode("latin-1")  # the "mu" of "SAMPLE (<mu>sec)" is not UTF-8
    head, sep, data = text.partition(":DATA")
    if not sep or "LEVEL SWEEP" not in head:
        raise ValueError(f"{path}: not an EPL level sweep (no 'LEVEL SWEEP' header followed by ':DATA')")
    header = {k.strip(): v.strip() for k, v in re.findall(r"([A-Za-z#][^\t\r\n:]*):[ \t]*([^\t\r\n]*)", head)}
    levels_text = _field(path, head, r"LEVELS:([^\t\r\n]*)", "LEVELS")
    try:
        levels = np.array([float(v) for v in levels_text.split(";") if v.strip()])
        period = float(_field(path, head, r"SAMPLE \(.{1,3}sec\):\s*([-\d.eE+]+)", "SAMPLE (usec)"))
        freq = float(_field(path, head, r"SW FREQ:\s*([-\d.eE+]+)", "SW FREQ"))
        averages = int(_field(path, head, r"# AVERAGES:\s*(\d+)", "# AVERAGES"))
        rate = float(_field(path, head, r"REP RATE \(/sec\):\s*([-\d.eE+]+)", "REP RATE (/sec)"))
    except ValueError as e:
        raise ValueError(f"{path}: unreadable header number ({e})") from None
    if len(levels) == 0:
        raise ValueError(f"{path}: the LEVELS field lists no level")
    rows = [r for r in re.split(r"\r\n|\r|\n", data) if r.strip()]  # the first row follows ':DATA' on its line
    values = []
    for k, row in enumerate(rows, start=1):
        cells = [c for c in row.split("\t") if c.strip()]
        if len(cells) != len(levels):
            raise ValueError(f"{path}: data row {k} has {len(cells)} columns but LEVELS lists {len(levels)} levels "
                             "(truncated or damaged data block)")
        try:
            values.append([float(c) for c in cells])
        except ValueError:
            raise ValueError(f"{path}: data row {k} holds a non-numeric value: {row.strip()[:80]!r}") from None
    if not values:
        raise ValueError(f"{path}: the data block after ':DATA' is empty")
    return EPLSweep(str(path), levels, period, freq, averages, rate,
                    np.asarray(values, np.float32).T.copy(), header)


def to_model_input(sweep: EPLSweep, n_samples: int = 200, epoch_ms: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """(L,200) float32 signals over the first epoch_ms and (L,6) float32 static (intensity = level, rate = rep
    rate, the rest NaN = missing). Resampled with scipy.signal.resample_poly, whose polyphase FIR (Kaiser window)
    is the anti-alias filter, over the whole record so the epoch's end has no filter edge effect."""
    fs_in = 1e6 / sweep.sample_period_us
    fs_out = n_samples * 1000.0 / epoch_ms
    record_ms = sweep.signals.shape[1] * sweep.sample_period_us / 1000.0
    if record_ms < epoch_ms:
        raise ValueError(f"{sweep.path}: record of {record_ms:g} ms is shorter than the {epoch_ms:g} ms epoch")
    ratio = Fraction(fs_out / fs_in).limit_denominator(1000)
    y = sps.resample_poly(sweep.signals.astype(np.float64), ratio.numerator, ratio.denominator, axis=1)
    static = np.full((len(sweep.levels), len(STATIC_NAMES)), np.nan, np.float32)
    static[:, 0], static[:, 1] = sweep.levels, sweep.rep_rate_per_s
    return y[:, :n_samples].astype(np.float32), static
