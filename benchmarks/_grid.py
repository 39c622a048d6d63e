"""Shared by the benchmarks that rerun pipeline stages over a grid of settings (coverage_seeds, guidance_study):
run the grid in worker processes, and read back the per-setting rows from a run folder or a recorded CSV."""

from __future__ import annotations

import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import pandas as pd


def run_grid(fn, calls: list[tuple], jobs: int) -> None:
    """fn(*call) for every call, `jobs` at a time in fresh (spawned) processes; a failed setting is reported
    and does not lose the others (each writes its rows when it finishes, so a rerun skips the finished ones)."""
    with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(fn, *call) for call in calls]
        for f in futures:
            try:
                f.result()
            except Exception as e:
                print(f"failed: {e!r}", file=sys.stderr, flush=True)


def read_rows(work: str, pattern: str) -> pd.DataFrame:
    """The rows of a run folder (files matching `pattern` under it) or of one recorded CSV."""
    paths = [Path(work)] if work.endswith(".csv") else sorted(Path(work).glob(pattern))
    return pd.concat([pd.read_csv(p) for p in paths])
