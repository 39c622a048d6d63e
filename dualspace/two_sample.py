"""Classifier two-sample test (C2ST; Lopez-Paz & Oquab 2017), shared by the studies: can a classifier tell real
rows from generated ones on held-out folds?"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

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


# fit_predict(X_train, y_train, X_test, seed) -> predicted labels of X_test: a classifier fitted on the train fold only
FitPredict = Callable[[np.ndarray, np.ndarray, np.ndarray, int], np.ndarray]


def c2st(real: np.ndarray, fake: np.ndarray, seed: int = 0, folds: int = 5,
         names: Sequence[str] | None = None, fit_predict: FitPredict | None = None) -> C2ST:
    """C2ST on real (N1, ...) and fake (N2, ...) rows; `names` (F,) only label error messages.

    The larger set is subsampled (seeded) to the smaller one's size, so chance is exactly 0.5; every row is
    predicted once by a classifier trained on the other folds of a StratifiedKFold: by default a
    HistGradientBoostingClassifier on feature rows (N, F), or `fit_predict` (any row shape, e.g. a CNN on raw
    series), which sees only the train fold's rows and labels.
    """
    real, fake = np.asarray(real, dtype=np.float64), np.asarray(fake, dtype=np.float64)
    if fit_predict is None and (real.ndim != 2 or fake.ndim != 2):
        raise ValueError(f"c2st: real and fake must be (N, F) with the same F, got {real.shape} and {fake.shape}")
    if real.shape[1:] != fake.shape[1:]:
        raise ValueError(f"c2st: real and fake must be (N, ...) with the same F, got {real.shape} and {fake.shape}")
    flat = (real.reshape(len(real), -1), fake.reshape(len(fake), -1))
    names = [f"column {k}" for k in range(flat[0].shape[1])] if names is None else list(names)
    finite_columns(flat[0], names, "c2st (real)")
    finite_columns(flat[1], names, "c2st (fake)")
    m = min(len(real), len(fake))
    if m < folds or folds < 2:
        raise ValueError(f"c2st: {folds} folds need at least that many rows per set (and >= 2), got {m}")
    rng = np.random.default_rng(seed)
    real, fake = (s[np.sort(rng.choice(len(s), m, replace=False))] for s in (real, fake))
    X, y = np.concatenate([real, fake]), np.repeat([1, 0], m)
    pred = cross_predict(X, y, seed, folds, fit_predict)
    return accuracy_interval(int((pred == y).sum()), 2 * m, folds)


def cross_predict(X: np.ndarray, y: np.ndarray, seed: int, folds: int, fit_predict: FitPredict | None = None
                  ) -> np.ndarray:
    """Held-out predictions of labels y (N,) from rows X (N, ...): each row predicted once by a classifier fitted
    on the other folds of a seeded StratifiedKFold (gradient boosting on (N, F) rows by default)."""
    from sklearn.model_selection import StratifiedKFold

    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    if fit_predict is None:
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.model_selection import cross_val_predict

        clf = HistGradientBoostingClassifier(max_iter=100, learning_rate=0.1, max_leaf_nodes=15,
                                             early_stopping=False, random_state=seed)
        return cross_val_predict(clf, X, y, cv=cv)
    pred = np.empty_like(y)
    for fold, (train, test) in enumerate(cv.split(np.zeros(len(y)), y)):
        pred[test] = fit_predict(X[train], y[train], X[test], seed + fold)
    return pred


def accuracy_interval(k: int, n: int, folds: int) -> C2ST:
    """k correct of n held-out predictions, with the Clopper-Pearson 95% interval."""
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    return C2ST(k / n, float(ci.low), float(ci.high), n, folds)
