"""Farthest-point sampling against a direct (quadratic) implementation."""

from __future__ import annotations

import numpy as np

from dualspace.farthest_point import farthest_point_sampling


def _reference_fps(points, m, start):
    chosen = [start]
    while len(chosen) < m:
        d = [min(np.linalg.norm(p - points[j]) for j in chosen) for p in points]
        chosen.append(int(np.argmax(d)))
    return chosen


def test_farthest_point_sampling_matches_reference():
    rng = np.random.default_rng(3)
    pts = rng.normal(size=(60, 4))
    assert farthest_point_sampling(pts, 8, start=5).tolist() == _reference_fps(pts, 8, 5)
    assert farthest_point_sampling(pts[:5], 8).tolist() == [0, 1, 2, 3, 4]
