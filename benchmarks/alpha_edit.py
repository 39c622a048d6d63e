"""Alpha edits in seconds: the wall time from adding one alpha to the config to new metrics.csv and figures.

On a finished run (`make run`), writes an overlay config with one more alpha, runs
`snakemake --cores 2 <metrics.csv and figures of each dataset> --configfile <overlay>` and reports the wall
time and the jobs that ran; then, apart, the series' TSTR table (results/{ds}/tstr.csv: a classifier trained
per alpha, its own job so metrics.csv and the figures do not wait for it); then the same with that alpha
removed again (the tables and figures go back to the config's alphas: only the gathering jobs and the figures
rerun). Nothing upstream of calibration may rerun, and of the per-alpha metrics only the new alpha's.

    .venv/bin/python benchmarks/alpha_edit.py --datasets digits hapt --alpha 0.85
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ["calibration", "class_coverage", "acceptance", "distances", "projection"]


def targets(datasets: list[str]) -> list[str]:
    return [f"results/{ds}/{name}" for ds in datasets
            for name in ["metrics.csv", *(f"figures/{f}.png" for f in FIGURES)]]


def tstr_targets(datasets: list[str]) -> list[str]:
    from dualspace.data import REGISTRY

    return [f"results/{ds}/tstr.csv" for ds in datasets if REGISTRY[ds].kind == "series"]


def timed_run(targets: list[str], overlay: Path) -> tuple[float, Counter]:
    """Wall seconds of one snakemake call and the jobs it ran, per rule."""
    cmd = [str(ROOT / ".venv/bin/snakemake"), *targets, "--cores", "2", "--configfile", str(overlay)]
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode:
        sys.exit(f"snakemake failed:\n{proc.stderr[-3000:]}")
    return wall, Counter(re.findall(r"^(?:local)?rule (\w+):", proc.stderr + proc.stdout, re.M))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", nargs="+", default=["digits", "hapt"])
    ap.add_argument("--alpha", type=float, default=0.85)
    args = ap.parse_args()
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    if args.alpha in config["alphas"]:
        sys.exit(f"alpha {args.alpha} is already in config/config.yaml's alphas; pick another")
    base = ROOT / ".snakemake" / "alpha_edit_base.yaml"
    added = ROOT / ".snakemake" / "alpha_edit_added.yaml"
    base.write_text(yaml.safe_dump({"alphas": config["alphas"]}))
    added.write_text(yaml.safe_dump({"alphas": sorted(config["alphas"] + [args.alpha])}))
    tables, tstr = targets(args.datasets), tstr_targets(args.datasets)
    wall, jobs = timed_run(tables + tstr, base)  # brings the run up to date first (nothing to do after make run)
    print(f"up to date: {wall:.1f} s, jobs {dict(jobs)}")
    for name, overlay in (("add alpha", added), ("remove it again", base)):
        for what, t in (("metrics.csv + figures", tables), ("then tstr.csv", tstr)):
            if t:
                wall, jobs = timed_run(t, overlay)
                print(f"| {' '.join(args.datasets)} | {name} {args.alpha}: {what} | {wall:.1f} s | "
                      f"{', '.join(f'{r} {n}' for r, n in sorted(jobs.items()))} |")


if __name__ == "__main__":
    main()
