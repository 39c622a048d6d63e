"""Coverage across split seeds: the whole dual-space pipeline rerun per seed, the test of the guarantee that can fail.

For every (dataset, seed) the library's own stage functions run in order, each seeded with that seed:
prepare_data (the split: which digits / which HAPT subjects are held out, which held-out windows calibrate),
train_generator (whose class embedding is e = g(c)), fit_phi, dump_pairs (train / calib / test), train_mdn,
then the conformal thresholds of every alpha of the config and the real test coverage per class and pooled.
phi and the MDN keep the config's sizes; the generator is reduced (its only part in the regions is e = g(c),
a fixed vector per class, so its sample quality does not enter coverage). Each seed also records the band's
sigma: binomial + Beta (`band_sigma`) and, for data with groups (HAPT subjects), the subject-level cluster
bootstrap (`cluster_band_sigma`).

    .venv/bin/python benchmarks/coverage_seeds.py run --datasets digits hapt --seeds 8 --work /tmp/seeds --jobs 1
    .venv/bin/python benchmarks/coverage_seeds.py table /tmp/seeds        # the markdown tables of docs/benchmarks.md
    .venv/bin/python benchmarks/coverage_seeds.py table docs/coverage_seeds.csv   # the same from the recorded run

`run` writes <work>/<ds>/seed<s>/coverage.csv (one file per seed, written last: a finished seed is skipped on
a rerun); `table` reads them all. The mean over seeds must lie in [alpha, alpha + 1/(n + 1)] up to 2 standard
errors (sd / sqrt(seeds)): seeds, not windows, are the unit, so overlapping windows cannot make it look tighter.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from dualspace.io import write_csv
from _grid import ROOT, parse_args, read_rows, run_grid

GENERATOR_REDUCED = {"train": {"steps": 150, "checkpoint_every": 1000}, "net": {"base_channels": 16}}


def _reduced_generator(section: dict) -> dict:
    g = copy.deepcopy(section["generator"])
    name = g.get("family", "diffusion")
    if name == "diffusion":
        for key, update in GENERATOR_REDUCED.items():
            g[name][key].update(update)
    return {"family": name, **g[name]}


def run_seed(ds: str, seed: int, work: str, config: dict, threads: int, device: str) -> str:
    """Every stage for one (dataset, seed) in <work>/<ds>/seed<seed>/; returns the coverage CSV's path."""
    import torch

    from dualspace.conformal import class_thresholds
    from dualspace.data import read_split
    from dualspace.metrics import band_sigma, cluster_band_sigma
    from dualspace.stages.data import prepare_data
    from dualspace.stages.density import pair_nll, train_mdn
    from dualspace.stages.features import dump_pairs, fit_phi
    from dualspace.stages.generator import train_generator

    torch.set_num_threads(threads)
    d = Path(work) / ds / f"seed{seed}"
    out = d / "coverage.csv"
    if out.exists():
        return str(out)
    d.mkdir(parents=True, exist_ok=True)
    sec, t0 = config[ds], time.time()
    splits = {s: d / f"{s}.h5" for s in ("train", "calib", "test")}
    prepare_data(ds, seed=seed, options=sec["data"], outputs=splits)
    train_generator(splits["train"], d / "generator.pt", _reduced_generator(sec), seed, ds, device=device)
    fit_phi(splits["train"], d / "phi.pt", sec["phi"], seed, ds, device=device)
    for s, path in splits.items():
        dump_pairs(d / "generator.pt", d / "phi.pt", path, d / f"pairs_{s}.h5", ds, device=device)
    train_mdn(d / "pairs_train.h5", d / "mdn.pt", sec["mdn"], seed, ds)
    cal_s, cal_label, attrs = pair_nll(d / "mdn.pt", d / "pairs_calib.h5", ds)
    test_s, test_label, _ = pair_nll(d / "mdn.pt", d / "pairs_test.h5", ds)
    n_classes, mode = int(attrs["n_classes"]), config["conformal"]["mode"]
    cal_groups = read_split(splits["calib"], dataset=ds)[0].groups
    test_groups = read_split(splits["test"], dataset=ds)[0].groups
    rows = []
    for alpha in config["alphas"]:
        table = class_thresholds(cal_s, cal_label, alpha, n_classes, mode=mode)
        covered = test_s <= table.tau_for(test_label)
        cluster = (cluster_band_sigma(cal_s, cal_label, cal_groups, test_s, test_label, test_groups, alpha,
                                      n_classes, mode=mode, seed=seed) if test_groups is not None else None)
        for c in [*range(n_classes), "all"]:
            m = test_label == c if c != "all" else np.ones(len(test_label), bool)
            i = slice(None) if c == "all" else (c if mode == "class" else 0)
            n_cal = int(np.sum(table.n_calib[i]))
            upper = (float(np.average(table.coverage_upper, weights=np.bincount(test_label, minlength=n_classes)))
                     if c == "all" and mode == "class" else float(np.atleast_1d(table.coverage_upper[i])[0]))
            rows.append({"dataset": ds, "seed": seed, "alpha": alpha, "class": str(c), "n_calib": n_cal,
                         "n_test": int(m.sum()), "coverage": float(covered[m].mean()), "coverage_upper": upper,
                         "sigma_binomial": band_sigma(alpha, int(m.sum()), n_cal),
                         "sigma_cluster": cluster[c] if cluster else np.nan,
                         "n_groups": len(np.unique(test_groups)) if test_groups is not None else np.nan})
    write_csv(pd.DataFrame(rows), out)
    print(f"{ds} seed {seed}: {time.time() - t0:.0f} s", flush=True)
    return str(out)


