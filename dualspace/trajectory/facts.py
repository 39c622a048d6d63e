"""The numbers the docs quote about recorded paths (sizes, step timing, pauses, the T that covers them),
computed from the records so that a docs page can be regenerated instead of copied by hand."""

from __future__ import annotations

from collections import Counter
from typing import Any, Sequence

import numpy as np

from .data import Record, choose_T


def timing_facts(records: Sequence[Record], pause_factor: float = 2.5, coverage: float = 0.99,
                 top: int = 5) -> dict[str, Any]:
    """Summary of validated records: points per path, step dt and total duration percentiles, the per-path
    median step (the recording device's polling interval) as shares of its value rounded to 1 ms, the share of
    steps longer than `pause_factor` x their path's median ("pauses"), and the T covering `coverage` of paths."""
    dts = [np.diff(r.timing) for r in records]  # per path, ms
    pooled = np.concatenate(dts)
    medians = np.array([np.median(d) for d in dts])
    pauses = [d > pause_factor * m for d, m in zip(dts, medians)]
    n_points = np.array([len(r.points) for r in records])
    totals = np.array([d.sum() for d in dts]) / 1000.0
    rounded = Counter(np.round(medians).astype(int).tolist())
    start_gap = np.array([np.hypot(*(r.start - r.points[0])) for r in records])
    return {
        "paths": len(records),
        "points_min": int(n_points.min()), "points_max": int(n_points.max()),
        "step_ms_median": float(np.median(pooled)), "step_ms_p99": float(np.percentile(pooled, 99)),
        "duration_s_p5": float(np.percentile(totals, 5)), "duration_s_p50": float(np.median(totals)),
        "duration_s_p95": float(np.percentile(totals, 95)),
        "path_median_step_ms_share": {ms: n / len(records) for ms, n in rounded.most_common(top)},
        "pause_step_share": float(np.concatenate(pauses).mean()),
        "paths_with_pause_share": float(np.mean([p.any() for p in pauses])),
        f"T_cover_{coverage:g}": choose_T(n_points - 1, coverage),
        "start_off_first_point": int((start_gap > 0).sum()), "start_gap_px_max": float(start_gap.max()),
    }
