"""Split conformal thresholds per class (and marginal), by the exact rank rule of DESIGN.md.

For class c with n_c calibration scores s_i = -log p(y_i | g(c)):

    k   = ceil((n_c + 1) * alpha)
    tau = the k-th smallest score          (+inf when k > n_c: the region is everything)

and a new point is accepted iff s <= tau. For exchangeable calibration and test data this gives
alpha <= Pr[accept] <= alpha + 1/(n_c + 1) per class (Vovk et al. 2005; Angelopoulos & Bates 2021,
sec. 1 and Appendix D). No interpolating quantile is ever used.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

__all__ = ["ThresholdTable", "conformal_rank", "class_thresholds", "accept"]

THREE_SIGMA_TWO_SIDED = math.erfc(3 / math.sqrt(2))  # Pr[|Z| > 3] = 0.0027: cells a 3-sigma band loses by chance
COLUMNS = ["class", "n_calib", "k", "tau", "coverage_lower", "coverage_upper"]  # of a tau_alpha{a}.csv


def conformal_rank(n: int, alpha: float) -> int:
    """k = ceil((n + 1) alpha), with alpha taken as the decimal the user wrote (0.9, not 0.9000000000000000222).

    Binary floating point would make ceil(10 * 0.9) = ceil(9.000000000000002) = 10; Fraction(str(alpha)) is exact.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    return math.ceil((n + 1) * Fraction(str(alpha)))


@dataclass
class ThresholdTable:
    """One row per class: calibration count, rank k, threshold tau and the guaranteed coverage band."""

    alpha: float
    classes: np.ndarray  # (C,) class ids, or [-1] for the marginal threshold
    n_calib: np.ndarray  # (C,)
    k: np.ndarray  # (C,)
    tau: np.ndarray  # (C,) float64, +inf where k > n

    @property
    def coverage_lower(self) -> np.ndarray:
        return np.full(len(self.classes), self.alpha)

    @property
    def coverage_upper(self) -> np.ndarray:
        # alpha + 1/(n + 1); 1 where the region is everything
        return np.where(np.isinf(self.tau), 1.0, np.minimum(1.0, self.alpha + 1.0 / (self.n_calib + 1)))

    def rows(self) -> list[dict]:
        return [{"class": int(c), "n_calib": int(n), "k": int(k), "tau": float(t), "coverage_lower": float(lo),
                 "coverage_upper": float(hi)}
                for c, n, k, t, lo, hi in zip(self.classes, self.n_calib, self.k, self.tau, self.coverage_lower,
                                              self.coverage_upper)]

    def to_csv(self, path: str | Path) -> None:
        """One row per class (class, n_calib, k, tau, coverage band), written atomically."""
        import pandas as pd

        from .io import write_csv

        write_csv(pd.DataFrame(self.rows(), columns=COLUMNS), path, float_format="%.10g")

    @classmethod
    def from_csv(cls, path: str | Path, alpha: float) -> "ThresholdTable":
        """A table written by `to_csv`, checked: its columns, its k against the rank rule, its alpha."""
        import pandas as pd

        from .io import existing_file

        path = existing_file(path, "threshold table")
        fix = f"delete it and rerun `snakemake {path}`"
        try:
            df = pd.read_csv(path)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
            raise ValueError(f"threshold table {path} is damaged ({e}); {fix}") from None
        if list(df.columns) != COLUMNS or not len(df):
            raise ValueError(f"threshold table {path} has columns {list(df.columns)}, expected {COLUMNS}; {fix}")
        table = cls(alpha, df["class"].to_numpy(), df["n_calib"].to_numpy(), df["k"].to_numpy(),
                    df["tau"].to_numpy(dtype=np.float64))
        if [conformal_rank(int(n), alpha) for n in table.n_calib] != table.k.tolist():
            raise ValueError(f"threshold table {path} was not calibrated for alpha = {alpha} (its ranks k disagree "
                             f"with ceil((n + 1) alpha)); {fix}")
        return table

    def tau_for(self, labels: np.ndarray) -> np.ndarray:
        """Threshold that applies to each label (the single marginal one in marginal mode)."""
        labels = np.asarray(labels)
        if len(self.classes) == 1 and self.classes[0] == -1:
            return np.full(len(labels), self.tau[0])
        lookup = dict(zip(self.classes.tolist(), self.tau.tolist()))
        return np.array([lookup[int(c)] for c in labels], dtype=np.float64)


def _kth_smallest(scores: np.ndarray, k: int) -> float:
    return float(np.partition(scores, k - 1)[k - 1]) if k <= len(scores) else math.inf


def class_thresholds(scores: np.ndarray, labels: np.ndarray, alpha: float, n_classes: int,
                     mode: str = "class") -> ThresholdTable:
    """Per-class (mode="class") or pooled (mode="marginal") conformal thresholds on calibration scores.

    A class without calibration scores gets tau = +inf (the region is everything) and a warning.
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels)
    if scores.shape != labels.shape or scores.ndim != 1:
        raise ValueError(f"scores {scores.shape} and labels {labels.shape} must be 1-D and of equal length")
    if not np.isfinite(scores).all():
        bad = np.flatnonzero(~np.isfinite(scores))
        raise ValueError(f"{len(bad)} calibration score(s) are NaN or infinite (first at index {bad[0]}); "
                         "the density model produced invalid log-likelihoods, refit it before calibrating")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes})")
    if mode == "marginal":
        k = conformal_rank(len(scores), alpha)
        return ThresholdTable(alpha, np.array([-1]), np.array([len(scores)]), np.array([k]),
                              np.array([_kth_smallest(scores, k)]))
    if mode != "class":
        raise ValueError(f"mode must be 'class' or 'marginal', got '{mode}'")
    n, ks, taus = [], [], []
    for c in range(n_classes):
        s = scores[labels == c]
        k = conformal_rank(len(s), alpha)
        if len(s) == 0:
            warnings.warn(f"class {c} has no calibration scores: its threshold is +inf (the region is everything)",
                          stacklevel=2)
        n.append(len(s))
        ks.append(k)
        taus.append(_kth_smallest(s, k))
    return ThresholdTable(alpha, np.arange(n_classes), np.array(n), np.array(ks), np.array(taus))


def accept(scores: np.ndarray, labels: np.ndarray, table: ThresholdTable) -> np.ndarray:
    """Boolean mask: s(x, c) <= tau_c."""
    return np.asarray(scores) <= table.tau_for(labels)