def table(work: str) -> str:
    """Markdown: per dataset and alpha, pooled coverage over seeds against the band, and the per-class cells.

    `work` is a `run` folder or a CSV of its rows (docs/coverage_seeds.csv holds the run of docs/benchmarks.md).
    """
    df = read_rows(work, "*/seed*/coverage.csv")
    lines = ["| dataset | alpha | seeds | pooled coverage, mean +- sd | SE | band [alpha, alpha + 1/(n+1)] "
             "| mean in band (2 SE) | sd over seeds / binomial sigma | / cluster sigma | worst class mean "
             "| class cells out (3 binomial sigma) | out (3 cluster sigma) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for (ds, alpha), g in df.groupby(["dataset", "alpha"], sort=True):
        pooled, cells = g[g["class"] == "all"], g[g["class"] != "all"]
        n, mean, sd = len(pooled), pooled["coverage"].mean(), pooled["coverage"].std(ddof=1)
        se, upper = sd / np.sqrt(n), pooled["coverage_upper"].mean()
        ok = alpha - 2 * se <= mean <= upper + 2 * se
        by_class = cells.groupby("class")["coverage"].mean()

        def out(col):
            s = cells[col]
            if s.isna().all():
                return "-"
            bad = (cells["coverage"] < alpha - 3 * s) | (cells["coverage"] > cells["coverage_upper"] + 3 * s)
            return f"{int(bad.sum())}/{len(cells)}"

        ratio_c = sd / pooled["sigma_cluster"].mean() if pooled["sigma_cluster"].notna().any() else np.nan
        lines.append(f"| {ds} | {alpha} | {n} | {mean:.3f} +- {sd:.3f} | {se:.3f} | [{alpha}, {upper:.3f}] "
                     f"| {'yes' if ok else 'NO'} | {sd / pooled['sigma_binomial'].mean():.2f} "
                     f"| {'-' if np.isnan(ratio_c) else f'{ratio_c:.2f}'} "
                     f"| {by_class.min():.3f} (class {by_class.idxmin()}) | {out('sigma_binomial')} "
                     f"| {out('sigma_cluster')} |")
    return "\n".join(lines)


def _run_args(r) -> None:
    r.add_argument("--seeds", type=int, default=8, help="seeds 0 .. N-1")
    r.add_argument("--hapt-source", default=None, help="HAPT.pkl.gz when the package is not installed")


def main() -> None:
    args = parse_args(__doc__, _run_args, threads=2, device="cpu")
    if args.cmd == "table":
        print(table(args.work))
        return
    config = yaml.safe_load(open(args.config))
    if args.hapt_source:
        config["hapt"]["data"]["source"] = args.hapt_source
    run_grid(run_seed, [(ds, s, args.work, config, args.threads, args.device)
                        for s in range(args.seeds) for ds in args.datasets], args.jobs)
    print(table(args.work))


if __name__ == "__main__":
    main()
