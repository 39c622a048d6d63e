"""Shared by the benchmarks that rerun pipeline stages over a grid of settings (coverage_seeds, guidance_study):
run the grid in worker processes, and read back the per-setting rows from a run folder or a recorded CSV."""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


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


def parse_args(doc: str, add_run_args, threads: int, device: str) -> argparse.Namespace:
    """`run` (the grid: --datasets, --work, --config, --jobs, --threads, --device, and what `add_run_args` adds)
    or `table` (a run folder or a CSV of its rows)."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--datasets", nargs="+", default=["digits", "hapt"])
    r.add_argument("--work", required=True)
    r.add_argument("--config", default=str(ROOT / "config" / "config.yaml"))
    r.add_argument("--jobs", type=int, default=1, help="settings run at once")
    r.add_argument("--threads", type=int, default=threads, help="torch threads per setting")
    r.add_argument("--device", default=device)
    add_run_args(r)
    t = sub.add_parser("table")
    t.add_argument("work", help="a run folder, or a CSV of its rows")
    return ap.parse_args()
