"""rules metrics and tstr (workflow/rules/metrics.smk): gather the per-alpha files into metrics.csv and tstr.csv.
Only pandas: the job that an alpha edit waits on last should not pay for importing torch."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from ..conformal import THREE_SIGMA_TWO_SIDED
from ..io import write_csv

log = logging.getLogger("dualspace")


def _gather(alpha_csvs: list[str | Path], out_csv: str | Path) -> pd.DataFrame:
    df = pd.concat([pd.read_csv(p, keep_default_na=False, na_values=[""]) for p in alpha_csvs], ignore_index=True)
    write_csv(df, out_csv, float_format="%.6g")
    return df


def collect_tstr(alpha_csvs: list[str | Path], out_csv: str | Path) -> None:
    """rule tstr: results/{ds}/tstr.csv (dataset, alpha, n_accepted, tstr_acc), in the config's alpha order."""
    df = _gather(alpha_csvs, out_csv)
    log.info("TSTR accuracy by alpha: %s", dict(zip(df["alpha"], df["tstr_acc"].round(4))))


def collect_metrics(alpha_csvs: list[str | Path], out_csv: str | Path) -> None:
    """rule metrics: results/{ds}/metrics.csv, the per-alpha rows in the config's alpha order; logs how many
    (alpha, class) cells lie outside the 3-sigma band against how many such a band loses by chance."""
    df = _gather(alpha_csvs, out_csv)
    cells = df[(df["class"] != "all") & (df["n_test"] > 0)]
    log.info("coverage: %d of %d (alpha, class) cells outside the 3-sigma band (%s sigma); a 3-sigma band expects "
             "%.2f by chance", int((~cells["in_band"].astype(bool)).sum()), len(cells),
             "/".join(sorted(set(df["band_sigma_kind"]))), len(cells) * THREE_SIGMA_TWO_SIDED)
    bad = df[~df["in_band"].astype(bool)]
    if len(bad):
        log.warning("coverage outside its band (3 sigma) for (alpha, class, sigmas out) %s",
                    [(r.alpha, r["class"], round(r.band_z, 1)) for _, r in bad.iterrows()])
