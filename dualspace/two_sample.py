"""Classifier two-sample test (C2ST; Lopez-Paz & Oquab 2017), shared by the studies: can a classifier tell real
rows from generated ones on held-out folds?"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats


def finite_columns(x: np.ndarray, names: Sequence[str], who: str) -> None:
    """ValueError naming the first column of x (n, F) with a non-finite value."""
    bad = ~np.isfinite(x)
    if bad.any():
        col = int(np.flatnonzero(bad.any(axis=0))[0])
        raise ValueError(f"{who}: feature {names[col]!r} has {int(bad[:, col].sum())} non-finite values (first in "
                         f"row {int(np.flatnonzero(bad[:, col])[0])}); drop or fix those rows first")


@dataclass
class C2ST:
    """Classifier two-sample test: held-out accuracy of telling real from fake (0.5 = indistinguishable)."""

    accuracy: float  # share of correct held-out predictions
    low: float  # Clopper-Pearson 95% interval of the accuracy
    high: float
    n: int  # number of held-out predictions (2 x the smaller set's size)
    folds: int  # cross-validation folds


def c2st(real: np.ndarray, fake: np.ndarray, seed: int = 0, folds: int = 5,
         names: Sequence[str] | None = None) -> C2ST:
    """C2ST on feature matrices real (N1, F) and fake (N2, F); `names` (F,) only label error messages.

    The larger set is subsampled (seeded) to the smaller one's size, so chance is exactly 0.5; every row is
    predicted once by a HistGradientBoostingClassifier trained on the other folds of a StratifiedKFold.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    real, fake = np.asarray(real, dtype=np.float64), np.asarray(fake, dtype=np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"c2st: real and fake must be (N, F) with the same F, got {real.shape} and {fake.shape}")
    names = [f"column {k}" for k in range(real.shape[1])] if names is None else list(names)
    finite_columns(real, names, "c2st (real)")
    finite_columns(fake, names, "c2st (fake)")
    m = min(len(real), len(fake))
    if m < folds or folds < 2:
        raise ValueError(f"c2st: {folds} folds need at least that many rows per set (and >= 2), got {m}")
    rng = np.random.default_rng(seed)
    real, fake = (s[np.sort(rng.choice(len(s), m, replace=False))] for s in (real, fake))
    X, y = np.concatenate([real, fake]), np.repeat([1, 0], m)
    clf = HistGradientBoostingClassifier(max_iter=100, learning_rate=0.1, max_leaf_nodes=15,
                                         early_stopping=False, random_state=seed)
    pred = cross_val_predict(clf, X, y, cv=StratifiedKFold(folds, shuffle=True, random_state=seed))
    k = int((pred == y).sum())
    ci = stats.binomtest(k, 2 * m).proportion_ci(confidence_level=0.95, method="exact")
    return C2ST(k / (2 * m), float(ci.low), float(ci.high), 2 * m, folds)
