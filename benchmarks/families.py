"""Generator families side by side: the pooled rows (class `all`) of each run's metrics.csv (and tstr.csv).

Each argument is NAME=RESULTS_DIR of a finished run of the same dataset and seed (everything but
`<ds>.generator.family` equal), e.g. after `make run` and a class_gaussian run beside it:

    .venv/bin/python benchmarks/families.py digits diffusion=results class_gaussian=/tmp/cg/results
"""

from __future__ import annotations

import argparse
import os

import pandas as pd

COLUMNS = ["coverage", "acceptance_rate", "log_volume", "mmd_phi_all", "mmd_phi_accepted", "fd_phi_all",
           "fd_phi_accepted", "prdc_precision", "prdc_recall", "fid_all", "fid_accepted", "tstr_acc", "trts_acc"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dataset")
    ap.add_argument("runs", nargs="+", help="NAME=RESULTS_DIR")
    args = ap.parse_args()
    frames = []
    for run in args.runs:
        name, path = run.split("=", 1)
        df = pd.read_csv(f"{path}/{args.dataset}/metrics.csv", dtype={"class": str})
        df = df[df["class"] == "all"].assign(family=name)
        if os.path.exists(tstr := f"{path}/{args.dataset}/tstr.csv"):  # series: TSTR has its own table
            df = df.merge(pd.read_csv(tstr)[["alpha", "tstr_acc"]], on="alpha")
        frames.append(df[["family", "alpha", *[c for c in COLUMNS if c in df.columns]]])
    table = pd.concat(frames).sort_values(["alpha", "family"])
    print(table.to_markdown(index=False, floatfmt=".4g"))


if __name__ == "__main__":
    main()
