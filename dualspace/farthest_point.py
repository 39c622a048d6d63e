"""Farthest-point sampling, and the representatives it picks for a region: per class, accepted drafts spread
out in phi-space (acceptance itself is `conformal.accept`)."""

from __future__ import annotations

import numpy as np


def farthest_point_sampling(points: np.ndarray, m: int, start: int = 0) -> np.ndarray:
    """Indices of m points chosen greedily, each the farthest (Euclidean) from those already chosen.

    Starts from `start` (callers pass the most typical point, the lowest score). Returns all
    indices when there are at most m points. (Gonzalez 1985: a 2-approximation of the k-centre problem.)
    """
    n = len(points)
    if n <= m:
        return np.arange(n)
    points = np.asarray(points, dtype=np.float64)
    chosen = [start]
    dist = np.linalg.norm(points - points[start], axis=1)
    for _ in range(m - 1):
        nxt = int(np.argmax(dist))
        chosen.append(nxt)
        dist = np.minimum(dist, np.linalg.norm(points - points[nxt], axis=1))
    return np.array(chosen)


def representatives(phi: np.ndarray, score: np.ndarray, label: np.ndarray, accepted: np.ndarray, m: int,
                    n_classes: int) -> dict[int, np.ndarray]:
    """Per class: indices (into the draft arrays) of up to m accepted drafts spread out in phi-space."""
    out = {}
    for c in range(n_classes):
        idx = np.flatnonzero(accepted & (label == c))
        if len(idx) == 0:
            out[c] = idx
            continue
        start = int(np.argmin(score[idx]))
        out[c] = idx[farthest_point_sampling(phi[idx], m, start)]
    return out
